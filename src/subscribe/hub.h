// The subscription hub: live delivery of the global log without per-subscriber queues.
//
// A subscriber is a LogCursor that reads bounded pages from storage. When it has caught up it
// registers a wake-up with the hub (Watch); the hub calls every wake-up after each durable
// commit, and the subscriber reads the next page. A slow subscriber therefore holds at most one
// page in memory and never slows writers or other subscribers: it simply falls behind and
// catches up from storage.
//
//   SubscriptionHub hub(store);
//   LogCursor cursor(store, /*from=*/1, filter);
//   auto page = cursor.ReadNext();         // stored events first
//   if (cursor.caught_up()) { uint64_t id = hub.Watch([](Position) { /* post a wake-up */ }); }
//
// Named consumers keep their acknowledged position durably in the store's checkpoint
// "consumer/<name>", so they resume after a restart of the client or the server.
#ifndef TIMETRAIL_SUBSCRIBE_HUB_H_
#define TIMETRAIL_SUBSCRIBE_HUB_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "timetrail/store.h"

namespace timetrail::subscribe {

// Reads the log (or a filtered part of it) page by page from a position on.
// Not thread-safe: one owner at a time. Intentionally not copyable.
class LogCursor {
 public:
  // Starts at "from" (inclusive; positions start at 1). "page_size" bounds both the events
  // returned and, with a filter, the events examined by one ReadNext.
  LogCursor(const EventStore* store, Position from, LogFilter filter, std::size_t page_size = 256);
  LogCursor(const LogCursor&) = delete;
  LogCursor& operator=(const LogCursor&) = delete;

  // The next matching events in position order; empty when there is nothing new yet. Advances
  // past every event examined, so no event is returned twice.
  Result<std::vector<RecordedEvent>> ReadNext();

  // True when the last ReadNext reached the head the store had at that time.
  bool caught_up() const { return caught_up_; }
  // The first position the next ReadNext examines.
  Position next_position() const { return next_; }

 private:
  const EventStore* store_;
  Position next_;
  LogFilter filter_;
  std::size_t page_size_;
  bool caught_up_ = false;
};

// Fans commit notifications out to waiting subscribers. Thread-safe.
class SubscriptionHub {
 public:
  // Registers one commit listener with "store", removed again by the destructor.
  // REQUIRES: "store" outlives the hub.
  explicit SubscriptionHub(EventStore* store);
  ~SubscriptionHub();
  SubscriptionHub(const SubscriptionHub&) = delete;
  SubscriptionHub& operator=(const SubscriptionHub&) = delete;

  // "wake" is called with the new last position after every commit, on the store's writer
  // thread: it must be quick (e.g. post to an event loop) and must not call into the hub.
  // Returns an id for Unwatch.
  std::uint64_t Watch(std::function<void(Position)> wake);
  // After Unwatch returns, the wake-up is not running and will not be called again.
  void Unwatch(std::uint64_t id);
  // Number of current watchers (live subscribers).
  std::size_t watchers() const;

  // --- Named consumers ---------------------------------------------------------------------
  // Names are 1..200 characters of [A-Za-z0-9._-]; kInvalidArgument otherwise.
  static Status ValidateConsumerName(std::string_view name);
  // The acknowledged position, nullopt if the consumer never acknowledged.
  Result<std::optional<Position>> GetConsumer(std::string_view name) const;
  // Stores "position" durably. kInvalidArgument if it is beyond the store's last position.
  Status AckConsumer(std::string_view name, Position position);

  EventStore* store() const { return store_; }

 private:
  void OnCommit(Position p);

  EventStore* const store_;
  std::uint64_t listener_id_ = 0;
  mutable std::mutex mu_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::function<void(Position)>> watchers_;  // GUARDED_BY(mu_)
};

}  // namespace timetrail::subscribe

#endif  // TIMETRAIL_SUBSCRIBE_HUB_H_
