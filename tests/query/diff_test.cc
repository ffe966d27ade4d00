// Diff's cost and its arguments. The reference test checks its answers on random histories; here
// a long stream of large events shows that the states and the patch are answered from the two
// as-of folds alone, without reading the events between the points (RocksDB's per-thread perf
// context counts the entries every read touched), while asking for the events reads them.
#include <gtest/gtest.h>
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "support/store_helpers.h"
#include "support/temp_dir.h"
#include "timetrail/store.h"

namespace timetrail {
namespace {

using nlohmann::json;

// Entries of the storage engine's memtables (which hold all of this test's data) that this
// thread touched while "run" ran: point lookups and every iterator seek and step, in any family.
// Reading an event touches its stream-index entry and its log entry at least.
template <typename F>
std::uint64_t EntriesTouched(F&& run) {
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
  rocksdb::get_perf_context()->Reset();
  run();
  const rocksdb::PerfContext& c = *rocksdb::get_perf_context();
  std::uint64_t entries = c.get_from_memtable_count + c.seek_on_memtable_count +
                          c.next_on_memtable_count + c.prev_on_memtable_count;
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  return entries;
}

class DiffTest : public ::testing::Test {
 protected:
  static constexpr std::uint32_t kSnapshotInterval = 16;
  static constexpr int kEvents = 2000;
  static constexpr std::size_t kNoteBytes = 1000;

  void SetUp() override {
    Options o;
    o.sync = false;
    o.snapshot_interval = kSnapshotInterval;
    store_ = testing::OpenOrDie(dir_.path(), o);
    ASSERT_NE(store_, nullptr);
    // Patches only (no $put to restart a fold from), each carrying a large note that the next
    // one replaces: a fold must start from a snapshot, and reading an event costs its size.
    std::vector<ProposedEvent> batch;
    for (int i = 0; i < kEvents; ++i) {
      json data{{"n", i}, {"note", std::string(kNoteBytes, static_cast<char>('a' + i % 26))}};
      batch.push_back(testing::Event("$patch", data.dump()));
      if (batch.size() == 100) {
        ASSERT_TRUE(store_->Append("long", ExpectedRevision::Any(), batch).ok());
        batch.clear();
      }
      if (i % 7 == 0) {
        // Another stream between, so that positions and revisions differ.
        ASSERT_TRUE(
            store_->Append("other", ExpectedRevision::Any(), {testing::Event("$put", R"({"x":1})")})
                .ok());
      }
    }
    ASSERT_TRUE(store_->WaitForBackgroundWork().ok());
  }

  testing::TempDir dir_;
  std::unique_ptr<EventStore> store_;
};

TEST_F(DiffTest, StatesAndPatchDoNotReadTheEventsBetween) {
  const Revision from = 100, to = 1900;  // 1800 events apart: > 100 snapshot intervals
  const DiffQuery q =
      DiffQuery::Between(EntityQuery::AtRevision(from), EntityQuery::AtRevision(to));
  const std::uint64_t between = to - from;  // events

  Result<DiffResult> plain = Result<DiffResult>(Status::Internal("not run"));
  const std::uint64_t plain_entries = EntriesTouched([&] { plain = store_->Diff("long", q); });
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(json::parse(plain->from.state)["n"], 100);
  EXPECT_EQ(json::parse(plain->to.state)["n"], 1900);
  ASSERT_TRUE(plain->to.event.has_value());
  EXPECT_EQ(plain->to.event->revision, to);
  EXPECT_EQ(json::parse(plain->from.state).patch(json::parse(plain->patch)),
            json::parse(plain->to.state));
  EXPECT_TRUE(plain->events.empty());
  EXPECT_TRUE(plain->next_cursor.empty());
  // Two folds of at most a snapshot interval of events each, and the snapshots they start from.
  EXPECT_LT(plain_entries, 8 * (kSnapshotInterval + 1))
      << "the diff touched " << plain_entries << " entries; " << between << " events lie between";

  // The same points with the events between: those are read now, a page at a time. This also
  // shows that the counter above sees the reads it is meant to.
  Result<DiffResult> page = Result<DiffResult>(Status::Internal("not run"));
  const std::uint64_t page_entries =
      EntriesTouched([&] { page = store_->Diff("long", q.WithEvents(500)); });
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->events.size(), 500u);
  EXPECT_EQ(page->events.front().revision, from + 1);
  EXPECT_EQ(page->patch, plain->patch);
  EXPECT_FALSE(page->next_cursor.empty());
  EXPECT_GT(page_entries, 2 * 500u);
  EXPECT_LT(page_entries, 2 * between) << "a page reads only its own events";

