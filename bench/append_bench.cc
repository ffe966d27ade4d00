// append_bench: durable append throughput and latency of timetrail, side by side with
// PostgreSQL doing the same conditional appends, plus read throughput of a stream and of the log.
// bench/run starts the PostgreSQL peer and calls this; see bench/README.md for what each
// scenario does and how to read the results.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bench_common.h"
#include "timetrail/store.h"

namespace {

using bench::Json;
using timetrail::EventStore;
using timetrail::ExpectedRevision;
using timetrail::ProposedEvent;
using timetrail::Revision;

constexpr const char* kHelp = R"(append_bench: durable appends and reads, timetrail vs PostgreSQL

Usage: append_bench --data-dir=DIR [--pg=CONNINFO] [options]

  --data-dir=DIR        where the timetrail store is created (must not hold a store yet)
  --pg=CONNINFO         libpq connection string of the PostgreSQL peer; without it only
                        timetrail runs. The table "events" is dropped and recreated.
  --seconds=N           how long each scenario runs per system and round (default 10)
  --rounds=N            rounds of each scenario per system; figures are those of the round
                        with the median throughput, and every round's events/s is kept
                        (default 3)
  --many-threads=N      threads of scenario (b), one PostgreSQL connection each (default 64)
  --batch=N             events per append in scenario (c) (default 100)
  --batch-threads=N,M   thread counts of the multi-threaded batch scenarios (default 4,32)
  --streams-per-thread=N  streams each thread appends to in turn (default 16)
  --read-events=N       events in the stream that the read scenarios page through
                        (default 100000)
  --fsync-seconds=N     how long to measure the disk's fsync rate (default 2)
  --out=FILE            write the results as JSON to FILE
  --markdown=FILE       write a Markdown summary (machine, table, goals) to FILE
  --run-name=NAME       what to call this run in the summary, e.g. "quick" (default "custom")
  --help                this text

Every append is conditional: it names the revision the stream must be at. timetrail gets
ExpectedRevision::Exact (NoStream for a new stream); PostgreSQL inserts (stream, revision + 1)
into a table with a unique (stream, revision) key, so a concurrent writer makes it fail with a
unique violation. Both commit durably (timetrail sync=true, PostgreSQL synchronous_commit=on).
Progress goes to stderr, a summary table to stdout.
)";

// The same events for both systems (bench_common.h).
using bench::EventData;
constexpr const char* kMetadata = bench::kEventMetadata;
constexpr const char* kType = bench::kEventType;

struct Scenario {
  std::string name;
  std::string label;
  int threads;
  int batch;
};

// Per-thread stream state: the revision each stream is at (nullopt: not created).
struct ThreadStreams {
  std::vector<std::optional<Revision>> last;
};

struct Config {
  std::string data_dir, pg, out, markdown, run_name;
  double seconds = 10, fsync_seconds = 2;
  int rounds = 3;
  int many_threads = 64, batch = 100, streams_per_thread = 16;
  std::vector<int> batch_threads = {4, 32};
  std::int64_t read_events = 100000;
};

std::string StreamName(const std::string& scenario, int thread, std::uint64_t s) {
  return scenario + "/t" + std::to_string(thread) + "/s" + std::to_string(s);
}

