// temporal_bench: the temporal workloads beside PostgreSQL, and how both grow (issue 6).
//
//  1. Property history and diff of one entity with 10,000 versions: timetrail's
//     GetPropertyHistory and Diff against a PostgreSQL table of materialized versions queried
//     with lag() and jsonb_each().
//  2. Scaling: one store grows through 10^4 .. 10^7 events; at each size, as-of point queries
//     on random entities, "what did actor X do between T1 and T2" (QueryActivity against an
//     index on (actor, recorded_at)), and a fixed append workload with 1 and 16 writers; the
//     same data in PostgreSQL, loaded with COPY.
//  3. Resources: bytes on disk per event at every size, and at the largest size the peak memory
//     of `timetrail serve` under an as-of + append workload against PostgreSQL's processes.
// Every figure is the median of --rounds rounds.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "serve_client.h"
#include "timetrail/store.h"

namespace {

using bench::Json;
using Clock = std::chrono::steady_clock;

constexpr const char* kHelp =
    R"(temporal_bench: property history, diff, activity, scaling and resources against PostgreSQL

Usage: temporal_bench --data-dir=DIR --pg=CONNINFO [options]

  --data-dir=DIR        where the timetrail store is created (must not hold a store yet)
  --pg=CONNINFO         libpq connection string; the tables "tt_events" and "doc_history" are
                        dropped and recreated
  --versions=N          versions of the one entity of the history/diff part (default 10000)
  --sizes=N,M,...       store sizes (events) the scaling part grows through
                        (default 10000,100000,1000000,10000000)
  --entities=N          entities the scaling log is spread over (default 100000)
  --actors=N            actors (metadata.actor) it is spread over (default 1000)
  --rounds=N            rounds per measurement; figures are medians of the rounds (default 3)
  --queries=N           as-of queries per round and size (default 1000)
  --activity-queries=N  activity queries per round and size (default 200)
  --history-queries=N,M property-history (N) and diff (M) queries per round (default 30,100)
  --append-events=N     events of the append workload per round and size (default 20000)
  --batch=N             events per append transaction (default 100)
  --writers=N,M         writer counts of the append workload (default 1,16)
  --block-cache-mb=N    RocksDB block cache of the embedded store (default 256, as PostgreSQL's
                        shared_buffers)
  --timetrail=PATH      the timetrail binary: with it, the peak memory of `timetrail serve` is
                        measured at the largest size
  --resource-seconds=N  how long the memory workload runs on each side (default 15)
  --quick               sizes 10000,100000,1000000; 300 as-of, 100 activity, 10,30 history,diff
                        queries per round; 1 round; 5 s memory workload
  --out=FILE            write the results as JSON to FILE
  --markdown=FILE       write a Markdown summary to FILE
  --run-name=NAME       what to call this run in the summary (default "custom")
  --help                this text

Both sides hold the same events with the same positions, revisions and commit times (each
PostgreSQL row is copied from what timetrail committed), so every answer is compared: as-of
answers by the version found, activity answers by count and positions, histories by their
values, diffs by the keys that changed. A mismatch fails the run.
)";

// The SQL a PostgreSQL user would write for each query; shown in the report.
constexpr const char* kHistorySql =
    "SELECT version, recorded_at, value FROM ("
    " SELECT version, recorded_at, doc->'location' AS value,"
    " lag(doc->'location') OVER (ORDER BY version) AS previous"
    " FROM doc_history WHERE entity = $1) v"
    " WHERE version = 0 OR value IS DISTINCT FROM previous ORDER BY version";
constexpr const char* kDiffSql =
    "SELECT coalesce(a.key, b.key) AS key, a.value AS from_value, b.value AS to_value"
    " FROM (SELECT e.* FROM doc_history h, jsonb_each(h.doc) e"
    " WHERE h.entity = $1 AND h.version = $2) a"
    " FULL JOIN (SELECT e.* FROM doc_history h, jsonb_each(h.doc) e"
    " WHERE h.entity = $1 AND h.version = $3) b ON a.key = b.key"
    " WHERE a.value IS DISTINCT FROM b.value";
// What timetrail's Diff returns besides the patch: the changes between the two points.
constexpr const char* kBetweenSql =
    "SELECT version, recorded_at, doc FROM doc_history"
    " WHERE entity = $1 AND version > $2 AND version <= $3 ORDER BY version";
constexpr const char* kAsOfSql =
    "SELECT data->>'seq' FROM tt_events WHERE stream = $1 AND recorded_at <= $2"
    " ORDER BY recorded_at DESC, revision DESC LIMIT 1";
constexpr const char* kActivitySql =
    "SELECT position FROM tt_events WHERE metadata->>'actor' = $1"
    " AND recorded_at BETWEEN $2 AND $3 ORDER BY recorded_at DESC, position DESC";
constexpr const char* kEventsTableSql =
    "CREATE TABLE tt_events ("
    " position bigint GENERATED BY DEFAULT AS IDENTITY,"
    " stream text NOT NULL, revision bigint NOT NULL,"
    " id uuid NOT NULL DEFAULT gen_random_uuid(),"
    " type text NOT NULL, data jsonb NOT NULL, metadata jsonb NOT NULL,"
    " recorded_at timestamptz NOT NULL DEFAULT clock_timestamp())";
// Dropped before each bulk load and built again after it: the fastest way to load into
// PostgreSQL, and the same indexes a PostgreSQL user keeps for these queries.
const std::vector<std::pair<std::string, std::string>> kIndexes = {
    {"tt_events_pkey",
     "ALTER TABLE tt_events ADD CONSTRAINT tt_events_pkey PRIMARY KEY (position)"},
    {"tt_events_id_key", "ALTER TABLE tt_events ADD CONSTRAINT tt_events_id_key UNIQUE (id)"},
    {"tt_events_stream_revision_key",
     "ALTER TABLE tt_events ADD CONSTRAINT tt_events_stream_revision_key UNIQUE (stream, "
     "revision)"},
    {"tt_events_stream_time",
     "CREATE INDEX tt_events_stream_time ON tt_events (stream, recorded_at)"},
    {"tt_events_actor_time",
     "CREATE INDEX tt_events_actor_time ON tt_events ((metadata->>'actor'), recorded_at)"},
};

using bench::ParseList;

using bench::Fmt;

using bench::Median;

// Medians of the rounds' p50/p99 latencies and rates, with the rounds themselves.
Json MedianOf(const std::vector<bench::RunResult>& rounds) {
  std::vector<double> p50, p99, eps, cps;
  Json all = Json::array();
  std::uint64_t errors = 0;
  for (const auto& r : rounds) {
    p50.push_back(r.latency.p50_us);
    p99.push_back(r.latency.p99_us);
    eps.push_back(r.events_per_second);
    cps.push_back(r.calls_per_second);
    errors += r.errors;
    all.push_back(r.ToJson());
  }
  return Json{{"p50_us", Median(p50)},
              {"p99_us", Median(p99)},
              {"events_per_second", Median(eps)},
              {"calls_per_second", Median(cps)},
              {"errors", errors},
              {"rounds", all}};
}

// Runs op(thread, call) for calls 0..n-1 on "threads" threads, each call timed; the wall time
// is taken right after the last call, so short runs are measured exactly.
bench::RunResult RunCalls(const std::string& label, int threads, std::uint64_t n,
                          const std::function<std::int64_t(int, std::uint64_t, std::string*)>& op) {
  std::atomic<std::uint64_t> next{0}, events{0}, errors{0};
  std::mutex mu;
  std::string first_error;
  std::vector<std::vector<std::uint64_t>> samples(threads);
  auto start = Clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::string error;
      for (std::uint64_t i; (i = next.fetch_add(1)) < n;) {
        auto b = Clock::now();
        std::int64_t k = op(t, i, &error);
        auto e = Clock::now();
        if (k < 0) {
          errors.fetch_add(1);
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.empty()) first_error = error;
          continue;
        }
        samples[t].push_back(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(e - b).count()));
        events.fetch_add(static_cast<std::uint64_t>(k));
      }
    });
  }
  for (auto& w : workers) w.join();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<std::uint64_t> all;
  for (auto& s : samples) all.insert(all.end(), s.begin(), s.end());
  bench::RunResult r;
  r.calls = all.size();
  r.events = events.load();
  r.errors = errors.load();
  r.seconds = secs;
  r.events_per_second = static_cast<double>(r.events) / secs;
  r.calls_per_second = static_cast<double>(r.calls) / secs;
  r.latency = bench::Summarize(all);
  r.first_error = first_error;
  std::fprintf(stderr,
               "  %-48s %8.2fs  %10.0f events/s  %10.0f calls/s  p50 %.3f ms  errors %llu\n",
               label.c_str(), secs, r.events_per_second, r.calls_per_second,
               r.latency.p50_us / 1000, static_cast<unsigned long long>(r.errors));
  return r;
}

