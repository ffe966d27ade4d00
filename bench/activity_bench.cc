// activity_bench: QueryActivity alone, on a store that is kept between runs, so that one load
// of 10^7 events serves many measurements (and profiles: run it under `perf record`).
//
// The log has temporal_bench's shape: event i is a $put of stream "item-(i mod entities)" by
// metadata.actor "actor-k" (a hash of i over --actors), except that one event in --rare-every
// (by another hash of i) has instead one of --rare-types domain types "audit-0", "audit-1", ...
// The store is grown to --size events if it holds fewer; then each query kind runs --queries
// times with windows of --window of the log placed at random, and the p50/p99 latency and the
// mean answer size are printed. With --pg, the type kinds also run against PostgreSQL, on a
// table loaded from the store's log (the same events, positions and times) with an index on
// (type, position); every answer is compared, and a mismatch fails the run.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "bench_common.h"
#include "timetrail/store.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kHelp =
    R"(activity_bench: QueryActivity latency on a store kept between runs

Usage: activity_bench --data-dir=DIR [options]

  --data-dir=DIR      the store (created, or grown to --size when it holds fewer events)
  --size=N            events in the store (default 1000000)
  --entities=N        streams the log is spread over (default 100000)
  --actors=N          actors (metadata.actor) it is spread over (default 1000)
  --rare-every=N      one event in N has a rare type (default 100; 0: none, every event a $put)
  --rare-types=N      rare types: audit-0, audit-1, ... (default 10)
  --window=F          the query window as a fraction of the log (default 0.01)
  --queries=N         queries per kind (default 200)
  --kinds=a,b         query kinds (default actor,prefix): actor (one actor), prefix (a stream
                      prefix), type (one rare type), types (three rare types), put (every
                      event of the window: the type $put, in pages of 1,000)
  --block-cache-mb=N  RocksDB block cache (default 256)
  --pg=CONNINFO       also run the type kinds against PostgreSQL (table "tt_activity", loaded
                      from the store when it does not hold the same events)
  --help              this text
)";

// The type of event i: a rare type for one event in "rare_every" (0: none), else $put.
std::string EventType(std::int64_t i, std::int64_t rare_every, std::int64_t rare_types) {
  if (rare_every <= 0) return "$put";
  const std::uint64_t x = (static_cast<std::uint64_t>(i) * 0xD6E8FEB86659FD93ull) >> 24;
  if (x % static_cast<std::uint64_t>(rare_every) != 0) return "$put";
  return "audit-" + std::to_string(x / static_cast<std::uint64_t>(rare_every) %
                                   static_cast<std::uint64_t>(rare_types));
}

bool Load(timetrail::EventStore& store, std::int64_t size, std::int64_t entities,
          std::int64_t actors, std::int64_t rare_every, std::int64_t rare_types) {
  constexpr std::int64_t kPerTx = 1000;
  constexpr int kInFlight = 4;
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  std::string failure;
  const std::int64_t from = static_cast<std::int64_t>(store.LastPosition());
  auto start = Clock::now();
  auto last_report = start;
  for (std::int64_t i = from; i < size; i += kPerTx) {
    std::int64_t n = std::min(kPerTx, size - i);
    timetrail::Transaction tx;
    for (std::int64_t k = 0; k < n; ++k) {
      timetrail::StreamAppend a;
      a.stream = "item-" + std::to_string((i + k) % entities);
      a.expected = timetrail::ExpectedRevision::Any();
      timetrail::ProposedEvent e;
      e.type = EventType(i + k, rare_every, rare_types);
      e.data = bench::ScalingItemData(i + k, entities);
      e.metadata = bench::ScalingItemMetadata(i + k, actors);
      a.events.push_back(std::move(e));
      tx.appends.push_back(std::move(a));
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight < kInFlight; });
      if (!failure.empty()) break;
      ++in_flight;
    }
    store.TransactAsync(std::move(tx), [&](timetrail::Result<timetrail::Committed> r) {
      std::lock_guard<std::mutex> lock(mu);
      if (!r.ok() && failure.empty()) failure = r.status().ToString();
      --in_flight;
      cv.notify_all();
    });
    if (Clock::now() - last_report > std::chrono::seconds(10)) {
      last_report = Clock::now();
      std::chrono::duration<double> s = Clock::now() - start;
      std::fprintf(stderr, "  %lld of %lld events, %.0f events/s\n", static_cast<long long>(i + n),
                   static_cast<long long>(size), static_cast<double>(i + n - from) / s.count());
    }
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return in_flight == 0; });
  if (!failure.empty()) {
    std::cerr << "activity_bench: load failed: " << failure << "\n";
    return false;
  }
  return true;
}

