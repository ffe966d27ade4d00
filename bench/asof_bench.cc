// asof_bench: "what did this entity look like at time t", answered by timetrail
// (EventStore::GetEntity with EntityQuery::AsOf) and by PostgreSQL from a history table with a
// tstzrange validity column and EXCLUDE USING gist, the usual way to keep versions in
// PostgreSQL. Goals (issue 3): latency flat from 1,000 to 1,000,000 events per stream, and at
// least 10x PostgreSQL's queries/s at the same client concurrency through the C++ API, 2x
// through HTTP (the real `timetrail serve` on the loaded data directory, keep-alive clients).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_common.h"
#include "serve_client.h"
#include "timetrail/store.h"

extern char** environ;

namespace {

using bench::Json;

constexpr const char* kHelp = R"(asof_bench: as-of queries against PostgreSQL's history-table pattern

Usage: asof_bench --data-dir=DIR --pg=CONNINFO [options]

  --data-dir=DIR      where the timetrail store is created (must not hold a store yet)
  --pg=CONNINFO       libpq connection string; the table "history" is dropped and recreated
                      and the extension btree_gist is created
  --sizes=N,M,...     versions per entity for the latency part
                      (default 10,1000,100000,1000000)
  --queries=N         as-of queries per size for the latency part (default 5000)
  --events=N          versions in all for the throughput part (default 1000000)
  --entities=N        entities they are spread over (default 100000)
  --clients=N         concurrent clients (connections) for the throughput part (default 4)
  --seconds=N         how long the throughput part runs per round (default 10)
  --rounds=N          rounds of every measurement; figures are those of the round with the
                      median throughput, and every round's figure is kept (default 3)
  --block-cache-mb=N  RocksDB block cache of the store the C++ API part opens (default 1024:
                      sized to hold the throughput part's data)
  --timetrail=PATH    the timetrail binary; with it, the throughput part also runs through
                      HTTP: `timetrail serve` on the loaded data directory, one keep-alive
                      connection per client, GET /v1/entities/{stream}?as_of=T
  --quick             sizes 10,1000,100000; 100,000 events over 10,000 entities; 1,000
                      queries per size; 3 seconds; 1 round
  --out=FILE          write the results as JSON to FILE
  --markdown=FILE     write a Markdown summary to FILE
  --run-name=NAME     what to call this run in the summary (default "custom")
  --help              this text

timetrail: every version is a $put event; a query asks GetEntity(stream, AsOf(t)) for a
uniformly random t between the entity's first and last commit and must find the entity.
Before measuring, timetrail waits until RocksDB has finished the flushes and compactions the
load started (EventStore::WaitForBackgroundWork), as PostgreSQL gets VACUUM ANALYZE.
PostgreSQL: versions of entity e are valid one after another, one second each from 2026-01-01,
the last one open-ended; a query asks for the version valid at a uniformly random instant of
that span and must get exactly one row.
)";

// The version of entity $1 valid at $2 (seconds since the epoch); the gist index answers it.
constexpr const char* kAsOfSql =
    "SELECT doc FROM history WHERE entity = $1 AND valid @> to_timestamp($2::float8)";

constexpr double kEpoch = 1767225600.0;  // 2026-01-01T00:00:00Z

using bench::ParseList;

// Inserts "versions" consecutive versions for each entity in [first_entity, first_entity+count).
std::string LoadSql(const std::string& prefix, std::int64_t first_entity, std::int64_t count,
                    std::int64_t versions) {
  std::ostringstream sql;
  sql << "INSERT INTO history (entity, valid, doc) SELECT '" << prefix << "' || e,"
      << " tstzrange(to_timestamp(" << static_cast<long long>(kEpoch) << " + v), CASE WHEN v = " << versions - 1
      << " THEN NULL ELSE to_timestamp(" << static_cast<long long>(kEpoch) << " + v + 1) END),"
      << " jsonb_build_object('name', 'Rachel', 'location', 'city-' || v, 'version', v,"
      << " 'note', 'moved again')"
      << " FROM generate_series(" << first_entity << ", " << first_entity + count - 1 << ") e,"
      << " generate_series(0, " << versions - 1 << ") v";
  return sql.str();
}

bool Load(bench::PgConn& c, const std::string& prefix, std::int64_t entities,
          std::int64_t versions, std::string* error) {
  // Chunks of about 100,000 rows so progress shows and no statement holds too much.
  std::int64_t per_chunk = std::max<std::int64_t>(1, 100000 / versions);
  for (std::int64_t e = 0; e < entities; e += per_chunk) {
    std::int64_t n = std::min(per_chunk, entities - e);
    if (versions > 100000) {
      // One huge entity: split its versions instead.
      for (std::int64_t v = 0; v < versions; v += 100000) {
        std::int64_t m = std::min<std::int64_t>(100000, versions - v);
        std::ostringstream sql;
        sql << "INSERT INTO history (entity, valid, doc) SELECT '" << prefix << e << "',"
            << " tstzrange(to_timestamp(" << static_cast<long long>(kEpoch) << " + v), CASE WHEN v = " << versions - 1
            << " THEN NULL ELSE to_timestamp(" << static_cast<long long>(kEpoch) << " + v + 1) END),"
            << " jsonb_build_object('name', 'Rachel', 'location', 'city-' || v, 'version', v,"
            << " 'note', 'moved again') FROM generate_series(" << v << ", " << v + m - 1
            << ") v";
        if (!c.Exec(sql.str(), error)) return false;
        std::fprintf(stderr, "  loaded %s%lld: %lld of %lld versions\n", prefix.c_str(),
                     static_cast<long long>(e), static_cast<long long>(v + m),
                     static_cast<long long>(versions));
      }
      continue;
    }
    if (!c.Exec(LoadSql(prefix, e, n, versions), error)) return false;
    {
      std::fprintf(stderr, "  loaded %lld of %lld entities of %s (%lld versions each)\n",
                   static_cast<long long>(e + n), static_cast<long long>(entities),
                   prefix.c_str(), static_cast<long long>(versions));
    }
  }
  return true;
}

std::string Doc(std::int64_t v) {
  return R"({"name": "Rachel", "location": "city-)" + std::to_string(v) + R"(", "version": )" +
         std::to_string(v) + R"(, "note": "moved again"})";
}

// Appends "versions" $put events to one stream in appends of up to 1,000; returns the commit
// times of the first and the last append.
bool LoadStream(timetrail::EventStore& store, const std::string& stream, std::int64_t versions,
                timetrail::Timestamp* first, timetrail::Timestamp* last) {
  for (std::int64_t v = 0; v < versions; v += 1000) {
    std::int64_t n = std::min<std::int64_t>(1000, versions - v);
    std::vector<timetrail::ProposedEvent> events(n);
    for (std::int64_t k = 0; k < n; ++k) {
      events[k].type = "$put";
      events[k].data = Doc(v + k);
    }
    auto r = store.Append(stream, timetrail::ExpectedRevision::Any(), std::move(events));
    if (!r.ok()) {
      std::cerr << "loading " << stream << ": " << r.status().ToString() << "\n";
      return false;
    }
    if (v == 0) *first = r->recorded_at;
    *last = r->recorded_at;
    if ((v + n) % 100000 == 0 && versions > 100000) {
      std::fprintf(stderr, "  timetrail: loaded %lld of %lld versions\n",
                   static_cast<long long>(v + n), static_cast<long long>(versions));
    }
  }
  return true;
}

// Version v of every entity is appended before version v + 1 of any, 1,000 streams per
// transaction, so that after the first round every entity exists. Returns the commit time
// that ends the first round and the last one.
bool LoadEntities(timetrail::EventStore& store, std::int64_t entities, std::int64_t versions,
                  timetrail::Timestamp* first_round_done, timetrail::Timestamp* last) {
  for (std::int64_t v = 0; v < versions; ++v) {
    for (std::int64_t e = 0; e < entities; e += 1000) {
      timetrail::Transaction tx;
      for (std::int64_t k = e; k < std::min(entities, e + 1000); ++k) {
        timetrail::StreamAppend a;
        a.stream = "entity-" + std::to_string(k);
        timetrail::ProposedEvent ev;
        ev.type = "$put";
        ev.data = Doc(v);
        a.events.push_back(std::move(ev));
        tx.appends.push_back(std::move(a));
      }
      auto r = store.Transact(tx);
      if (!r.ok()) {
        std::cerr << "loading entities: " << r.status().ToString() << "\n";
        return false;
      }
      *last = r->recorded_at;
    }
    if (v == 0) *first_round_done = *last;
    std::fprintf(stderr, "  timetrail: loaded version %lld of %lld of %lld entities\n",
                 static_cast<long long>(v + 1), static_cast<long long>(versions),
                 static_cast<long long>(entities));
  }
  return true;
}

// One as-of query; -1 with *error unless the entity is found.
std::int64_t AsOf(const timetrail::EventStore& store, const std::string& stream,
                  timetrail::Timestamp t, std::string* error) {
  auto r = store.GetEntity(stream, timetrail::EntityQuery::AsOf(t));
  if (!r.ok()) {
    *error = r.status().ToString();
    return -1;
  }
  if (!r->exists) {
    *error = stream + " does not exist at " + std::to_string(t.micros);
    return -1;
  }
  return 1;
}

using bench::Fmt;

// Waits for the store's background work after a load; returns the seconds it took.
double Settle(const timetrail::EventStore& store) {
  auto start = std::chrono::steady_clock::now();
  std::cerr << "timetrail: waiting for RocksDB's flushes and compactions to finish\n";
  timetrail::Status s = store.WaitForBackgroundWork();
  if (!s.ok()) std::cerr << "  " << s.ToString() << "\n";
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "  settled after %.1f s\n", secs);
  return secs;
}

