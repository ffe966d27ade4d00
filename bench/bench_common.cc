#include "bench_common.h"
#include <sys/resource.h>

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

namespace bench {

namespace {

using Clock = std::chrono::steady_clock;

std::string FirstMatchingLine(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return line;
  }
  return "";
}

std::string AfterColon(const std::string& line) {
  auto colon = line.find(':');
  if (colon == std::string::npos) return "";
  auto start = line.find_first_not_of(" \t", colon + 1);
  return start == std::string::npos ? "" : line.substr(start);
}

}  // namespace

Json LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double a = 0, b = 0, c = 0;
  in >> a >> b >> c;
  return Json::array({a, b, c});
}

Json DescribeMachine() {
  Json m;
  m["cores"] = std::thread::hardware_concurrency();
  std::string mem = AfterColon(FirstMatchingLine("/proc/meminfo", "MemTotal"));
  m["memory_gib"] =
      static_cast<double>(std::strtoull(mem.c_str(), nullptr, 10)) / (1024.0 * 1024.0);
  m["cpu_model"] = AfterColon(FirstMatchingLine("/proc/cpuinfo", "model name"));
  struct utsname u {};
  if (uname(&u) == 0) m["kernel"] = std::string(u.sysname) + " " + u.release;
  m["load_average"] = LoadAverage();
  return m;
}

double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double MeasureFsyncRate(const std::string& dir, double seconds) {
  std::string path = dir + "/fsync-probe";
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) {
    std::cerr << "fsync probe: cannot create " << path << ": " << std::strerror(errno) << "\n";
    return 0;
  }
  char block[4096];
  std::memset(block, 'x', sizeof block);
  std::uint64_t syncs = 0;
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(seconds);
  off_t offset = 0;
  while (Clock::now() < deadline) {
    // Appending like a log does, so each sync also commits a size change.
    if (::pwrite(fd, block, sizeof block, offset) != static_cast<ssize_t>(sizeof block)) break;
    offset += sizeof block;
    if (::fdatasync(fd) != 0) break;
    ++syncs;
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  ::close(fd);
  ::unlink(path.c_str());
  return elapsed > 0 ? static_cast<double>(syncs) / elapsed : 0;
}

Json Latency::ToJson() const {
  return Json{{"p50_us", p50_us},
              {"p99_us", p99_us},
              {"p999_us", p999_us},
              {"max_us", max_us},
              {"mean_us", mean_us}};
}

Latency Summarize(std::vector<std::uint64_t>& nanos) {
  Latency l;
  if (nanos.empty()) return l;
  std::sort(nanos.begin(), nanos.end());
  auto at = [&](double q) {
    std::size_t i = static_cast<std::size_t>(q * static_cast<double>(nanos.size() - 1));
    return static_cast<double>(nanos[i]) / 1000.0;
  };
  l.p50_us = at(0.50);
  l.p99_us = at(0.99);
  l.p999_us = at(0.999);
  l.max_us = static_cast<double>(nanos.back()) / 1000.0;
  long double sum = 0;
  for (auto n : nanos) sum += n;
  l.mean_us = static_cast<double>(sum / nanos.size() / 1000.0L);
  return l;
}

Json RunResult::ToJson() const {
  Json j{{"calls", calls},
         {"events", events},
         {"errors", errors},
         {"seconds", seconds},
         {"events_per_second", events_per_second},
         {"calls_per_second", calls_per_second},
         {"latency", latency.ToJson()}};
  if (!first_error.empty()) j["first_error"] = first_error;
  if (round_events_per_second.size() > 1) {
    j["rounds"] = round_events_per_second.size();
    j["round_events_per_second"] = round_events_per_second;
  }
  return j;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

RunResult Driver::Run(const Op& op) { return RunRounds(op, 0); }

RunResult Driver::RunCount(const Op& op, std::uint64_t calls) { return RunRounds(op, calls); }

RunResult Driver::RunRounds(const Op& op, std::uint64_t total_calls) {
  std::vector<RunResult> runs;
  for (int round = 0; round < rounds_; ++round) runs.push_back(RunOnce(op, total_calls, round));
  std::vector<std::size_t> order(runs.size());
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return runs[a].events_per_second < runs[b].events_per_second;
  });
  RunResult median = runs[order[(order.size() - 1) / 2]];
  median.errors = 0;
  median.first_error.clear();
  for (const RunResult& r : runs) {
    median.errors += r.errors;
    if (median.first_error.empty()) median.first_error = r.first_error;
    median.round_events_per_second.push_back(r.events_per_second);
  }
  return median;
}

