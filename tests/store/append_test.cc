// Appends: expected revisions, multi-stream atomicity, idempotency, positions and times.
#include <gtest/gtest.h>

#include <mutex>
#include <thread>
#include <vector>

#include "support/store_helpers.h"
#include "support/temp_dir.h"

namespace timetrail {
namespace {

using testing::DumpLog;
using testing::Event;
using testing::EventWithId;
using testing::OpenOrDie;
using testing::TempDir;

class AppendTest : public ::testing::Test {
 protected:
  TempDir dir_;
  std::unique_ptr<EventStore> store_ = OpenOrDie(dir_.Sub("data"));
};

TEST_F(AppendTest, AssignsRevisionsPositionsTxAndTimes) {
  auto a = store_->Append("friend-1", ExpectedRevision::NoStream(),
                          {Event("$put", R"({"name":"Rachel"})"), Event("Met", "null")});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->tx, 1u);
  EXPECT_EQ(a->first_position, 1u);
  EXPECT_EQ(a->last_position, 2u);
  ASSERT_EQ(a->streams.size(), 1u);
  EXPECT_EQ(a->streams[0].first_revision, 0u);
  EXPECT_EQ(a->streams[0].last_revision, 1u);
  EXPECT_FALSE(a->idempotent_replay);

  auto b = store_->Append("friend-1", ExpectedRevision::Exact(1), {Event("$patch", R"({"x":1})")});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->tx, 2u);
  EXPECT_EQ(b->first_position, 3u);
  EXPECT_EQ(b->streams[0].last_revision, 2u);
  EXPECT_GE(b->recorded_at, a->recorded_at);

  auto events = store_->ReadStream("friend-1", {});
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].recorded_at, (*events)[1].recorded_at);  // one transaction, one time
  EXPECT_EQ((*events)[0].valid_from, (*events)[0].recorded_at);   // valid_from defaults
  EXPECT_EQ((*events)[1].data, "null");
  EXPECT_EQ((*events)[1].metadata, "{}");
  EXPECT_EQ(store_->LastPosition(), 3u);
}

TEST_F(AppendTest, EachExpectationKindIsEnforcedAndReportsTheActualRevision) {
  auto exists_on_empty = store_->Append("s", ExpectedRevision::Exists(), {Event("T")});
  ASSERT_EQ(exists_on_empty.status().code(), StatusCode::kWrongExpectedRevision);
  ASSERT_NE(exists_on_empty.status().conflict(), nullptr);
  EXPECT_EQ(exists_on_empty.status().conflict()->stream, "s");
  EXPECT_FALSE(exists_on_empty.status().conflict()->actual_revision.has_value());

  auto exact_on_empty = store_->Append("s", ExpectedRevision::Exact(0), {Event("T")});
  EXPECT_EQ(exact_on_empty.status().code(), StatusCode::kWrongExpectedRevision);

  ASSERT_TRUE(store_->Append("s", ExpectedRevision::NoStream(), {Event("T"), Event("T")}).ok());

  auto again = store_->Append("s", ExpectedRevision::NoStream(), {Event("T")});
  ASSERT_EQ(again.status().code(), StatusCode::kWrongExpectedRevision);
  EXPECT_EQ(again.status().conflict()->actual_revision, 1u);
  EXPECT_NE(again.status().message().find("is at revision 1"), std::string::npos);

  auto stale = store_->Append("s", ExpectedRevision::Exact(0), {Event("T")});
  ASSERT_EQ(stale.status().code(), StatusCode::kWrongExpectedRevision);
  EXPECT_EQ(stale.status().conflict()->actual_revision, 1u);

  EXPECT_TRUE(store_->Append("s", ExpectedRevision::Exists(), {Event("T")}).ok());
  EXPECT_TRUE(store_->Append("s", ExpectedRevision::Any(), {Event("T")}).ok());
  EXPECT_TRUE(store_->Append("s", ExpectedRevision::Exact(3), {Event("T")}).ok());
  EXPECT_EQ(store_->GetStreamInfo("s")->last_revision, 4u);
  EXPECT_EQ(store_->GetStats().conflicts, 4u);
}

