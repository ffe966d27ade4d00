// Shared pieces of the benchmarks: the machine description every result carries, the disk's
// fsync rate, latency percentiles, a timed multi-threaded driver with progress on stderr, and a
// thin libpq connection for the PostgreSQL peer.
//
//   bench::Driver driver("single events, 64 threads", /*threads=*/64, /*seconds=*/10);
//   bench::RunResult r = driver.Run([&](int thread, std::uint64_t i) { return AppendOne(...); });
//   // r.events_per_second, r.latency.p99_us; r.errors counts calls that returned -1.
#ifndef TIMETRAIL_BENCH_BENCH_COMMON_H_
#define TIMETRAIL_BENCH_BENCH_COMMON_H_

#include <libpq-fe.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bench {

using Json = nlohmann::ordered_json;

// Cores, memory, CPU model, kernel, and the load average now. Intentionally copyable.
Json DescribeMachine();

// The three load averages from /proc/loadavg, e.g. [1.52, 1.10, 0.80]: other work on the machine
// shares its two cores, so every result says how busy it was.
Json LoadAverage();

// Writes 4 KiB and fdatasync()s it in a loop for "seconds" in a file under "dir" and returns the
// syncs per second: the ceiling for one durable commit at a time on this disk.
double MeasureFsyncRate(const std::string& dir, double seconds);

// CPU seconds (user and system) this process has used so far, all threads.
double ProcessCpuSeconds();

// Intentionally copyable.
struct Latency {
  double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0, mean_us = 0;
  Json ToJson() const;
};
// REQUIRES: nothing; an empty sample gives zeros. Sorts "nanos".
Latency Summarize(std::vector<std::uint64_t>& nanos);

// Intentionally copyable.
struct RunResult {
  std::uint64_t calls = 0;   // successful calls
  std::uint64_t events = 0;  // events they wrote or read
  std::uint64_t errors = 0;  // calls that failed
  double seconds = 0;
  double events_per_second = 0;
  double calls_per_second = 0;
  Latency latency;  // of one call
  std::string first_error;
  // With several rounds (Driver's "rounds"): the figures above are those of the round with the
  // median throughput, so that its latencies come from the same run, except "errors" and
  // "first_error", which cover every round; this lists each round's events/s in run order.
  std::vector<double> round_events_per_second;
  Json ToJson() const;
};

// One unit of work: returns the number of events it handled, or -1 on failure (after storing a
// message in *error). Called with the thread index and that thread's call counter.
using Op = std::function<std::int64_t(int thread, std::uint64_t i, std::string* error)>;

// Runs an Op on "threads" threads for "seconds", each call timed, "rounds" times in a row, and
// reports the round with the median throughput (the lower of the middle two for an even
// count). A thread's call counter goes on from one round to the next, as in one long run.
// Prints a progress line to stderr about once a second. Thread-compatible: one Run at a time.
class Driver {
 public:
  Driver(std::string label, int threads, double seconds, int rounds = 1)
      : label_(std::move(label)),
        threads_(threads),
        seconds_(seconds),
        rounds_(rounds < 1 ? 1 : rounds),
        next_i_(threads, 0) {}
  RunResult Run(const Op& op);
  // Runs "op" "calls" times per round (split across the threads), timing each call;
  // for a fixed number of queries.
  RunResult RunCount(const Op& op, std::uint64_t calls);

 private:
  RunResult RunRounds(const Op& op, std::uint64_t total_calls);
  RunResult RunOnce(const Op& op, std::uint64_t total_calls, int round);
  std::string label_;
  int threads_;
  double seconds_;
  int rounds_;
  std::vector<std::uint64_t> next_i_;  // each thread's next call counter
};

// The median of "values" (the mean of the middle two for an even count); 0 when empty.
double Median(std::vector<double> values);