  // The cost of the states does not grow with the distance between the points.
  const std::uint64_t near_entries = EntriesTouched([&] {
    ASSERT_TRUE(store_
                    ->Diff("long", DiffQuery::Between(EntityQuery::AtRevision(1890),
                                                      EntityQuery::AtRevision(1900)))
                    .ok());
  });
  EXPECT_LT(plain_entries, 2 * near_entries + 8)
      << "1800 events apart: " << plain_entries << " entries; 10 apart: " << near_entries;
}

TEST_F(DiffTest, PagesFollowTheCursorToTheEnd) {
  const DiffQuery q = DiffQuery::Between(EntityQuery::AtRevision(1990));  // to now: 9 events
  std::vector<Revision> got;
  std::string cursor;
  int pages = 0;
  do {
    Result<DiffResult> d = store_->Diff("long", q.WithEvents(4, cursor));
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    for (const RecordedEvent& e : d->events) got.push_back(e.revision);
    cursor = d->next_cursor;
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(got, (std::vector<Revision>{1991, 1992, 1993, 1994, 1995, 1996, 1997, 1998, 1999}));
  // Exactly a page's worth: no cursor to an empty page.
  Result<DiffResult> exact = store_->Diff("long", q.WithEvents(9));
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->events.size(), 9u);
  EXPECT_TRUE(exact->next_cursor.empty());
  // Backwards, or the same point: a patch, and nothing between.
  Result<DiffResult> back = store_->Diff(
      "long",
      DiffQuery::Between(EntityQuery::AtRevision(1999), EntityQuery::AtRevision(5)).WithEvents(10));
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->events.empty());
  EXPECT_TRUE(back->next_cursor.empty());
  EXPECT_NE(back->patch, "[]");
}

TEST_F(DiffTest, RejectsBadArguments) {
  const DiffQuery q = DiffQuery::Between(EntityQuery::AtRevision(1));
  auto code = [&](const DiffQuery& query, const std::string& stream = "long") {
    return store_->Diff(stream, query).status().code();
  };
  EXPECT_EQ(code(q.WithEvents(0)), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(q.WithEvents(10001)), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(q.WithEvents(10000)), StatusCode::kOk);
  for (const char* bad : {"r", "x12", "r-1", "r12x", "p12", "r99999999999999999999999"}) {
    EXPECT_EQ(code(q.WithEvents(10, bad)), StatusCode::kInvalidArgument) << bad;
  }
  DiffQuery cursor_alone = q;
  cursor_alone.cursor = "r5";
  EXPECT_EQ(code(cursor_alone), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(DiffQuery::Between(EntityQuery::ValidAt(Now()), EntityQuery::AtRevision(3))),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(q, "nobody"), StatusCode::kNotFound);
  EXPECT_EQ(code(DiffQuery::Between(EntityQuery::AtRevision(kEvents))), StatusCode::kNotFound);
  // A cursor past the range is an empty last page, not an error.
  Result<DiffResult> past = store_->Diff("long", q.WithEvents(10, "r999999"));
  ASSERT_TRUE(past.ok());
  EXPECT_TRUE(past->events.empty());
  EXPECT_TRUE(past->next_cursor.empty());
}

}  // namespace
}  // namespace timetrail