// A query returning rows: their first column, or -1 with *error.
std::int64_t PgQuery(bench::PgConn& c, const std::string& name,
                     const std::vector<const char*>& params, std::vector<std::string>* col,
                     std::string* error) {
  return c.ExecPrepared(name, params, error, nullptr, col);
}

bool PgScalar(bench::PgConn& c, const std::string& sql, std::string* value, std::string* error) {
  PGresult* r = PQexec(c.raw(), sql.c_str());
  bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  if (ok) {
    *value = PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0);
  } else {
    *error = std::string(PQresultErrorMessage(r)) + " (in: " + sql + ")";
  }
  PQclear(r);
  return ok;
}

double PgNumber(bench::PgConn& c, const std::string& sql) {
  std::string v, error;
  if (!PgScalar(c, sql, &v, &error)) {
    std::cerr << error << "\n";
    return -1;
  }
  return std::strtod(v.c_str(), nullptr);
}

// COPY rows (tab-separated text lines) into "table (columns)".
class PgCopy {
 public:
  PgCopy(bench::PgConn& c, std::string table) : c_(c), table_(std::move(table)) {}
  bool Begin(std::string* error) {
    PGresult* r = PQexec(c_.raw(), ("COPY " + table_ + " FROM STDIN").c_str());
    bool ok = PQresultStatus(r) == PGRES_COPY_IN;
    if (!ok) *error = PQresultErrorMessage(r);
    PQclear(r);
    return ok;
  }
  bool Put(const std::string& rows, std::string* error) {
    if (PQputCopyData(c_.raw(), rows.data(), static_cast<int>(rows.size())) != 1) {
      *error = PQerrorMessage(c_.raw());
      return false;
    }
    return true;
  }
  bool End(std::string* error) {
    if (PQputCopyEnd(c_.raw(), nullptr) != 1) {
      *error = PQerrorMessage(c_.raw());
      return false;
    }
    PGresult* r = PQgetResult(c_.raw());
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) *error = PQresultErrorMessage(r);
    PQclear(r);
    while ((r = PQgetResult(c_.raw())) != nullptr) PQclear(r);
    return ok;
  }

 private:
  bench::PgConn& c_;
  std::string table_;
};

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A property's whole history, in pages of the largest size (as PostgreSQL answers it whole).
timetrail::Result<timetrail::PropertyHistory> WholeHistory(const timetrail::EventStore& store,
                                                           const std::string& stream,
                                                           const std::string& path) {
  timetrail::HistoryQuery q;
  q.limit = 10000;
  timetrail::PropertyHistory all;
  do {
    auto page = store.GetPropertyHistory(stream, path, q);
    if (!page.ok()) return page;
    if (all.intervals.empty()) {
      all = std::move(page).value();
    } else {
      for (auto& iv : page->intervals) all.intervals.push_back(std::move(iv));
      all.next_cursor = page->next_cursor;
    }
    q.cursor = all.next_cursor;
  } while (!q.cursor.empty());
  return all;
}

// --- The documents ---------------------------------------------------------------------------

// Version v of the history entity: version 0 is a $put of five properties; every later version
// is a $patch of one of them: "location" on even versions, status/owner/priority in turn on odd
// ones. Fills "doc" with the whole document after version v (what PostgreSQL stores).
struct DocEntity {
  std::string location = "loc-0", status = "new", owner = "owner-0";
  std::int64_t priority = 0;
  std::string Event(std::int64_t v, std::string* type) {
    if (v == 0) {
      *type = "$put";
      return Whole();
    }
    *type = "$patch";
    if (v % 2 == 0) {
      location = "loc-" + std::to_string(v);
      return R"({"location": ")" + location + "\"}";
    }
    switch ((v / 2) % 3) {
      case 0:
        status = "status-" + std::to_string(v);
        return R"({"status": ")" + status + "\"}";
      case 1:
        owner = "owner-" + std::to_string(v);
        return R"({"owner": ")" + owner + "\"}";
      default:
        priority = v;
        return R"({"priority": )" + std::to_string(v) + "}";
    }
  }
  std::string Whole() const {
    return R"({"name": "order-1", "location": ")" + location + R"(", "status": ")" + status +
           R"(", "owner": ")" + owner + R"(", "priority": )" + std::to_string(priority) + "}";
  }
};

// One committed load batch: what PostgreSQL's copy of it needs.
struct Batch {
  std::int64_t first_index = 0;  // i of its first event
  std::int64_t count = 0;
  timetrail::Position first_position = 0;
  timetrail::Timestamp recorded_at;
};

// Sum of the sizes of the files under "dir", split into RocksDB's tables, its write-ahead log
// and the rest.
Json DirBytes(const std::string& dir) {
  std::uint64_t sst = 0, wal = 0, other = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file(ec)) continue;
    std::uint64_t n = it->file_size(ec);
    std::string name = it->path().filename().string();
    if (name.size() > 4 && name.substr(name.size() - 4) == ".sst") {
      sst += n;
    } else if (name.size() > 4 && name.substr(name.size() - 4) == ".log") {
      wal += n;
    } else {
      other += n;
    }
  }
  return Json{{"total", sst + wal + other}, {"sst", sst}, {"wal", wal}, {"other", other}};
}

// --- Memory of processes ---------------------------------------------------------------------

// A field of /proc/PID/status or smaps_rollup in KiB ("VmRSS", "VmHWM", "Pss"); 0 if absent.
std::uint64_t ProcKiB(pid_t pid, const char* file, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + file);
  std::string line;
  std::string key = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) == 0)
      return std::strtoull(line.c_str() + key.size(), nullptr, 10);
  }
  return 0;
}
pid_t ParentOf(pid_t pid) { return static_cast<pid_t>(ProcKiB(pid, "status", "PPid")); }

// The postmaster and its children.
std::vector<pid_t> PgProcesses(pid_t postmaster) {
  std::vector<pid_t> pids{postmaster};
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string n = e.path().filename().string();
    if (n.empty() || !std::isdigit(static_cast<unsigned char>(n[0]))) continue;
    pid_t p = static_cast<pid_t>(std::strtol(n.c_str(), nullptr, 10));
    if (ParentOf(p) == postmaster) pids.push_back(p);
  }
  return pids;
}

// Samples the memory of a set of processes every 100 ms until stopped; keeps the peaks of the
// sums of RSS and of PSS (PSS divides each shared page among the processes that map it, so the
// sum counts PostgreSQL's shared buffers once).
class MemorySampler {
 public:
  explicit MemorySampler(std::function<std::vector<pid_t>()> pids) : pids_(std::move(pids)) {
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        std::uint64_t rss = 0, pss = 0;
        auto now = pids_();
        for (pid_t p : now) {
          rss += ProcKiB(p, "status", "VmRSS");
          pss += ProcKiB(p, "smaps_rollup", "Pss");
        }
        peak_rss_ = std::max(peak_rss_.load(), rss);
        peak_pss_ = std::max(peak_pss_.load(), pss);
        processes_ = std::max<std::uint64_t>(processes_.load(), now.size());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  ~MemorySampler() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t peak_rss_kib() const { return peak_rss_; }
  std::uint64_t peak_pss_kib() const { return peak_pss_; }
  std::uint64_t processes() const { return processes_; }

 private:
  std::function<std::vector<pid_t>()> pids_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> peak_rss_{0}, peak_pss_{0}, processes_{0};
  std::thread thread_;
};

// Extracts the integer after "key": in JSON text; -1 if absent.
std::int64_t IntField(const std::string& json, const char* key) {
  std::string k = std::string("\"") + key + "\":";
  auto p = json.find(k);
  if (p == std::string::npos) return -1;
  p += k.size();
  while (p < json.size() && json[p] == ' ') ++p;
  return std::strtoll(json.c_str() + p, nullptr, 10);
}

struct Config {
  std::string data_dir, pg, out, markdown, run_name, timetrail;
  std::int64_t versions = 10000, entities = 100000, actors = 1000, queries = 1000;
  std::int64_t activity_queries = 200, history_queries = 30, diff_queries = 100;
  std::int64_t append_events = 20000, batch = 100, block_cache_mb = 256;
  int rounds = 3;
  double resource_seconds = 15;
  std::vector<std::int64_t> sizes, writers;
};

class Bench {
 public:
  Bench(Config cfg, timetrail::EventStore* store, bench::PgConn* pg)
      : cfg_(std::move(cfg)), store_(store), pg_(pg) {}

  bool History(Json* out);
  bool Scaling(Json* out);
  bool Resources(Json* out);
  std::unique_ptr<timetrail::EventStore> holder;

 private:
  bool Fail(const std::string& what) {
    std::cerr << "temporal_bench: " << what << "\n";
    return false;
  }
  bool LoadTo(std::int64_t size, Json* load);
  // Closes the store and opens it again, for a bulk load or as usual.
  bool Reopen(bool bulk);
  timetrail::Timestamp TimeAt(std::int64_t position_fraction_index) const;

