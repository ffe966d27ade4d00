// The engine against a reference fold written plainly here (replay every event, no snapshots,
// no indexes) on randomly generated histories: many streams, random $put/$patch/$delete and
// domain events, multi-stream transactions, backdated and future valid_from, and a small
// snapshot interval so that answers go through snapshots. Every answer must agree.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <thread>

#include "support/store_helpers.h"
#include "support/temp_dir.h"
#include "timetrail/store.h"

namespace timetrail {
namespace {

using nlohmann::json;

// The reference: the plain definition of the fold (docs/temporal.md, "The document fold").
struct RefState {
  bool exists = false;
  json state;                     // null when !exists
  std::optional<Revision> event;  // last document event folded
};

bool IsDoc(const std::string& t) { return t == "$put" || t == "$patch" || t == "$delete"; }

RefState RefFold(const std::vector<const RecordedEvent*>& events) {
  RefState s;
  for (const RecordedEvent* e : events) {
    if (!IsDoc(e->type)) continue;
    if (e->type == "$delete") {
      s.exists = false;
      s.state = nullptr;
    } else if (e->type == "$put") {
      s.exists = true;
      s.state = json::parse(e->data);
    } else {
      if (!s.exists) s.state = json::object();
      s.state.merge_patch(json::parse(e->data));
      s.exists = true;
    }
    s.event = e->revision;
  }
  return s;
}

std::optional<json> RefValue(const RefState& s, const std::string& path) {
  if (!s.exists) return std::nullopt;
  json::json_pointer p(path);
  if (!s.state.contains(p)) return std::nullopt;
  return s.state.at(p);
}

class Generator {
 public:
  explicit Generator(std::uint32_t seed) : rng_(seed) {}
  int Int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(int percent) { return Int(1, 100) <= percent; }

  json Value() {
    switch (Int(0, 4)) {
      case 0:
        return Int(-5, 5);
      case 1:
        return std::string(1, static_cast<char>('p' + Int(0, 3)));
      case 2:
        return json::array({Int(0, 2)});
      case 3:
        return json{{"x", Int(0, 2)}, {"y", Chance(50)}};
      default:
        return 0.5 * Int(0, 4);
    }
  }
  json Document() {
    json d = json::object();
    for (const char* k : {"a", "b", "c", "n"}) {
      if (Chance(60)) d[k] = Value();
    }
    return d;
  }
  json MergePatch() {
    json p = json::object();
    int keys = Int(1, 3);
    for (int i = 0; i < keys; ++i) {
      std::string k(1, static_cast<char>('a' + Int(0, 3)));
      if (k == "d") k = "n";
      if (Chance(25)) {
        p[k] = nullptr;  // removes the member
      } else if (k == "n" && Chance(50)) {
        p[k] = json{{Chance(50) ? "x" : "y", Chance(30) ? json(nullptr) : Value()}};
      } else {
        p[k] = Value();
      }
    }
    return p;
  }
  ProposedEvent Event(Timestamp start) {
    ProposedEvent e;
    int kind = Int(0, 99);
    if (kind < 20) {
      e.type = "$put";
      e.data = Document().dump();
    } else if (kind < 70) {
      e.type = "$patch";
      e.data = MergePatch().dump();
    } else if (kind < 80) {
      e.type = "$delete";
    } else {
      e.type = "Something" + std::to_string(Int(0, 2));
      e.data = Value().dump();
    }
    e.metadata = json{{"actor", "actor-" + std::to_string(Int(0, 3))}}.dump();
    int when = Int(0, 99);
    if (when < 30) {
      // Backdated: anywhere from a little before the test began until now.
      e.valid_from =
          Timestamp{start.micros - 1000 + Int(0, 1000) +
                    static_cast<std::int64_t>(Int(0, 100)) * (Now().micros - start.micros) / 100};
    } else if (when < 35) {
      e.valid_from = Timestamp{Now().micros + Int(1, 1000000)};  // takes effect later
    }
    return e;
  }
  std::mt19937& rng() { return rng_; }