bench::RunResult RunTimetrail(EventStore& store, const Scenario& sc, const Config& cfg,
                              Json* extra) {
  std::vector<ThreadStreams> state(sc.threads);
  for (auto& s : state) s.last.resize(cfg.streams_per_thread);
  auto before = store.GetStats();
  const double cpu_before = bench::ProcessCpuSeconds();
  bench::Driver driver("timetrail " + sc.label, sc.threads, cfg.seconds, cfg.rounds);
  auto result = driver.Run([&](int t, std::uint64_t i, std::string* error) -> std::int64_t {
    std::uint64_t s = i % cfg.streams_per_thread;
    std::vector<ProposedEvent> events(sc.batch);
    for (int k = 0; k < sc.batch; ++k) {
      events[k].type = kType;
      events[k].data = EventData(t, i, k);
      events[k].metadata = kMetadata;
    }
    auto& last = state[t].last[s];
    auto expected = last ? ExpectedRevision::Exact(*last) : ExpectedRevision::NoStream();
    auto r = store.Append(StreamName(sc.name, t, s), expected, std::move(events));
    if (!r.ok()) {
      *error = r.status().ToString();
      return -1;
    }
    last = r->streams[0].last_revision;
    return sc.batch;
  });
  const double cpu_seconds = bench::ProcessCpuSeconds() - cpu_before;
  auto after = store.GetStats();
  std::uint64_t commits = after.group_commits - before.group_commits;
  const double events = static_cast<double>(after.events_committed - before.events_committed);
  const double transactions =
      static_cast<double>(after.transactions_committed - before.transactions_committed);
  (*extra)["fsyncs"] = commits;
  (*extra)["events_per_fsync"] = commits == 0 ? 0.0 : events / static_cast<double>(commits);
  (*extra)["fsyncs_per_commit"] =
      transactions == 0 ? 0.0 : static_cast<double>(commits) / transactions;
  // All of the process's CPU (the client threads' event building included) per event, and the
  // ordered stage's share, which one thread does for all and so bounds the throughput.
  (*extra)["cpu_us_per_event"] = events == 0 ? 0.0 : cpu_seconds * 1e6 / events;
  (*extra)["ordered_us_per_event"] =
      events == 0
          ? 0.0
          : static_cast<double>(after.ordered_stage_micros - before.ordered_stage_micros) / events;
  return result;
}

using bench::PgInsertSql;

bench::RunResult RunPostgres(std::vector<std::unique_ptr<bench::PgConn>>& conns, const Scenario& sc,
                             const Config& cfg) {
  std::vector<ThreadStreams> state(sc.threads);
  for (auto& s : state) s.last.resize(cfg.streams_per_thread);
  std::string stmt = "insert" + std::to_string(sc.batch);
  bench::Driver driver("postgres  " + sc.label, sc.threads, cfg.seconds, cfg.rounds);
  return driver.Run([&](int t, std::uint64_t i, std::string* error) -> std::int64_t {
    std::uint64_t s = i % cfg.streams_per_thread;
    auto& last = state[t].last[s];
    Revision first = last ? *last + 1 : 0;
    std::string stream = StreamName(sc.name, t, s);
    std::vector<std::string> text;
    text.reserve(sc.batch * 4);
    for (int k = 0; k < sc.batch; ++k) {
      text.push_back(std::to_string(first + k));
      text.push_back(kType);
      text.push_back(EventData(t, i, k));
      text.push_back(kMetadata);
    }
    std::vector<const char*> params;
    params.reserve(1 + text.size());
    params.push_back(stream.c_str());
    for (auto& p : text) params.push_back(p.c_str());
    std::string sqlstate;
    if (conns[t]->ExecPrepared(stmt, params, error, &sqlstate) < 0) {
      if (sqlstate == "23505") *error = "conflict (unexpected in this benchmark): " + *error;
      return -1;
    }
    last = first + sc.batch - 1;
    return sc.batch;
  });
}

bool SetUpPostgres(const Config& cfg, int max_threads, const std::vector<int>& batches,
                   std::vector<std::unique_ptr<bench::PgConn>>* conns, Json* settings) {
  std::string error;
  auto admin = bench::PgConn::Connect(cfg.pg, &error);
  if (!admin) {
    std::cerr << error << "\n";
    return false;
  }
  if (!bench::PgCreateEventsTable(*admin, &error)) {
    std::cerr << error << "\n";
    return false;
  }
  *settings = bench::DescribePostgres(*admin);
  std::cerr << "connecting " << max_threads << " PostgreSQL clients\n";
  for (int t = 0; t < max_threads; ++t) {
    auto c = bench::PgConn::Connect(cfg.pg, &error);
    if (!c || !c->Exec("SET synchronous_commit = on", &error)) {
      std::cerr << error << "\n";
      return false;
    }
    for (int b : batches) {
      if (!c->Prepare("insert" + std::to_string(b), PgInsertSql(b), 1 + 4 * b, &error)) {
        std::cerr << error << "\n";
        return false;
      }
    }
    if (!c->Prepare("read_stream",
                    "SELECT revision, position, id, type, data, metadata, recorded_at FROM events"
                    " WHERE stream = $1 AND revision >= $2::bigint ORDER BY revision LIMIT 1000",
                    2, &error) ||
        !c->Prepare("read_log",
                    "SELECT position, stream, revision, id, type, data, metadata, recorded_at"
                    " FROM events WHERE position >= $1::bigint ORDER BY position LIMIT 1000",
                    1, &error)) {
      std::cerr << error << "\n";
      return false;
    }
    conns->push_back(std::move(c));
  }
  return true;
}