  Config cfg_;
  timetrail::EventStore* store_;
  bench::PgConn* pg_;
  std::vector<Batch> batches_;  // of the scaling log, in commit order
  std::int64_t loaded_ = 0;     // events of the scaling log loaded so far
  std::int64_t appended_ = 0;   // events the append workload added (both sides)
  std::int64_t history_events_ = 0;
};

bool Bench::History(Json* out) {
  const std::string stream = "order-1";
  std::string error;
  std::cerr << "history: timetrail: appending " << cfg_.versions << " versions of " << stream
            << "\n";
  DocEntity doc;
  std::vector<std::string> pg_rows;  // version \t recorded_at \t doc
  auto start = Clock::now();
  for (std::int64_t v = 0; v < cfg_.versions; v += 1000) {
    std::int64_t n = std::min<std::int64_t>(1000, cfg_.versions - v);
    std::vector<timetrail::ProposedEvent> events(n);
    std::vector<std::string> docs;
    for (std::int64_t k = 0; k < n; ++k) {
      events[k].data = doc.Event(v + k, &events[k].type);
      events[k].metadata = R"({"actor": "clerk-)" + std::to_string((v + k) % 5) + R"("})";
      docs.push_back(doc.Whole());
    }
    auto r = store_->Append(stream, timetrail::ExpectedRevision::Any(), std::move(events));
    if (!r.ok()) return Fail("appending " + stream + ": " + r.status().ToString());
    std::string at = timetrail::FormatTimestamp(r->recorded_at);
    for (std::int64_t k = 0; k < n; ++k) {
      pg_rows.push_back(stream + "\t" + std::to_string(v + k) + "\t" + at + "\t" + docs[k] + "\n");
    }
  }
  double tt_load = Since(start);
  history_events_ = cfg_.versions;
  if (!pg_->Exec("DROP TABLE IF EXISTS doc_history", &error) ||
      !pg_->Exec("CREATE TABLE doc_history (entity text NOT NULL, version integer NOT NULL,"
                 " recorded_at timestamptz NOT NULL, doc jsonb NOT NULL,"
                 " PRIMARY KEY (entity, version))",
                 &error)) {
    return Fail(error);
  }
  std::cerr << "history: postgres: COPY of " << cfg_.versions << " materialized versions\n";
  start = Clock::now();
  PgCopy copy(*pg_, "doc_history (entity, version, recorded_at, doc)");
  std::string all;
  for (auto& r : pg_rows) all += r;
  if (!copy.Begin(&error) || !copy.Put(all, &error) || !copy.End(&error) ||
      !pg_->Exec("VACUUM ANALYZE doc_history", &error)) {
    return Fail(error);
  }
  double pg_load = Since(start);
  if (!pg_->Prepare("history", kHistorySql, 1, &error) ||
      !pg_->Prepare("diff", kDiffSql, 3, &error) ||
      !pg_->Prepare("between", kBetweenSql, 3, &error)) {
    return Fail(error);
  }

  // The answers, checked against each other once before timing.
  auto tt_hist = WholeHistory(*store_, stream, "/location");
  if (!tt_hist.ok()) return Fail("GetPropertyHistory: " + tt_hist.status().ToString());
  std::vector<std::string> pg_values;
  {
    PGresult* r =
        PQexecPrepared(pg_->raw(), "history", 1, std::vector<const char*>{stream.c_str()}.data(),
                       nullptr, nullptr, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      error = PQresultErrorMessage(r);
      PQclear(r);
      return Fail(error);
    }
    for (int i = 0; i < PQntuples(r); ++i) pg_values.emplace_back(PQgetvalue(r, i, 2));
    PQclear(r);
  }
  if (tt_hist->intervals.size() != pg_values.size()) {
    return Fail("property history: timetrail has " + std::to_string(tt_hist->intervals.size()) +
                " intervals, PostgreSQL " + std::to_string(pg_values.size()) + " rows");
  }
  for (std::size_t i = 0; i < pg_values.size(); ++i) {
    // jsonb prints strings the same way timetrail does ("loc-42").
    if (Json::parse(tt_hist->intervals[i].value) != Json::parse(pg_values[i])) {
      return Fail("property history differs at interval " + std::to_string(i) + ": " +
                  tt_hist->intervals[i].value + " vs " + pg_values[i]);
    }
  }
  const std::int64_t from_v = cfg_.versions / 10, to_v = cfg_.versions * 9 / 10;
  const auto diff_query = timetrail::DiffQuery::Between(timetrail::EntityQuery::AtRevision(from_v),
                                                        timetrail::EntityQuery::AtRevision(to_v));
  // The events between, as a client asking for them reads them: every page, at the largest
  // page size the store allows. Returns how many, or -1 with *err set.
  auto diff_events_between = [&](std::string* err) -> std::int64_t {
    std::int64_t n = 0;
    std::string cursor;
    do {
      auto d = store_->Diff(stream, diff_query.WithEvents(10000, cursor));
      if (!d.ok()) {
        *err = d.status().ToString();
        return -1;
      }
      n += static_cast<std::int64_t>(d->events.size());
      cursor = d->next_cursor;
    } while (!cursor.empty());
    return n;
  };
  auto tt_diff = store_->Diff(stream, diff_query);
  if (!tt_diff.ok()) return Fail("Diff: " + tt_diff.status().ToString());
  std::size_t patch_ops = Json::parse(tt_diff->patch).size();
  std::string fv = std::to_string(from_v), tv = std::to_string(to_v);
  std::vector<std::string> keys;
  std::int64_t pg_diff_rows =
      PgQuery(*pg_, "diff", {stream.c_str(), fv.c_str(), tv.c_str()}, &keys, &error);
  if (pg_diff_rows < 0) return Fail(error);
  if (static_cast<std::size_t>(pg_diff_rows) != patch_ops) {
    return Fail("diff: timetrail's patch has " + std::to_string(patch_ops) +
                " operations, PostgreSQL found " + std::to_string(pg_diff_rows) + " changed keys");
  }

  std::vector<bench::RunResult> tt_h, pg_h, tt_d, tt_de, pg_d, pg_db;
  const std::size_t intervals = pg_values.size();
  const std::int64_t diff_events = diff_events_between(&error);
  if (diff_events < 0) return Fail("Diff with events: " + error);
  if (diff_events != to_v - from_v) {
    return Fail("diff: timetrail lists " + std::to_string(diff_events) + " events between, not " +
                std::to_string(to_v - from_v));
  }
  for (int round = 0; round < cfg_.rounds; ++round) {
    std::string tag = " (round " + std::to_string(round + 1) + ")";
    tt_h.push_back(RunCalls("timetrail property history" + tag, 1, cfg_.history_queries,
                            [&](int, std::uint64_t, std::string* err) -> std::int64_t {
                              auto h = WholeHistory(*store_, stream, "/location");
                              if (!h.ok()) {
                                *err = h.status().ToString();
                                return -1;
                              }
                              if (h->intervals.size() != intervals) {
                                *err = "wrong size";
                                return -1;
                              }
                              return static_cast<std::int64_t>(h->intervals.size());
                            }));
    pg_h.push_back(RunCalls("postgres property history" + tag, 1, cfg_.history_queries,
                            [&](int, std::uint64_t, std::string* err) -> std::int64_t {
                              std::int64_t n = pg_->ExecPrepared("history", {stream.c_str()}, err);
                              if (n >= 0 && static_cast<std::size_t>(n) != intervals) {
                                *err = "wrong size";
                                return -1;
                              }
                              return n;
                            }));
    tt_d.push_back(RunCalls("timetrail diff" + tag, 1, cfg_.diff_queries,
                            [&](int, std::uint64_t, std::string* err) -> std::int64_t {
                              auto d = store_->Diff(stream, diff_query);
                              if (!d.ok()) {
                                *err = d.status().ToString();
                                return -1;
                              }
                              return 1;
                            }));
    tt_de.push_back(RunCalls("timetrail diff + events between" + tag, 1, cfg_.diff_queries,
                             [&](int, std::uint64_t, std::string* err) -> std::int64_t {
                               std::int64_t n = diff_events_between(err);
                               if (n >= 0 && n != diff_events) {
                                 *err = "wrong number of events between";
                                 return -1;
                               }
                               return n < 0 ? -1 : 1;
                             }));
    pg_d.push_back(RunCalls(
        "postgres diff" + tag, 1, cfg_.diff_queries,
        [&](int, std::uint64_t, std::string* err) -> std::int64_t {
          std::int64_t n = pg_->ExecPrepared("diff", {stream.c_str(), fv.c_str(), tv.c_str()}, err);
          if (n >= 0 && n != pg_diff_rows) {
            *err = "wrong size";
            return -1;
          }
          return n < 0 ? -1 : 1;
        }));
    pg_db.push_back(RunCalls(
        "postgres diff + versions between" + tag, 1, cfg_.diff_queries,
        [&](int, std::uint64_t, std::string* err) -> std::int64_t {
          std::int64_t n = pg_->ExecPrepared("diff", {stream.c_str(), fv.c_str(), tv.c_str()}, err);
          if (n < 0) return -1;
          std::int64_t m =
              pg_->ExecPrepared("between", {stream.c_str(), fv.c_str(), tv.c_str()}, err);
          if (m >= 0 && m != diff_events) {
            *err = "wrong number of versions between";
            return -1;
          }
          return m < 0 ? -1 : 1;
        }));
  }
  *out = Json{
      {"versions", cfg_.versions},
      {"property", "/location"},
      {"intervals", intervals},
      {"diff_from_revision", from_v},
      {"diff_to_revision", to_v},
      {"diff_patch_operations", patch_ops},
      {"diff_events_between", diff_events},
      {"timetrail_load_seconds", tt_load},
      {"postgres_load_seconds", pg_load},
      {"history", Json{{"timetrail", MedianOf(tt_h)}, {"postgres", MedianOf(pg_h)}}},
      {"diff", Json{{"timetrail", MedianOf(tt_d)}, {"postgres", MedianOf(pg_d)}}},
      {"diff_with_versions", Json{{"timetrail", MedianOf(tt_de)}, {"postgres", MedianOf(pg_db)}}},
      {"sql", Json{{"history", kHistorySql}, {"diff", kDiffSql}, {"between", kBetweenSql}}}};
  return true;
}

timetrail::Options StoreOptions(const Config& cfg, bool bulk) {
  timetrail::Options options;
  options.block_cache_bytes = static_cast<std::size_t>(cfg.block_cache_mb) << 20;
  if (bulk) {
    options.bulk_load = true;
    options.group_commit_max_transactions = 64;
    options.group_commit_max_bytes = 256u << 20;
  }
  return options;
}

bool Bench::Reopen(bool bulk) {
  store_ = nullptr;
  holder.reset();
  auto opened = timetrail::EventStore::Open(StoreOptions(cfg_, bulk), cfg_.data_dir + "/store");
  if (!opened.ok()) return Fail("reopening the store: " + opened.status().ToString());
  holder = std::move(opened).value();
  store_ = holder.get();
  return true;
}

// Grows both sides' scaling log to "size" events.
bool Bench::LoadTo(std::int64_t size, Json* load) {
  std::string error;
  const std::int64_t from = loaded_;
  if (size <= from) return true;
  std::cerr << "scaling: timetrail: loading events " << from << " .. " << size << "\n";
  // Loaded in bulk, as `timetrail import` loads: the store is opened again with
  // Options::bulk_load for the load, and again as usual for the queries after it.
  // Transactions of 1,000 events (one each for 1,000 entities), kPerBatch of them per
  // TransactMany (one group commit, one ingestion of table files each).
  constexpr std::int64_t kPerTx = 1000;
  constexpr std::size_t kPerBatch = 64;
  if (!Reopen(/*bulk=*/true)) return false;
  std::string failure;
  std::vector<timetrail::Transaction> txs;
  std::vector<std::size_t> tx_batches;  // batches_ index of each of txs
  auto commit = [&] {
    std::vector<timetrail::Result<timetrail::Committed>> results =
        store_->TransactMany(std::move(txs), /*stop_at_first_failure=*/true);
    for (std::size_t t = 0; t < results.size(); ++t) {
      if (!results[t].ok()) {
        if (failure.empty()) failure = results[t].status().ToString();
        continue;
      }
      batches_[tx_batches[t]].first_position = results[t]->first_position;
      batches_[tx_batches[t]].recorded_at = results[t]->recorded_at;
    }
    txs.clear();
    tx_batches.clear();
  };
  std::size_t first_batch = batches_.size();
  auto start = Clock::now();
  auto last_report = start;
  for (std::int64_t i = from; i < size && failure.empty(); i += kPerTx) {
    std::int64_t n = std::min(kPerTx, size - i);
    timetrail::Transaction tx;
    for (std::int64_t k = 0; k < n; ++k) {
      timetrail::StreamAppend a;
      a.stream = "item-" + std::to_string((i + k) % cfg_.entities);
      a.expected = timetrail::ExpectedRevision::Any();
      timetrail::ProposedEvent e;
      e.type = "$put";
      e.data = bench::ScalingItemData(i + k, cfg_.entities);
      e.metadata = bench::ScalingItemMetadata(i + k, cfg_.actors);
      a.events.push_back(std::move(e));
      tx.appends.push_back(std::move(a));
    }
    tx_batches.push_back(batches_.size());
    batches_.push_back(Batch{i, n, 0, {}});
    txs.push_back(std::move(tx));
    if (txs.size() == kPerBatch) commit();
    if (Clock::now() - last_report > std::chrono::seconds(5)) {
      last_report = Clock::now();
      std::fprintf(stderr, "  timetrail: %lld of %lld events, %.0f events/s\n",
                   static_cast<long long>(i + n), static_cast<long long>(size),
                   static_cast<double>(i + n - from) / Since(start));
    }
  }
  if (!txs.empty()) commit();
  if (!failure.empty()) return Fail("loading: " + failure);
  if (!Reopen(/*bulk=*/false)) return false;
  double tt_seconds = Since(start);
  auto settle_start = Clock::now();
  timetrail::Status s = store_->WaitForBackgroundWork();
  if (!s.ok()) return Fail("WaitForBackgroundWork: " + s.ToString());
  double tt_settle = Since(settle_start);
  std::fprintf(stderr,
               "  timetrail: %lld events in %.1f s (%.0f events/s), then %.1f s of"
               " flushes and compactions\n",
               static_cast<long long>(size - from), tt_seconds,
               static_cast<double>(size - from) / tt_seconds, tt_settle);

  // PostgreSQL: the same rows, with timetrail's positions, revisions and commit times.
  std::cerr << "scaling: postgres: COPY of events " << from << " .. " << size << "\n";
  start = Clock::now();
  for (const auto& [name, sql] : kIndexes) {
    bool constraint = sql.rfind("ALTER", 0) == 0;
    if (!pg_->Exec(constraint ? "ALTER TABLE tt_events DROP CONSTRAINT IF EXISTS " + name
                              : "DROP INDEX IF EXISTS " + name,
                   &error)) {
      return Fail(error);
    }
  }
  PgCopy copy(*pg_, "tt_events (position, stream, revision, type, data, metadata, recorded_at)");
  if (!copy.Begin(&error)) return Fail(error);
  std::string chunk;
  for (std::size_t b = first_batch; b < batches_.size(); ++b) {
    const Batch& batch = batches_[b];
    std::string at = timetrail::FormatTimestamp(batch.recorded_at);
    for (std::int64_t k = 0; k < batch.count; ++k) {
      std::int64_t i = batch.first_index + k;
      chunk += std::to_string(batch.first_position + k);
      chunk += "\titem-" + std::to_string(i % cfg_.entities);
      chunk += "\t" + std::to_string(i / cfg_.entities);
      chunk += "\t$put\t" + bench::ScalingItemData(i, cfg_.entities) + "\t" +
               bench::ScalingItemMetadata(i, cfg_.actors) + "\t" + at + "\n";
    }
    if (chunk.size() > (8u << 20) || b + 1 == batches_.size()) {
      if (!copy.Put(chunk, &error)) return Fail(error);
      chunk.clear();
    }
    if ((b - first_batch) % 1000 == 999) {
      std::fprintf(stderr, "  postgres: copied %lld of %lld events, %.0f events/s\n",
                   static_cast<long long>(batch.first_index + batch.count),
                   static_cast<long long>(size),
                   static_cast<double>(batch.first_index + batch.count - from) / Since(start));
    }
  }
  if (!copy.End(&error)) return Fail(error);
  double copy_seconds = Since(start);
  std::cerr << "  postgres: building the indexes\n";
  if (!pg_->Exec("SET maintenance_work_mem = '512MB'", &error)) return Fail(error);
  for (const auto& [name, sql] : kIndexes) {
    if (!pg_->Exec(sql, &error)) return Fail(error);
  }
  if (!pg_->Exec("SELECT setval(pg_get_serial_sequence('tt_events', 'position'),"
                 " (SELECT max(position) FROM tt_events))",
                 &error) ||
      !pg_->Exec("VACUUM ANALYZE tt_events", &error)) {
    return Fail(error);
  }
  double pg_seconds = Since(start);
  std::fprintf(stderr, "  postgres: %lld events: COPY %.1f s, indexes and VACUUM ANALYZE %.1f s\n",
               static_cast<long long>(size - from), copy_seconds, pg_seconds - copy_seconds);
  loaded_ = size;
  *load = Json{{"events", size - from},
               {"timetrail_seconds", tt_seconds},
               {"timetrail_events_per_second", static_cast<double>(size - from) / tt_seconds},
               {"timetrail_settle_seconds", tt_settle},
               {"postgres_copy_seconds", copy_seconds},
               {"postgres_seconds", pg_seconds},
               {"postgres_events_per_second", static_cast<double>(size - from) / pg_seconds}};
  return true;
}

bool Bench::Scaling(Json* out) {
  std::string error;
  if (!pg_->Exec("DROP TABLE IF EXISTS tt_events", &error) || !pg_->Exec(kEventsTableSql, &error) ||
      !pg_->Prepare("asof", kAsOfSql, 2, &error) ||
      !pg_->Prepare("activity", kActivitySql, 3, &error)) {
    return Fail(error);
  }
  int max_writers = static_cast<int>(*std::max_element(cfg_.writers.begin(), cfg_.writers.end()));
  std::vector<std::unique_ptr<bench::PgConn>> writers;
  for (int w = 0; w < max_writers; ++w) {
    auto c = bench::PgConn::Connect(cfg_.pg, &error);
    if (!c) return Fail(error);
    std::ostringstream sql;
    sql << "INSERT INTO tt_events (stream, revision, type, data, metadata) VALUES ";
    for (std::int64_t r = 0; r < cfg_.batch; ++r) {
      sql << (r ? "," : "") << "($1, " << r << ", '$put', $" << r + 2 << "::jsonb, $"
          << cfg_.batch + 2 << "::jsonb)";
    }
    if (!c->Prepare("append", sql.str(), static_cast<int>(cfg_.batch + 2), &error))
      return Fail(error);
    writers.push_back(std::move(c));
  }
  const std::string writer_metadata = R"({"actor": "writer", "reason": "append workload"})";

  Json points = Json::array();
  for (std::int64_t size : cfg_.sizes) {
    Json point{{"size", size}};
    Json load;
    if (!LoadTo(size, &load)) return false;
    point["load"] = load;
    const std::int64_t existing = std::min(size, cfg_.entities);
    const timetrail::Timestamp t0 = batches_.front().recorded_at, t1 = batches_.back().recorded_at;

    std::vector<bench::RunResult> tt_asof, pg_asof, tt_act, pg_act;
    std::map<int, std::vector<bench::RunResult>> tt_app, pg_app;
    double act_rows = 0;
    for (int round = 0; round < cfg_.rounds; ++round) {
      std::string tag =
          ", " + std::to_string(size) + " events (round " + std::to_string(round + 1) + ")";
      // As-of: the same random (entity, time) pairs on both sides; the versions found must match.
      std::mt19937_64 rng(size * 31 + round);
      std::vector<std::pair<std::string, timetrail::Timestamp>> qs;
      for (std::int64_t q = 0; q < cfg_.queries; ++q) {
        qs.emplace_back("item-" + std::to_string(std::uniform_int_distribution<std::int64_t>(
                                      0, existing - 1)(rng)),
                        timetrail::Timestamp{std::uniform_int_distribution<std::int64_t>(
                            t0.micros, t1.micros)(rng)});
      }
      std::vector<std::int64_t> tt_seq(qs.size(), -2), pg_seq(qs.size(), -2);
      tt_asof.push_back(RunCalls("timetrail as-of" + tag, 1, qs.size(),
                                 [&](int, std::uint64_t i, std::string* err) -> std::int64_t {
                                   auto r = store_->GetEntity(
                                       qs[i].first, timetrail::EntityQuery::AsOf(qs[i].second));
                                   if (!r.ok()) {
                                     *err = r.status().ToString();
                                     return -1;
                                   }
                                   tt_seq[i] = r->exists ? IntField(r->state, "seq") : -1;
                                   return 1;
                                 }));
      std::vector<std::string> times;
      for (auto& q : qs) times.push_back(timetrail::FormatTimestamp(q.second));
      pg_asof.push_back(
          RunCalls("postgres as-of" + tag, 1, qs.size(),
                   [&](int, std::uint64_t i, std::string* err) -> std::int64_t {
                     std::vector<std::string> col;
                     std::int64_t n =
                         PgQuery(*pg_, "asof", {qs[i].first.c_str(), times[i].c_str()}, &col, err);
                     if (n < 0) return -1;
                     pg_seq[i] = n == 0 ? -1 : std::strtoll(col[0].c_str(), nullptr, 10);
                     return 1;
                   }));
      for (std::size_t i = 0; i < qs.size(); ++i) {
        if (tt_seq[i] != pg_seq[i]) {
          return Fail("as-of " + qs[i].first + " at " + times[i] + ": timetrail found seq " +
                      std::to_string(tt_seq[i]) + ", PostgreSQL " + std::to_string(pg_seq[i]));
        }
      }
      // Activity: a random actor in a window of 1% of the log (at least one load batch).
      std::int64_t nb = static_cast<std::int64_t>(batches_.size());
      std::int64_t span = std::max<std::int64_t>(1, nb / 100);
      struct Act {
        std::string actor;
        timetrail::Timestamp from, to;
        std::string f, t;
      };
      std::vector<Act> as;
      for (std::int64_t q = 0; q < cfg_.activity_queries; ++q) {
        std::int64_t b = std::uniform_int_distribution<std::int64_t>(0, nb - span)(rng);
        Act a{"actor-" + std::to_string(
                             std::uniform_int_distribution<std::int64_t>(0, cfg_.actors - 1)(rng)),
              batches_[b].recorded_at, batches_[b + span - 1].recorded_at, "", ""};
        a.f = timetrail::FormatTimestamp(a.from);
        a.t = timetrail::FormatTimestamp(a.to);
        as.push_back(a);
      }
      std::vector<std::pair<std::int64_t, std::int64_t>> tt_ans(as.size()), pg_ans(as.size());
      tt_act.push_back(RunCalls("timetrail activity" + tag, 1, as.size(),
                                [&](int, std::uint64_t i, std::string* err) -> std::int64_t {
                                  timetrail::ActivityQuery aq;
                                  aq.actor = as[i].actor;
                                  aq.from = as[i].from;
                                  aq.to = as[i].to;
                                  aq.limit = 1000;
                                  std::int64_t n = 0, sum = 0;
                                  for (;;) {
                                    auto page = store_->QueryActivity(aq);
                                    if (!page.ok()) {
                                      *err = page.status().ToString();
                                      return -1;
                                    }
                                    for (const auto& e : page->events) {
                                      ++n;
                                      sum += static_cast<std::int64_t>(e.position);
                                    }
                                    if (page->next_cursor.empty()) break;
                                    aq.cursor = page->next_cursor;
                                  }
                                  tt_ans[i] = {n, sum};
                                  return n;
                                }));
      pg_act.push_back(RunCalls("postgres activity" + tag, 1, as.size(),
                                [&](int, std::uint64_t i, std::string* err) -> std::int64_t {
                                  std::vector<std::string> col;
                                  std::int64_t n = PgQuery(
                                      *pg_, "activity",
                                      {as[i].actor.c_str(), as[i].f.c_str(), as[i].t.c_str()}, &col,
                                      err);
                                  if (n < 0) return -1;
                                  std::int64_t sum = 0;
                                  for (auto& c : col) sum += std::strtoll(c.c_str(), nullptr, 10);
                                  pg_ans[i] = {n, sum};
                                  return n;
                                }));
      std::int64_t rows = 0;
      for (std::size_t i = 0; i < as.size(); ++i) {
        if (tt_ans[i] != pg_ans[i]) {
          return Fail("activity of " + as[i].actor + " in [" + as[i].f + ", " + as[i].t +
                      "]: timetrail " + std::to_string(tt_ans[i].first) + " events, PostgreSQL " +
                      std::to_string(pg_ans[i].first) + " (or different positions)");
        }
        rows += tt_ans[i].first;
      }
      act_rows = static_cast<double>(rows) / static_cast<double>(as.size());
      // Appends: new streams of "batch" events each, from 1 and 16 writers, on both sides.
      for (std::int64_t w : cfg_.writers) {
        int nw = static_cast<int>(w);
        std::uint64_t calls = static_cast<std::uint64_t>(cfg_.append_events / cfg_.batch);
        std::string prefix = "w" + std::to_string(size) + "-" + std::to_string(round) + "-" +
                             std::to_string(w) + "-";
        tt_app[nw].push_back(RunCalls(
            "timetrail appends, " + std::to_string(w) + " writers" + tag, nw, calls,
            [&](int, std::uint64_t i, std::string* err) -> std::int64_t {
              std::vector<timetrail::ProposedEvent> evs(cfg_.batch);
              for (std::int64_t k = 0; k < cfg_.batch; ++k) {
                evs[k].type = "$put";
                evs[k].data = bench::EventData(0, i, static_cast<int>(k));
                evs[k].metadata = writer_metadata;
              }
              auto r = store_->Append(prefix + std::to_string(i),
                                      timetrail::ExpectedRevision::NoStream(), std::move(evs));
              if (!r.ok()) {
                *err = r.status().ToString();
                return -1;
              }
              return cfg_.batch;
            }));
        pg_app[nw].push_back(
            RunCalls("postgres appends, " + std::to_string(w) + " writers" + tag, nw, calls,
                     [&](int t, std::uint64_t i, std::string* err) -> std::int64_t {
                       std::string stream = prefix + std::to_string(i);
                       std::vector<std::string> d;
                       for (std::int64_t k = 0; k < cfg_.batch; ++k)
                         d.push_back(bench::EventData(0, i, static_cast<int>(k)));
                       std::vector<const char*> params{stream.c_str()};
                       for (auto& x : d) params.push_back(x.c_str());
                       params.push_back(writer_metadata.c_str());
                       std::int64_t n = writers[t]->ExecPrepared("append", params, err);
                       return n < 0 ? -1 : cfg_.batch;
                     }));
        appended_ += static_cast<std::int64_t>(calls) * cfg_.batch;
      }
    }
    point["asof"] = Json{{"timetrail", MedianOf(tt_asof)}, {"postgres", MedianOf(pg_asof)}};
    point["activity"] = Json{{"timetrail", MedianOf(tt_act)},
                             {"postgres", MedianOf(pg_act)},
                             {"mean_events_per_answer", act_rows}};
    Json app = Json::array();
    for (std::int64_t w : cfg_.writers) {
      app.push_back(Json{{"writers", w},
                         {"batch", cfg_.batch},
                         {"timetrail", MedianOf(tt_app[static_cast<int>(w)])},
                         {"postgres", MedianOf(pg_app[static_cast<int>(w)])}});
    }
    point["appends"] = app;

    // Bytes on disk, both sides holding the same events.
    timetrail::Status s = store_->WaitForBackgroundWork();
    if (!s.ok()) return Fail("WaitForBackgroundWork: " + s.ToString());
    if (!pg_->Exec("VACUUM ANALYZE tt_events", &error) || !pg_->Exec("CHECKPOINT", &error))
      return Fail(error);
    std::int64_t events = static_cast<std::int64_t>(store_->LastPosition());
    std::int64_t pg_rows =
        static_cast<std::int64_t>(PgNumber(*pg_, "SELECT count(*) FROM tt_events")) +
        static_cast<std::int64_t>(PgNumber(*pg_, "SELECT count(*) FROM doc_history"));
    Json tt_bytes = DirBytes(cfg_.data_dir + "/store");
    double pg_table = PgNumber(
        *pg_, "SELECT pg_total_relation_size('tt_events') + pg_total_relation_size('doc_history')");
    double pg_heap =
        PgNumber(*pg_, "SELECT pg_table_size('tt_events') + pg_table_size('doc_history')");
    double pg_indexes =
        PgNumber(*pg_, "SELECT pg_indexes_size('tt_events') + pg_indexes_size('doc_history')");
    double pg_wal = PgNumber(*pg_, "SELECT sum(size) FROM pg_ls_waldir()");
    point["disk"] = Json{
        {"events", events},
        {"postgres_rows", pg_rows},
        {"timetrail_bytes", tt_bytes},
        {"timetrail_bytes_per_event",
         tt_bytes["total"].get<double>() / static_cast<double>(events)},
        {"postgres_table_and_index_bytes", pg_table},
        {"postgres_heap_bytes", pg_heap},
        {"postgres_index_bytes", pg_indexes},
        {"postgres_wal_bytes", pg_wal},
        {"postgres_bytes_per_event", pg_table / static_cast<double>(pg_rows)},
        {"postgres_bytes_per_event_with_wal", (pg_table + pg_wal) / static_cast<double>(pg_rows)}};
    if (pg_rows != events) {
      return Fail("the two sides hold different numbers of events: timetrail " +
                  std::to_string(events) + ", PostgreSQL " + std::to_string(pg_rows));
    }
    point["load_average"] = bench::LoadAverage();
    std::fprintf(stderr,
                 "scaling: %lld events: as-of p50 %.3f / %.3f ms, activity p50 %.3f / %.3f ms,"
                 " bytes/event %.0f / %.0f (timetrail / PostgreSQL)\n",
                 static_cast<long long>(size),
                 point["asof"]["timetrail"]["p50_us"].get<double>() / 1000,
                 point["asof"]["postgres"]["p50_us"].get<double>() / 1000,
                 point["activity"]["timetrail"]["p50_us"].get<double>() / 1000,
                 point["activity"]["postgres"]["p50_us"].get<double>() / 1000,
                 point["disk"]["timetrail_bytes_per_event"].get<double>(),
                 point["disk"]["postgres_bytes_per_event"].get<double>());
    points.push_back(point);
  }
  *out = points;
  return true;
}

// Peak memory under an as-of + append workload at the largest size: `timetrail serve` on the
// store (closed here first) against PostgreSQL's postmaster and backends.
bool Bench::Resources(Json* out) {
  std::string error;
  const std::int64_t existing = std::min(loaded_, cfg_.entities);
  const timetrail::Timestamp t0 = batches_.front().recorded_at, t1 = batches_.back().recorded_at;
  holder.reset();
  store_ = nullptr;
  std::cerr << "resources: starting " << cfg_.timetrail << " serve on the store\n";
  auto server = bench::ServeProcess::Start(cfg_.timetrail, cfg_.data_dir + "/store",
                                           cfg_.data_dir + "/serve.log", &error);
  if (!server) return Fail(error);
  pid_t spid = server->pid();
  constexpr int kReaders = 2;
  auto workload = [&](const std::string& label,
                      const std::function<bool(int, std::mt19937_64&, std::string*)>& read,
                      const std::function<bool(std::uint64_t, std::string*)>& write) {
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> reads{0}, writes{0}, errors{0};
    std::string first_error;
    std::mutex mu;
    std::vector<std::thread> threads;
    for (int t = 0; t < kReaders; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937_64 rng(7000 + t);
        std::string err;
        while (!stop) {
          if (read(t, rng, &err)) {
            ++reads;
          } else {
            ++errors;
            std::lock_guard<std::mutex> l(mu);
            if (first_error.empty()) first_error = err;
          }
        }
      });
    }
    threads.emplace_back([&] {
      std::string err;
      for (std::uint64_t i = 0; !stop; ++i) {
        if (write(i, &err)) {
          ++writes;
        } else {
          ++errors;
          std::lock_guard<std::mutex> l(mu);
          if (first_error.empty()) first_error = err;
        }
      }
    });
    std::this_thread::sleep_for(std::chrono::duration<double>(cfg_.resource_seconds));
    stop = true;
    for (auto& t : threads) t.join();
    std::fprintf(stderr, "  %s: %llu as-of reads, %llu append batches, %llu errors %s\n",
                 label.c_str(), static_cast<unsigned long long>(reads.load()),
                 static_cast<unsigned long long>(writes.load()),
                 static_cast<unsigned long long>(errors.load()), first_error.c_str());
    return Json{{"reads", reads.load()},
                {"append_batches", writes.load()},
                {"errors", errors.load()},
                {"first_error", first_error}};
  };
  auto body_of = [&](std::uint64_t i) {
    std::string body = R"({"expected_revision": "no_stream", "events": [)";
    for (std::int64_t k = 0; k < cfg_.batch; ++k) {
      body += (k ? ", " : "");
      body += R"({"type": "$put", "data": )" + bench::EventData(1, i, static_cast<int>(k)) +
              R"(, "metadata": {"actor": "writer"}})";
    }
    return body + "]}";
  };
  Json tt;
  {
    std::vector<std::unique_ptr<bench::HttpClient>> http;
    for (int i = 0; i <= kReaders; ++i)
      http.push_back(std::make_unique<bench::HttpClient>(server->host(), server->port()));
    MemorySampler sampler([spid] { return std::vector<pid_t>{spid}; });
    Json w = workload(
        "timetrail serve",
        [&](int t, std::mt19937_64& rng, std::string* err) {
          std::string target =
              "/v1/entities/item-" +
              std::to_string(std::uniform_int_distribution<std::int64_t>(0, existing - 1)(rng)) +
              "?as_of=" +
              timetrail::FormatTimestamp(timetrail::Timestamp{
                  std::uniform_int_distribution<std::int64_t>(t0.micros, t1.micros)(rng)});
          int status = 0;
          std::string body;
          if (!http[t]->Get(target, &status, &body, err)) return false;
          if (status != 200) {
            *err = "GET " + target + ": " + std::to_string(status) + " " + body.substr(0, 200);
            return false;
          }
          return true;
        },
        [&](std::uint64_t i, std::string* err) {
          int status = 0;
          std::string answer;
          std::string target = "/v1/streams/mem-" + std::to_string(i);
          if (!http[kReaders]->Request(boost::beast::http::verb::post, target, body_of(i), &status,
                                       &answer, err))
            return false;
          if (status != 200 && status != 201) {
            *err = "POST " + target + ": " + std::to_string(status) + " " + answer.substr(0, 200);
            return false;
          }
          return true;
        });
    sampler.Stop();
    std::uint64_t hwm = ProcKiB(spid, "status", "VmHWM");
    tt = Json{{"workload", w},
              {"vm_hwm_kib", hwm},
              {"peak_rss_kib", sampler.peak_rss_kib()},
              {"peak_pss_kib", sampler.peak_pss_kib()},
              {"block_cache", "the server's default"}};
  }
  int status = server->Stop();
  if (status != 0) std::cerr << "  timetrail serve exited with status " << status << "\n";

  // PostgreSQL: its postmaster is the parent of this connection's backend.
  std::string backend;
  if (!PgScalar(*pg_, "SELECT pg_backend_pid()", &backend, &error)) return Fail(error);
  pid_t postmaster = ParentOf(static_cast<pid_t>(std::strtol(backend.c_str(), nullptr, 10)));
  std::vector<std::unique_ptr<bench::PgConn>> conns;
  for (int i = 0; i <= kReaders; ++i) {
    auto c = bench::PgConn::Connect(cfg_.pg, &error);
    if (!c || !c->Prepare("asof", kAsOfSql, 2, &error)) return Fail(error);
    std::ostringstream sql;
    sql << "INSERT INTO tt_events (stream, revision, type, data, metadata) VALUES ";
    for (std::int64_t r = 0; r < cfg_.batch; ++r) {
      sql << (r ? "," : "") << "($1, " << r << ", '$put', $" << r + 2
          << "::jsonb, '{\"actor\": \"writer\"}')";
    }
    if (!c->Prepare("append", sql.str(), static_cast<int>(cfg_.batch + 1), &error))
      return Fail(error);
    conns.push_back(std::move(c));
  }
  MemorySampler sampler([postmaster] { return PgProcesses(postmaster); });
  Json w = workload(
      "postgres",
      [&](int t, std::mt19937_64& rng, std::string* err) {
        std::string entity = "item-" + std::to_string(std::uniform_int_distribution<std::int64_t>(
                                           0, existing - 1)(rng));
        std::string at = timetrail::FormatTimestamp(timetrail::Timestamp{
            std::uniform_int_distribution<std::int64_t>(t0.micros, t1.micros)(rng)});
        return conns[t]->ExecPrepared("asof", {entity.c_str(), at.c_str()}, err) >= 0;
      },
      [&](std::uint64_t i, std::string* err) {
        std::string stream = "mem-" + std::to_string(i);
        std::vector<std::string> d;
        for (std::int64_t k = 0; k < cfg_.batch; ++k)
          d.push_back(bench::EventData(1, i, static_cast<int>(k)));
        std::vector<const char*> params{stream.c_str()};
        for (auto& x : d) params.push_back(x.c_str());
        return conns[kReaders]->ExecPrepared("append", params, err) >= 0;
      });
  sampler.Stop();
  std::uint64_t hwm_sum = 0;
  auto pids = PgProcesses(postmaster);
  for (pid_t p : pids) hwm_sum += ProcKiB(p, "status", "VmHWM");
  Json pg{{"workload", w},
          {"processes", sampler.processes()},
          {"peak_rss_sum_kib", sampler.peak_rss_kib()},
          {"peak_pss_sum_kib", sampler.peak_pss_kib()},
          {"vm_hwm_sum_kib", hwm_sum},
          {"shared_buffers", "256MB"}};
  *out = Json{{"events", loaded_},   {"seconds", cfg_.resource_seconds},
              {"readers", kReaders}, {"writers", 1},
              {"batch", cfg_.batch}, {"timetrail", tt},
              {"postgres", pg}};
  return w["errors"].get<std::uint64_t>() == 0 && tt["workload"]["errors"].get<std::uint64_t>() == 0
             ? true
             : Fail("the memory workload had errors");
}

