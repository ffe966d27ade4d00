// Activity across streams: every filter combination, paged by cursor, must return exactly what a
// full scan of the log filtered by hand returns, newest first.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>

#include "support/store_helpers.h"
#include "support/temp_dir.h"
#include "timetrail/store.h"

namespace timetrail {
namespace {

using nlohmann::json;

std::vector<Position> Expected(const std::vector<RecordedEvent>& log, const ActivityQuery& q) {
  std::vector<Position> out;
  for (auto it = log.rbegin(); it != log.rend(); ++it) {
    const RecordedEvent& e = *it;
    if (!e.stream.starts_with(q.stream_prefix)) continue;
    if (!q.event_types.empty() &&
        std::find(q.event_types.begin(), q.event_types.end(), e.type) == q.event_types.end()) {
      continue;
    }
    if (!q.actor.empty()) {
      json meta = json::parse(e.metadata);
      if (!meta.contains("actor") || meta["actor"] != q.actor) continue;
    }
    if (q.from && e.recorded_at < *q.from) continue;
    if (q.to && e.recorded_at > *q.to) continue;
    out.push_back(e.position);
  }
  return out;
}

std::vector<Position> AllPages(const EventStore& store, ActivityQuery q, int* pages) {
  std::vector<Position> out;
  *pages = 0;
  while (true) {
    auto page = store.QueryActivity(q);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok() || ++*pages > 10000) break;
    EXPECT_LE(page->events.size(), q.limit);
    for (const RecordedEvent& e : page->events) out.push_back(e.position);
    if (page->next_cursor.empty()) break;
    q.cursor = page->next_cursor;
  }
  return out;
}

TEST(TemporalActivityTest, FiltersAndCursorPagingMatchAFullScan) {
  testing::TempDir dir;
  Options o;
  o.sync = false;
  auto store = testing::OpenOrDie(dir.path(), o);
  ASSERT_NE(store, nullptr);
  std::mt19937 rng(7);
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  const char* prefixes[] = {"orders/", "users/", "orders-archive/"};
  const char* types[] = {"$put", "$patch", "Shipped"};
  const char* actors[] = {"ann", "bob", "cy", "ann\xc3\xa9"};
  for (int i = 0; i < 1500; ++i) {
    ProposedEvent e;
    e.type = types[pick(3)];
    e.data = e.type == "Shipped" ? "1" : R"({"n": 1})";
    int a = pick(5);
    e.metadata = a == 4 ? R"({"reason": "no actor"})" : json{{"actor", actors[a]}}.dump();
    if (a == 1 && pick(2)) e.metadata = R"({"\u0061ctor": "bob"})";  // the same key, escaped
    std::string stream = std::string(prefixes[pick(3)]) + std::to_string(pick(20));
    ASSERT_TRUE(store->Append(stream, ExpectedRevision::Any(), {e}).ok());
  }
  ReadLogOptions all;
  all.max_count = SIZE_MAX;
  auto log = store->ReadLog(all);
  ASSERT_TRUE(log.ok());
  const auto& events = log->events;

  int checked = 0;
  for (int i = 0; i < 120; ++i) {
    ActivityQuery q;
    if (pick(2)) q.stream_prefix = prefixes[pick(3)];
    if (pick(3) == 0) q.stream_prefix = "orders";  // matches two families of streams
    if (pick(2)) q.event_types = {types[pick(3)]};
    if (pick(4) == 0) q.event_types.push_back(types[pick(3)]);
    if (pick(2)) q.actor = actors[pick(4)];
    if (pick(2)) q.from = events[pick(static_cast<int>(events.size()))].recorded_at;
    if (pick(2)) q.to = events[pick(static_cast<int>(events.size()))].recorded_at;
    q.limit = static_cast<std::size_t>(1 + pick(60));
    int pages = 0;
    std::vector<Position> want = Expected(events, q);
    std::vector<Position> got = AllPages(*store, q, &pages);
    ASSERT_EQ(got, want) << "query " << i << " prefix '" << q.stream_prefix << "' actor '"
                         << q.actor << "' limit " << q.limit;
    // Pages are full until the last one.
    EXPECT_LE(static_cast<std::size_t>(pages), want.size() / q.limit + 1);
    ++checked;
  }
  EXPECT_EQ(checked, 120);
}

TEST(TemporalActivityTest, BadCursorAndLimitAreRejected) {
  testing::TempDir dir;
  auto store = testing::OpenOrDie(dir.path());
  ASSERT_NE(store, nullptr);
  ActivityQuery q;
  for (const char* bad : {"x", "p", "p12x", "p0", "12", "p-1"}) {
    q.cursor = bad;
    auto r = store->QueryActivity(q);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("cursor"), std::string::npos);
  }
  q.cursor.clear();
  q.limit = 0;
  EXPECT_EQ(store->QueryActivity(q).status().code(), StatusCode::kInvalidArgument);
  q.limit = 100;
  auto empty = store->QueryActivity(q);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->events.empty());
  EXPECT_TRUE(empty->next_cursor.empty());
}

}  // namespace
}  // namespace timetrail
