// Reads: a stream in both directions, the log with filters, time lookups, stream info.
#include <gtest/gtest.h>

#include <thread>

#include "support/store_helpers.h"
#include "support/temp_dir.h"

namespace timetrail {
namespace {

using testing::Event;
using testing::OpenOrDie;
using testing::TempDir;

class ReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // orders/1: 5 events, orders/2: 3 events, users/1: 2 events, interleaved.
    for (int i = 0; i < 5; ++i) {
      Append("orders/1", i == 0 ? "$put" : "Shipped", i == 0 ? R"({"n":0})" : std::to_string(i));
      if (i < 3) Append("orders/2", "Created", std::to_string(i));
      if (i < 2) Append("users/1", "$patch", R"({"i":)" + std::to_string(i) + "}");
    }
  }
  void Append(const std::string& stream, const std::string& type, const std::string& data) {
    auto r = store_->Append(stream, ExpectedRevision::Any(), {Event(type, data)});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    times_.push_back(r->recorded_at);
  }
  TempDir dir_;
  std::unique_ptr<EventStore> store_ = OpenOrDie(dir_.Sub("data"));
  std::vector<Timestamp> times_;  // recorded_at by position - 1
};

TEST_F(ReadTest, StreamForwardsFromARevision) {
  ReadStreamOptions o;
  o.from_revision = 2;
  o.max_count = 2;
  auto events = store_->ReadStream("orders/1", o);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].revision, 2u);
  EXPECT_EQ((*events)[1].revision, 3u);
  EXPECT_EQ((*events)[0].stream, "orders/1");
}

TEST_F(ReadTest, StreamBackwardsFromTheEndOrARevision) {
  ReadStreamOptions o;
  o.direction = Direction::kBackward;
  auto all = store_->ReadStream("orders/1", o);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ(all->front().revision, 4u);
  EXPECT_EQ(all->back().revision, 0u);
  o.from_revision = 1;
  auto some = store_->ReadStream("orders/1", o);
  ASSERT_EQ(some->size(), 2u);
  EXPECT_EQ((*some)[0].revision, 1u);
}

TEST_F(ReadTest, StreamNamesThatArePrefixesOfOthersStayApart) {
  ASSERT_TRUE(store_->Append("orders", ExpectedRevision::NoStream(), {Event("T")}).ok());
  auto events = store_->ReadStream("orders", {});
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 1u);
  EXPECT_EQ(store_->ReadStream("orders/", {}).status().code(), StatusCode::kNotFound);
}