// A libpq connection. Not thread-safe: one per thread, as a PostgreSQL client would do.
class PgConn {
 public:
  // Connects or returns nullptr with *error set.
  static std::unique_ptr<PgConn> Connect(const std::string& conninfo, std::string* error);
  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  // Runs SQL without parameters; false with *error set on failure.
  bool Exec(const std::string& sql, std::string* error);
  // Prepares a named statement with untyped text parameters.
  bool Prepare(const std::string& name, const std::string& sql, int nparams, std::string* error);
  // Runs a prepared statement with text parameters. Returns the number of rows (for SELECT)
  // or affected rows (for INSERT); -1 on error with *error set and, when the server gave one,
  // *sqlstate set (e.g. "23505" for a unique violation).
  std::int64_t ExecPrepared(const std::string& name, const std::vector<const char*>& params,
                            std::string* error, std::string* sqlstate = nullptr,
                            std::vector<std::string>* first_column = nullptr);
  PGconn* raw() { return conn_; }

 private:
  explicit PgConn(PGconn* c) : conn_(c) {}
  PGconn* conn_;
};

// The server's version string and the settings a durability comparison depends on.
Json DescribePostgres(PgConn& conn);

// The events every append benchmark writes, the same for timetrail and PostgreSQL: a `$put` of
// a 117-byte document (for thread "thread", call "i", event "k" of the call) with 41 bytes of
// metadata.
std::string EventData(int thread, std::uint64_t i, int k);
inline constexpr const char* kEventMetadata = R"({"actor": "bench", "reason": "load test"})";
inline constexpr const char* kEventType = "$put";

// PostgreSQL's side of a conditional append: this table, where the identity column gives the
// log its order and the unique keys mirror what timetrail enforces (one event per (stream,
// revision) and per event id), so a concurrent writer at the same revision fails with a unique
// violation (SQLSTATE 23505). Drops and recreates "events".
bool PgCreateEventsTable(PgConn& conn, std::string* error);
// "INSERT ... VALUES ($1,$2,...),(...)" for "rows" events of one stream: $1 is the stream, then
// per row the revision, type, data and metadata (1 + 4 * rows parameters).
std::string PgInsertSql(int rows);

// Reads "--name=value" style flags. Unknown flags are an error so a typo never runs the wrong
// benchmark silently.
class Flags {
 public:
  Flags(int argc, char** argv);
  std::string Get(const std::string& name, const std::string& def);
  std::int64_t GetInt(const std::string& name, std::int64_t def);
  double GetDouble(const std::string& name, double def);
  bool Has(const std::string& name);
  // With --help: prints "text" to stdout and returns true (the caller then exits 0).
  bool Help(const char* text);
  // Returns false and prints the unknown flags if any flag was never asked for.
  bool CheckAllUsed() const;

 private:
  std::vector<std::pair<std::string, std::string>> values_;
  std::vector<std::string> used_;
};

// printf-style formatting of one number, e.g. Fmt("%.2f", 1.5) == "1.50".
std::string Fmt(const char* format, double v);
// A count with thousands separators: Count(1234567) == "1,234,567".
std::string Count(double v);
// "10,1000,100000" -> {10, 1000, 100000}.
std::vector<std::int64_t> ParseList(const std::string& text);

// Writes "json" to "path" (pretty-printed); false on failure, with the reason on stderr.
bool WriteJson(const std::string& path, const Json& json);

// Event i of the scaling log that temporal_bench and activity_bench load: a $put of item
// (i mod entities) by actor ScalingActor(i) (spread evenly, not in turn).
std::string ScalingItemData(std::int64_t i, std::int64_t entities);
std::int64_t ScalingActor(std::int64_t i, std::int64_t actors);
std::string ScalingItemMetadata(std::int64_t i, std::int64_t actors);

// seconds since the epoch, UTC, as "2026-11-23T01:02:03Z".
std::string UtcNow();

}  // namespace bench

#endif  // TIMETRAIL_BENCH_BENCH_COMMON_H_