RunResult Driver::RunOnce(const Op& op, std::uint64_t total_calls, int round) {
  const std::string label = rounds_ == 1 ? label_
                                         : label_ + " (round " + std::to_string(round + 1) + "/" +
                                               std::to_string(rounds_) + ")";
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> events{0}, calls{0}, errors{0};
  std::atomic<std::uint64_t> next_call{0};
  std::mutex mu;
  std::string first_error;
  std::vector<std::vector<std::uint64_t>> samples(threads_);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};

  std::vector<std::thread> workers;
  workers.reserve(threads_);
  for (int t = 0; t < threads_; ++t) {
    workers.emplace_back([&, t] {
      auto& mine = samples[t];
      mine.reserve(1 << 16);
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      std::string error;
      std::uint64_t& i = next_i_[t];
      for (; !stop.load(std::memory_order_relaxed); ++i) {
        if (total_calls != 0 && next_call.fetch_add(1) >= total_calls) break;
        auto begin = Clock::now();
        std::int64_t n = op(t, i, &error);
        auto end = Clock::now();
        if (n < 0) {
          errors.fetch_add(1);
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.empty()) first_error = error;
          continue;
        }
        mine.push_back(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(end - begin).count()));
        calls.fetch_add(1, std::memory_order_relaxed);
        events.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
      }
    });
  }
  while (ready.load() < threads_) std::this_thread::yield();
  auto start = Clock::now();
  go.store(true);

  // Progress once a second; the time limit ends a timed run, the count ends a counted one.
  std::uint64_t last_events = 0;
  auto last = start;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto now = Clock::now();
    double elapsed = std::chrono::duration<double>(now - start).count();
    bool done =
        total_calls == 0 ? elapsed >= seconds_ : calls.load() + errors.load() >= total_calls;
    if (done || now - last >= std::chrono::seconds(1)) {
      std::uint64_t e = events.load();
      double rate = static_cast<double>(e - last_events) /
                    std::max(1e-9, std::chrono::duration<double>(now - last).count());
      std::fprintf(stderr, "  %-44s %6.1fs  %12llu events  %12.0f events/s  errors %llu\n",
                   label.c_str(), elapsed, static_cast<unsigned long long>(e), rate,
                   static_cast<unsigned long long>(errors.load()));
      last_events = e;
      last = now;
    }
    if (done) break;
  }
  stop.store(true);
  for (auto& w : workers) w.join();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<std::uint64_t> all;
  for (auto& s : samples) all.insert(all.end(), s.begin(), s.end());
  RunResult r;
  r.calls = calls.load();
  r.events = events.load();
  r.errors = errors.load();
  r.seconds = seconds;
  r.events_per_second = static_cast<double>(r.events) / seconds;
  r.calls_per_second = static_cast<double>(r.calls) / seconds;
  r.latency = Summarize(all);
  r.first_error = first_error;
  return r;
}

std::unique_ptr<PgConn> PgConn::Connect(const std::string& conninfo, std::string* error) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    *error = std::string("cannot connect to PostgreSQL: ") + PQerrorMessage(c);
    PQfinish(c);
    return nullptr;
  }
  return std::unique_ptr<PgConn>(new PgConn(c));
}

PgConn::~PgConn() { PQfinish(conn_); }

bool PgConn::Exec(const std::string& sql, std::string* error) {
  PGresult* r = PQexec(conn_, sql.c_str());
  auto st = PQresultStatus(r);
  bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
  if (!ok) *error = std::string(PQresultErrorMessage(r)) + " (in: " + sql.substr(0, 200) + ")";
  PQclear(r);
  return ok;
}

bool PgConn::Prepare(const std::string& name, const std::string& sql, int nparams,
                     std::string* error) {
  PGresult* r = PQprepare(conn_, name.c_str(), sql.c_str(), nparams, nullptr);
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) *error = std::string("prepare ") + name + ": " + PQresultErrorMessage(r);
  PQclear(r);
  return ok;
}

std::int64_t PgConn::ExecPrepared(const std::string& name, const std::vector<const char*>& params,
                                  std::string* error, std::string* sqlstate,
                                  std::vector<std::string>* first_column) {
  PGresult* r = PQexecPrepared(conn_, name.c_str(), static_cast<int>(params.size()), params.data(),
                               nullptr, nullptr, 0);
  auto st = PQresultStatus(r);
  std::int64_t n = -1;
  if (st == PGRES_TUPLES_OK) {
    n = PQntuples(r);
    if (first_column != nullptr) {
      first_column->clear();
      for (int i = 0; i < n; ++i) first_column->emplace_back(PQgetvalue(r, i, 0));
    }
  } else if (st == PGRES_COMMAND_OK) {
    n = std::strtoll(PQcmdTuples(r), nullptr, 10);
  } else {
    *error = PQresultErrorMessage(r);
    if (sqlstate != nullptr) {
      const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      *sqlstate = s != nullptr ? s : "";
    }
  }
  PQclear(r);
  return n;
}