// Loads one stream of cfg.read_events events in appends of 1,000 for the read scenarios.
bool LoadReadStream(EventStore* store, bench::PgConn* pg, const Config& cfg) {
  const std::string stream = "read/stream";
  const int chunk = 1000;
  std::string error;
  for (std::int64_t done = 0; done < cfg.read_events; done += chunk) {
    int n = static_cast<int>(std::min<std::int64_t>(chunk, cfg.read_events - done));
    if (store != nullptr) {
      std::vector<ProposedEvent> events(n);
      for (int k = 0; k < n; ++k) {
        events[k].type = kType;
        events[k].data = EventData(0, static_cast<std::uint64_t>(done), k);
        events[k].metadata = kMetadata;
      }
      auto expected = done == 0 ? ExpectedRevision::NoStream()
                                : ExpectedRevision::Exact(static_cast<Revision>(done - 1));
      auto r = store->Append(stream, expected, std::move(events));
      if (!r.ok()) {
        std::cerr << "loading the read stream: " << r.status().ToString() << "\n";
        return false;
      }
    }
    if (pg != nullptr) {
      if (done == 0 && !pg->Prepare("load", PgInsertSql(chunk), 1 + 4 * chunk, &error)) {
        std::cerr << error << "\n";
        return false;
      }
      std::vector<std::string> text;
      for (int k = 0; k < chunk; ++k) {
        text.push_back(std::to_string(done + k));
        text.push_back(kType);
        text.push_back(EventData(0, static_cast<std::uint64_t>(done), k));
        text.push_back(kMetadata);
      }
      std::vector<const char*> params{stream.c_str()};
      for (auto& p : text) params.push_back(p.c_str());
      if (pg->ExecPrepared("load", params, &error) < 0) {
        std::cerr << "loading the read stream into PostgreSQL: " << error << "\n";
        return false;
      }
    }
  }
  return true;
}

void PrintRow(const std::string& name, const bench::RunResult& tt, const bench::RunResult* pg) {
  std::printf("%-38s %12.0f %9.0f %9.0f", name.c_str(), tt.events_per_second, tt.latency.p50_us,
              tt.latency.p99_us);
  if (pg != nullptr) {
    std::printf(" %12.0f %9.0f %9.0f %8.2fx", pg->events_per_second, pg->latency.p50_us,
                pg->latency.p99_us,
                pg->events_per_second > 0 ? tt.events_per_second / pg->events_per_second : 0.0);
  }
  std::printf("\n");
}

using bench::Fmt;

using bench::Count;

std::string MachineLine(const Json& out) {
  const Json& m = out["machine"];
  const Json& l0 = m["load_average"];
  const Json& l1 = out["load_average_end"];
  std::string s = m["cores"].dump() + " cores, " + Fmt("%.1f", m["memory_gib"].get<double>()) +
                  " GiB, " + m["cpu_model"].get<std::string>() + ", disk " +
                  Count(m["fsyncs_per_second"].get<double>()) + " fdatasync/s; load average " +
                  Fmt("%.2f", l0[0].get<double>()) + " at start, " +
                  Fmt("%.2f", l1[0].get<double>()) + " at end";
  if (out.contains("postgres")) {
    s += "; PostgreSQL " + out["postgres"].value("server_version", std::string("?")) +
         " (fsync=" + out["postgres"].value("fsync", std::string("?")) +
         ", synchronous_commit=" + out["postgres"].value("synchronous_commit", std::string("?")) +
         ", shared_buffers=" + out["postgres"].value("shared_buffers", std::string("?")) + ")";
  }
  return s;
}

