// Many threads at once: optimistic concurrency on one stream, and group commit across streams.
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "support/store_helpers.h"
#include "support/temp_dir.h"

namespace timetrail {
namespace {

using testing::Event;
using testing::OpenOrDie;
using testing::TempDir;

TEST(ConcurrencyTest, SixteenThreadsRacingConditionalAppendsOnOneStream) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("data"));
  constexpr int kThreads = 16;
  constexpr Revision kTarget = 150;  // revisions 0..kTarget-1 get written
  std::mutex mu;
  std::map<Revision, int> winners;         // revision -> thread that wrote it
  std::map<int, int> wins_by_thread;
  std::atomic<int> conflicts{0}, bad_conflicts{0};

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::optional<Revision> known;  // this thread's view of the last revision
      for (;;) {
        ExpectedRevision expected =
            known ? ExpectedRevision::Exact(*known) : ExpectedRevision::NoStream();
        Revision next = known ? *known + 1 : 0;
        if (next >= kTarget) return;
        auto r = store->Append("contended", expected,
                               {Event("Claimed", R"({"thread":)" + std::to_string(t) + "}")});
        if (r.ok()) {
          std::lock_guard<std::mutex> l(mu);
          EXPECT_EQ(r->streams[0].last_revision, next);
          EXPECT_TRUE(winners.emplace(next, t).second) << "revision " << next << " won twice";
          ++wins_by_thread[t];
          known = next;
        } else {
          ASSERT_EQ(r.status().code(), StatusCode::kWrongExpectedRevision)
              << r.status().ToString();
          ++conflicts;
          const ConflictDetail* c = r.status().conflict();
          // The loser learns the actual revision, which is past what it expected.
          if (c == nullptr || !c->actual_revision || (known && *c->actual_revision <= *known)) {
            ++bad_conflicts;
          } else {
            known = c->actual_revision;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();

  EXPECT_EQ(bad_conflicts.load(), 0);
  EXPECT_GT(conflicts.load(), 0);
  ASSERT_EQ(winners.size(), kTarget);
  // The stream holds exactly one event per revision, written by the thread that was told it won.
  ReadStreamOptions all;
  all.max_count = 1000;
  auto events = store->ReadStream("contended", all);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), kTarget);
  for (const auto& e : *events) {
    EXPECT_EQ(e.data, R"({"thread":)" + std::to_string(winners[e.revision]) + "}");
  }
  EXPECT_EQ(store->LastPosition(), kTarget);
  EXPECT_EQ(store->GetStats().conflicts, static_cast<std::uint64_t>(conflicts.load()));
}

TEST(ConcurrencyTest, ConcurrentAppendsShareFsyncsAndLoseNothing) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("data"));
  constexpr int kThreads = 32, kPerThread = 40;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<Position> acknowledged;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        ExpectedRevision expected =
            i == 0 ? ExpectedRevision::NoStream() : ExpectedRevision::Exact(i - 1);
        auto r = store->Append("w/" + std::to_string(t), expected, {Event("T", std::to_string(i))});
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        std::lock_guard<std::mutex> l(mu);
        EXPECT_TRUE(acknowledged.insert(r->last_position).second);
      }
    });
  }
  for (auto& th : threads) th.join();
  const std::size_t total = kThreads * kPerThread;
  ASSERT_EQ(acknowledged.size(), total);
  EXPECT_EQ(*acknowledged.begin(), 1u);
  EXPECT_EQ(*acknowledged.rbegin(), total);  // no gaps
  StoreStats stats = store->GetStats();
  EXPECT_EQ(stats.events_committed, total);
  // Group commit: with 32 writers waiting, far fewer durable writes than transactions.
  EXPECT_LT(stats.group_commits, stats.transactions_committed);
  auto report = store->Verify(VerifyOptions{});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->message;
}

TEST(ConcurrencyTest, ReadersNeverSeeAGapWhileWritersCommit) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("data"));
  std::atomic<bool> done{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 60; ++i) {
        ASSERT_TRUE(store->Append("g/" + std::to_string(t), ExpectedRevision::Any(),
                                  {Event("T"), Event("T")})
                        .ok());
      }
    });
  }
  std::thread reader([&] {
    while (!done) {
      ReadLogOptions o;
      o.max_count = SIZE_MAX;
      auto page = store->ReadLog(o);
      ASSERT_TRUE(page.ok());
      for (std::size_t i = 0; i < page->events.size(); ++i) {
        ASSERT_EQ(page->events[i].position, i + 1) << "gap in the log";
      }
      ASSERT_EQ(page->events.size(), page->head_position);
    }
  });
  for (auto& w : writers) w.join();
  done = true;
  reader.join();
  EXPECT_EQ(store->LastPosition(), 8u * 60 * 2);
}

}  // namespace
}  // namespace timetrail
