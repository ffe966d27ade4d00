// ConsumerGroups (include/timetrail/consumer_group.h) over a real store in a temporary
// directory: each event to one member at a time, acks, nacks, leases, parking, durability
// across a reopen of the store, filters and bad input.
#include "timetrail/consumer_group.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/store_helpers.h"
#include "support/temp_dir.h"

namespace timetrail::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// Generous: only a broken implementation waits this long.
constexpr milliseconds kLongWait{20000};

std::vector<Position> AppendN(EventStore* store, const std::string& stream, int n,
                              const std::string& type = "tick") {
  std::vector<Position> out;
  for (int i = 0; i < n; ++i) {
    auto c = store->Append(stream, ExpectedRevision::Any(),
                           {Event(type, R"({"i":)" + std::to_string(i) + "}")});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (c.ok()) out.push_back(c->last_position);
  }
  return out;
}

std::vector<Position> PositionsOf(const std::vector<GroupEvent>& events) {
  std::vector<Position> out;
  for (const GroupEvent& e : events) out.push_back(e.event.position);
  return out;
}

std::vector<RecordedEvent> Parked(EventStore* store, const std::string& group) {
  ReadStreamOptions o;
  auto events = store->ReadStream(ConsumerGroups::ParkedStream(group), o);
  if (!events.ok()) return {};
  return *events;
}

class ConsumerGroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = OpenOrDie(dir_.Sub("data"));
    ASSERT_NE(store_, nullptr);
    groups_ = std::make_unique<ConsumerGroups>(store_.get());
  }
  void Reopen() {
    groups_.reset();
    store_.reset();
    store_ = OpenOrDie(dir_.Sub("data"));
    ASSERT_NE(store_, nullptr);
    groups_ = std::make_unique<ConsumerGroups>(store_.get());
  }
  void Create(const std::string& name, ConsumerGroupSettings s = {}) {
    auto r = groups_->Put(name, s);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->created);
  }
  std::vector<GroupEvent> Read(const std::string& group, const std::string& member, std::size_t max,
                               milliseconds wait = milliseconds(0)) {
    auto r = groups_->Read(group, member, max, wait);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<GroupEvent>{};
  }

  TempDir dir_;
  std::unique_ptr<EventStore> store_;
  std::unique_ptr<ConsumerGroups> groups_;
};

TEST_F(ConsumerGroupTest, EachEventGoesToExactlyOneMember) {
  Create("g");
  std::vector<Position> written = AppendN(store_.get(), "s", 200);
  // Three members read concurrently and ack what they get; every event is processed once.
  std::mutex mu;
  std::multiset<Position> processed;
  std::vector<std::thread> members;
  for (int m = 0; m < 3; ++m) {
    members.emplace_back([&, m] {
      std::string name = "m" + std::to_string(m);
      while (true) {
        auto batch = groups_->Read("g", name, 7, milliseconds(0));
        ASSERT_TRUE(batch.ok()) << batch.status().ToString();
        if (batch->empty()) return;
        for (const GroupEvent& e : *batch) EXPECT_EQ(e.delivery_count, 1u);
        {
          std::lock_guard<std::mutex> lock(mu);
          for (Position p : PositionsOf(*batch)) processed.insert(p);
        }
        ASSERT_TRUE(groups_->Ack("g", PositionsOf(*batch)).ok());
      }
    });
  }
  for (std::thread& t : members) t.join();
  EXPECT_EQ(processed, std::multiset<Position>(written.begin(), written.end()));
  auto info = groups_->Describe("g");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->acked_through, written.back());
  EXPECT_EQ(info->in_flight, 0u);
  EXPECT_EQ(info->done_above, 0u);
  EXPECT_EQ(info->members.size(), 3u);
}