bool WriteMarkdown(const std::string& path, const std::string& run_name, const Json& out) {
  std::ostringstream md;
  bool pg = out.contains("postgres");
  md << "#### Appends and reads (" << run_name << " run, " << out["started_at"].get<std::string>()
     << ")\n\n";
  md << MachineLine(out) << ". " << out["config"]["rounds"].dump() << " round(s) of "
     << out["config"]["seconds_per_scenario"].dump()
     << " s per scenario and system; each figure is from the round with the median"
        " throughput.\n\n";
  md << "| scenario | timetrail events/s | p50 ms | p99 ms | events per fsync | fsyncs per commit "
        "| CPU µs/event | ordered-stage µs/event |";
  if (pg) md << " PostgreSQL events/s | p50 ms | p99 ms | timetrail / PostgreSQL |";
  md << "\n|---|--:|--:|--:|--:|--:|--:|--:|";
  if (pg) md << "--:|--:|--:|--:|";
  md << "\n";
  for (const auto& r : out["scenarios"]) {
    const Json& tt = r["timetrail"];
    md << "| " << r["label"].get<std::string>() << " | "
       << Count(tt["events_per_second"].get<double>()) << " | "
       << Fmt("%.2f", tt["latency"]["p50_us"].get<double>() / 1000) << " | "
       << Fmt("%.2f", tt["latency"]["p99_us"].get<double>() / 1000) << " | "
       << (tt.contains("events_per_fsync") ? Fmt("%.1f", tt["events_per_fsync"].get<double>())
                                           : std::string("-"))
       << " |";
    for (const char* k : {"fsyncs_per_commit", "cpu_us_per_event", "ordered_us_per_event"}) {
      md << " " << (tt.contains(k) ? Fmt("%.2f", tt[k].get<double>()) : std::string("-")) << " |";
    }
    if (pg && r.contains("postgres")) {
      const Json& p = r["postgres"];
      md << " " << Count(p["events_per_second"].get<double>()) << " | "
         << Fmt("%.2f", p["latency"]["p50_us"].get<double>() / 1000) << " | "
         << Fmt("%.2f", p["latency"]["p99_us"].get<double>() / 1000) << " | **"
         << Fmt("%.2f", r["ratio_events_per_second"].get<double>()) << "x** |";
    }
    md << "\n";
  }
  md << "\nGoals:\n";
  for (const auto& g : out["goals"]) {
    double v = g["measured"].get<double>();
    md << "- " << g["goal"].get<std::string>() << ": measured "
       << (v < 1000 ? Fmt("%.2fx", v) : Count(v) + " events/s") << " — **"
       << (g["met"].get<bool>() ? "met" : "not met") << "**\n";
  }
  std::ofstream f(path);
  f << md.str();
  f.close();
  if (!f) {
    std::cerr << "cannot write " << path << "\n";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  bench::Flags flags(argc, argv);
  if (flags.Help(kHelp)) return 0;
  Config cfg;
  cfg.data_dir = flags.Get("data-dir", "");
  cfg.pg = flags.Get("pg", "");
  cfg.out = flags.Get("out", "");
  cfg.markdown = flags.Get("markdown", "");
  cfg.run_name = flags.Get("run-name", "custom");
  cfg.seconds = flags.GetDouble("seconds", cfg.seconds);
  cfg.rounds = static_cast<int>(flags.GetInt("rounds", cfg.rounds));
  cfg.fsync_seconds = flags.GetDouble("fsync-seconds", cfg.fsync_seconds);
  cfg.many_threads = static_cast<int>(flags.GetInt("many-threads", cfg.many_threads));
  cfg.batch = static_cast<int>(flags.GetInt("batch", cfg.batch));
  std::string batch_threads = flags.Get("batch-threads", "");
  if (!batch_threads.empty()) {
    cfg.batch_threads.clear();
    std::stringstream list(batch_threads);
    for (std::string item; std::getline(list, item, ',');) {
      cfg.batch_threads.push_back(static_cast<int>(std::strtol(item.c_str(), nullptr, 10)));
    }
  }
  cfg.streams_per_thread =
      static_cast<int>(flags.GetInt("streams-per-thread", cfg.streams_per_thread));
  cfg.read_events = flags.GetInt("read-events", cfg.read_events);
  if (!flags.CheckAllUsed()) return 2;
  if (cfg.data_dir.empty()) {
    std::cerr << "append_bench: --data-dir is required (see --help)\n";
    return 2;
  }
  if (cfg.seconds <= 0 || cfg.rounds < 1 || cfg.many_threads < 1 || cfg.batch < 1 ||
      cfg.batch > 10000 || cfg.batch_threads.empty() ||
      *std::min_element(cfg.batch_threads.begin(), cfg.batch_threads.end()) < 1 ||
      cfg.streams_per_thread < 1 || cfg.read_events < 1) {
    std::cerr
        << "append_bench: --seconds, --rounds, --many-threads, --batch-threads (a comma-separated"
           " list), --streams-per-thread and --read-events must be positive and --batch"
           " at most 10000\n";
    return 2;
  }
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::path(cfg.data_dir) / "CURRENT", ec)) {
    std::cerr << "append_bench: " << cfg.data_dir
              << " already holds a store; give an empty or new directory\n";
    return 2;
  }
  std::filesystem::create_directories(cfg.data_dir, ec);

  Json out;
  out["benchmark"] = "append";
  out["started_at"] = bench::UtcNow();
  out["machine"] = bench::DescribeMachine();
  std::cerr << "measuring the disk's fsync rate for " << cfg.fsync_seconds << "s\n";
  double fsync_rate = bench::MeasureFsyncRate(cfg.data_dir, cfg.fsync_seconds);
  out["machine"]["fsyncs_per_second"] = fsync_rate;
  std::cerr << "  " << static_cast<long>(fsync_rate) << " fdatasync/s\n";
  out["config"] = Json{{"seconds_per_scenario", cfg.seconds},
                       {"rounds", cfg.rounds},
                       {"many_threads", cfg.many_threads},
                       {"batch", cfg.batch},
                       {"batch_threads", cfg.batch_threads},
                       {"streams_per_thread", cfg.streams_per_thread},
                       {"read_events", cfg.read_events},
                       {"event_type", kType},
                       {"event_data_bytes", EventData(0, 0, 0).size()},
                       {"event_metadata_bytes", std::string(kMetadata).size()}};

  timetrail::Options options;
  options.sync = true;
  auto opened = EventStore::Open(options, cfg.data_dir + "/store");
  if (!opened.ok()) {
    std::cerr << "append_bench: cannot open the store: " << opened.status().ToString() << "\n";
    return 1;
  }
  auto& store = **opened;

  std::vector<Scenario> scenarios = {
      {"single_1t", "(a) single events, 1 thread", 1, 1},
      {"single_" + std::to_string(cfg.many_threads) + "t",
       "(b) single events, " + std::to_string(cfg.many_threads) + " threads", cfg.many_threads, 1},
      {"batch_1t", "(c) " + std::to_string(cfg.batch) + "-event appends, 1 thread", 1, cfg.batch},
  };
  for (int threads : cfg.batch_threads) {
    scenarios.push_back({"batch_" + std::to_string(threads) + "t",
                         "(c) " + std::to_string(cfg.batch) + "-event appends, " +
                             std::to_string(threads) + " threads",
                         threads, cfg.batch});
  }

  std::vector<std::unique_ptr<bench::PgConn>> conns;
  bool with_pg = !cfg.pg.empty();
  if (with_pg) {
    Json settings;
    int max_threads = std::max(
        cfg.many_threads, *std::max_element(cfg.batch_threads.begin(), cfg.batch_threads.end()));
    if (!SetUpPostgres(cfg, max_threads, {1, cfg.batch}, &conns, &settings)) return 1;
    out["postgres"] = settings;
  }

  Json results = Json::array();
  std::vector<std::pair<std::string, std::pair<bench::RunResult, std::optional<bench::RunResult>>>>
      table;
  for (const auto& sc : scenarios) {
    std::cerr << "scenario " << sc.label << "\n";
    Json row{{"name", sc.name}, {"label", sc.label}, {"threads", sc.threads}, {"batch", sc.batch}};
    Json extra;
    auto tt = RunTimetrail(store, sc, cfg, &extra);
    row["timetrail"] = tt.ToJson();
    row["timetrail"]["fsyncs"] = extra["fsyncs"];
    row["timetrail"]["events_per_fsync"] = extra["events_per_fsync"];
    for (const char* k : {"fsyncs_per_commit", "cpu_us_per_event", "ordered_us_per_event"}) {
      row["timetrail"][k] = extra[k];
    }
    std::optional<bench::RunResult> pg;
    if (with_pg) {
      pg = RunPostgres(conns, sc, cfg);
      row["postgres"] = pg->ToJson();
      row["ratio_events_per_second"] =
          pg->events_per_second > 0 ? tt.events_per_second / pg->events_per_second : 0.0;
    }
    row["load_average_after"] = bench::LoadAverage();
    results.push_back(row);
    table.push_back({sc.label, {tt, pg}});
  }

  // Reads: one stream paged through 1,000 events at a time, and the whole log likewise.
  std::cerr << "loading a stream of " << cfg.read_events << " events for the read scenarios\n";
  if (!LoadReadStream(&store, with_pg ? conns[0].get() : nullptr, cfg)) return 1;
  if (with_pg) {
    std::string error;
    if (!conns[0]->Exec("VACUUM ANALYZE events", &error)) std::cerr << error << "\n";
  }
  {
    Scenario sc{"read_stream", "read one stream, pages of 1000", 1, 0};
    std::cerr << "scenario " << sc.label << "\n";
    Json row{{"name", sc.name}, {"label", sc.label}, {"threads", 1}};
    Revision next = 0;
    bench::Driver dtt("timetrail " + sc.label, 1, cfg.seconds, cfg.rounds);
    auto tt = dtt.Run([&](int, std::uint64_t, std::string* error) -> std::int64_t {
      timetrail::ReadStreamOptions o;
      o.from_revision = next;
      o.max_count = 1000;
      auto r = store.ReadStream("read/stream", o);
      if (!r.ok()) {
        *error = r.status().ToString();
        return -1;
      }
      next = r->size() < 1000 ? 0 : r->back().revision + 1;
      if (!r->empty() && r->size() == 1000 && next >= static_cast<Revision>(cfg.read_events)) {
        next = 0;
      }
      return static_cast<std::int64_t>(r->size());
    });
    row["timetrail"] = tt.ToJson();
    std::optional<bench::RunResult> pg;
    if (with_pg) {
      std::int64_t pnext = 0;
      std::vector<std::string> col;
      bench::Driver dpg("postgres  " + sc.label, 1, cfg.seconds, cfg.rounds);
      pg = dpg.Run([&](int, std::uint64_t, std::string* error) -> std::int64_t {
        std::string from = std::to_string(pnext);
        std::int64_t n = conns[0]->ExecPrepared("read_stream", {"read/stream", from.c_str()}, error,
                                                nullptr, &col);
        if (n < 0) return -1;
        pnext = n < 1000 ? 0 : std::strtoll(col.back().c_str(), nullptr, 10) + 1;
        if (pnext >= cfg.read_events) pnext = 0;
        return n;
      });
      row["postgres"] = pg->ToJson();
      row["ratio_events_per_second"] = tt.events_per_second / std::max(1e-9, pg->events_per_second);
    }
    results.push_back(row);
    table.push_back({sc.label, {tt, pg}});
  }
  {
    Scenario sc{"read_log", "read the log, pages of 1000", 1, 0};
    std::cerr << "scenario " << sc.label << "\n";
    Json row{{"name", sc.name},
             {"label", sc.label},
             {"threads", 1},
             {"timetrail_log_events", store.LastPosition()}};
    timetrail::Position next = 1;
    bench::Driver dtt("timetrail " + sc.label, 1, cfg.seconds, cfg.rounds);
    auto tt = dtt.Run([&](int, std::uint64_t, std::string* error) -> std::int64_t {
      timetrail::ReadLogOptions o;
      o.from_position = next;
      o.max_count = 1000;
      auto r = store.ReadLog(o);
      if (!r.ok()) {
        *error = r.status().ToString();
        return -1;
      }
      next = r->events.size() < 1000 ? 1 : r->next_position;
      return static_cast<std::int64_t>(r->events.size());
    });
    row["timetrail"] = tt.ToJson();
    std::optional<bench::RunResult> pg;
    if (with_pg) {
      std::int64_t pnext = 1;
      std::vector<std::string> col;
      bench::Driver dpg("postgres  " + sc.label, 1, cfg.seconds, cfg.rounds);
      pg = dpg.Run([&](int, std::uint64_t, std::string* error) -> std::int64_t {
        std::string from = std::to_string(pnext);
        std::int64_t n = conns[0]->ExecPrepared("read_log", {from.c_str()}, error, nullptr, &col);
        if (n < 0) return -1;
        pnext = n < 1000 ? 1 : std::strtoll(col.back().c_str(), nullptr, 10) + 1;
        return n;
      });
      row["postgres"] = pg->ToJson();
      row["ratio_events_per_second"] = tt.events_per_second / std::max(1e-9, pg->events_per_second);
    }
    results.push_back(row);
    table.push_back({sc.label, {tt, pg}});
  }
  out["scenarios"] = results;

  // The goals of the issue, evaluated here so the summary cannot drift from the numbers.
  const Json& b = results[1];
  double best_batch = 0;
  for (const auto& r : results) {
    if (r.contains("batch") && r["batch"].get<int>() == cfg.batch && cfg.batch > 1) {
      best_batch = std::max(best_batch, r["timetrail"]["events_per_second"].get<double>());
    }
  }
  Json goals = Json::array();
  if (with_pg) {
    double ratio = b["ratio_events_per_second"].get<double>();
    goals.push_back(
        Json{{"goal", "(b) at least 10x PostgreSQL"}, {"measured", ratio}, {"met", ratio >= 10.0}});
  }
  goals.push_back(Json{{"goal", "(c) at least 500,000 events/s"},
                       {"measured", best_batch},
                       {"met", best_batch >= 500000.0}});
  out["goals"] = goals;
  out["finished_at"] = bench::UtcNow();
  out["load_average_end"] = bench::LoadAverage();

  std::printf("\n%-38s %12s %9s %9s", "scenario", "tt ev/s", "tt p50us", "tt p99us");
  if (with_pg) std::printf(" %12s %9s %9s %9s", "pg ev/s", "pg p50us", "pg p99us", "ratio");
  std::printf("\n");
  for (auto& [name, r] : table) PrintRow(name, r.first, r.second ? &*r.second : nullptr);
  for (auto& g : goals) {
    std::printf("goal %-34s measured %.2f  %s\n", g["goal"].get<std::string>().c_str(),
                g["measured"].get<double>(), g["met"].get<bool>() ? "MET" : "NOT MET");
  }
  if (!cfg.out.empty() && !bench::WriteJson(cfg.out, out)) return 1;
  if (!cfg.markdown.empty() && !WriteMarkdown(cfg.markdown, cfg.run_name, out)) return 1;
  for (auto& r : results) {
    if (r["timetrail"]["errors"].get<std::uint64_t>() != 0 ||
        (r.contains("postgres") && r["postgres"]["errors"].get<std::uint64_t>() != 0)) {
      std::cerr << "append_bench: some calls failed (see first_error in the results)\n";
      return 1;
    }
  }
  return 0;
}