TEST_F(AppendTest, MultiStreamTransactionWithOneFailingExpectationChangesNothing) {
  ASSERT_TRUE(store_->Append("a", ExpectedRevision::Any(), {Event("T")}).ok());
  ASSERT_TRUE(store_->Append("b", ExpectedRevision::Any(), {Event("T"), Event("T")}).ok());
  auto before = DumpLog(*store_);
  auto head_before = store_->GetIntegrityHead();

  Transaction tx;
  tx.appends.push_back({"a", ExpectedRevision::Exact(0), {Event("T"), Event("T")}});
  tx.appends.push_back({"c", ExpectedRevision::NoStream(), {Event("T")}});
  tx.appends.push_back({"b", ExpectedRevision::Exact(0), {Event("T")}});  // b is at 1
  auto r = store_->Transact(tx);
  ASSERT_EQ(r.status().code(), StatusCode::kWrongExpectedRevision);
  EXPECT_EQ(r.status().conflict()->stream, "b");
  EXPECT_EQ(r.status().conflict()->actual_revision, 1u);

  EXPECT_EQ(DumpLog(*store_), before);
  EXPECT_EQ(store_->GetIntegrityHead().hash_hex, head_before.hash_hex);
  EXPECT_FALSE(store_->GetStreamInfo("c")->exists);
  EXPECT_EQ(store_->GetStreamInfo("a")->last_revision, 0u);

  // The same transaction with the right expectation commits all of it, atomically, in order.
  tx.appends[2].expected = ExpectedRevision::Exact(1);
  auto ok = store_->Transact(tx);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->first_position, 4u);
  EXPECT_EQ(ok->last_position, 7u);
  ASSERT_EQ(ok->streams.size(), 3u);
  EXPECT_EQ(ok->streams[0].first_position, 4u);
  EXPECT_EQ(ok->streams[1].first_position, 6u);
  EXPECT_EQ(ok->streams[2].last_revision, 2u);
  for (Position p = 4; p <= 7; ++p) EXPECT_EQ(store_->GetEventAt(p)->tx, ok->tx);
}

TEST_F(AppendTest, IdempotentRetryReturnsTheOriginalResult) {
  Uuid id1 = Uuid::Generate(), id2 = Uuid::Generate();
  std::vector<ProposedEvent> events = {EventWithId("$put", R"({"v":1})", id1),
                                       EventWithId("$patch", R"({"v":2})", id2)};
  auto first = store_->Append("s", ExpectedRevision::NoStream(), events);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(store_->Append("s", ExpectedRevision::Any(), {Event("Other")}).ok());
  auto before = DumpLog(*store_);

  // A retry (even with an expectation that no longer holds) returns the original result.
  auto retry = store_->Append("s", ExpectedRevision::NoStream(), events);
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  EXPECT_TRUE(retry->idempotent_replay);
  EXPECT_EQ(retry->tx, first->tx);
  EXPECT_EQ(retry->first_position, first->first_position);
  EXPECT_EQ(retry->last_position, first->last_position);
  EXPECT_EQ(retry->recorded_at, first->recorded_at);
  EXPECT_EQ(retry->streams[0].first_revision, 0u);
  EXPECT_EQ(retry->streams[0].last_revision, 1u);
  EXPECT_EQ(DumpLog(*store_), before);
  EXPECT_EQ(store_->GetEvent(id2)->revision, 1u);
  EXPECT_EQ(store_->GetStats().idempotent_replays, 1u);
}