std::string Ms(double us) { return Fmt("%.3f", us / 1000); }
std::string Count(double v) {
  char buf[64];
  if (v >= 1e4 && std::pow(10.0, std::round(std::log10(v))) == v) {
    std::snprintf(buf, sizeof buf, "10^%d", static_cast<int>(std::lround(std::log10(v))));
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  }
  return buf;
}

std::string Markdown(const Json& out, const std::string& run_name) {
  std::ostringstream md;
  const Json& m = out["machine"];
  const Json& c = out["config"];
  md << "#### Temporal queries, scaling and resources (" << run_name << " run, "
     << out["started_at"].get<std::string>() << ")\n\n"
     << m["cores"].dump() << " cores, " << Fmt("%.1f", m["memory_gib"].get<double>()) << " GiB, "
     << m["cpu_model"].get<std::string>() << "; load average "
     << Fmt("%.2f", m["load_average"][0].get<double>()) << " at start, "
     << Fmt("%.2f", out["load_average_end"][0].get<double>()) << " at end; PostgreSQL "
     << out["postgres"].value("server_version", std::string("?")) << " (shared_buffers "
     << out["postgres"].value("shared_buffers", std::string("?")) << "); timetrail block cache "
     << c["block_cache_mb"].dump() << " MiB. Every figure is the median of " << c["rounds"].dump()
     << " round(s).\n\n";
  const Json& h = out["history"];
  md << "One entity with " << h["versions"].dump() << " versions (a `$put`, then `$patch`es of one"
     << " property each): history of `/location` (" << h["intervals"].dump()
     << " intervals) and the diff between revisions " << h["diff_from_revision"].dump() << " and "
     << h["diff_to_revision"].dump() << " (" << h["diff_patch_operations"].dump()
     << " operations): the states and the patch against PostgreSQL's changed keys, and with "
     << "the " << h["diff_events_between"].dump()
     << " events between (timetrail's pages of up to 10,000) against the versions between.\n\n"
     << "| query | timetrail p50 ms | p99 ms | PostgreSQL p50 ms | p99 ms | PostgreSQL p50 / "
        "timetrail p50 |\n"
     << "|--|--:|--:|--:|--:|--:|\n";
  for (const char* q : {"history", "diff", "diff_with_versions"}) {
    const Json& t = h[q]["timetrail"];
    const Json& p = h[q]["postgres"];
    std::string name = q;
    md << "| "
       << (name == "history" ? "property history"
           : name == "diff"  ? "diff: states and patch (PostgreSQL: changed keys)"
                             : "diff + events between (PostgreSQL: changed keys + the versions "
                               "between)")
       << " | " << Ms(t["p50_us"].get<double>()) << " | " << Ms(t["p99_us"].get<double>()) << " | "
       << Ms(p["p50_us"].get<double>()) << " | " << Ms(p["p99_us"].get<double>()) << " | "
       << Fmt("%.2fx", p["p50_us"].get<double>() / std::max(1e-9, t["p50_us"].get<double>()))
       << " |\n";
  }
  md << "\n| store size (events) | as-of p50 ms tt / PG | as-of p99 ms tt / PG | activity p50 ms "
        "tt / PG"
     << " (events per answer) | appends/s 1 writer tt / PG | appends/s 16 writers tt / PG |"
     << " bytes/event tt / PG (PG + WAL) | load s tt / PG |\n"
     << "|--:|--:|--:|--:|--:|--:|--:|--:|\n";
  for (const auto& p : out["scaling"]) {
    auto pair = [&](const Json& a, const char* key, bool ms) {
      double x = a["timetrail"][key].get<double>(), y = a["postgres"][key].get<double>();
      return ms ? Ms(x) + " / " + Ms(y) : Fmt("%.0f", x) + " / " + Fmt("%.0f", y);
    };
    md << "| " << Count(p["size"].get<double>()) << " | " << pair(p["asof"], "p50_us", true)
       << " | " << pair(p["asof"], "p99_us", true) << " | " << pair(p["activity"], "p50_us", true)
       << " (" << Fmt("%.0f", p["activity"]["mean_events_per_answer"].get<double>()) << ") | ";
    for (const auto& a : p["appends"]) md << pair(a, "events_per_second", false) << " | ";
    const Json& d = p["disk"];
    md << Fmt("%.0f", d["timetrail_bytes_per_event"].get<double>()) << " / "
       << Fmt("%.0f", d["postgres_bytes_per_event"].get<double>()) << " ("
       << Fmt("%.0f", d["postgres_bytes_per_event_with_wal"].get<double>()) << ") | "
       << Fmt("%.0f", p["load"]["timetrail_seconds"].get<double>() +
                          p["load"]["timetrail_settle_seconds"].get<double>())
       << " / " << Fmt("%.0f", p["load"]["postgres_seconds"].get<double>()) << " |\n";
  }
  md << "\nLoad times are for the events added since the previous size: timetrail's bulk load"
     << " (Options::bulk_load, as `timetrail import` loads: TransactMany of 64 transactions of"
     << " 1,000 events, each batch ingested as table files) plus its wait for RocksDB's"
     << " compactions; PostgreSQL's COPY with"
     << " the indexes dropped, then building them and VACUUM ANALYZE. Bytes on disk: the whole"
     << " timetrail data directory (tables and write-ahead log) after background work finished;"
     << " PostgreSQL's tables, TOAST and indexes (`pg_total_relation_size`) after VACUUM and"
     << " CHECKPOINT, and in brackets with `pg_wal`.\n";
  if (out.contains("resources")) {
    const Json& r = out["resources"];
    auto mib = [](const Json& v) { return Fmt("%.0f", v.get<double>() / 1024); };
    md << "\nMemory at " << Count(r["events"].get<double>()) << " events, " << r["readers"].dump()
       << " as-of readers and 1 writer (" << r["batch"].dump() << " events per append) for "
       << Fmt("%.0f", r["seconds"].get<double>()) << " s: `timetrail serve` peak RSS (VmHWM) **"
       << mib(r["timetrail"]["vm_hwm_kib"]) << " MiB** (peak PSS "
       << mib(r["timetrail"]["peak_pss_kib"]) << " MiB); PostgreSQL's postmaster and "
       << r["postgres"]["processes"].get<std::uint64_t>() - 1
       << " child processes, sampled every 100 ms: peak sum of PSS **"
       << mib(r["postgres"]["peak_pss_sum_kib"]) << " MiB**, peak sum of RSS "
       << mib(r["postgres"]["peak_rss_sum_kib"])
       << " MiB (counts the shared buffers once per process).\n";
  }
  md << "\nGoals:\n";
  for (const auto& g : out["goals"]) {
    md << "- " << g["goal"].get<std::string>() << ": measured "
       << Fmt("%.2f", g["measured"].get<double>()) << " — **"
       << (g["met"].get<bool>() ? "met" : "not met") << "**\n";
  }
  return md.str();
}

}  // namespace