using bench::HttpClient;
using bench::ServeProcess;

}  // namespace

int main(int argc, char** argv) {
  bench::Flags flags(argc, argv);
  if (flags.Help(kHelp)) return 0;
  bool quick = flags.Has("quick");
  std::string pg = flags.Get("pg", "");
  std::string data_dir = flags.Get("data-dir", "");
  std::string out_path = flags.Get("out", "");
  std::string md_path = flags.Get("markdown", "");
  std::string run_name = flags.Get("run-name", "custom");
  auto sizes = ParseList(flags.Get("sizes", quick ? "10,1000,100000" : "10,1000,100000,1000000"));
  std::int64_t queries = flags.GetInt("queries", quick ? 1000 : 5000);
  std::int64_t events = flags.GetInt("events", quick ? 100000 : 1000000);
  std::int64_t entities = flags.GetInt("entities", quick ? 10000 : 100000);
  int clients = static_cast<int>(flags.GetInt("clients", 4));
  double seconds = flags.GetDouble("seconds", quick ? 3 : 10);
  int rounds = static_cast<int>(flags.GetInt("rounds", quick ? 1 : 3));
  std::int64_t block_cache_mb = flags.GetInt("block-cache-mb", 1024);
  std::string timetrail_bin = flags.Get("timetrail", "");
  if (!flags.CheckAllUsed()) return 2;
  if (pg.empty() || data_dir.empty()) {
    std::cerr << "asof_bench: --pg and --data-dir are required (see --help)\n";
    return 2;
  }
  if (sizes.empty() || *std::min_element(sizes.begin(), sizes.end()) < 1 || queries < 1 ||
      entities < 1 || events < entities || clients < 1 || seconds <= 0 || rounds < 1 || block_cache_mb < 1) {
    std::cerr << "asof_bench: --sizes, --queries, --entities, --clients, --seconds, --rounds and"
                 " --block-cache-mb must be positive, and --events at least --entities\n";
    return 2;
  }
  std::int64_t versions = events / entities;

  std::string error;
  auto admin = bench::PgConn::Connect(pg, &error);
  if (!admin) {
    std::cerr << error << "\n";
    return 1;
  }
  Json out;
  out["benchmark"] = "asof";
  out["started_at"] = bench::UtcNow();
  out["machine"] = bench::DescribeMachine();
  out["postgres"] = bench::DescribePostgres(*admin);
  out["config"] = Json{{"sizes", sizes},     {"queries_per_size", queries},
                       {"events", events},   {"entities", entities},
                       {"clients", clients}, {"seconds", seconds}, {"rounds", rounds},
                       {"block_cache_mb", block_cache_mb}, {"http", !timetrail_bin.empty()}};
  timetrail::Options options;
  options.block_cache_bytes = static_cast<std::size_t>(block_cache_mb) << 20;
  auto opened = timetrail::EventStore::Open(options, data_dir + "/store");
  if (!opened.ok()) {
    std::cerr << "asof_bench: cannot open the store: " << opened.status().ToString() << "\n";
    return 1;
  }
  std::unique_ptr<timetrail::EventStore> store_holder = std::move(opened).value();
  timetrail::EventStore& store = *store_holder;
  if (!admin->Exec("CREATE EXTENSION IF NOT EXISTS btree_gist", &error) ||
      !admin->Exec("DROP TABLE IF EXISTS history", &error) ||
      !admin->Exec("CREATE TABLE history (entity text NOT NULL, valid tstzrange NOT NULL,"
                   " doc jsonb NOT NULL, EXCLUDE USING gist (entity WITH =, valid WITH &&))",
                   &error)) {
    std::cerr << error << "\n";
    return 1;
  }

  // Latency: one entity per size, queried by one client.
  Json latency = Json::array();
  for (std::int64_t n : sizes) {
    std::cerr << "timetrail: loading one stream with " << n << " versions\n";
    std::string tt_stream = "size-" + std::to_string(n);
    timetrail::Timestamp first, last;
    if (!LoadStream(store, tt_stream, n, &first, &last)) return 1;
    double settle = Settle(store);
    std::mt19937_64 tt_rng(n);
    std::uniform_int_distribution<std::int64_t> tt_at(first.micros, last.micros);
    bench::Driver tt_driver("timetrail as-of, " + std::to_string(n) + " versions", 1, 0, rounds);
    auto tt = tt_driver.RunCount(
        [&](int, std::uint64_t, std::string* err) -> std::int64_t {
          return AsOf(store, tt_stream, timetrail::Timestamp{tt_at(tt_rng)}, err);
        },
        static_cast<std::uint64_t>(queries));
    std::cerr << "postgres: loading one entity with " << n << " versions\n";
    std::string prefix = "size" + std::to_string(n) + "-";
    if (!Load(*admin, prefix, 1, n, &error) || !admin->Exec("ANALYZE history", &error)) {
      std::cerr << error << "\n";
      return 1;
    }
    if (!admin->Prepare("asof" + std::to_string(n), kAsOfSql, 2, &error)) {
      std::cerr << error << "\n";
      return 1;
    }
    std::mt19937_64 rng(n);
    std::uniform_real_distribution<double> at(0, static_cast<double>(n));
    std::string entity = prefix + "0";
    bench::Driver driver("postgres as-of, " + std::to_string(n) + " versions", 1, 0, rounds);
    auto r = driver.RunCount(
        [&](int, std::uint64_t, std::string* err) -> std::int64_t {
          std::string t = Fmt("%.3f", kEpoch + at(rng));
          std::int64_t rows =
              admin->ExecPrepared("asof" + std::to_string(n), {entity.c_str(), t.c_str()}, err);
          if (rows == 1) return 1;
          if (rows >= 0) *err = "expected one version, got " + std::to_string(rows);
          return -1;
        },
        static_cast<std::uint64_t>(queries));
    latency.push_back(Json{{"versions", n},
                           {"timetrail", tt.ToJson()},
                           {"postgres", r.ToJson()},
                           {"timetrail_settle_seconds", settle}});
  }
  out["latency"] = latency;

  // Throughput: many entities, several clients at once.
  std::cerr << "timetrail: loading " << entities << " entities with " << versions
            << " versions each\n";
  timetrail::Timestamp round_done, load_end;
  if (!LoadEntities(store, entities, versions, &round_done, &load_end)) return 1;
  double settle = Settle(store);
  std::vector<std::mt19937_64> tt_rngs;
  for (int i = 0; i < clients; ++i) tt_rngs.emplace_back(2000 + i);
  bench::Driver tt_driver("timetrail as-of, " + std::to_string(clients) + " clients", clients,
                          seconds, rounds);
  auto tt_tp = tt_driver.Run([&](int t, std::uint64_t, std::string* err) -> std::int64_t {
    std::uniform_int_distribution<std::int64_t> pick(0, entities - 1);
    std::uniform_int_distribution<std::int64_t> at(round_done.micros, load_end.micros);
    return AsOf(store, "entity-" + std::to_string(pick(tt_rngs[t])),
                timetrail::Timestamp{at(tt_rngs[t])}, err);
  });
  // The same queries through HTTP: the store is closed and `timetrail serve` opens the directory.
  std::optional<bench::RunResult> http_tp;
  if (!timetrail_bin.empty()) {
    store_holder.reset();
    std::cerr << "timetrail: starting " << timetrail_bin << " serve on the loaded data\n";
    auto server = ServeProcess::Start(timetrail_bin, data_dir + "/store", data_dir + "/serve.log",
                                      &error);
    if (!server) {
      std::cerr << "asof_bench: " << error << "\n";
      return 1;
    }
    std::vector<std::unique_ptr<HttpClient>> http;
    for (int i = 0; i < clients; ++i) {
      http.push_back(std::make_unique<HttpClient>(server->host(), server->port()));
    }
    std::vector<std::mt19937_64> http_rngs;
    for (int i = 0; i < clients; ++i) http_rngs.emplace_back(3000 + i);
    bench::Driver http_driver("timetrail HTTP as-of, " + std::to_string(clients) + " clients",
                              clients, seconds, rounds);
    http_tp = http_driver.Run([&](int t, std::uint64_t, std::string* err) -> std::int64_t {
      std::uniform_int_distribution<std::int64_t> pick(0, entities - 1);
      std::uniform_int_distribution<std::int64_t> at(round_done.micros, load_end.micros);
      std::string target = "/v1/entities/entity-" + std::to_string(pick(http_rngs[t])) +
                           "?as_of=" + timetrail::FormatTimestamp(timetrail::Timestamp{at(http_rngs[t])});
      int status = 0;
      std::string body;
      if (!http[t]->Get(target, &status, &body, err)) return -1;
      if (status != 200 || body.find("\"exists\":true") == std::string::npos) {
        *err = "GET " + target + ": " + std::to_string(status) + " " + body.substr(0, 200);
        return -1;
      }
      return 1;
    });
  }

  std::cerr << "postgres: loading " << entities << " entities with " << versions
            << " versions each\n";
  if (!Load(*admin, "entity-", entities, versions, &error) ||
      !admin->Exec("VACUUM ANALYZE history", &error)) {
    std::cerr << error << "\n";
    return 1;
  }
  std::vector<std::unique_ptr<bench::PgConn>> conns;
  for (int i = 0; i < clients; ++i) {
    auto c = bench::PgConn::Connect(pg, &error);
    if (!c || !c->Prepare("asof", kAsOfSql, 2, &error)) {
      std::cerr << error << "\n";
      return 1;
    }
    conns.push_back(std::move(c));
  }
  std::vector<std::mt19937_64> rngs;
  for (int i = 0; i < clients; ++i) rngs.emplace_back(1000 + i);
  bench::Driver driver("postgres as-of, " + std::to_string(clients) + " clients", clients, seconds,
                       rounds);
  auto tp = driver.Run([&](int t, std::uint64_t, std::string* err) -> std::int64_t {
    std::uniform_int_distribution<std::int64_t> pick(0, entities - 1);
    std::uniform_real_distribution<double> at(0, static_cast<double>(versions));
    std::string entity = "entity-" + std::to_string(pick(rngs[t]));
    std::string when = Fmt("%.3f", kEpoch + at(rngs[t]));
    std::int64_t rows = conns[t]->ExecPrepared("asof", {entity.c_str(), when.c_str()}, err);
    if (rows == 1) return 1;
    if (rows >= 0) *err = "expected one version, got " + std::to_string(rows);
    return -1;
  });
  out["throughput"] = Json{{"events", events},
                           {"entities", entities},
                           {"clients", clients},
                           {"timetrail", tt_tp.ToJson()},
                           {"postgres", tp.ToJson()},
                           {"timetrail_settle_seconds", settle},
                           {"ratio_queries_per_second",
                            tt_tp.calls_per_second / std::max(1e-9, tp.calls_per_second)}};
  if (http_tp) {
    out["throughput"]["timetrail_http"] = http_tp->ToJson();
    out["throughput"]["ratio_http_queries_per_second"] =
        http_tp->calls_per_second / std::max(1e-9, tp.calls_per_second);
  }
  // Goals: flat latency from 1,000 versions to the largest size, and 10x PostgreSQL.
  Json goals = Json::array();
  const Json* small = nullptr;
  const Json* large = nullptr;
  for (const auto& l : latency) {
    if (l["versions"].get<std::int64_t>() == 1000) small = &l;
    if (large == nullptr ||
        l["versions"].get<std::int64_t>() > (*large)["versions"].get<std::int64_t>()) {
      large = &l;
    }
  }
  if (small != nullptr && large != small) {
    for (const char* q : {"p50_us", "p99_us"}) {
      double ratio = (*large)["timetrail"]["latency"][q].get<double>() /
                     std::max(1e-9, (*small)["timetrail"]["latency"][q].get<double>());
      goals.push_back(Json{{"goal", std::string("timetrail ") + q + " at " +
                                        (*large)["versions"].dump() +
                                        " versions within 2x of 1000 versions"},
                           {"measured", ratio},
                           {"met", ratio <= 2.0}});
    }
  }
  double tp_ratio = out["throughput"]["ratio_queries_per_second"].get<double>();
  goals.push_back(Json{{"goal", "as-of queries/s at least 10x PostgreSQL"},
                       {"measured", tp_ratio},
                       {"met", tp_ratio >= 10.0}});
  if (http_tp) {
    double r = out["throughput"]["ratio_http_queries_per_second"].get<double>();
    goals.push_back(Json{{"goal", "as-of queries/s through HTTP at least 2x PostgreSQL"},
                         {"measured", r},
                         {"met", r >= 2.0}});
  }
  out["goals"] = goals;
  out["finished_at"] = bench::UtcNow();
  out["load_average_end"] = bench::LoadAverage();

  auto ms = [](const Json& r, const char* q) {
    return Fmt("%.3f", r["latency"][q].get<double>() / 1000);
  };
  std::printf("\n%-30s %12s %12s %12s %12s\n", "as-of", "tt p50 ms", "tt p99 ms", "pg p50 ms",
              "pg p99 ms");
  for (const auto& l : latency) {
    std::printf("%-30s %12s %12s %12s %12s\n",
                (std::to_string(l["versions"].get<std::int64_t>()) + " versions").c_str(),
                ms(l["timetrail"], "p50_us").c_str(), ms(l["timetrail"], "p99_us").c_str(),
                ms(l["postgres"], "p50_us").c_str(), ms(l["postgres"], "p99_us").c_str());
  }
  std::printf("%d clients, %lld entities: timetrail %.0f queries/s, PostgreSQL %.0f queries/s"
              " (%.2fx)\n",
              clients, static_cast<long long>(entities), tt_tp.calls_per_second,
              tp.calls_per_second, out["throughput"]["ratio_queries_per_second"].get<double>());
  if (http_tp) {
    std::printf("through HTTP: timetrail %.0f queries/s (%.2fx PostgreSQL)\n",
                http_tp->calls_per_second,
                out["throughput"]["ratio_http_queries_per_second"].get<double>());
  }
  for (auto& g : goals) {
    std::printf("goal %-52s measured %.2f  %s\n", g["goal"].get<std::string>().c_str(),
                g["measured"].get<double>(), g["met"].get<bool>() ? "MET" : "NOT MET");
  }

  if (!out_path.empty() && !bench::WriteJson(out_path, out)) return 1;
  if (!md_path.empty()) {
    std::ostringstream md;
    const Json& m = out["machine"];
    md << "#### As-of queries (" << run_name << " run, " << out["started_at"].get<std::string>()
       << ")\n\n"
       << m["cores"].dump() << " cores, " << Fmt("%.1f", m["memory_gib"].get<double>())
       << " GiB, " << m["cpu_model"].get<std::string>() << "; load average "
       << Fmt("%.2f", m["load_average"][0].get<double>()) << " at start, "
       << Fmt("%.2f", out["load_average_end"][0].get<double>()) << " at end; PostgreSQL "
       << out["postgres"].value("server_version", std::string("?"))
       << ", history table with `tstzrange` and `EXCLUDE USING gist (entity WITH =, valid WITH &&)`."
       << " " << rounds << " round(s) of every measurement; each figure is from the round with"
       << " the median throughput.\n\n"
       << "| versions per entity | timetrail p50 ms | p99 ms | PostgreSQL p50 ms | p99 ms |\n"
       << "|--:|--:|--:|--:|--:|\n";
    for (const auto& l : latency) {
      md << "| " << l["versions"].get<std::int64_t>() << " | " << ms(l["timetrail"], "p50_us")
         << " | " << ms(l["timetrail"], "p99_us") << " | " << ms(l["postgres"], "p50_us") << " | "
         << ms(l["postgres"], "p99_us") << " |\n";
    }
    md << "\n" << events << " versions over " << entities << " entities, " << clients
       << " clients: timetrail **" << Fmt("%.0f", tt_tp.calls_per_second)
       << " as-of queries/s** (p50 " << Fmt("%.3f", tt_tp.latency.p50_us / 1000) << " ms, p99 "
       << Fmt("%.3f", tt_tp.latency.p99_us / 1000) << " ms), PostgreSQL **"
       << Fmt("%.0f", tp.calls_per_second) << "** (p50 " << Fmt("%.3f", tp.latency.p50_us / 1000)
       << " ms, p99 " << Fmt("%.3f", tp.latency.p99_us / 1000) << " ms): **"
       << Fmt("%.2f", out["throughput"]["ratio_queries_per_second"].get<double>()) << "x**.\n";
    if (http_tp) {
      md << "\nThrough HTTP (`timetrail serve`, " << clients
         << " keep-alive connections, `GET /v1/entities/{stream}?as_of=T`): timetrail **"
         << Fmt("%.0f", http_tp->calls_per_second) << " as-of queries/s** (p50 "
         << Fmt("%.3f", http_tp->latency.p50_us / 1000) << " ms, p99 "
         << Fmt("%.3f", http_tp->latency.p99_us / 1000) << " ms): **"
         << Fmt("%.2f", out["throughput"]["ratio_http_queries_per_second"].get<double>())
         << "x** PostgreSQL.\n";
    }
    md << "\ntimetrail measured after RocksDB's background work finished (" << Fmt("%.1f", settle)
       << " s after the load); block cache " << block_cache_mb << " MiB in-process, the server's"
       << " default through HTTP.\n\nGoals:\n";
    for (const auto& g : goals) {
      md << "- " << g["goal"].get<std::string>() << ": measured "
         << Fmt("%.2fx", g["measured"].get<double>()) << " — **"
         << (g["met"].get<bool>() ? "met" : "not met") << "**\n";
    }
    std::ofstream f(md_path);
    f << md.str();
    if (!f) {
      std::cerr << "cannot write " << md_path << "\n";
      return 1;
    }
  }
  bool failed = tp.errors != 0 || tt_tp.errors != 0 || (http_tp && http_tp->errors != 0);
  for (const auto& l : latency) {
    failed = failed || l["postgres"]["errors"].get<std::uint64_t>() != 0 ||
             l["timetrail"]["errors"].get<std::uint64_t>() != 0;
  }
  if (failed) {
    std::cerr << "asof_bench: some queries failed (see first_error in the results)\n";
    return 1;
  }
  return 0;
}
