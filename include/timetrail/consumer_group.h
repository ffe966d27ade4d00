// ConsumerGroups: competing consumers over the global log (persistent subscriptions).
//
// A consumer group hands each matching event of the log to one member at a time. The member
// holds it under a lease until it acknowledges it (done), negatively acknowledges it (retry,
// park or skip), or the lease runs out (then another member gets it). An event whose deliveries
// failed max_retries times (nacked for retry, or its lease ran out) is parked: a copy is
// appended to the stream "$parked/<group>" and the event counts as done, so one poison event
// does not stop the group. Once the cause is fixed, ReplayParked hands the parked events out
// again.
//
//   ConsumerGroups groups(store.get());
//   ConsumerGroupSettings settings;
//   settings.stream_prefix = "orders/";
//   settings.max_retries = 3;
//   settings.lease = std::chrono::seconds(30);
//   auto created = groups.Put("billing", settings);           // create, or update the limits
//   auto batch = groups.Read("billing", "worker-1", 10, std::chrono::seconds(5));
//   if (!batch.ok()) { /* batch.status().ToString() says why */ }
//   for (const GroupEvent& ge : *batch) {
//     if (Process(ge.event)) {
//       (void)groups.Ack("billing", {ge.event.position});
//     } else {
//       (void)groups.Nack("billing", {ge.event.position}, NackAction::kRetry, "db down");
//     }
//   }
//
// Durability: a group's settings and progress are kept in the store (checkpoint
// "group/<name>"): the position acknowledged through (every matching event at or before it is
// done), the done positions above it and the failed-delivery count of each event not yet done.
// Every Ack and Nack is durable on return, and parking an event is one atomic write with the
// state that marks it done (exactly once). Leases are kept in memory only: after a restart every
// event not yet done is delivered again (at-least-once), so processing should be idempotent.
//
// The group reads only the events of streams not beginning with '$' (system streams, such as
// the parked streams themselves). To keep its state small, a group does not look further than
// kMaxWindow matching events past its oldest event not yet done.
//
// Thread safety: every method may be called from many threads at once. One ConsumerGroups per
// store: two instances over one store would each hand out the same events.
#ifndef TIMETRAIL_CONSUMER_GROUP_H_
#define TIMETRAIL_CONSUMER_GROUP_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "timetrail/event.h"
#include "timetrail/status.h"
#include "timetrail/store.h"

namespace timetrail {

// Intentionally copyable.
struct ConsumerGroupSettings {
  // Which events the group delivers; empty fields match everything (but never '$' streams).
  // Fixed when the group is created.
  std::string stream_prefix;
  std::vector<std::string> event_types;
  // The first log position the group considers (0 is taken as 1). Fixed when the group is
  // created.
  Position start_position = 1;
  // Start after the last event of the log when the group is created, instead of at
  // start_position (which then records where that was).
  bool start_at_end = false;
  // Failed deliveries (nack with retry, or an expired lease) after which an event is parked:
  // 1 to 1000.
  std::uint32_t max_retries = 5;
  // How long a member holds an event before it goes to another member: 10 ms to 24 h.
  std::chrono::milliseconds lease{30000};
  // Events one member may hold at once: 1 to 10000.
  std::uint32_t max_in_flight = 100;
};

// What a member does with an event it cannot acknowledge.
enum class NackAction : std::uint8_t {
  kRetry,  // deliver it again (to any member); counts as a failed delivery
  kPark,   // park it now, whatever its failed deliveries
  kSkip,   // give it up: it counts as done, without a copy
};

// One event handed to a member. Intentionally copyable.
struct GroupEvent {
  RecordedEvent event;
  // 1 for the first delivery; failed deliveries before this one + 1.
  std::uint32_t delivery_count = 1;
  std::chrono::system_clock::time_point lease_expires;
};

// Intentionally copyable.
struct GroupMemberInfo {
  std::string name;
  std::size_t in_flight = 0;
  std::chrono::system_clock::time_point last_seen;  // its last Read
};

// Intentionally copyable.
struct ConsumerGroupInfo {
  std::string name;
  ConsumerGroupSettings settings;
  // Every matching event at or before this position is done (acknowledged, skipped or
  // parked): the oldest event not yet done - 1.
  Position acked_through = 0;
  std::size_t done_above = 0;      // done events after acked_through
  std::size_t in_flight = 0;       // events held by members now
  std::size_t awaiting_retry = 0;  // events that failed and wait to be delivered again
  std::uint64_t parked = 0;        // events parked since the group was created
  // Replayed parked events at or before acked_through not done again yet (ReplayParked).
  std::size_t replaying = 0;
  std::string parked_stream;  // "$parked/<name>"
  // Members that read since this process started (members are not stored).
  std::vector<GroupMemberInfo> members;
};

// What Put did.
struct PutGroupResult {
  ConsumerGroupInfo info;
  bool created = false;  // false: the group existed and its limits were updated (or unchanged)
};

class ConsumerGroups {
 public:
  // Matching events past the oldest event not yet done that a group looks at (see above).
  static constexpr std::size_t kMaxWindow = 10000;
  // Parked events one ReplayParked hands out again at most.
  static constexpr std::size_t kMaxReplayPerCall = 1000;