Json DescribePostgres(PgConn& conn) {
  Json j;
  const char* names[] = {"server_version",  "fsync",          "synchronous_commit",
                         "wal_sync_method", "shared_buffers", "full_page_writes",
                         "commit_delay",    "max_connections"};
  for (const char* name : names) {
    PGresult* r = PQexec(conn.raw(), (std::string("SHOW ") + name).c_str());
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) j[name] = PQgetvalue(r, 0, 0);
    PQclear(r);
  }
  return j;
}

std::string EventData(int thread, std::uint64_t i, int k) {
  char buf[256];
  std::snprintf(
      buf, sizeof buf,
      R"({"customer": "customer-%d", "order": %)" PRIu64
      R"(, "line": %d, "amount": 1249.5, "currency": "EUR", "status": "placed", "note": "left at the door"})",
      thread, i, k);
  return buf;
}

bool PgCreateEventsTable(PgConn& conn, std::string* error) {
  return conn.Exec("DROP TABLE IF EXISTS events", error) &&
         conn.Exec(
             "CREATE TABLE events ("
             " position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
             " stream text NOT NULL,"
             " revision bigint NOT NULL,"
             " id uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,"
             " type text NOT NULL,"
             " data jsonb NOT NULL,"
             " metadata jsonb NOT NULL,"
             " recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
             " UNIQUE (stream, revision))",
             error);
}

std::string PgInsertSql(int rows) {
  std::ostringstream sql;
  sql << "INSERT INTO events (stream, revision, type, data, metadata) VALUES ";
  for (int r = 0; r < rows; ++r) {
    int p = r * 4 + 2;  // $1 is the stream
    sql << (r ? "," : "") << "($1, $" << p << "::bigint, $" << p + 1 << ", $" << p + 2
        << "::jsonb, $" << p + 3 << "::jsonb)";
  }
  return sql.str();
}

Flags::Flags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      values_.emplace_back("?" + a, "");
      continue;
    }
    auto eq = a.find('=');
    if (eq == std::string::npos) {
      values_.emplace_back(a.substr(2), "true");
    } else {
      values_.emplace_back(a.substr(2, eq - 2), a.substr(eq + 1));
    }
  }
}

std::string Flags::Get(const std::string& name, const std::string& def) {
  used_.push_back(name);
  for (auto& [k, v] : values_) {
    if (k == name) return v;
  }
  return def;
}

std::int64_t Flags::GetInt(const std::string& name, std::int64_t def) {
  std::string v = Get(name, "");
  return v.empty() ? def : std::strtoll(v.c_str(), nullptr, 10);
}

double Flags::GetDouble(const std::string& name, double def) {
  std::string v = Get(name, "");
  return v.empty() ? def : std::strtod(v.c_str(), nullptr);
}

bool Flags::Has(const std::string& name) {
  used_.push_back(name);
  for (auto& kv : values_) {
    if (kv.first == name) return true;
  }
  return false;
}

bool Flags::Help(const char* text) {
  if (!Has("help")) return false;
  std::cout << text;
  return true;
}

bool Flags::CheckAllUsed() const {
  bool ok = true;
  for (auto& kv : values_) {
    if (std::find(used_.begin(), used_.end(), kv.first) == used_.end()) {
      std::cerr << "unknown argument: "
                << (kv.first[0] == '?' ? kv.first.substr(1) : "--" + kv.first) << " (see --help)\n";
      ok = false;
    }
  }
  return ok;
}

bool WriteJson(const std::string& path, const Json& json) {
  std::ofstream out(path);
  out << json.dump(2) << "\n";
  out.close();
  if (!out) {
    std::cerr << "cannot write " << path << "\n";
    return false;
  }
  return true;
}

std::string UtcNow() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string Count(double v) {
  std::string digits = std::to_string(static_cast<long long>(v + 0.5));
  std::string out;
  int n = static_cast<int>(digits.size());
  for (int i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::vector<std::int64_t> ParseList(const std::string& text) {
  std::vector<std::int64_t> v;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    v.push_back(std::strtoll(item.c_str(), nullptr, 10));
  }
  return v;
}

std::string ScalingItemData(std::int64_t i, std::int64_t entities) {
  return R"({"item": )" + std::to_string(i % entities) + R"(, "seq": )" + std::to_string(i) +
         R"(, "status": "state-)" + std::to_string(i % 7) + R"(", "owner": "user-)" +
         std::to_string(i % 13) + R"(", "amount": )" + std::to_string(i % 1000) +
         R"(, "note": "imported from the order system"})";
}

std::int64_t ScalingActor(std::int64_t i, std::int64_t actors) {
  std::uint64_t x = static_cast<std::uint64_t>(i) * 0x9E3779B97F4A7C15ull;
  return static_cast<std::int64_t>((x >> 32) % static_cast<std::uint64_t>(actors));
}

std::string ScalingItemMetadata(std::int64_t i, std::int64_t actors) {
  return R"({"actor": "actor-)" + std::to_string(ScalingActor(i, actors)) +
         R"(", "reason": "import"})";
}

}  // namespace bench