TEST_F(ConsumerGroupTest, HeldEventsAreNotHandedToAnotherMember) {
  Create("g");
  std::vector<Position> written = AppendN(store_.get(), "s", 3);
  std::vector<GroupEvent> a = Read("g", "a", 2);
  EXPECT_EQ(PositionsOf(a), (std::vector<Position>{written[0], written[1]}));
  std::vector<GroupEvent> b = Read("g", "b", 10);
  EXPECT_EQ(PositionsOf(b), (std::vector<Position>{written[2]}));
  EXPECT_TRUE(Read("g", "c", 10).empty());
  // Acked out of order: the watermark waits for the oldest.
  ASSERT_TRUE(groups_->Ack("g", {written[1], written[2]}).ok());
  auto info = groups_->Describe("g");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->acked_through, written[0] - 1);
  EXPECT_EQ(info->in_flight, 1u);
  EXPECT_EQ(info->done_above, 2u);
  ASSERT_TRUE(groups_->Ack("g", {written[0]}).ok());
  info = groups_->Describe("g");
  EXPECT_EQ(info->acked_through, written[2]);
  EXPECT_EQ(info->done_above, 0u);
}

TEST_F(ConsumerGroupTest, AckOfAnEventNotHeldChangesNothing) {
  Create("g");
  std::vector<Position> written = AppendN(store_.get(), "s", 2);
  std::vector<GroupEvent> a = Read("g", "a", 1);
  ASSERT_EQ(a.size(), 1u);
  // Never delivered, and beyond the log: refused, and the held one stays held.
  Status s = groups_->Ack("g", {written[0], written[1]});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find(std::to_string(written[1])), std::string::npos) << s.ToString();
  EXPECT_EQ(groups_->Ack("g", {999}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(groups_->Ack("g", {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(groups_->Describe("g")->in_flight, 1u);
  ASSERT_TRUE(groups_->Ack("g", {written[0]}).ok());
  // Twice: the second is refused.
  EXPECT_EQ(groups_->Ack("g", {written[0]}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(groups_->Ack("nope", {1}).code(), StatusCode::kNotFound);
  EXPECT_EQ(groups_->Read("nope", "a", 1, milliseconds(0)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(groups_->Read("g", "bad name", 1, milliseconds(0)).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(ConsumerGroupTest, NackRetryRedeliversToAnotherMember) {
  Create("g");
  std::vector<Position> written = AppendN(store_.get(), "s", 1);
  std::vector<GroupEvent> a = Read("g", "a", 1);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_TRUE(groups_->Nack("g", {written[0]}, NackAction::kRetry, "busy").ok());
  std::vector<GroupEvent> b = Read("g", "b", 1);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].event.position, written[0]);
  EXPECT_EQ(b[0].delivery_count, 2u);
  ASSERT_TRUE(groups_->Ack("g", {written[0]}).ok());
  EXPECT_EQ(groups_->Describe("g")->acked_through, written[0]);
  EXPECT_TRUE(Parked(store_.get(), "g").empty());
}

TEST_F(ConsumerGroupTest, AnExpiredLeaseRedeliversToAnotherMember) {
  ConsumerGroupSettings s;
  s.lease = milliseconds(200);
  Create("g", s);
  std::vector<Position> written = AppendN(store_.get(), "s", 1);
  std::vector<GroupEvent> a = Read("g", "a", 1);
  ASSERT_EQ(a.size(), 1u);
  // "a" never answers: "b" waits, and gets the event once the lease runs out.
  std::vector<GroupEvent> b = Read("g", "b", 1, kLongWait);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].event.position, written[0]);
  EXPECT_EQ(b[0].delivery_count, 2u);
  ASSERT_TRUE(groups_->Ack("g", {written[0]}).ok());
  auto info = groups_->Describe("g");
  EXPECT_EQ(info->acked_through, written[0]);
}

TEST_F(ConsumerGroupTest, ALateNackNamingItsMemberCannotTakeTheEventFromItsNewHolder) {
  ConsumerGroupSettings s;
  s.lease = milliseconds(200);
  s.max_retries = 5;
  Create("g", s);
  std::vector<Position> written = AppendN(store_.get(), "s", 2);
  std::vector<GroupEvent> a = Read("g", "a", 2);
  ASSERT_EQ(a.size(), 2u);
  // While its lease holds, "a" may give an event back; "b", which holds nothing, may not.
  Status not_b = groups_->Nack("g", {written[1]}, NackAction::kRetry, "", "b");
  EXPECT_EQ(not_b.code(), StatusCode::kInvalidArgument) << not_b.ToString();
  EXPECT_NE(not_b.message().find("does not hold"), std::string::npos) << not_b.ToString();
  // "a" stalls on the first event until its lease runs out, and "b" gets it.
  std::vector<GroupEvent> b = Read("g", "b", 1, kLongWait);
  ASSERT_EQ(b.size(), 1u);
  ASSERT_EQ(b[0].event.position, written[0]);
  // a's late nack is refused and changes nothing: "b" still holds the event, and its failed
  // deliveries are only the lease that ran out.
  Status late = groups_->Nack("g", {written[0]}, NackAction::kRetry, "late", "a");
  EXPECT_EQ(late.code(), StatusCode::kInvalidArgument) << late.ToString();
  EXPECT_NE(late.message().find("member 'b' holds it"), std::string::npos) << late.ToString();
  auto info = groups_->Describe("g");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->awaiting_retry, 1u);          // the second event, whose lease ran out too
  EXPECT_TRUE(Read("g", "c", 1).size() == 1u);  // that one, not the event "b" holds
  ASSERT_TRUE(groups_->Nack("g", {written[0]}, NackAction::kSkip, "", "b").ok());
}

TEST_F(ConsumerGroupTest, AWaitingReadIsWokenByAnAppend) {
  Create("g");
  std::thread writer([&] {
    std::this_thread::sleep_for(milliseconds(100));
    AppendN(store_.get(), "s", 1);
  });
  std::vector<GroupEvent> got = Read("g", "a", 5, kLongWait);
  writer.join();
  ASSERT_EQ(got.size(), 1u);
}

TEST_F(ConsumerGroupTest, APoisonEventIsParkedAfterMaxRetriesWithACopy) {
  ConsumerGroupSettings s;
  s.max_retries = 3;
  Create("g", s);
  std::vector<Position> written = AppendN(store_.get(), "orders/1", 2);
  // The first event fails every time, with any member; the second is processed.
  for (std::uint32_t attempt = 1; attempt <= 3; ++attempt) {
    std::vector<GroupEvent> got = Read("g", "m" + std::to_string(attempt), 10);
    for (const GroupEvent& e : got) {
      if (e.event.position == written[0]) {
        EXPECT_EQ(e.delivery_count, attempt);
        ASSERT_TRUE(
            groups_
                ->Nack("g", {written[0]}, NackAction::kRetry, "bad data " + std::to_string(attempt))
                .ok());
      } else {
        ASSERT_TRUE(groups_->Ack("g", {e.event.position}).ok());
      }
    }
  }
  EXPECT_TRUE(Read("g", "m4", 10).empty());
  auto info = groups_->Describe("g");
  ASSERT_TRUE(info.ok());
  // At least: the read went past the parked copy too, which is no event of the group.
  EXPECT_GE(info->acked_through, written[1]);
  EXPECT_EQ(info->done_above, 0u);
  EXPECT_EQ(info->parked, 1u);
  std::vector<RecordedEvent> parked = Parked(store_.get(), "g");
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_EQ(parked[0].type, "parked");
  json copy = json::parse(parked[0].data);
  auto original = store_->GetEventAt(written[0]);
  ASSERT_TRUE(original.ok());
  EXPECT_EQ(copy["group"], "g");
  EXPECT_EQ(copy["position"], written[0]);
  EXPECT_EQ(copy["stream"], "orders/1");
  EXPECT_EQ(copy["event_id"], original->id.ToString());
  EXPECT_EQ(copy["type"], "tick");
  EXPECT_EQ(copy["failed_deliveries"], 3);
  EXPECT_EQ(copy["reason"], "bad data 3");
  EXPECT_EQ(copy["data"], json::parse(original->data));
  // Another group's filter never sees the parked stream.
  Create("all");
  std::vector<GroupEvent> all = Read("all", "x", 100);
  EXPECT_EQ(PositionsOf(all), written);
}

TEST_F(ConsumerGroupTest, ExpiredLeasesCountTowardsParking) {
  ConsumerGroupSettings s;
  s.max_retries = 2;
  s.lease = milliseconds(50);
  Create("g", s);
  std::vector<Position> written = AppendN(store_.get(), "s", 1);
  ASSERT_EQ(Read("g", "a", 1).size(), 1u);
  std::vector<GroupEvent> again = Read("g", "b", 1, kLongWait);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].delivery_count, 2u);
  // The second lease runs out too: parked, and nothing more is delivered.
  std::this_thread::sleep_for(milliseconds(100));
  auto info = groups_->Describe("g");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->parked, 1u);
  EXPECT_EQ(info->acked_through, written[0]);
  std::vector<RecordedEvent> parked = Parked(store_.get(), "g");
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_NE(json::parse(parked[0].data)["reason"].get<std::string>().find("expired"),
            std::string::npos);
  EXPECT_TRUE(Read("g", "c", 1).empty());
}

TEST_F(ConsumerGroupTest, NackParkAndSkip) {
  Create("g");
  std::vector<Position> written = AppendN(store_.get(), "s", 2);
  ASSERT_EQ(Read("g", "a", 2).size(), 2u);
  ASSERT_TRUE(groups_->Nack("g", {written[0]}, NackAction::kPark, "cannot parse").ok());
  ASSERT_TRUE(groups_->Nack("g", {written[1]}, NackAction::kSkip, "").ok());
  auto info = groups_->Describe("g");
  EXPECT_EQ(info->acked_through, written[1]);
  EXPECT_EQ(info->parked, 1u);
  std::vector<RecordedEvent> parked = Parked(store_.get(), "g");
  ASSERT_EQ(parked.size(), 1u);
  json copy = json::parse(parked[0].data);
  EXPECT_EQ(copy["position"], written[0]);
  EXPECT_EQ(copy["failed_deliveries"], 0);
  EXPECT_EQ(copy["reason"], "cannot parse");
  EXPECT_EQ(groups_->Nack("g", {written[0]}, NackAction::kRetry, "").code(),
            StatusCode::kInvalidArgument);
}

TEST_F(ConsumerGroupTest, ReplayParkedDeliversParkedEventsAgain) {
  Create("g");
  std::vector<Position> written = AppendN(store_.get(), "s", 4);
  ASSERT_EQ(Read("g", "a", 4).size(), 4u);
  // Parked: the first and the third, both before the acknowledged position once the second
  // and fourth are acked; the fourth stays held for now.
  ASSERT_TRUE(groups_->Nack("g", {written[0], written[2]}, NackAction::kPark, "bad").ok());
  ASSERT_TRUE(groups_->Ack("g", {written[1]}).ok());
  EXPECT_EQ(groups_->Describe("g")->acked_through, written[2]);
  auto replayed = groups_->ReplayParked("g");
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  EXPECT_EQ(*replayed, 2u);
  std::vector<GroupEvent> again = Read("g", "b", 10);
  ASSERT_EQ(PositionsOf(again), (std::vector<Position>{written[0], written[2]}));
  EXPECT_EQ(again[0].delivery_count, 1u);
  auto info = groups_->Describe("g");
  EXPECT_EQ(info->replaying, 2u);
  EXPECT_EQ(info->acked_through, written[2]);  // it never moves back
  EXPECT_EQ(info->in_flight, 3u);

  // Durable: after a reopen, the replayed events (and the held one) come again.
  Reopen();
  EXPECT_EQ(groups_->Describe("g")->replaying, 2u);
  EXPECT_EQ(PositionsOf(Read("g", "c", 10)),
            (std::vector<Position>{written[0], written[2], written[3]}));
  ASSERT_TRUE(groups_->Ack("g", {written[0], written[3]}).ok());
  ASSERT_TRUE(groups_->Nack("g", {written[2]}, NackAction::kPark, "still bad").ok());
  // Only the copy parked since the last replay.
  replayed = groups_->ReplayParked("g");
  ASSERT_TRUE(replayed.ok());
  EXPECT_EQ(*replayed, 1u);
  EXPECT_EQ(PositionsOf(Read("g", "c", 10)), (std::vector<Position>{written[2]}));
  ASSERT_TRUE(groups_->Ack("g", {written[2]}).ok());
  info = groups_->Describe("g");
  EXPECT_EQ(info->replaying, 0u);
  EXPECT_EQ(info->parked, 3u);
  EXPECT_GE(info->acked_through, written[3]);  // and past the parked copies
  EXPECT_EQ(info->done_above, 0u);
  EXPECT_EQ(info->in_flight, 0u);
  EXPECT_EQ(*groups_->ReplayParked("g"), 0u);
  EXPECT_TRUE(Read("g", "c", 10).empty());
  EXPECT_EQ(groups_->ReplayParked("nope").status().code(), StatusCode::kNotFound);
}

TEST_F(ConsumerGroupTest, AReplayedEventAfterTheAcknowledgedPositionHoldsItBack) {
  Create("g");
  std::vector<Position> written = AppendN(store_.get(), "s", 2);
  ASSERT_EQ(Read("g", "a", 2).size(), 2u);
  ASSERT_TRUE(groups_->Nack("g", {written[1]}, NackAction::kPark, "bad").ok());
  EXPECT_EQ(*groups_->ReplayParked("g"), 1u);
  ASSERT_TRUE(groups_->Ack("g", {written[0]}).ok());
  // The replayed one is the oldest not done now.
  EXPECT_EQ(groups_->Describe("g")->acked_through, written[1] - 1);
  Reopen();
  EXPECT_EQ(PositionsOf(Read("g", "b", 10)), (std::vector<Position>{written[1]}));
  ASSERT_TRUE(groups_->Ack("g", {written[1]}).ok());
  // Past the parked copy too, which is no event of the group.
  EXPECT_GE(groups_->Describe("g")->acked_through, written[1]);
  EXPECT_EQ(groups_->Describe("g")->in_flight, 0u);
}

TEST_F(ConsumerGroupTest, ProgressAndFailureCountsSurviveAReopen) {
  ConsumerGroupSettings s;
  s.max_retries = 2;
  s.stream_prefix = "orders/";
  Create("g", s);
  AppendN(store_.get(), "other", 2);
  std::vector<Position> written = AppendN(store_.get(), "orders/1", 4);
  std::vector<GroupEvent> got = Read("g", "a", 4);
  ASSERT_EQ(PositionsOf(got), written);
  // Done: the second and fourth. Failed once: the first. Held: the third.
  ASSERT_TRUE(groups_->Ack("g", {written[1], written[3]}).ok());
  ASSERT_TRUE(groups_->Nack("g", {written[0]}, NackAction::kRetry, "once").ok());
  Reopen();

  auto info = groups_->Describe("g");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->settings.stream_prefix, "orders/");
  EXPECT_EQ(info->settings.max_retries, 2u);
  EXPECT_EQ(info->acked_through, written[0] - 1);
  EXPECT_EQ(info->members.size(), 0u);  // members and leases are not stored
  // Every event not done comes again (the held one too: leases are not stored), and the
  // failure count of the first carries over.
  got = Read("g", "b", 10);
  ASSERT_EQ(PositionsOf(got), (std::vector<Position>{written[0], written[2]}));
  EXPECT_EQ(got[0].delivery_count, 2u);
  EXPECT_EQ(got[1].delivery_count, 1u);
  ASSERT_TRUE(groups_->Nack("g", {written[0]}, NackAction::kRetry, "twice").ok());
  EXPECT_EQ(Parked(store_.get(), "g").size(), 1u);  // its second failure parks it
  ASSERT_TRUE(groups_->Ack("g", {written[2]}).ok());
  Reopen();
  info = groups_->Describe("g");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->acked_through, written[3]);
  EXPECT_EQ(info->parked, 1u);
  EXPECT_EQ(info->done_above, 0u);
  EXPECT_TRUE(Read("g", "c", 10).empty());
  auto list = groups_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "g");
}