  // REQUIRES: "store" outlives this. Groups are loaded from the store on first use.
  explicit ConsumerGroups(EventStore* store);
  ~ConsumerGroups();
  ConsumerGroups(const ConsumerGroups&) = delete;
  ConsumerGroups& operator=(const ConsumerGroups&) = delete;

  // Names are 1..200 characters of [A-Za-z0-9._-]; kInvalidArgument otherwise.
  static Status ValidateName(std::string_view name);
  // "$parked/<name>".
  static std::string ParkedStream(std::string_view name);

  // Creates a group, or updates an existing one's max_retries, lease and max_in_flight.
  // kInvalidArgument for bad settings; kWrongExpectedRevision when the group exists with
  // another filter or start position (delete it and create it again to change them).
  Result<PutGroupResult> Put(std::string_view name, const ConsumerGroupSettings& settings);
  // Forgets the group and its progress (its parked stream stays). kNotFound if unknown.
  Status Delete(std::string_view name);
  // kNotFound if unknown. Describe also takes back the events whose lease ran out.
  Result<ConsumerGroupInfo> Describe(std::string_view name);
  // Only the settings (cheap: e.g. to check who may use the group). kNotFound if unknown.
  Result<ConsumerGroupSettings> Settings(std::string_view name);
  // Every group, by name.
  Result<std::vector<ConsumerGroupInfo>> List();

  // Up to "max" events for "member" (1..200 characters as group names), which it alone holds
  // until it acks or nacks them or their lease runs out. Waits up to "wait" for a first event
  // when none is available; an empty answer means none came. kNotFound for an unknown group.
  Result<std::vector<GroupEvent>> Read(std::string_view group, std::string_view member,
                                       std::size_t max, std::chrono::milliseconds wait);

  // Marks events done. Each position must have been delivered (since this process started) and
  // not be done yet; a late ack after the lease ran out is still taken while the event is not
  // done. Otherwise nothing changes and the answer is kInvalidArgument naming the positions.
  // 1 to 1000 positions per call.
  Status Ack(std::string_view group, const std::vector<Position>& positions);
  // Gives events back (NackAction). Positions as for Ack. "reason" (at most 1000 bytes) goes
  // into the parked copy when the event is parked. With "member" (recommended), only events
  // that member holds now, under a lease that has not run out: a late nack then cannot take an
  // event back from the member it went to after the lease ran out (kInvalidArgument, nothing
  // changed). Without it, any delivered event not yet done.
  Status Nack(std::string_view group, const std::vector<Position>& positions, NackAction action,
              std::string_view reason, std::string_view member = {});

  // Hands the events parked since the last replay (at most kMaxReplayPerCall; call again for
  // more) to the members again, as new: their failed deliveries start at 0, and one that
  // fails max_retries times again is parked again. Returns how many. Durable on return.
  // kNotFound for an unknown group.
  Result<std::size_t> ReplayParked(std::string_view name);

  // Wakes every waiting Read, which answers with what it has; later Reads do not wait. For a
  // server that shuts down.
  void Close();

  // One group's state; defined by the implementation.
  struct Group;

 private:
  Status LoadLocked();
  Result<std::shared_ptr<Group>> Find(std::string_view name);
  Status SaveIndexLocked();
  void Wake();

  EventStore* const store_;
  std::uint64_t listener_id_ = 0;

  // The set of groups. Taken before a group's own lock, never after it.
  std::mutex mu_;
  bool loaded_ = false;
  std::map<std::string, std::shared_ptr<Group>, std::less<>> groups_;  // GUARDED_BY(mu_)

  // Reads in progress: with none, a commit need not wake anyone (the common case, so the
  // store's thread does not take wait_mu_ after every commit).
  std::atomic<int> readers_{0};
  // Waiting Reads sleep here. Never held while calling the store (the commit listener takes it
  // on the store's thread).
  std::mutex wait_mu_;
  std::condition_variable wake_;
  std::uint64_t wake_seq_ = 0;  // GUARDED_BY(wait_mu_)
  bool closed_ = false;         // GUARDED_BY(wait_mu_)
};

}  // namespace timetrail

#endif  // TIMETRAIL_CONSUMER_GROUP_H_