int main(int argc, char** argv) {
  bench::Flags flags(argc, argv);
  if (flags.Help(kHelp)) return 0;
  bool quick = flags.Has("quick");
  Config cfg;
  cfg.pg = flags.Get("pg", "");
  cfg.data_dir = flags.Get("data-dir", "");
  cfg.out = flags.Get("out", "");
  cfg.markdown = flags.Get("markdown", "");
  cfg.run_name = flags.Get("run-name", "custom");
  cfg.timetrail = flags.Get("timetrail", "");
  cfg.versions = flags.GetInt("versions", 10000);
  cfg.sizes = ParseList(
      flags.Get("sizes", quick ? "10000,100000,1000000" : "10000,100000,1000000,10000000"));
  cfg.entities = flags.GetInt("entities", 100000);
  cfg.actors = flags.GetInt("actors", 1000);
  cfg.rounds = static_cast<int>(flags.GetInt("rounds", quick ? 1 : 3));
  cfg.queries = flags.GetInt("queries", quick ? 300 : 1000);
  cfg.activity_queries = flags.GetInt("activity-queries", quick ? 100 : 200);
  std::string hq = flags.Get("history-queries", quick ? "10,30" : "30,100");
  auto hqs = ParseList(hq);
  cfg.history_queries = hqs.empty() ? 0 : hqs[0];
  cfg.diff_queries = hqs.size() > 1 ? hqs[1] : cfg.history_queries;
  cfg.append_events = flags.GetInt("append-events", 20000);
  cfg.batch = flags.GetInt("batch", 100);
  cfg.writers = ParseList(flags.Get("writers", "1,16"));
  cfg.block_cache_mb = flags.GetInt("block-cache-mb", 256);
  cfg.resource_seconds = flags.GetDouble("resource-seconds", quick ? 5 : 15);
  if (!flags.CheckAllUsed()) return 2;
  if (cfg.pg.empty() || cfg.data_dir.empty()) {
    std::cerr << "temporal_bench: --pg and --data-dir are required (see --help)\n";
    return 2;
  }
  std::sort(cfg.sizes.begin(), cfg.sizes.end());
  if (cfg.sizes.empty() || cfg.sizes[0] < 1000 || cfg.versions < 10 || cfg.entities < 1000 ||
      cfg.actors < 1 || cfg.rounds < 1 || cfg.queries < 1 || cfg.activity_queries < 1 ||
      cfg.history_queries < 1 || cfg.diff_queries < 1 || cfg.batch < 1 || cfg.batch > 1000 ||
      cfg.append_events < cfg.batch || cfg.writers.empty() ||
      *std::min_element(cfg.writers.begin(), cfg.writers.end()) < 1 || cfg.block_cache_mb < 1 ||
      cfg.resource_seconds <= 0) {
    std::cerr << "temporal_bench: --sizes must be at least 1000, --versions at least 10,"
                 " --entities at least 1000, --batch 1..1000 and at most --append-events, and the"
                 " other counts positive\n";
    return 2;
  }
  std::string error;
  auto pg = bench::PgConn::Connect(cfg.pg, &error);
  if (!pg) {
    std::cerr << error << "\n";
    return 1;
  }
  Json out;
  out["benchmark"] = "temporal";
  out["started_at"] = bench::UtcNow();
  out["machine"] = bench::DescribeMachine();
  out["postgres"] = bench::DescribePostgres(*pg);
  out["config"] = Json{{"versions", cfg.versions},
                       {"sizes", cfg.sizes},
                       {"entities", cfg.entities},
                       {"actors", cfg.actors},
                       {"rounds", cfg.rounds},
                       {"queries", cfg.queries},
                       {"activity_queries", cfg.activity_queries},
                       {"history_queries", cfg.history_queries},
                       {"diff_queries", cfg.diff_queries},
                       {"append_events", cfg.append_events},
                       {"batch", cfg.batch},
                       {"writers", cfg.writers},
                       {"block_cache_mb", cfg.block_cache_mb},
                       {"resource_seconds", cfg.resource_seconds}};
  out["sql"] = Json{{"events_table", kEventsTableSql},
                    {"as_of", kAsOfSql},
                    {"activity", kActivitySql},
                    {"history", kHistorySql},
                    {"diff", kDiffSql}};
  Json idx = Json::array();
  for (const auto& i : kIndexes) idx.push_back(i.second);
  out["sql"]["indexes"] = idx;

  auto opened =
      timetrail::EventStore::Open(StoreOptions(cfg, /*bulk=*/false), cfg.data_dir + "/store");
  if (!opened.ok()) {
    std::cerr << "temporal_bench: cannot open the store: " << opened.status().ToString() << "\n";
    return 1;
  }
  std::unique_ptr<timetrail::EventStore> store = std::move(opened).value();
  if (store->LastPosition() != 0) {
    // PostgreSQL's rows copy timetrail's positions, so both sides must start empty.
    std::cerr << "temporal_bench: " << cfg.data_dir
              << "/store already holds events; give an"
                 " empty --data-dir\n";
    return 2;
  }
  Bench b(cfg, store.get(), pg.get());
  b.holder = std::move(store);
  Json history, scaling, resources;
  if (!b.History(&history)) return 1;
  out["history"] = history;
  if (!b.Scaling(&scaling)) return 1;
  out["scaling"] = scaling;
  if (!cfg.timetrail.empty()) {
    if (!b.Resources(&resources)) return 1;
    out["resources"] = resources;
  }

  // Goals (issue 6): as-of latency flat within 2x from the smallest to the largest size, and
  // bytes on disk per event no more than PostgreSQL's.
  Json goals = Json::array();
  const Json& small = scaling.front();
  const Json& large = scaling.back();
  for (const char* q : {"p50_us", "p99_us"}) {
    double r = large["asof"]["timetrail"][q].get<double>() /
               std::max(1e-9, small["asof"]["timetrail"][q].get<double>());
    goals.push_back(Json{{"goal", "timetrail as-of " + std::string(q).substr(0, 3) + " at " +
                                      Count(large["size"].get<double>()) + " events within 2x of " +
                                      Count(small["size"].get<double>())},
                         {"measured", r},
                         {"met", r <= 2.0}});
  }
  double bytes = large["disk"]["timetrail_bytes_per_event"].get<double>() /
                 large["disk"]["postgres_bytes_per_event"].get<double>();
  goals.push_back(
      Json{{"goal", "timetrail bytes on disk per event at most PostgreSQL's (ratio, at " +
                        Count(large["size"].get<double>()) + " events)"},
           {"measured", bytes},
           {"met", bytes <= 1.0}});
  out["goals"] = goals;
  out["finished_at"] = bench::UtcNow();
  out["load_average_end"] = bench::LoadAverage();
  std::string md = Markdown(out, cfg.run_name);
  std::cout << "\n" << md;
  if (!cfg.out.empty() && !bench::WriteJson(cfg.out, out)) return 1;
  if (!cfg.markdown.empty()) {
    std::ofstream f(cfg.markdown);
    f << md;
    if (!f) {
      std::cerr << "cannot write " << cfg.markdown << "\n";
      return 1;
    }
  }
  return 0;
}
