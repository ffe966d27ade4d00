// Activity across streams: every filter combination, paged by cursor, must return exactly what a
// full scan of the log filtered by hand returns, newest first. The actor index holds each event's
// log value (a covering index); entries written by older releases hold nothing and are read from
// the log, and a store with both kinds answers the same. The type index holds a key per event
// from index/types_since on; events before it are found by a scan of the log.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <random>

#include "core/coding.h"
#include "storage/kv_engine.h"
#include "store/keys.h"
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
    if (q.skip_system_streams && e.stream.starts_with("$")) continue;
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

// The actor index entries of "dir" (key -> value), read with the engine under the store.
std::vector<std::pair<std::string, std::string>> ActorEntries(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> out;
  auto engine = OpenRocksDbEngine(RocksDbEngineOptions{}, dir);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  if (!engine.ok()) return out;
  auto it = (*engine)->NewIterator(Family::kIndex);
  for (it->Seek("a"); it->Valid() && it->key().starts_with("a"); it->Next()) {
    out.emplace_back(std::string(it->key()), std::string(it->value()));
  }
  EXPECT_TRUE(it->status().ok());
  return out;
}

// Empties the values of the actor index entries that "old" picks (by their position), as
// releases before the covering index wrote them.
void WriteAsOlderRelease(const std::string& dir, const std::function<bool(Position)>& old) {
  auto engine = OpenRocksDbEngine(RocksDbEngineOptions{}, dir);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto batch = (*engine)->NewBatch();
  auto it = (*engine)->NewIterator(Family::kIndex);
  for (it->Seek("a"); it->Valid() && it->key().starts_with("a"); it->Next()) {
    const std::string_view k = it->key();
    const Position p = DecodeBigEndian64(k.data() + k.size() - 8);
    if (old(p)) batch->Put(Family::kIndex, k, "");
  }
  ASSERT_TRUE(it->status().ok());
  ASSERT_TRUE((*engine)->Write(*batch, /*sync=*/true).ok());
}

// A log of 1,500 events; "ann" wrote about 1,200 of them, so that a page of 1,100 crosses the
// 1,024-event chunks in which entries without the event are read from the log.
std::vector<RecordedEvent> WriteActorLog(EventStore& store, std::mt19937& rng) {
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  const char* prefixes[] = {"orders/", "users/"};
  const char* types[] = {"$put", "Shipped"};
  for (int i = 0; i < 300; ++i) {
    Transaction tx;
    for (int j = 0; j < 5; ++j) {
      StreamAppend a;
      a.stream = std::string(prefixes[pick(2)]) + std::to_string(i * 5 + j);
      ProposedEvent e;
      e.type = types[pick(2)];
      e.data = e.type == "Shipped" ? "1" : R"({"n": 1})";
      const int who = pick(10);
      e.metadata = who < 8 ? R"({"actor": "ann"})" : who == 8 ? R"({"actor": "bob"})" : "{}";
      a.events.push_back(std::move(e));
      tx.appends.push_back(std::move(a));
    }
    EXPECT_TRUE(store.Transact(tx).ok());
  }
  ReadLogOptions all;
  all.max_count = SIZE_MAX;
  auto log = store.ReadLog(all);
  EXPECT_TRUE(log.ok());
  return log.ok() ? log->events : std::vector<RecordedEvent>{};
}

TEST(TemporalActivityTest, ActorEntriesHoldTheEventAsTheLogStoresIt) {
  testing::TempDir dir;
  Options o;
  o.sync = false;
  std::vector<RecordedEvent> events;
  std::vector<std::string> stored;
  {
    auto store = testing::OpenOrDie(dir.path(), o);
    ASSERT_NE(store, nullptr);
    std::mt19937 rng(3);
    events = WriteActorLog(*store, rng);
  }
  std::size_t with_actor = 0;
  for (const RecordedEvent& e : events) with_actor += e.metadata != "{}";
  auto entries = ActorEntries(dir.path());
  ASSERT_EQ(entries.size(), with_actor);
  // Each value is the log's value of the position its key names, hash included.
  auto engine = OpenRocksDbEngine(RocksDbEngineOptions{}, dir.path());
  ASSERT_TRUE(engine.ok());
  for (const auto& [key, value] : entries) {
    std::string log_key = key.substr(key.size() - 8);
    auto logged = (*engine)->Get(Family::kLog, log_key);
    ASSERT_TRUE(logged.ok() && logged->has_value());
    ASSERT_EQ(value, **logged);
  }
}