timetrail::Timestamp RecordedAt(const timetrail::EventStore& store, timetrail::Position p) {
  timetrail::ReadLogOptions o;
  o.from_position = p;
  o.max_count = 1;
  auto page = store.ReadLog(o);
  return page.ok() && !page->events.empty() ? page->events[0].recorded_at : timetrail::Timestamp{};
}

// PostgreSQL's copy of the store's log, with the index a user would make for activity by type.
constexpr const char* kPgTableSql =
    "CREATE TABLE tt_activity (position bigint PRIMARY KEY, stream text NOT NULL,"
    " revision bigint NOT NULL, type text NOT NULL, data jsonb NOT NULL, metadata jsonb NOT NULL,"
    " recorded_at timestamptz NOT NULL)";
constexpr const char* kPgTypeIndexSql =
    "CREATE INDEX tt_activity_type_position ON tt_activity (type, position)";
// Given the window as positions (those of the time window timetrail resolves with its time
// index; worked out before the clock starts): a head start for PostgreSQL, whose index then
// answers with one range scan per type.
constexpr const char* kPgTypeSql =
    "SELECT position FROM tt_activity WHERE type = ANY($1::text[])"
    " AND position BETWEEN $2 AND $3 ORDER BY position DESC";

// COPY-escapes "s" for the text format (tab-separated columns).
std::string CopyEscaped(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Makes tt_activity hold the store's log (unless it already holds as many events), with the
// type index.
bool LoadPostgres(bench::PgConn& pg, const timetrail::EventStore& store) {
  std::string error;
  std::vector<std::string> count;
  // Fails when there is no table yet.
  if (pg.Prepare("count", "SELECT count(*) FROM tt_activity", 0, &error) &&
      pg.ExecPrepared("count", {}, &error, nullptr, &count) == 1 &&
      std::stoull(count[0]) == store.LastPosition()) {
    return true;
  }
  auto start = Clock::now();
  if (!pg.Exec("DROP TABLE IF EXISTS tt_activity", &error) || !pg.Exec(kPgTableSql, &error) ||
      !pg.Exec("ALTER TABLE tt_activity DROP CONSTRAINT tt_activity_pkey", &error)) {
    std::cerr << "activity_bench: postgres: " << error << "\n";
    return false;
  }
  PGresult* r = PQexec(pg.raw(), "COPY tt_activity FROM STDIN");
  const bool copying = PQresultStatus(r) == PGRES_COPY_IN;
  PQclear(r);
  if (!copying) {
    std::cerr << "activity_bench: postgres: COPY: " << PQerrorMessage(pg.raw()) << "\n";
    return false;
  }
  timetrail::ReadLogOptions o;
  o.max_count = 10000;
  std::string rows;
  for (;;) {
    auto page = store.ReadLog(o);
    if (!page.ok()) {
      std::cerr << "activity_bench: " << page.status().ToString() << "\n";
      return false;
    }
    for (const timetrail::RecordedEvent& e : page->events) {
      rows += std::to_string(e.position) + "\t" + CopyEscaped(e.stream) + "\t" +
              std::to_string(e.revision) + "\t" + CopyEscaped(e.type) + "\t" + CopyEscaped(e.data) +
              "\t" + CopyEscaped(e.metadata.empty() ? "{}" : e.metadata) + "\t" +
              timetrail::FormatTimestamp(e.recorded_at) + "\n";
    }
    if (rows.size() > (8u << 20) || page->events.empty()) {
      if (PQputCopyData(pg.raw(), rows.data(), static_cast<int>(rows.size())) != 1) {
        std::cerr << "activity_bench: postgres: " << PQerrorMessage(pg.raw()) << "\n";
        return false;
      }
      rows.clear();
    }
    if (page->events.empty()) break;
    o.from_position = page->next_position;
  }
  bool ok = PQputCopyEnd(pg.raw(), nullptr) == 1;
  while ((r = PQgetResult(pg.raw())) != nullptr) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK) ok = false;
    PQclear(r);
  }
  if (!ok || !pg.Exec("SET maintenance_work_mem = '512MB'", &error) ||
      !pg.Exec("ALTER TABLE tt_activity ADD PRIMARY KEY (position)", &error) ||
      !pg.Exec(kPgTypeIndexSql, &error) || !pg.Exec("VACUUM ANALYZE tt_activity", &error)) {
    std::cerr << "activity_bench: postgres: load failed: " << error << PQerrorMessage(pg.raw())
              << "\n";
    return false;
  }
  std::chrono::duration<double> took = Clock::now() - start;
  std::printf("postgres: loaded %llu events in %.1f s\n",
              static_cast<unsigned long long>(store.LastPosition()), took.count());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  bench::Flags flags(argc, argv);
  if (flags.Help(kHelp)) return 0;
  if (!flags.Has("data-dir")) {
    std::cerr << kHelp;
    return 2;
  }
  const std::string dir = flags.Get("data-dir", "");
  const std::int64_t size = flags.GetInt("size", 1000000);
  const std::int64_t entities = flags.GetInt("entities", 100000);
  const std::int64_t actors = flags.GetInt("actors", 1000);
  const std::int64_t rare_every = flags.GetInt("rare-every", 100);
  const std::int64_t rare_types = std::max<std::int64_t>(1, flags.GetInt("rare-types", 10));
  const std::string pg_conninfo = flags.Get("pg", "");
  const double window = flags.GetDouble("window", 0.01);
  const std::int64_t queries = flags.GetInt("queries", 200);
  const std::string kinds = "," + flags.Get("kinds", "actor,prefix") + ",";
  const auto cache_mb = static_cast<std::size_t>(flags.GetInt("block-cache-mb", 256));

  if (!flags.CheckAllUsed()) return 2;
  timetrail::Options options;
  options.block_cache_bytes = cache_mb << 20;
  auto opened = timetrail::EventStore::Open(options, dir);
  if (!opened.ok()) {
    std::cerr << "activity_bench: " << opened.status().ToString() << "\n";
    return 1;
  }
  std::unique_ptr<timetrail::EventStore> store = std::move(opened).value();
  if (static_cast<std::int64_t>(store->LastPosition()) < size) {
    auto start = Clock::now();
    if (!Load(*store, size, entities, actors, rare_every, rare_types)) return 1;
    if (auto s = store->WaitForBackgroundWork(); !s.ok()) {
      std::cerr << "activity_bench: " << s.ToString() << "\n";
      return 1;
    }
    std::chrono::duration<double> took = Clock::now() - start;
    std::printf("loaded to %llu events in %.1f s\n",
                static_cast<unsigned long long>(store->LastPosition()), took.count());
  }
  std::unique_ptr<bench::PgConn> pg;
  if (!pg_conninfo.empty()) {
    std::string error;
    pg = bench::PgConn::Connect(pg_conninfo, &error);
    if (pg == nullptr || !LoadPostgres(*pg, *store) ||
        !pg->Prepare("by_type", kPgTypeSql, 3, &error)) {
      std::cerr << "activity_bench: postgres: " << error << "\n";
      return 1;
    }
  }
  const auto last = static_cast<std::int64_t>(store->LastPosition());
  const std::int64_t span = std::max<std::int64_t>(1, static_cast<std::int64_t>(last * window));
  std::mt19937_64 rng(42);
  for (const std::string kind : {"actor", "prefix", "type", "types", "put"}) {
    if (kinds.find("," + kind + ",") == std::string::npos) continue;
    const bool by_type = kind == "type" || kind == "types" || kind == "put";
    std::vector<std::uint64_t> nanos, pg_nanos;
    std::int64_t answered = 0;
    for (std::int64_t q = 0; q < queries; ++q) {
      std::int64_t first = std::uniform_int_distribution<std::int64_t>(1, last - span + 1)(rng);
      timetrail::ActivityQuery aq;
      aq.from = RecordedAt(*store, static_cast<timetrail::Position>(first));
      aq.to = RecordedAt(*store, static_cast<timetrail::Position>(first + span - 1));
      aq.limit = 1000;
      const std::string pick = std::to_string(std::uniform_int_distribution<std::int64_t>(
          0, kind == "actor" ? actors - 1 : entities / 10 - 1)(rng));
      if (kind == "actor") aq.actor = "actor-" + pick;
      // "item-123" and the ten streams "item-1230".."item-1239" (and their own ten each).
      if (kind == "prefix") aq.stream_prefix = "item-" + pick;
      // One rare type, or three different ones.
      auto rare = [&] {
        return "audit-" +
               std::to_string(std::uniform_int_distribution<std::int64_t>(0, rare_types - 1)(rng));
      };
      if (kind == "type") aq.event_types = {rare()};
      while (kind == "types" &&
             aq.event_types.size() <
                 static_cast<std::size_t>(std::min<std::int64_t>(3, rare_types))) {
        std::string t = rare();
        if (std::find(aq.event_types.begin(), aq.event_types.end(), t) == aq.event_types.end()) {
          aq.event_types.push_back(t);
        }
      }
      // Every other event of this log is a $put: nearly the window's whole answer, in pages.
      if (kind == "put") aq.event_types = {"$put"};
      std::vector<timetrail::Position> got;
      auto start = Clock::now();
      for (;;) {
        auto page = store->QueryActivity(aq);
        if (!page.ok()) {
          std::cerr << "activity_bench: " << page.status().ToString() << "\n";
          return 1;
        }
        answered += static_cast<std::int64_t>(page->events.size());
        if (pg != nullptr) {
          for (const auto& e : page->events) got.push_back(e.position);
        }
        if (page->next_cursor.empty()) break;
        aq.cursor = page->next_cursor;
      }
      nanos.push_back(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count()));
      if (pg == nullptr || !by_type) continue;
      // PostgreSQL gets the window as positions: those of the same time window.
      auto lower = aq.from->micros > timetrail::kMinTimestamp.micros
                       ? store->PositionAt(timetrail::Timestamp{aq.from->micros - 1})
                       : timetrail::Result<timetrail::Position>(0);
      auto upper = store->PositionAt(*aq.to);
      if (!lower.ok() || !upper.ok()) {
        std::cerr << "activity_bench: PositionAt failed\n";
        return 1;
      }
      std::string types = "{";
      for (const std::string& t : aq.event_types)
        types += (types.size() > 1 ? ",\"" : "\"") + t + "\"";
      types += "}";
      const std::string from_position = std::to_string(*lower + 1);
      const std::string to_position = std::to_string(*upper);
      std::vector<std::string> rows;
      std::string error;
      start = Clock::now();
      std::int64_t n =
          pg->ExecPrepared("by_type", {types.c_str(), from_position.c_str(), to_position.c_str()},
                           &error, nullptr, &rows);
      pg_nanos.push_back(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count()));
      if (n < 0) {
        std::cerr << "activity_bench: postgres: " << error << "\n";
        return 1;
      }
      std::vector<timetrail::Position> want;
      for (const std::string& r : rows) want.push_back(std::stoull(r));
      if (want != got) {
        std::cerr << "activity_bench: " << kind << " query " << q << ": timetrail answered "
                  << got.size() << " events, PostgreSQL " << want.size() << "\n";
        return 1;
      }
    }
    bench::Latency l = bench::Summarize(nanos);
    std::printf(
        "%-7s %lld events, window %lld: p50 %.1f us, p99 %.1f us, mean %.1f us, %.1f "
        "events per answer\n",
        kind.c_str(), static_cast<long long>(last), static_cast<long long>(span), l.p50_us,
        l.p99_us, l.mean_us, static_cast<double>(answered) / static_cast<double>(queries));
    if (!pg_nanos.empty()) {
      bench::Latency p = bench::Summarize(pg_nanos);
      std::printf("%-7s postgres (type, position) index: p50 %.1f us, p99 %.1f us, mean %.1f us\n",
                  kind.c_str(), p.p50_us, p.p99_us, p.mean_us);
    }
  }
  return 0;
}