 private:
  std::mt19937 rng_;
};

void ExpectSame(const RefState& want, const Result<EntityState>& got, const std::string& what) {
  ASSERT_TRUE(got.ok()) << what << ": " << got.status().ToString();
  EXPECT_EQ(got->exists, want.exists) << what;
  EXPECT_EQ(json::parse(got->state), want.state) << what;
  EXPECT_EQ(got->event.has_value(), want.event.has_value()) << what;
  if (got->event && want.event) {
    EXPECT_EQ(got->event->revision, *want.event) << what;
  }
}

// Checks a history against the reference and the interval invariants: contiguous (each "to" is
// the next "from"), non-overlapping (from strictly increases in fold order), minimal (adjacent
// values differ), the last one open, and each interval's value equal to the reference value at
// every event it spans.
void CheckHistory(const std::vector<const RecordedEvent*>& fold_order, const std::string& path,
                  const Result<PropertyHistory>& got, const std::string& what) {
  ASSERT_TRUE(got.ok()) << what << ": " << got.status().ToString();
  const auto& iv = got->intervals;
  std::vector<const RecordedEvent*> docs;
  for (const RecordedEvent* e : fold_order) {
    if (IsDoc(e->type)) docs.push_back(e);
  }
  if (docs.empty()) {
    EXPECT_TRUE(iv.empty()) << what;
    return;
  }
  ASSERT_FALSE(iv.empty()) << what;
  EXPECT_EQ(iv.front().from.position, docs.front()->position) << what;
  EXPECT_FALSE(iv.back().to.has_value()) << what;
  for (std::size_t i = 0; i + 1 < iv.size(); ++i) {
    ASSERT_TRUE(iv[i].to.has_value()) << what;
    EXPECT_EQ(iv[i].to->position, iv[i + 1].from.position) << what << " contiguous at " << i;
    EXPECT_TRUE(iv[i].present != iv[i + 1].present || iv[i].value != iv[i + 1].value)
        << what << " minimal at " << i;
  }
  // Walk the fold: every document event's value must be the value of the interval it is in.
  std::size_t k = 0;
  std::vector<const RecordedEvent*> prefix;
  for (const RecordedEvent* e : fold_order) {
    prefix.push_back(e);
    if (!IsDoc(e->type)) continue;
    if (k + 1 < iv.size() && iv[k + 1].from.position == e->position) ++k;
    std::optional<json> want = RefValue(RefFold(prefix), path);
    EXPECT_EQ(iv[k].present, want.has_value()) << what << " at position " << e->position;
    if (want) {
      EXPECT_EQ(json::parse(iv[k].value), *want) << what << " at position " << e->position;
    }
  }
  EXPECT_EQ(k + 1, iv.size()) << what << ": intervals that start at no event";
}

// The history of "path" read "limit" intervals at a time and put together: every page but the
// last is full, each ends where the next begins (its last interval's "to" is the next page's
// first "from"), and the last has no cursor.
Result<PropertyHistory> PagedHistory(const EventStore& store, const std::string& stream,
                                     const std::string& path, HistoryQuery query, std::size_t limit,
                                     const std::string& what) {
  query.limit = limit;
  query.cursor.clear();
  PropertyHistory all;
  for (int pages = 0;; ++pages) {
    Result<PropertyHistory> page = store.GetPropertyHistory(stream, path, query);
    if (!page.ok()) return page;
    EXPECT_LE(page->intervals.size(), limit) << what;
    if (!all.intervals.empty() && !page->intervals.empty()) {
      EXPECT_TRUE(all.intervals.back().to.has_value()) << what << " page " << pages;
      if (all.intervals.back().to) {
        EXPECT_EQ(all.intervals.back().to->position, page->intervals.front().from.position)
            << what << " page " << pages;
      }
    }
    for (PropertyInterval& iv : page->intervals) all.intervals.push_back(std::move(iv));
    if (page->next_cursor.empty()) break;
    EXPECT_EQ(page->intervals.size(), limit) << what << ": a short page with a cursor";
    EXPECT_LT(pages, 100000) << what;
    query.cursor = page->next_cursor;
  }
  return all;
}

// Checks Diff(stream, query) against the reference states at both ends and the reference list
// of the events between ("between", positions in order): the default answer (states and patch,
// no events, no cursor), every event in one page, and paged with limit 1, a small limit and a
// limit larger than the range, where the pages must concatenate to the whole list, each cursor
// must lead to a non-empty page that starts right after the previous one, a page is short only
// when it is the last, and every page repeats the same states and patch.
void CheckDiff(const EventStore& store, const std::string& stream, const DiffQuery& query,
               const RefState& want_from, const RefState& want_to,
               const std::vector<Position>& between, int small_limit, const std::string& what) {
  auto same_ends = [&](const Result<DiffResult>& d, const std::string& page) {
    ASSERT_TRUE(d.ok()) << what << page << ": " << d.status().ToString();
    ExpectSame(want_from, d->from, what + page + " (from)");
    ExpectSame(want_to, d->to, what + page + " (to)");
    json from_state = json::parse(d->from.state);
    EXPECT_EQ(from_state.patch(json::parse(d->patch)), json::parse(d->to.state)) << what << page;
  };
  Result<DiffResult> plain = store.Diff(stream, query);
  same_ends(plain, " default");
  if (::testing::Test::HasFatalFailure() || !plain.ok()) return;
  EXPECT_TRUE(plain->events.empty()) << what << ": events listed without being asked for";
  EXPECT_TRUE(plain->next_cursor.empty()) << what;

  const std::size_t n = between.size();
  for (std::size_t limit :
       {std::size_t{10000}, std::size_t{1}, static_cast<std::size_t>(small_limit), n + 1}) {
    const std::string paged = what + " limit " + std::to_string(limit);
    std::vector<Position> got;
    std::string cursor;
    std::size_t pages = 0;
    do {
      Result<DiffResult> d = store.Diff(stream, query.WithEvents(limit, cursor));
      const std::string page = " page " + std::to_string(pages);
      same_ends(d, " limit " + std::to_string(limit) + page);
      if (::testing::Test::HasFatalFailure() || !d.ok()) return;
      EXPECT_EQ(d->patch, plain->patch) << paged << page;
      ASSERT_LE(d->events.size(), limit) << paged << page;
      if (!cursor.empty()) {
        ASSERT_FALSE(d->events.empty()) << paged << page << ": a cursor to nothing";
      }
      if (!d->next_cursor.empty()) {
        ASSERT_EQ(d->events.size(), limit) << paged << page << " is short";
      }
      for (const RecordedEvent& e : d->events) {
        EXPECT_EQ(e.stream, stream) << paged;
        got.push_back(e.position);
      }
      cursor = d->next_cursor;
      ASSERT_LE(++pages, n + 1) << paged << ": the cursor does not move on";
    } while (!cursor.empty());
    EXPECT_EQ(got, between) << paged;
    EXPECT_EQ(pages, std::max<std::size_t>(1, (n + limit - 1) / limit)) << paged;
  }
}

TEST(TemporalReferenceTest, EngineAgreesWithPlainReplay) {
  for (std::uint32_t seed : {1u, 2u, 3u, 4u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    testing::TempDir dir;
    Options o;
    o.sync = false;
    o.snapshot_interval = 1 + seed * 2;                // 3, 5, 7, 9
    if (seed == 3) o.group_commit_delay_micros = 300;  // let concurrent appends share batches
    // The last seed loads in bulk (as `timetrail import` does): batches of transactions become
    // table files, and the index hook reads back what earlier batches stored through them.
    const bool bulk = seed == 4;
    o.bulk_load = bulk;
    auto store = testing::OpenOrDie(dir.path(), o);
    ASSERT_NE(store, nullptr);
    Generator g(seed);
    const Timestamp start = Now();

    // Many short histories and a few long ones. Against PostgreSQL, where every read the
    // checks below make is a round trip, a quarter of them (minutes otherwise).
    const bool remote = testing::TestStoreUrl() != nullptr;
    const int kStreams = remote ? 100 : 400;
    const int kTransactions = remote ? 640 : 2500;
    auto stream_name = [](int i) { return "s/" + std::to_string(i); };
    std::vector<int> weights(kStreams, 1);
    for (int i = 0; i < 6; ++i) weights[i] = 60;
    std::discrete_distribution<int> pick(weights.begin(), weights.end());
    // The last seed writes from several threads at once, so that group commits put several
    // transactions of one stream into one batch (the index hook must then fold events that
    // are not in the engine yet).
    const int writers = seed == 3 ? 4 : 1;
    std::vector<Transaction> batch;  // bulk: committed with TransactMany, random sizes
    auto commit_batch = [&] {
      for (const Result<Committed>& c : store->TransactMany(std::move(batch), true)) {
        ASSERT_TRUE(c.ok()) << c.status().ToString();
      }
      batch.clear();
    };
    auto write = [&](Generator& gen, int count) {
      std::discrete_distribution<int> choose = pick;  // one per thread
      std::size_t batch_size = 1;
      for (int t = 0; t < count; ++t) {
        Transaction tx;
        int n = gen.Chance(15) ? 2 : 1;
        for (int j = 0; j < n; ++j) {
          std::string s = stream_name(choose(gen.rng()));
          bool dup = std::any_of(tx.appends.begin(), tx.appends.end(),
                                 [&](const StreamAppend& a) { return a.stream == s; });
          if (dup) continue;
          StreamAppend a;
          a.stream = s;
          int events = gen.Chance(20) ? gen.Int(2, 3) : 1;
          for (int k = 0; k < events; ++k) a.events.push_back(gen.Event(start));
          tx.appends.push_back(std::move(a));
        }
        if (bulk) {
          batch.push_back(std::move(tx));
          if (batch.size() >= batch_size) {
            commit_batch();
            batch_size = static_cast<std::size_t>(gen.Int(1, 400));
          }
          continue;
        }
        auto c = store->Transact(tx);
        ASSERT_TRUE(c.ok()) << c.status().ToString();
      }
      if (!batch.empty()) commit_batch();
    };
    if (seed == 2 || bulk) {
      // Reopen halfway, so that the index hook starts from what is stored (snapshots, the
      // valid-time index) rather than from its in-memory states.
      write(g, kTransactions / 2);
      store.reset();
      store = testing::OpenOrDie(dir.path(), o);
      ASSERT_NE(store, nullptr);
      write(g, kTransactions / 2);
    } else if (writers == 1) {
      write(g, kTransactions);
    } else {
      std::vector<std::thread> threads;
      std::vector<Generator> gens;
      for (int w = 0; w < writers; ++w) gens.emplace_back(seed * 100 + w);
      for (int w = 0; w < writers; ++w)
        threads.emplace_back([&, w] { write(gens[w], kTransactions / writers); });
      for (auto& t : threads) t.join();
    }
    ASSERT_FALSE(::testing::Test::HasFailure());
    if (bulk) {
      // Read as any store: opened again without bulk loading.
      store.reset();
      o.bulk_load = false;
      store = testing::OpenOrDie(dir.path(), o);
      ASSERT_NE(store, nullptr);
    }
    if (writers > 1) {
      StoreStats stats = store->GetStats();
      EXPECT_LT(stats.group_commits, stats.transactions_committed)
          << "no batch held two transactions";
    }

    ReadLogOptions all;
    all.max_count = SIZE_MAX;
    auto log = store->ReadLog(all);
    ASSERT_TRUE(log.ok());
    std::map<std::string, std::vector<const RecordedEvent*>> by_stream;
    for (const RecordedEvent& e : log->events) by_stream[e.stream].push_back(&e);
    const Timestamp end = log->events.back().recorded_at;

    int queries = 0;
    // Activity by actor (the covering actor index), by stream prefix (the streams' own indexes)
    // and by type alone (the type index) against a plain filter of the log, newest first, in
    // pages of random sizes over random windows.
    for (int i = 0; i < 90; ++i) {
      ActivityQuery q;
      if (g.Chance(40)) q.actor = "actor-" + std::to_string(g.Int(0, 3));
      const auto& some = log->events;
      if (g.Chance(70)) q.from = some[g.Int(0, static_cast<int>(some.size()) - 1)].recorded_at;
      if (g.Chance(70)) q.to = some[g.Int(0, static_cast<int>(some.size()) - 1)].recorded_at;
      const std::vector<std::vector<std::string>> type_sets = {
          {"$patch", "Something1"}, {"Something2"}, {"$delete"}, {"$put", "Something0", "$put"}};
      if (g.Chance(40)) q.event_types = type_sets[g.Int(0, 3)];
      const char* prefixes[] = {"s/1", "s/2", "s/", "s/39"};
      if ((q.actor.empty() && q.event_types.empty()) || g.Chance(25)) {
        q.stream_prefix = prefixes[g.Int(0, 3)];
      }
      q.limit = static_cast<std::size_t>(g.Chance(50) ? g.Int(1, 40) : g.Int(200, 3000));
      std::vector<Position> want;
      for (auto e = some.rbegin(); e != some.rend(); ++e) {
        if (!q.actor.empty() && json::parse(e->metadata).value("actor", "") != q.actor) continue;
        if ((q.from && e->recorded_at < *q.from) || (q.to && e->recorded_at > *q.to)) continue;
        if (!e->stream.starts_with(q.stream_prefix)) continue;
        if (!q.event_types.empty() &&
            std::find(q.event_types.begin(), q.event_types.end(), e->type) == q.event_types.end()) {
          continue;
        }
        want.push_back(e->position);
      }
      std::vector<Position> got;
      std::vector<RecordedEvent> got_events;
      for (int pages = 0; pages < 10000; ++pages) {
        auto page = store->QueryActivity(q);
        ASSERT_TRUE(page.ok()) << page.status().ToString();
        ASSERT_LE(page->events.size(), q.limit);
        for (RecordedEvent& e : page->events) {
          got.push_back(e.position);
          got_events.push_back(std::move(e));
        }
        if (page->next_cursor.empty()) break;
        q.cursor = page->next_cursor;
      }
      ASSERT_EQ(got, want) << "activity of '" << q.actor << "' in '" << q.stream_prefix
                           << "', limit " << q.limit;
      // The events themselves, as the log holds them.
      for (const RecordedEvent& e : got_events) {
        const RecordedEvent& logged = some[e.position - some.front().position];
        ASSERT_EQ(e.id, logged.id);
        ASSERT_EQ(e.data, logged.data);
        ASSERT_EQ(e.metadata, logged.metadata);
        ASSERT_EQ(e.valid_from, logged.valid_from);
        ASSERT_EQ(e.hash, logged.hash);
      }
      ++queries;
    }
    for (const auto& [stream, events] : by_stream) {
      auto fold_where = [&](auto keep, bool valid_order) {
        std::vector<const RecordedEvent*> sel;
        for (const RecordedEvent* e : events) {
          if (keep(*e)) sel.push_back(e);
        }
        if (valid_order) {
          std::stable_sort(sel.begin(), sel.end(),
                           [](const RecordedEvent* a, const RecordedEvent* b) {
                             return a->valid_from != b->valid_from ? a->valid_from < b->valid_from
                                                                   : a->position < b->position;
                           });
        }
        return sel;
      };
      // Every revision.
      for (const RecordedEvent* at : events) {
        auto want = RefFold(
            fold_where([&](const RecordedEvent& e) { return e.revision <= at->revision; }, false));
        ExpectSame(want, store->GetEntity(stream, EntityQuery::AtRevision(at->revision)),
                   stream + " at revision " + std::to_string(at->revision));
        ++queries;
      }
      ExpectSame(RefFold(events), store->GetEntity(stream, EntityQuery::Latest()),
                 stream + " latest");
      // Valid time at every event's valid_from (where states change), known now or at the time
      // some event of the stream was recorded.
      for (const RecordedEvent* at : events) {
        Timestamp v{at->valid_from.micros - g.Int(0, 1)};
        std::optional<Timestamp> known;
        if (g.Chance(50))
          known = events[g.Int(0, static_cast<int>(events.size()) - 1)]->recorded_at;
        Timestamp k = known.value_or(end);
        ExpectSame(
            RefFold(fold_where(
                [&](const RecordedEvent& e) { return e.recorded_at <= k && e.valid_from <= v; },
                true)),
            store->GetEntity(stream, EntityQuery::ValidAt(v, known)),
            stream + " valid at " + FormatTimestamp(v) + " known at " + FormatTimestamp(k));
        ++queries;
      }
      for (int i = 0; i < 4; ++i) {
        Position p = static_cast<Position>(g.Int(0, static_cast<int>(log->head_position) + 1));
        ExpectSame(
            RefFold(fold_where([&](const RecordedEvent& e) { return e.position <= p; }, false)),
            store->GetEntity(stream, EntityQuery::AtPosition(p)),
            stream + " at position " + std::to_string(p));
        // A time: the recorded_at of some event, give or take a microsecond.
        Timestamp t = log->events[g.Int(0, static_cast<int>(log->events.size()) - 1)].recorded_at;
        t.micros += g.Int(-1, 1);
        ExpectSame(
            RefFold(fold_where([&](const RecordedEvent& e) { return e.recorded_at <= t; }, false)),
            store->GetEntity(stream, EntityQuery::AsOf(t)),
            stream + " as of " + FormatTimestamp(t));
        // Valid time, as known now and as known at an earlier time.
        Timestamp v{start.micros - 1000 +
                    g.Int(0, 100) * (end.micros + 1000000 - start.micros) / 100};
        std::optional<Timestamp> known;
        if (g.Chance(50)) known = t;
        Timestamp k = known.value_or(end);
        ExpectSame(
            RefFold(fold_where(
                [&](const RecordedEvent& e) { return e.recorded_at <= k && e.valid_from <= v; },
                true)),
            store->GetEntity(stream, EntityQuery::ValidAt(v, known)),
            stream + " valid at " + FormatTimestamp(v) + " known at " + FormatTimestamp(k));
        queries += 3;
      }
      // Property histories, in system time and in valid time as known at some time.
      // Nested pointers, an array element and a member no event names included; each also read
      // in pages of a random small size, across which the intervals must run on unchanged.
      for (const std::string path : {"/a", "/n/x", "/n", "", "/b/0", "/n/y", "/zz"}) {
        const std::size_t limit = static_cast<std::size_t>(g.Int(1, 4));
        const std::string what = stream + " history of '" + path + "'";
        CheckHistory(events, path, store->GetPropertyHistory(stream, path, HistoryQuery{}), what);
        CheckHistory(events, path, PagedHistory(*store, stream, path, HistoryQuery{}, limit, what),
                     what + " in pages of " + std::to_string(limit));
        HistoryQuery hq;
        hq.valid_time = true;
        if (g.Chance(50))
          hq.known_at = log->events[g.Int(0, static_cast<int>(log->events.size()) - 1)].recorded_at;
        Timestamp k = hq.known_at.value_or(end);
        auto known = fold_where([&](const RecordedEvent& e) { return e.recorded_at <= k; }, true);
        CheckHistory(known, path, store->GetPropertyHistory(stream, path, hq),
                     "valid-time " + what);
        CheckHistory(known, path, PagedHistory(*store, stream, path, hq, limit, what),
                     "valid-time " + what + " in pages of " + std::to_string(limit));
        queries += 4;
      }
      // Diffs between two points of each kind, with the events between them: the states are
      // the reference folds at both ends, the events the reference selection in position order.
      auto positions = [](const std::vector<const RecordedEvent*>& sel) {
        std::vector<Position> out;
        for (const RecordedEvent* e : sel) out.push_back(e->position);
        std::sort(out.begin(), out.end());
        return out;
      };
      auto ref_at = [&](auto keep) { return RefFold(fold_where(keep, false)); };
      const int last = static_cast<int>(events.size()) - 1;
      const bool long_stream = events.size() > 40;
      for (int i = 0; i < (long_stream ? 3 : 1); ++i) {
        const int small = g.Int(2, 7);
        // Revisions, sometimes the same one or backwards (no events between).
        Revision r1 = g.Int(0, last),
                 r2 = g.Chance(80) ? g.Int(static_cast<int>(r1), last) : g.Int(0, last);
        CheckDiff(*store, stream,
                  DiffQuery::Between(EntityQuery::AtRevision(r1), EntityQuery::AtRevision(r2)),
                  ref_at([&](const RecordedEvent& e) { return e.revision <= r1; }),
                  ref_at([&](const RecordedEvent& e) { return e.revision <= r2; }),
                  positions(fold_where(
                      [&](const RecordedEvent& e) { return e.revision > r1 && e.revision <= r2; },
                      false)),
                  small,
                  stream + " diff of revisions " + std::to_string(r1) + ".." + std::to_string(r2));
        // A revision to now.
        CheckDiff(
            *store, stream, DiffQuery::Between(EntityQuery::AtRevision(r1)),
            ref_at([&](const RecordedEvent& e) { return e.revision <= r1; }), RefFold(events),
            positions(fold_where([&](const RecordedEvent& e) { return e.revision > r1; }, false)),
            small, stream + " diff of revision " + std::to_string(r1) + " to now");
        // Global positions, anywhere in the log (before the stream began, after it ended).
        Position p1 = static_cast<Position>(g.Int(0, static_cast<int>(log->head_position) + 1));
        Position p2 = static_cast<Position>(
            g.Int(static_cast<int>(p1), static_cast<int>(log->head_position) + 1));
        CheckDiff(*store, stream,
                  DiffQuery::Between(EntityQuery::AtPosition(p1), EntityQuery::AtPosition(p2)),
                  ref_at([&](const RecordedEvent& e) { return e.position <= p1; }),
                  ref_at([&](const RecordedEvent& e) { return e.position <= p2; }),
                  positions(fold_where(
                      [&](const RecordedEvent& e) { return e.position > p1 && e.position <= p2; },
                      false)),
                  small,
                  stream + " diff of positions " + std::to_string(p1) + ".." + std::to_string(p2));
        // System times: the recorded_at of some events, give or take a microsecond.
        auto some_time = [&] {
          Timestamp t = log->events[g.Int(0, static_cast<int>(log->events.size()) - 1)].recorded_at;
          t.micros += g.Int(-1, 1);
          return t;
        };
        Timestamp t1 = some_time(), t2 = some_time();
        if (t2 < t1) std::swap(t1, t2);
        CheckDiff(
            *store, stream, DiffQuery::Between(EntityQuery::AsOf(t1), EntityQuery::AsOf(t2)),
            ref_at([&](const RecordedEvent& e) { return e.recorded_at <= t1; }),
            ref_at([&](const RecordedEvent& e) { return e.recorded_at <= t2; }),
            positions(fold_where(
                [&](const RecordedEvent& e) { return e.recorded_at > t1 && e.recorded_at <= t2; },
                false)),
            small, stream + " diff of times " + FormatTimestamp(t1) + ".." + FormatTimestamp(t2));
        // Valid times, as known now or at some earlier time: backdated corrections recorded late
        // fall between two valid times known at the end, and not before.
        auto some_valid = [&] {
          return Timestamp{start.micros - 1000 +
                           g.Int(0, 100) * (end.micros + 1000000 - start.micros) / 100};
        };
        Timestamp v1 = some_valid(), v2 = some_valid();
        if (v2 < v1 && g.Chance(80)) std::swap(v1, v2);
        std::optional<Timestamp> known1, known2;
        if (g.Chance(50)) known1 = some_time();
        if (g.Chance(50)) known2 = some_time();
        const Timestamp k1 = known1.value_or(end), k2 = known2.value_or(end);
        CheckDiff(
            *store, stream,
            DiffQuery::Between(EntityQuery::ValidAt(v1, known1), EntityQuery::ValidAt(v2, known2)),
            RefFold(fold_where(
                [&](const RecordedEvent& e) { return e.recorded_at <= k1 && e.valid_from <= v1; },
                true)),
            RefFold(fold_where(
                [&](const RecordedEvent& e) { return e.recorded_at <= k2 && e.valid_from <= v2; },
                true)),
            positions(fold_where(
                [&](const RecordedEvent& e) {
                  return e.recorded_at <= k2 && e.valid_from > v1 && e.valid_from <= v2;
                },
                false)),
            small,
            stream + " diff of valid times " + FormatTimestamp(v1) + ".." + FormatTimestamp(v2) +
                " known at " + FormatTimestamp(k1) + ", " + FormatTimestamp(k2));
        queries += 5;
      }
      if (::testing::Test::HasFailure()) return;  // one clear failure, not thousands
    }
    EXPECT_GT(queries, 5000);
  }
}

}  // namespace
}  // namespace timetrail