// A store upgraded from a release whose actor entries hold nothing: older entries are read from
// the log, newer ones from the index, and every page is the same as a full scan.
TEST(TemporalActivityTest, EntriesWithoutTheEventAnswerTheSame) {
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE("variant " + std::to_string(variant));
    testing::TempDir dir;
    Options o;
    o.sync = false;
    std::mt19937 rng(11 + variant);
    std::vector<RecordedEvent> events;
    {
      auto store = testing::OpenOrDie(dir.path(), o);
      ASSERT_NE(store, nullptr);
      events = WriteActorLog(*store, rng);
    }
    // 0: every entry as the older release wrote it; 1: the first half (an upgrade in the middle
    // of the log); 2: every third one, so that both kinds alternate within a page.
    const Position half = events.size() / 2;
    WriteAsOlderRelease(dir.path(), [&](Position p) {
      return variant == 0 || (variant == 1 && p <= half) || (variant == 2 && p % 3 == 0);
    });
    std::size_t empty = 0;
    for (const auto& [key, value] : ActorEntries(dir.path())) empty += value.empty();
    ASSERT_GT(empty, 0u);
    auto store = testing::OpenOrDie(dir.path(), o);
    ASSERT_NE(store, nullptr);
    auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
    for (int i = 0; i < 60; ++i) {
      ActivityQuery q;
      q.actor = pick(4) == 0 ? "bob" : "ann";
      if (pick(3) == 0) q.stream_prefix = "users/";
      if (pick(3) == 0) q.event_types = {"Shipped"};
      if (pick(2)) q.from = events[pick(static_cast<int>(events.size()))].recorded_at;
      if (pick(2)) q.to = events[pick(static_cast<int>(events.size()))].recorded_at;
      // Small pages, pages across the 1,024-event chunks, and one page for everything.
      const std::size_t limits[] = {1, 7, 16, 17, 100, 1100, 10000};
      q.limit = limits[pick(7)];
      int pages = 0;
      std::vector<Position> want = Expected(events, q);
      ASSERT_EQ(AllPages(*store, q, &pages), want)
          << "query " << i << " actor " << q.actor << " limit " << q.limit;
      EXPECT_LE(static_cast<std::size_t>(pages), want.size() / q.limit + 1);
    }
    // New events after the upgrade are covered, and pages mixing both kinds stay in order.
    for (int i = 0; i < 40; ++i) {
      ASSERT_TRUE(store
                      ->Append("orders/new", ExpectedRevision::Any(),
                               {testing::Event("Shipped", "1", R"({"actor": "ann"})")})
                      .ok());
    }
    ReadLogOptions all;
    all.max_count = SIZE_MAX;
    auto log = store->ReadLog(all);
    ASSERT_TRUE(log.ok());
    ActivityQuery q;
    q.actor = "ann";
    q.limit = 30;
    int pages = 0;
    EXPECT_EQ(AllPages(*store, q, &pages), Expected(log->events, q));
  }
}