TEST_F(AppendTest, PartialOverlapOrDifferentPlaceIsAnError) {
  Uuid id1 = Uuid::Generate(), id2 = Uuid::Generate(), id3 = Uuid::Generate();
  ASSERT_TRUE(store_
                  ->Append("s", ExpectedRevision::Any(),
                           {EventWithId("T", "1", id1), EventWithId("T", "2", id2)})
                  .ok());
  auto before = DumpLog(*store_);

  auto partial = store_->Append("s", ExpectedRevision::Any(),
                                {EventWithId("T", "2", id2), EventWithId("T", "3", id3)});
  ASSERT_EQ(partial.status().code(), StatusCode::kDuplicateEvent);
  EXPECT_NE(partial.status().message().find("1 of the 2"), std::string::npos);

  auto other_stream = store_->Append("t", ExpectedRevision::Any(), {EventWithId("T", "1", id1)});
  EXPECT_EQ(other_stream.status().code(), StatusCode::kDuplicateEvent);

  auto reordered = store_->Append("s", ExpectedRevision::Any(),
                                  {EventWithId("T", "2", id2), EventWithId("T", "1", id1)});
  EXPECT_EQ(reordered.status().code(), StatusCode::kDuplicateEvent);

  EXPECT_EQ(DumpLog(*store_), before);
  EXPECT_FALSE(store_->GetEvent(id3).ok());
}

TEST_F(AppendTest, ConcurrentIdenticalRetriesWriteOnce) {
  Uuid id = Uuid::Generate();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0}, replays{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto r = store_->Append("s", ExpectedRevision::Any(), {EventWithId("T", "1", id)});
      if (r.ok()) {
        ++ok;
        if (r->idempotent_replay) ++replays;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(replays.load(), 7);
  EXPECT_EQ(store_->LastPosition(), 1u);
}

TEST_F(AppendTest, RecordedAtNeverDecreasesAndValidFromIsKept) {
  ProposedEvent backdated = Event("$put", R"({"city":"NYC"})");
  backdated.valid_from = *ParseTimestamp("2020-01-01");
  auto a = store_->Append("s", ExpectedRevision::Any(), {backdated});
  ASSERT_TRUE(a.ok());
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(store_->Append("s", ExpectedRevision::Any(), {Event("T")}).ok());
  auto events = store_->ReadStream("s", {});
  ASSERT_TRUE(events.ok());
  EXPECT_EQ((*events)[0].valid_from, *ParseTimestamp("2020-01-01"));
  for (std::size_t i = 1; i < events->size(); ++i) {
    EXPECT_LE((*events)[i - 1].recorded_at, (*events)[i].recorded_at);
  }
}

TEST_F(AppendTest, CheckpointIsWrittenAtomicallyWithTheEvents) {
  Transaction tx;
  tx.appends.push_back({"s", ExpectedRevision::NoStream(), {Event("T")}});
  ASSERT_TRUE(store_->TransactWithCheckpoint(tx, "capture/slot", "0/16B3748").ok());
  EXPECT_EQ(store_->GetCheckpoint("capture/slot")->value_or(""), "0/16B3748");

  // A rejected transaction leaves the checkpoint where it was.
  auto conflict = store_->TransactWithCheckpoint(tx, "capture/slot", "0/FFFFFFF");
  EXPECT_EQ(conflict.status().code(), StatusCode::kWrongExpectedRevision);
  EXPECT_EQ(store_->GetCheckpoint("capture/slot")->value_or(""), "0/16B3748");

  ASSERT_TRUE(store_->SetCheckpoint("consumer/c1", "42").ok());
  EXPECT_EQ(store_->GetCheckpoint("consumer/c1")->value_or(""), "42");
  EXPECT_FALSE(store_->GetCheckpoint("consumer/none")->has_value());
  EXPECT_EQ(store_->SetCheckpoint("", "x").code(), StatusCode::kInvalidArgument);
}

TEST_F(AppendTest, EverythingSurvivesReopen) {
  ASSERT_TRUE(
      store_->Append("s", ExpectedRevision::Any(), {Event("T"), Event("$delete", "")}).ok());
  ASSERT_TRUE(store_->SetCheckpoint("consumer/c", "2").ok());
  auto before = DumpLog(*store_);
  auto head = store_->GetIntegrityHead();
  store_.reset();
  store_ = OpenOrDie(dir_.Sub("data"));
  EXPECT_EQ(DumpLog(*store_), before);
  EXPECT_EQ(store_->GetIntegrityHead().hash_hex, head.hash_hex);
  EXPECT_TRUE(store_->GetStreamInfo("s")->deleted);
  EXPECT_EQ(store_->GetCheckpoint("consumer/c")->value_or(""), "2");
  auto next = store_->Append("s", ExpectedRevision::Exact(1), {Event("T")});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->first_position, 3u);
  EXPECT_EQ(next->tx, 2u);
}

