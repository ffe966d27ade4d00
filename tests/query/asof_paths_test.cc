// The as-of paths of GetEntity against a plain replay: the walk back to the last $put or
// $delete (or to a snapshot when patches run long), the position index that finds a stream's
// revision at a position, and the event point taken from the fold rather than read again. Each
// history mixes $put, $patch, $delete and domain events in different proportions and is queried
// at every revision, position, time and valid time, on a reopened store; another test removes
// part of the position index, as in a store written before the index existed, and expects the
// same answers.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <random>

#include "core/coding.h"
#include "storage/kv_engine.h"
#include "support/store_helpers.h"
#include "support/temp_dir.h"
#include "timetrail/store.h"

namespace timetrail {
namespace {

using nlohmann::json;

bool IsDoc(const std::string& t) { return t == "$put" || t == "$patch" || t == "$delete"; }

// The plain fold of "events" in the order given.
struct Want {
  bool exists = false;
  json state;
  const RecordedEvent* last = nullptr;
};

Want Replay(const std::vector<const RecordedEvent*>& events) {
  Want w;
  for (const RecordedEvent* e : events) {
    if (!IsDoc(e->type)) continue;
    if (e->type == "$delete") {
      w.exists = false;
      w.state = nullptr;
    } else if (e->type == "$put") {
      w.exists = true;
      w.state = json::parse(e->data);
    } else {
      if (!w.exists) w.state = json::object();
      w.state.merge_patch(json::parse(e->data));
      w.exists = true;
    }
    w.last = e;
  }
  return w;
}

void ExpectSame(const Want& want, const Result<EntityState>& got, const std::string& what) {
  ASSERT_TRUE(got.ok()) << what << ": " << got.status().ToString();
  EXPECT_EQ(got->exists, want.exists) << what;
  EXPECT_EQ(json::parse(got->state), want.exists ? want.state : json(nullptr)) << what;
  ASSERT_EQ(got->event.has_value(), want.last != nullptr) << what;
  if (!want.last) return;
  // The whole point, since it now comes from the fold instead of a second read.
  const EventPoint& p = *got->event;
  EXPECT_EQ(p.revision, want.last->revision) << what;
  EXPECT_EQ(p.position, want.last->position) << what;
  EXPECT_EQ(p.id, want.last->id) << what;
  EXPECT_EQ(p.type, want.last->type) << what;
  EXPECT_EQ(p.recorded_at, want.last->recorded_at) << what;
  EXPECT_EQ(p.valid_from, want.last->valid_from) << what;
  EXPECT_EQ(p.tx, want.last->tx) << what;
  EXPECT_EQ(p.metadata, want.last->metadata) << what;
}

// A stream's mix: percentages of $put, $patch and $delete (the rest are domain events).
struct Mix {
  std::string stream;
  int put, patch, del;
};

// Appends "n" rounds; each round writes one to three events to one randomly chosen stream, with
// a third of the document events backdated.
void Write(EventStore& store, const std::vector<Mix>& mixes, int n, std::mt19937& rng) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const Timestamp start = Now();
  for (int i = 0; i < n; ++i) {
    const Mix& m = mixes[pick(0, static_cast<int>(mixes.size()) - 1)];
    std::vector<ProposedEvent> events;
    for (int k = pick(1, 3); k > 0; --k) {
      ProposedEvent e;
      int kind = pick(0, 99);
      if (kind < m.put) {
        e.type = "$put";
        e.data = json{{"a", pick(0, 9)}, {"b", {{"x", pick(0, 3)}}}, {"n", i}}.dump();
      } else if (kind < m.put + m.patch) {
        e.type = "$patch";
        json p;
        p[std::string(1, static_cast<char>('a' + pick(0, 3)))] =
            pick(0, 4) == 0 ? json(nullptr) : json(pick(0, 9));
        e.data = p.dump();
      } else if (kind < m.put + m.patch + m.del) {
        e.type = "$delete";
      } else {
        e.type = "Noted";
        e.data = json{{"i", i}}.dump();
      }
      e.metadata = json{{"actor", "u" + std::to_string(pick(0, 2))}, {"i", i}}.dump();
      if (pick(0, 2) == 0) e.valid_from = Timestamp{start.micros - pick(0, 1000000)};
      events.push_back(std::move(e));
    }
    auto c = store.Append(m.stream, ExpectedRevision::Any(), std::move(events));
    ASSERT_TRUE(c.ok()) << c.status().ToString();
  }
}

// Every kind of point of every stream of "log" against the replay.
void CheckEveryPoint(const EventStore& store, const std::vector<RecordedEvent>& log) {
  std::map<std::string, std::vector<const RecordedEvent*>> by_stream;
  for (const RecordedEvent& e : log) by_stream[e.stream].push_back(&e);
  for (const auto& [stream, events] : by_stream) {
    auto where = [&](auto keep) {
      std::vector<const RecordedEvent*> sel;
      for (const RecordedEvent* e : events) {
        if (keep(*e)) sel.push_back(e);
      }
      return sel;
    };
    for (const RecordedEvent* at : events) {
      const std::string where_at = stream + " at revision " + std::to_string(at->revision);
      ExpectSame(Replay(where([&](const RecordedEvent& e) { return e.revision <= at->revision; })),
                 store.GetEntity(stream, EntityQuery::AtRevision(at->revision)), where_at);
      for (Position p : {at->position - 1, at->position}) {
        ExpectSame(Replay(where([&](const RecordedEvent& e) { return e.position <= p; })),
                   store.GetEntity(stream, EntityQuery::AtPosition(p)),
                   stream + " at position " + std::to_string(p));
      }
      for (std::int64_t d : {-1, 0}) {
        Timestamp t{at->recorded_at.micros + d};
        ExpectSame(Replay(where([&](const RecordedEvent& e) { return e.recorded_at <= t; })),
                   store.GetEntity(stream, EntityQuery::AsOf(t)),
                   stream + " as of " + FormatTimestamp(t));
      }
      for (bool known_then : {false, true}) {
        Timestamp v = at->valid_from;
        std::optional<Timestamp> known;
        if (known_then) known = at->recorded_at;
        auto sel = where([&](const RecordedEvent& e) {
          return e.valid_from <= v && (!known || e.recorded_at <= *known);
        });
        std::stable_sort(sel.begin(), sel.end(),
                         [](const RecordedEvent* a, const RecordedEvent* b) {
                           return a->valid_from != b->valid_from ? a->valid_from < b->valid_from
                                                                 : a->position < b->position;
                         });
        ExpectSame(Replay(sel), store.GetEntity(stream, EntityQuery::ValidAt(v, known)),
                   stream + " valid at " + FormatTimestamp(v) +
                       (known_then ? " known at its recording" : ""));
      }
      if (::testing::Test::HasFailure()) return;  // one clear failure, not thousands
    }
  }
}

std::vector<RecordedEvent> WholeLog(const EventStore& store) {
  ReadLogOptions all;
  all.max_count = SIZE_MAX;
  auto log = store.ReadLog(all);
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  return log.ok() ? log->events : std::vector<RecordedEvent>{};
}

const std::vector<Mix> kMixes = {
    {"mostly-puts", 85, 5, 5},     // the walk back stops at once
    {"mostly-patches", 3, 85, 2},  // walks back to a snapshot
    {"mixed", 30, 40, 10},         // both, and domain events between
    {"domain-only", 0, 0, 0},      // no document events at all
};

TEST(AsOfPathsTest, MixedPutsAndPatchesAtEveryPointAfterReopen) {
  testing::TempDir dir;
  Options o;
  o.sync = false;
  o.snapshot_interval = 4;
  std::mt19937 rng(7);
  {
    auto store = testing::OpenOrDie(dir.path(), o);
    ASSERT_NE(store, nullptr);
    Write(*store, kMixes, 500, rng);
  }
  // Reopened: every answer comes from what is stored, not from the writer's in-memory states.
  auto store = testing::OpenOrDie(dir.path(), o);
  ASSERT_NE(store, nullptr);
  CheckEveryPoint(*store, WholeLog(*store));
}

// A store whose older events have no position index entries (as one written before the index
// existed) and whose index has a hole in one stream: position and time queries must notice and
// still answer exactly; events written after reopening are indexed again.
TEST(AsOfPathsTest, StoreWithoutPositionIndexForOlderEventsAnswersTheSame) {
  testing::TempDir dir;
  Options o;
  o.sync = false;
  o.snapshot_interval = 4;
  std::mt19937 rng(11);
  Position half = 0;
  {
    auto store = testing::OpenOrDie(dir.path(), o);
    ASSERT_NE(store, nullptr);
    Write(*store, kMixes, 300, rng);
    half = store->LastPosition() / 2;
  }
  {
    auto engine = OpenRocksDbEngine(RocksDbEngineOptions{}, dir.path());
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    auto batch = (*engine)->NewBatch();
    auto it = (*engine)->NewIterator(Family::kIndex);
    std::size_t removed = 0;
    bool hole = false;
    for (it->Seek("p"); it->Valid() && it->key().starts_with("p"); it->Next()) {
      std::string_view k = it->key();
      Position p = DecodeBigEndian64(k.data() + k.size() - 8);
      bool in_mixed = k.find("mixed") != std::string_view::npos;
      if (p <= half || (in_mixed && p > half + 20 && !hole)) {
        hole = hole || p > half;
        batch->Delete(Family::kIndex, k);
        ++removed;
      }
    }
    ASSERT_TRUE(it->status().ok());
    ASSERT_GT(removed, 100u);
    ASSERT_TRUE(hole);
    ASSERT_TRUE((*engine)->Write(*batch, true).ok());
  }
  auto store = testing::OpenOrDie(dir.path(), o);
  ASSERT_NE(store, nullptr);
  Write(*store, kMixes, 100, rng);
  CheckEveryPoint(*store, WholeLog(*store));
}

// Snapshots of "stream" in the engine at "dir" (the store must be closed).
std::size_t SnapshotCount(const std::string& dir, const std::string& stream) {
  auto engine = OpenRocksDbEngine(RocksDbEngineOptions{}, dir);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  if (!engine.ok()) return 0;
  const std::string prefix = stream + std::string(1, '\0');
  std::size_t n = 0;
  auto it = (*engine)->NewIterator(Family::kSnapshots);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) ++n;
  EXPECT_TRUE(it->status().ok());
  return n;
}