// An actor entry whose value is not the event of its position is reported, not answered.
TEST(TemporalActivityTest, AnActorEntryHoldingAnotherEventIsCorruption) {
  testing::TempDir dir;
  {
    auto store = testing::OpenOrDie(dir.path());
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(store
                      ->Append("s", ExpectedRevision::Any(),
                               {testing::Event("Shipped", "1", R"({"actor": "ann"})")})
                      .ok());
    }
  }
  auto entries = ActorEntries(dir.path());
  ASSERT_EQ(entries.size(), 2u);
  {
    auto engine = OpenRocksDbEngine(RocksDbEngineOptions{}, dir.path());
    ASSERT_TRUE(engine.ok());
    auto batch = (*engine)->NewBatch();
    batch->Put(Family::kIndex, entries[1].first, entries[0].second);
    ASSERT_TRUE((*engine)->Write(*batch, /*sync=*/true).ok());
  }
  auto store = testing::OpenOrDie(dir.path());
  ASSERT_NE(store, nullptr);
  ActivityQuery q;
  q.actor = "ann";
  EXPECT_EQ(store->QueryActivity(q).status().code(), StatusCode::kCorruption);
}

// A stream prefix without an actor: the streams' own indexes answer when few streams begin with
// it, the log when many do; both must give what a full scan gives, including streams written
// only before the window and a window in the middle of busy streams.
TEST(TemporalActivityTest, PrefixesOfFewAndManyStreamsMatchAFullScan) {
  testing::TempDir dir;
  Options o;
  o.sync = false;
  auto store = testing::OpenOrDie(dir.path(), o);
  ASSERT_NE(store, nullptr);
  std::mt19937 rng(5);
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  // 1,200 streams under "many/" (more than the prefix path takes), written first; then a few
  // busy streams under "few/" and "few-other/", with "many/" streams now and then.
  for (int t = 0; t < 12; ++t) {
    Transaction tx;
    for (int j = 0; j < 100; ++j) {
      StreamAppend a;
      a.stream = "many/" + std::to_string(t * 100 + j);
      a.events.push_back(testing::Event(pick(2) ? "$put" : "Noted", "{}"));
      tx.appends.push_back(std::move(a));
    }
    ASSERT_TRUE(store->Transact(tx).ok());
  }
  for (int i = 0; i < 1500; ++i) {
    std::string stream = pick(10) == 0  ? "many/" + std::to_string(pick(1200))
                         : pick(3) == 0 ? "few-other/" + std::to_string(pick(3))
                                        : "few/" + std::to_string(pick(8));
    ASSERT_TRUE(
        store->Append(stream, ExpectedRevision::Any(), {testing::Event(pick(2) ? "$put" : "Noted")})
            .ok());
  }
  ReadLogOptions all;
  all.max_count = SIZE_MAX;
  auto log = store->ReadLog(all);
  ASSERT_TRUE(log.ok());
  const auto& events = log->events;
  const char* prefixes[] = {"few/", "few", "few/3", "many/", "many/11", "nothing/"};
  for (int i = 0; i < 150; ++i) {
    ActivityQuery q;
    q.stream_prefix = prefixes[pick(6)];
    if (pick(3) == 0) q.event_types = {"Noted"};
    if (pick(2)) q.from = events[pick(static_cast<int>(events.size()))].recorded_at;
    if (pick(2)) q.to = events[pick(static_cast<int>(events.size()))].recorded_at;
    const std::size_t limits[] = {1, 5, 40, 1000};
    q.limit = limits[pick(4)];
    int pages = 0;
    std::vector<Position> want = Expected(events, q);
    ASSERT_EQ(AllPages(*store, q, &pages), want)
        << "query " << i << " prefix '" << q.stream_prefix << "' limit " << q.limit;
    EXPECT_LE(static_cast<std::size_t>(pages), want.size() / q.limit + 1);
  }
}

// The type index entries of "dir": the position of each key under "t", by type.
std::map<std::string, std::vector<Position>> TypeEntries(const std::string& dir) {
  std::map<std::string, std::vector<Position>> out;
  auto engine = OpenRocksDbEngine(RocksDbEngineOptions{}, dir);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  if (!engine.ok()) return out;
  auto it = (*engine)->NewIterator(Family::kIndex);
  for (it->Seek("t"); it->Valid() && it->key().starts_with("t"); it->Next()) {
    const std::string_view k = it->key();
    EXPECT_TRUE(it->value().empty());
    std::uint32_t length = 0;
    for (int i = 1; i <= 4; ++i) length = (length << 8) | static_cast<std::uint8_t>(k[i]);
    EXPECT_EQ(k.size(), 5 + length + 8u);
    const Position p = DecodeBigEndian64(k.data() + k.size() - 8);
    out[std::string(k.substr(5, length))].push_back(p);
  }
  EXPECT_TRUE(it->status().ok());
  return out;
}

