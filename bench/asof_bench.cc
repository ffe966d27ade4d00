// asof_bench: "what did this entity look like at time t" answered by PostgreSQL from a history
// table with a tstzrange validity column and EXCLUDE USING gist, the usual way to keep versions
// in PostgreSQL. These are the figures the timetrail as-of query is to be measured against
// (issue 3: at least 10x the queries/s at the same client concurrency, and latency that stays
// flat from 1,000 to 1,000,000 events per stream). The timetrail side joins this program when
// the temporal API (include/timetrail/temporal.h) exists.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_common.h"

namespace {

using bench::Json;

constexpr const char* kHelp = R"(asof_bench: as-of queries against PostgreSQL's history-table pattern

Usage: asof_bench --pg=CONNINFO [options]

  --pg=CONNINFO       libpq connection string; the table "history" is dropped and recreated
                      and the extension btree_gist is created
  --sizes=N,M,...     versions per entity for the latency part
                      (default 10,1000,100000,1000000)
  --queries=N         as-of queries per size for the latency part (default 5000)
  --events=N          versions in all for the throughput part (default 1000000)
  --entities=N        entities they are spread over (default 100000)
  --clients=N         concurrent clients (connections) for the throughput part (default 4)
  --seconds=N         how long the throughput part runs (default 10)
  --quick             sizes 10,1000,100000; 100,000 events over 10,000 entities; 1,000
                      queries per size; 3 seconds
  --out=FILE          write the results as JSON to FILE
  --markdown=FILE     write a Markdown summary to FILE
  --run-name=NAME     what to call this run in the summary (default "custom")
  --help              this text

Versions of entity e are valid one after another, one second each from 2026-01-01, the last one
open-ended; a query asks for the version valid at a uniformly random instant of that span and
must get exactly one row.
)";

// The version of entity $1 valid at $2 (seconds since the epoch); the gist index answers it.
constexpr const char* kAsOfSql =
    "SELECT doc FROM history WHERE entity = $1 AND valid @> to_timestamp($2::float8)";

constexpr double kEpoch = 1767225600.0;  // 2026-01-01T00:00:00Z

std::vector<std::int64_t> ParseList(const std::string& text) {
  std::vector<std::int64_t> v;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    v.push_back(std::strtoll(item.c_str(), nullptr, 10));
  }
  return v;
}

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