TEST_F(ConsumerGroupTest, FilterByPrefixTypesAndStart) {
  AppendN(store_.get(), "orders/1", 1, "placed");
  ConsumerGroupSettings s;
  s.stream_prefix = "orders/";
  s.event_types = {"paid", "shipped"};
  s.start_at_end = true;
  Create("g", s);
  AppendN(store_.get(), "orders/1", 1, "placed");
  std::vector<Position> paid = AppendN(store_.get(), "orders/2", 1, "paid");
  AppendN(store_.get(), "users/1", 1, "paid");
  std::vector<Position> shipped = AppendN(store_.get(), "orders/3", 1, "shipped");
  EXPECT_EQ(PositionsOf(Read("g", "a", 10)), (std::vector<Position>{paid[0], shipped[0]}));
  ConsumerGroupSettings from;
  from.start_position = shipped[0];
  Create("late", from);
  EXPECT_EQ(PositionsOf(Read("late", "a", 10)), (std::vector<Position>{shipped[0]}));
}

TEST_F(ConsumerGroupTest, ARareMatchFarIntoTheLogIsFoundWithoutWaiting) {
  ConsumerGroupSettings s;
  s.stream_prefix = "orders/";
  Create("g", s);
  // Many times the events one step of the scan examines, none of them the group's.
  std::vector<ProposedEvent> noise(1000, Event("noise"));
  for (int i = 0; i < 20; ++i) {
    auto c = store_->Append("noise", ExpectedRevision::Any(), noise);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
  }
  std::vector<Position> wanted = AppendN(store_.get(), "orders/1", 1);
  EXPECT_EQ(PositionsOf(Read("g", "a", 10)), wanted);
}