std::string MetaOf(const std::string& dir, std::string_view key) {
  auto engine = OpenRocksDbEngine(RocksDbEngineOptions{}, dir);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  if (!engine.ok()) return "";
  auto v = (*engine)->Get(Family::kMeta, key);
  EXPECT_TRUE(v.ok());
  return v.ok() ? v->value_or("") : "";
}

// Makes "dir" look as if the events at positions "older" had been written by a release without
// the type index: their entries go, and with "since" set, index/types_since is "since" (nullopt:
// no record, as before the first open by a release with the index).
void WithoutTypeEntries(const std::string& dir, const std::function<bool(Position)>& older,
                        std::optional<Position> since) {
  auto engine = OpenRocksDbEngine(RocksDbEngineOptions{}, dir);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto batch = (*engine)->NewBatch();
  auto it = (*engine)->NewIterator(Family::kIndex);
  for (it->Seek("t"); it->Valid() && it->key().starts_with("t"); it->Next()) {
    const std::string_view k = it->key();
    const Position p = DecodeBigEndian64(k.data() + k.size() - 8);
    if (older(p)) batch->Delete(Family::kIndex, k);
  }
  ASSERT_TRUE(it->status().ok());
  if (since) {
    batch->Put(Family::kMeta, keys::kTypesSince, std::to_string(*since));
  } else {
    batch->Delete(Family::kMeta, keys::kTypesSince);
  }
  ASSERT_TRUE((*engine)->Write(*batch, /*sync=*/true).ok());
}

// Appends "count" events of a log for type queries: common, uncommon and rare types, over up to
// 3,000 streams under "many/" (once more than 1,024 of them are written, a prefix filter goes
// with the type index instead of the streams' indexes), a few busy streams under "few/", and a
// system stream; transactions of one to four events.
void WriteTypedLog(EventStore& store, std::mt19937& rng, int count, int common_percent = 60) {
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  for (int written = 0; written < count;) {
    Transaction tx;
    const int n = std::min(1 + pick(4), count - written);
    for (int j = 0; j < n; ++j) {
      StreamAppend a;
      const int where = pick(20);
      a.stream = where == 0  ? "$system"
                 : where < 6 ? "few/" + std::to_string(pick(5))
                             : "many/" + std::to_string(pick(3000));
      if (std::any_of(tx.appends.begin(), tx.appends.end(),
                      [&](const StreamAppend& b) { return b.stream == a.stream; })) {
        a.stream += "/" + std::to_string(j);  // one append per stream in a transaction
      }
      const int t = pick(100);
      const int rest = (t - common_percent) * 100 / (100 - common_percent);
      const char* type = t < common_percent ? "Common"
                         : rest < 62        ? "$put"
                         : rest < 92        ? "Uncommon"
                                            : "Rare";
      a.events.push_back(testing::Event(type, std::string(type) == "$put" ? R"({"n": 1})" : "1",
                                        pick(3) == 0 ? R"({"actor": "ann"})" : "{}"));
      tx.appends.push_back(std::move(a));
    }
    auto committed = store.Transact(tx);
    ASSERT_TRUE(committed.ok()) << committed.status().ToString();
    written += n;
  }
}

std::vector<RecordedEvent> WholeLog(const EventStore& store) {
  ReadLogOptions all;
  all.max_count = SIZE_MAX;
  auto log = store.ReadLog(all);
  EXPECT_TRUE(log.ok());
  return log.ok() ? log->events : std::vector<RecordedEvent>{};
}