TEST_F(AppendTest, ASecondOpenOfTheSameDirectoryIsRefusedClearly) {
  Options options;
  std::string location = testing::StoreLocation(dir_.Sub("data"), options);
  auto second = EventStore::Open(options, location);
  if (testing::TestStoreUrl() != nullptr) {
    // A store kept in PostgreSQL takes many writing nodes (shared_store_test.cc).
    EXPECT_TRUE(second.ok()) << second.status().ToString();
    return;
  }
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("in use"), std::string::npos);
}

TEST_F(AppendTest, OpenWithoutCreateOnAnEmptyDirectoryFails) {
  Options o;
  o.create_if_missing = false;
  std::string location = testing::StoreLocation(dir_.Sub("nothing-here"), o);
  auto r = EventStore::Open(o, location);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

// One client appending one event at a time commits on its own thread: one fsync per commit and
// no hand-off to the writer and sync threads (the commit listener, called where a commit is
// published, runs on the appending thread). With appends in flight on other threads, they share
// fsyncs through the writer thread as before.
TEST(GroupCommitTest, ALoneWriterCommitsOnItsOwnThreadWithOneFsyncPerCommit) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("data"));
  std::mutex mu;
  std::vector<std::thread::id> publishers;
  store->AddCommitListener([&](Position) {
    std::lock_guard<std::mutex> l(mu);
    publishers.push_back(std::this_thread::get_id());
  });
  const StoreStats before = store->GetStats();
  for (int i = 0; i < 50; ++i) {
    Result<Committed> c = store->Append("alone", ExpectedRevision::Any(), {Event("e")});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->last_position, static_cast<Position>(i + 1));
  }
  const StoreStats after = store->GetStats();
  EXPECT_EQ(after.group_commits - before.group_commits, 50u);
  std::lock_guard<std::mutex> l(mu);
  ASSERT_EQ(publishers.size(), 50u);
  for (std::thread::id id : publishers) EXPECT_EQ(id, std::this_thread::get_id());
}

// A group commit delay asks appends to wait for others: a lone append then goes through the
// writer thread like any other.
TEST(GroupCommitTest, AGroupCommitDelayKeepsTheLoneWriterOnTheWriterThread) {
  TempDir dir;
  Options options;
  options.group_commit_delay_micros = 200;
  auto store = OpenOrDie(dir.Sub("data"), options);
  std::mutex mu;
  std::vector<std::thread::id> publishers;
  store->AddCommitListener([&](Position) {
    std::lock_guard<std::mutex> l(mu);
    publishers.push_back(std::this_thread::get_id());
  });
  ASSERT_TRUE(store->Append("delayed", ExpectedRevision::Any(), {Event("e")}).ok());
  std::lock_guard<std::mutex> l(mu);
  ASSERT_EQ(publishers.size(), 1u);
  EXPECT_NE(publishers[0], std::this_thread::get_id());
}

TEST(GroupCommitTest, ConcurrentWritersStillShareFsyncs) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("data"));
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        ASSERT_TRUE(
            store->Append("w/" + std::to_string(t), ExpectedRevision::Any(), {Event("e")}).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(store->LastPosition(), 800u);
  EXPECT_LT(store->GetStats().group_commits, 800u);
  Result<VerifyReport> report = store->Verify(VerifyOptions{});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok);
}

}  // namespace
}  // namespace timetrail