TEST_F(ConsumerGroupTest, MaxInFlightPerMember) {
  ConsumerGroupSettings s;
  s.max_in_flight = 2;
  Create("g", s);
  std::vector<Position> written = AppendN(store_.get(), "s", 5);
  EXPECT_EQ(Read("g", "a", 10).size(), 2u);
  EXPECT_TRUE(Read("g", "a", 10).empty());
  EXPECT_EQ(Read("g", "b", 10).size(), 2u);
  ASSERT_TRUE(groups_->Ack("g", {written[0]}).ok());
  EXPECT_EQ(PositionsOf(Read("g", "a", 10)), (std::vector<Position>{written[4]}));
}

TEST_F(ConsumerGroupTest, PutUpdatesLimitsButNotTheFilter) {
  Create("g");
  ConsumerGroupSettings s;
  s.max_retries = 9;
  s.lease = milliseconds(1000);
  auto updated = groups_->Put("g", s);
  ASSERT_TRUE(updated.ok());
  EXPECT_FALSE(updated->created);
  EXPECT_EQ(updated->info.settings.max_retries, 9u);
  s.stream_prefix = "x";
  EXPECT_EQ(groups_->Put("g", s).status().code(), StatusCode::kInvalidArgument);
  ConsumerGroupSettings bad;
  bad.max_retries = 0;
  EXPECT_EQ(groups_->Put("h", bad).status().code(), StatusCode::kInvalidArgument);
  bad = {};
  bad.lease = milliseconds(1);
  EXPECT_EQ(groups_->Put("h", bad).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(groups_->Put("bad/name", {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(groups_->Describe("h").status().code(), StatusCode::kNotFound);
  Reopen();
  EXPECT_EQ(groups_->Describe("g")->settings.max_retries, 9u);
}

TEST_F(ConsumerGroupTest, DeleteForgetsTheGroup) {
  Create("g");
  std::vector<Position> written = AppendN(store_.get(), "s", 2);
  ASSERT_EQ(Read("g", "a", 1).size(), 1u);
  ASSERT_TRUE(groups_->Ack("g", {written[0]}).ok());
  ASSERT_TRUE(groups_->Delete("g").ok());
  EXPECT_EQ(groups_->Describe("g").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(groups_->Delete("g").code(), StatusCode::kNotFound);
  Reopen();
  EXPECT_EQ(groups_->Describe("g").status().code(), StatusCode::kNotFound);
  // A new group of that name starts afresh.
  Create("g");
  EXPECT_EQ(PositionsOf(Read("g", "a", 10)), written);
}

TEST_F(ConsumerGroupTest, CloseEndsAWaitingRead) {
  Create("g");
  std::thread closer([&] {
    std::this_thread::sleep_for(milliseconds(100));
    groups_->Close();
  });
  // Would wait a minute without Close.
  auto got = groups_->Read("g", "a", 1, milliseconds(60000));
  closer.join();
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty());
}

}  // namespace
}  // namespace timetrail::testing