TEST_F(ReadTest, MissingStreamIsNotFoundButPastTheEndIsEmpty) {
  auto missing = store_->ReadStream("nope", {});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  ReadStreamOptions o;
  o.from_revision = 99;
  auto past = store_->ReadStream("orders/1", o);
  ASSERT_TRUE(past.ok());
  EXPECT_TRUE(past->empty());
  EXPECT_EQ(store_->ReadStream("bad\x01name", {}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ReadTest, LogIsInPositionOrderAndPages) {
  ReadLogOptions o;
  o.max_count = 4;
  std::vector<Position> seen;
  for (;;) {
    auto page = store_->ReadLog(o);
    ASSERT_TRUE(page.ok());
    EXPECT_EQ(page->head_position, 10u);
    if (page->events.empty()) break;
    for (const auto& e : page->events) seen.push_back(e.position);
    o.from_position = page->next_position;
  }
  ASSERT_EQ(seen.size(), 10u);
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);
}

TEST_F(ReadTest, LogFiltersByStreamPrefixAndType) {
  ReadLogOptions o;
  o.filter.stream_prefix = "orders/";
  auto orders = store_->ReadLog(o);
  ASSERT_TRUE(orders.ok());
  EXPECT_EQ(orders->events.size(), 8u);
  o.filter.event_types = {"Created", "$put"};
  auto created = store_->ReadLog(o);
  ASSERT_EQ(created->events.size(), 4u);
  for (const auto& e : created->events) {
    EXPECT_TRUE(e.type == "Created" || e.type == "$put");
    EXPECT_TRUE(e.stream.starts_with("orders/"));
  }
  // A bounded scan stops early and says where to continue.
  o.filter = LogFilter{"users/", {}};
  o.max_scan = 3;
  auto bounded = store_->ReadLog(o);
  ASSERT_TRUE(bounded.ok());
  EXPECT_EQ(bounded->next_position, 4u);
  EXPECT_EQ(bounded->events.size(), 1u);  // users/1 rev 0 is at position 3
}

TEST_F(ReadTest, PositionAtFindsTheLastPositionAtOrBeforeATime) {
  EXPECT_EQ(*store_->PositionAt(Timestamp{times_.front().micros - 1}), 0u);
  EXPECT_EQ(*store_->PositionAt(times_.back()), 10u);
  EXPECT_EQ(*store_->PositionAt(Timestamp{times_.back().micros + 1000000}), 10u);
  for (std::size_t i = 0; i < times_.size(); ++i) {
    Position p = *store_->PositionAt(times_[i]);
    // The last position recorded at or before times_[i]: at least i + 1, and its time <= t.
    EXPECT_GE(p, i + 1);
    EXPECT_LE(store_->GetEventAt(p)->recorded_at, times_[i]);
    if (p < 10) {
      EXPECT_GT(store_->GetEventAt(p + 1)->recorded_at, times_[i]);
    }
  }
}

TEST_F(ReadTest, StreamInfoReportsExistsRevisionAndDeleted) {
  auto info = store_->GetStreamInfo("orders/1");
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->exists);
  EXPECT_EQ(info->last_revision, 4u);
  EXPECT_FALSE(info->deleted);
  EXPECT_FALSE(store_->GetStreamInfo("nope")->exists);

  ASSERT_TRUE(store_->Append("orders/1", ExpectedRevision::Exact(4), {Event("$delete", "")}).ok());
  EXPECT_TRUE(store_->GetStreamInfo("orders/1")->deleted);
  // Domain events do not change whether the entity is deleted; a $put brings it back.
  ASSERT_TRUE(store_->Append("orders/1", ExpectedRevision::Any(), {Event("Note", "1")}).ok());
  EXPECT_TRUE(store_->GetStreamInfo("orders/1")->deleted);
  ASSERT_TRUE(store_->Append("orders/1", ExpectedRevision::Any(), {Event("$put", "{}")}).ok());
  EXPECT_FALSE(store_->GetStreamInfo("orders/1")->deleted);
}

TEST_F(ReadTest, GetEventByIdAndPosition) {
  auto e = store_->GetEventAt(3);
  ASSERT_TRUE(e.ok());
  auto by_id = store_->GetEvent(e->id);
  ASSERT_TRUE(by_id.ok());
  EXPECT_EQ(by_id->position, 3u);
  EXPECT_EQ(store_->GetEventAt(0).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetEventAt(11).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetEvent(Uuid::Generate()).status().code(), StatusCode::kNotFound);
}

TEST_F(ReadTest, WaitForPositionWaitsForACommitOrTimesOut) {
  EXPECT_TRUE(store_->WaitForPosition(10, std::chrono::milliseconds(0)).ok());
  auto timeout = store_->WaitForPosition(11, std::chrono::milliseconds(20));
  EXPECT_EQ(timeout.code(), StatusCode::kTimeout);
  std::atomic<Position> heard{0};
  auto id = store_->AddCommitListener([&](Position p) { heard = p; });
  std::thread writer([&] { Append("late", "T", "1"); });
  EXPECT_TRUE(store_->WaitForPosition(11, std::chrono::seconds(10)).ok());
  writer.join();
  EXPECT_EQ(heard.load(), 11u);
  store_->RemoveCommitListener(id);
  Append("later", "T", "1");
  EXPECT_EQ(heard.load(), 11u);
}

}  // namespace
}  // namespace timetrail