// A stream of big events is snapshotted by bytes long before snapshot_interval events (a stream
// of small ones is not), and every answer stays the plain fold's, also after reopening.
TEST(AsOfPathsTest, BigEventsAreSnapshottedByBytesAndAnswerTheSame) {
  std::mt19937 rng(5);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (std::size_t snapshot_bytes : {std::size_t{0}, std::size_t{4096}}) {
    testing::TempDir dir;
    Options o;
    o.sync = false;
    o.snapshot_interval = 64;
    o.snapshot_bytes = snapshot_bytes;
    {
      auto store = testing::OpenOrDie(dir.path(), o);
      ASSERT_NE(store, nullptr);
      const Timestamp start = Now();
      for (int i = 0; i < 50; ++i) {
        for (const std::string stream : {"big", "small"}) {
          ProposedEvent e;
          const bool big = stream == "big";
          e.type = i % 10 == 3 ? "$put" : (i % 10 == 7 ? "Noted" : "$patch");
          json d{{std::string(1, static_cast<char>('a' + pick(0, 3))), i}};
          if (big) d["text"] = std::string(static_cast<std::size_t>(pick(600, 1400)), 'x');
          e.data = d.dump();
          if (pick(0, 3) == 0) e.valid_from = Timestamp{start.micros - pick(0, 1000000)};
          auto c = store->Append(stream, ExpectedRevision::Any(), {std::move(e)});
          ASSERT_TRUE(c.ok()) << c.status().ToString();
        }
      }
    }
    // 50 events: fewer than snapshot_interval, about 50 KB of data for "big".
    EXPECT_EQ(SnapshotCount(dir.path(), "small"), 0u);
    if (snapshot_bytes == 0) {
      EXPECT_EQ(SnapshotCount(dir.path(), "big"), 0u);
    } else {
      EXPECT_GE(SnapshotCount(dir.path(), "big"), 8u);
    }
    auto store = testing::OpenOrDie(dir.path(), o);
    ASSERT_NE(store, nullptr);
    CheckEveryPoint(*store, WholeLog(*store));
  }
}

}  // namespace
}  // namespace timetrail