// Random type queries (one to three types, duplicates and unknown ones included; with windows,
// prefixes, system streams left out, sometimes an actor; page sizes around the answer's size)
// against a full scan.
void ExpectTypeQueriesMatchAFullScan(const EventStore& store, std::mt19937& rng, int queries) {
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  const std::vector<RecordedEvent> events = WholeLog(store);
  ASSERT_FALSE(events.empty());
  const char* types[] = {"Common", "$put", "Uncommon", "Rare", "Missing"};
  const char* prefixes[] = {"many/", "many/1", "few/", "$"};
  for (int i = 0; i < queries; ++i) {
    ActivityQuery q;
    for (int n = 1 + pick(3); n > 0; --n) q.event_types.push_back(types[pick(5)]);
    if (pick(4) == 0) q.stream_prefix = prefixes[pick(4)];
    if (pick(4) == 0) q.skip_system_streams = true;
    if (pick(8) == 0) q.actor = "ann";
    if (pick(2)) q.from = events[pick(static_cast<int>(events.size()))].recorded_at;
    if (pick(2)) q.to = events[pick(static_cast<int>(events.size()))].recorded_at;
    q.limit = 10000;
    const std::size_t answer = Expected(events, q).size();
    // Pages of one, small pages, pages that a scan of a common type's dense stretch may not
    // fill, exactly the answer, one less and one more, all in one.
    const std::size_t limits[] = {1,
                                  3,
                                  16,
                                  17,
                                  40,
                                  100,
                                  500,
                                  std::max<std::size_t>(answer, 1),
                                  std::max<std::size_t>(answer, 2) - 1,
                                  answer + 1,
                                  10000};
    q.limit = limits[pick(11)];
    int pages = 0;
    std::vector<Position> want = Expected(events, q);
    ASSERT_EQ(AllPages(store, q, &pages), want)
        << "query " << i << " types " << q.event_types.size() << " first '" << q.event_types[0]
        << "' prefix '" << q.stream_prefix << "' actor '" << q.actor << "' limit " << q.limit;
    EXPECT_LE(static_cast<std::size_t>(pages), want.size() / q.limit + 1);
  }
}

TEST(TemporalActivityTest, TypeFiltersMatchAFullScan) {
  testing::TempDir dir;
  Options o;
  o.sync = false;
  std::mt19937 rng(17);
  {
    auto store = testing::OpenOrDie(dir.path(), o);
    ASSERT_NE(store, nullptr);
    WriteTypedLog(*store, rng, 3000);
    ExpectTypeQueriesMatchAFullScan(*store, rng, 200);
  }
  // A store created with the type index: one entry per event, under its type, from position 1.
  EXPECT_EQ(MetaOf(dir.path(), keys::kTypesSince), "1");
  auto store = testing::OpenOrDie(dir.path(), o);
  ASSERT_NE(store, nullptr);
  const std::vector<RecordedEvent> events = WholeLog(*store);
  std::map<std::string, std::vector<Position>> want;
  for (const RecordedEvent& e : events) want[e.type].push_back(e.position);
  store.reset();
  EXPECT_EQ(TypeEntries(dir.path()), want);
}

// A type common in one stretch of the log and rare in the others: a page starts on the index,
// steps through the log where the type is dense, and goes back to the index where it thins out.
TEST(TemporalActivityTest, TypesDenseInAStretchOfTheLogMatchAFullScan) {
  testing::TempDir dir;
  Options o;
  o.sync = false;
  std::mt19937 rng(29);
  auto store = testing::OpenOrDie(dir.path(), o);
  ASSERT_NE(store, nullptr);
  WriteTypedLog(*store, rng, 800, 90);
  WriteTypedLog(*store, rng, 2000, 3);
  WriteTypedLog(*store, rng, 300, 90);
  WriteTypedLog(*store, rng, 600, 3);
  WriteTypedLog(*store, rng, 200, 90);
  ExpectTypeQueriesMatchAFullScan(*store, rng, 250);
}