std::string Fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  bench::Flags flags(argc, argv);
  if (flags.Has("help")) {
    std::cout << kHelp;
    return 0;
  }
  bool quick = flags.Has("quick");
  std::string pg = flags.Get("pg", "");
  std::string out_path = flags.Get("out", "");
  std::string md_path = flags.Get("markdown", "");
  std::string run_name = flags.Get("run-name", "custom");
  auto sizes = ParseList(flags.Get("sizes", quick ? "10,1000,100000" : "10,1000,100000,1000000"));
  std::int64_t queries = flags.GetInt("queries", quick ? 1000 : 5000);
  std::int64_t events = flags.GetInt("events", quick ? 100000 : 1000000);
  std::int64_t entities = flags.GetInt("entities", quick ? 10000 : 100000);
  int clients = static_cast<int>(flags.GetInt("clients", 4));
  double seconds = flags.GetDouble("seconds", quick ? 3 : 10);
  if (!flags.CheckAllUsed()) return 2;
  if (pg.empty()) {
    std::cerr << "asof_bench: --pg is required (see --help)\n";
    return 2;
  }
  if (sizes.empty() || *std::min_element(sizes.begin(), sizes.end()) < 1 || queries < 1 ||
      entities < 1 || events < entities || clients < 1 || seconds <= 0) {
    std::cerr << "asof_bench: --sizes, --queries, --entities, --clients and --seconds must be"
                 " positive, and --events at least --entities\n";
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
                       {"clients", clients}, {"seconds", seconds}};
  out["timetrail"] = "not measured yet: the temporal API (include/timetrail/temporal.h) is not built";
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
    std::cerr << "loading one entity with " << n << " versions\n";
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
    bench::Driver driver("postgres as-of, " + std::to_string(n) + " versions", 1, 0);
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
    latency.push_back(Json{{"versions", n}, {"postgres", r.ToJson()}});
  }
  out["latency"] = latency;

  // Throughput: many entities, several clients at once.
  std::cerr << "loading " << entities << " entities with " << versions << " versions each\n";
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
  bench::Driver driver("postgres as-of, " + std::to_string(clients) + " clients", clients, seconds);
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
  out["throughput"] = Json{{"events", events}, {"entities", entities}, {"clients", clients},
                           {"postgres", tp.ToJson()}};
  out["finished_at"] = bench::UtcNow();
  out["load_average_end"] = bench::LoadAverage();

  std::printf("\n%-28s %10s %10s %10s\n", "postgres as-of", "p50 us", "p99 us", "queries/s");
  for (const auto& l : latency) {
    std::printf("%-28s %10.0f %10.0f %10.0f\n",
                (std::to_string(l["versions"].get<std::int64_t>()) + " versions").c_str(),
                l["postgres"]["latency"]["p50_us"].get<double>(),
                l["postgres"]["latency"]["p99_us"].get<double>(),
                l["postgres"]["calls_per_second"].get<double>());
  }
  std::printf("%-28s %10.0f %10.0f %10.0f\n",
              (std::to_string(clients) + " clients, " + std::to_string(entities) + " entities").c_str(),
              tp.latency.p50_us, tp.latency.p99_us, tp.calls_per_second);

  if (!out_path.empty() && !bench::WriteJson(out_path, out)) return 1;
  if (!md_path.empty()) {
    std::ostringstream md;
    const Json& m = out["machine"];
    md << "#### As-of queries, PostgreSQL baseline (" << run_name << " run, "
       << out["started_at"].get<std::string>() << ")\n\n"
       << m["cores"].dump() << " cores, " << Fmt("%.1f", m["memory_gib"].get<double>())
       << " GiB, " << m["cpu_model"].get<std::string>() << "; load average "
       << Fmt("%.2f", m["load_average"][0].get<double>()) << " at start, "
       << Fmt("%.2f", out["load_average_end"][0].get<double>()) << " at end; PostgreSQL "
       << out["postgres"].value("server_version", std::string("?"))
       << ", history table with `tstzrange` and `EXCLUDE USING gist (entity WITH =, valid WITH &&)`."
       << " The timetrail column is empty until the temporal API exists.\n\n"
       << "| versions per entity | PostgreSQL p50 ms | p99 ms | timetrail p50 ms | p99 ms |\n"
       << "|--:|--:|--:|--:|--:|\n";
    for (const auto& l : latency) {
      md << "| " << l["versions"].get<std::int64_t>() << " | "
         << Fmt("%.3f", l["postgres"]["latency"]["p50_us"].get<double>() / 1000) << " | "
         << Fmt("%.3f", l["postgres"]["latency"]["p99_us"].get<double>() / 1000) << " | - | - |\n";
    }
    md << "\n" << events << " versions over " << entities << " entities, " << clients
       << " clients: PostgreSQL **" << Fmt("%.0f", tp.calls_per_second)
       << " as-of queries/s** (p50 " << Fmt("%.2f", tp.latency.p50_us / 1000) << " ms, p99 "
       << Fmt("%.2f", tp.latency.p99_us / 1000)
       << " ms). The goal for timetrail through the C++ API is 10x that.\n";
    std::ofstream f(md_path);
    f << md.str();
    if (!f) {
      std::cerr << "cannot write " << md_path << "\n";
      return 1;
    }
  }
  bool failed = tp.errors != 0;
  for (const auto& l : latency) failed = failed || l["postgres"]["errors"].get<std::uint64_t>() != 0;
  if (failed) {
    std::cerr << "asof_bench: some queries failed (see first_error in the results)\n";
    return 1;
  }
  return 0;
}