// A directory written partly by a release without the type index: its events before
// index/types_since have no entries and are found by the log scan, the later ones by the index,
// and pages across the boundary are the same as a full scan's.
TEST(TemporalActivityTest, EventsBeforeTheTypeIndexAreFoundInTheLog) {
  testing::TempDir dir;
  Options o;
  o.sync = false;
  std::mt19937 rng(23);
  {
    auto store = testing::OpenOrDie(dir.path(), o);
    ASSERT_NE(store, nullptr);
    WriteTypedLog(*store, rng, 1200);
  }
  // As written by the earlier release: no entries, no record. The first open records the next
  // position, durably and only once.
  WithoutTypeEntries(
      dir.path(), [](Position) { return true; }, std::nullopt);
  {
    auto store = testing::OpenOrDie(dir.path(), o);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->LastPosition(), 1200u);
    ExpectTypeQueriesMatchAFullScan(*store, rng, 60);
    WriteTypedLog(*store, rng, 1200);
    ExpectTypeQueriesMatchAFullScan(*store, rng, 150);
  }
  EXPECT_EQ(MetaOf(dir.path(), keys::kTypesSince), "1201");
  for (const auto& [type, positions] : TypeEntries(dir.path())) {
    EXPECT_GE(positions.front(), 1201u) << type;
  }
  {
    auto store = testing::OpenOrDie(dir.path(), o);
    ASSERT_NE(store, nullptr);
    ExpectTypeQueriesMatchAFullScan(*store, rng, 60);
  }
  EXPECT_EQ(MetaOf(dir.path(), keys::kTypesSince), "1201");
  // The earlier release writes to the directory again (its last 300 events have no entries):
  // the next open sees that the last event lacks its entry and moves the record past it.
  WithoutTypeEntries(
      dir.path(), [](Position p) { return p > 2100; }, 1201);
  {
    auto store = testing::OpenOrDie(dir.path(), o);
    ASSERT_NE(store, nullptr);
    ExpectTypeQueriesMatchAFullScan(*store, rng, 100);
    WriteTypedLog(*store, rng, 300);
    ExpectTypeQueriesMatchAFullScan(*store, rng, 100);
  }
  EXPECT_EQ(MetaOf(dir.path(), keys::kTypesSince), "2401");
}

TEST(TemporalActivityTest, AReadOnlyStoreReadsTheLogWhereTypeEntriesAreMissing) {
  testing::TempDir dir;
  Options o;
  o.sync = false;
  Options read_only;
  read_only.read_only = true;
  std::mt19937 rng(29);
  {
    auto store = testing::OpenOrDie(dir.path(), o);
    ASSERT_NE(store, nullptr);
    WriteTypedLog(*store, rng, 600);
  }
  // As written by the earlier release: a reader answers from the log, and records nothing.
  WithoutTypeEntries(
      dir.path(), [](Position) { return true; }, std::nullopt);
  {
    auto reader = testing::OpenOrDie(dir.path(), read_only);
    ASSERT_NE(reader, nullptr);
    EXPECT_EQ(reader->LastPosition(), 600u);
    ExpectTypeQueriesMatchAFullScan(*reader, rng, 60);
  }
  EXPECT_EQ(MetaOf(dir.path(), keys::kTypesSince), "");
  {
    auto store = testing::OpenOrDie(dir.path(), o);
    ASSERT_NE(store, nullptr);
    WriteTypedLog(*store, rng, 600);
  }
  EXPECT_EQ(MetaOf(dir.path(), keys::kTypesSince), "601");
  // The earlier release wrote again: the record no longer covers the last events.
  WithoutTypeEntries(
      dir.path(), [](Position p) { return p > 1000; }, 601);
  {
    auto reader = testing::OpenOrDie(dir.path(), read_only);
    ASSERT_NE(reader, nullptr);
    ExpectTypeQueriesMatchAFullScan(*reader, rng, 60);
  }
  EXPECT_EQ(MetaOf(dir.path(), keys::kTypesSince), "601");
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
