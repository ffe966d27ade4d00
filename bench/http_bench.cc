// http_bench: the HTTP API under load. Conditional appends from 64 keep-alive clients against
// the real `timetrail serve` (single events and 100-event batches), side by side with
// PostgreSQL doing the same conditional appends from 64 connections; then the delivery latency
// of live events to 10 SSE subscribers while writers append at a steady rate, with a check that
// every subscriber got every event exactly once and in order. bench/run starts the PostgreSQL
// peer and calls this; bench/README.md explains the scenarios and how to read the results.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "bench_common.h"
#include "serve_client.h"
#include "timetrail/time.h"

extern char** environ;

namespace {

using bench::Json;

constexpr const char* kHelp = R"(http_bench: the HTTP API under load, timetrail serve vs PostgreSQL

Usage: http_bench --timetrail=PATH --data-dir=DIR [--pg=CONNINFO] [options]

  --timetrail=PATH      the timetrail binary; the benchmark runs `PATH serve` on a free
                        127.0.0.1 port with a fresh data directory and stops it at the end
  --data-dir=DIR        where the server's data directory is created (must not exist or be
                        empty)
  --pg=CONNINFO         libpq connection string of the PostgreSQL peer; without it only
                        timetrail runs. The table "events" is dropped and recreated.
  --seconds=N           how long each append scenario runs per system and round (default 10)
  --rounds=N            rounds of each append scenario per system; figures are those of the
                        round with the median throughput, and every round's events/s is kept
                        (default 3)
  --clients=N           concurrent keep-alive HTTP clients and PostgreSQL connections
                        (default 64)
  --batch=N             events per append in the batch scenario (default 100)
  --subscribers=N       SSE subscribers in the fan-out scenario (default 10)
  --writers=N           writer clients in the fan-out scenario (default 4)
  --rate=N              events per second the writers append in all, steadily (default 1000)
  --fanout-seconds=N    how long the writers append in the fan-out scenario (default 10)
  --fsync-seconds=N     how long to measure the disk's fsync rate (default 2)
  --out=FILE            write the results as JSON to FILE
  --markdown=FILE       write a Markdown summary (machine, tables, goals) to FILE
  --run-name=NAME       what to call this run in the summary, e.g. "quick" (default "custom")
  --help                this text

Appends: each client appends to a stream of its own, naming the exact revision the stream must
be at (`"expected_revision": N`, "no_stream" for the first), and waits for the 201 before its
next request. PostgreSQL inserts (stream, revision + 1 ...) into a table with a unique
(stream, revision) key, one prepared INSERT per call. Both acknowledge durable events only.
Afterwards every stream's revision is read back and must equal what the client was told.

Fan-out: the subscribers follow `GET /v1/subscribe?from=HEAD+1&stream_prefix=fanout-`; the
writers append single events at --rate. Delivery latency is the subscriber's receive time minus
the event's recorded_at (the commit time the server stamped; same machine, same clock), and also
minus the time the writer received its 201. Every subscriber must receive exactly the
acknowledged positions, each once, in increasing order.
Progress goes to stderr, a summary to stdout; the exit code is 1 if any call failed or a check
did not hold.
)";

using Clock = std::chrono::steady_clock;

std::int64_t WallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// CPU seconds (user + system) a process has used so far, from /proc/PID/stat; -1 if unknown.
double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  // After the command come state (field 3) ... utime (14) and stime (15).
  for (int field = 3; field <= 15 && fields >> f; ++field) {
    if (field == 14) utime = std::stoull(f);
    if (field == 15) stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// The value of counter "name" in a Prometheus text page; -1 when it is not there.
double MetricValue(const std::string& page, const std::string& name) {
  std::istringstream lines(page);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + " ", 0) == 0) return std::strtod(line.c_str() + name.size() + 1, nullptr);
  }
  return -1;
}

using bench::HttpClient;
using bench::ServeProcess;

// The body of POST /v1/streams/{stream}: "n" events, conditional on "expected" (nullopt: the
// stream must not exist yet).
std::string AppendBody(int thread, std::uint64_t i, int n, std::optional<std::uint64_t> expected) {
  std::string body = "{\"expected_revision\": ";
  body += expected ? std::to_string(*expected) : std::string("\"no_stream\"");
  body += ", \"events\": [";
  for (int k = 0; k < n; ++k) {
    if (k) body += ", ";
    body += "{\"type\": \"";
    body += bench::kEventType;
    body += "\", \"data\": ";
    body += bench::EventData(thread, i, k);
    body += ", \"metadata\": ";
    body += bench::kEventMetadata;
    body += "}";
  }
  body += "]}";
  return body;
}

struct Config {
  std::string timetrail, data_dir, pg, out, markdown, run_name;
  double seconds = 10, fanout_seconds = 10, fsync_seconds = 2, rate = 1000;
  int rounds = 3, clients = 64, batch = 100, subscribers = 10, writers = 4;
};

struct AppendRow {
  std::string name, label;
  int batch = 1;
  bench::RunResult tt;
  std::optional<bench::RunResult> pg;
  // CPU used by the server and by this benchmark over all rounds, and the wall time they took.
  double server_cpu_seconds = -1, bench_cpu_seconds = -1, cpu_wall_seconds = -1;
  double fsyncs = -1, events_per_fsync = -1;  // from the server's /metrics
  std::uint64_t streams_checked = 0, streams_wrong = 0;
  std::string check_error;
};

// Conditional appends of "batch" events from cfg.clients HTTP clients, one stream each; then
// reads back every stream's revision.
void RunHttpAppends(ServeProcess& server, const Config& cfg, AppendRow* row) {
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int t = 0; t < cfg.clients; ++t) {
    clients.push_back(std::make_unique<HttpClient>(server.host(), server.port()));
  }
  std::vector<std::optional<std::uint64_t>> last(cfg.clients);
  auto stream = [&](int t) { return "http-" + row->name + "-" + std::to_string(t); };
  // The server's group commits and events, before and after, from GET /metrics.
  auto counters = [&](double* commits, double* events) {
    int status = 0;
    std::string page, error;
    if (clients[0]->Request(boost::beast::http::verb::get, "/metrics", "", &status, &page,
                            &error) && status == 200) {
      *commits = MetricValue(page, "timetrail_group_commits_total");
      *events = MetricValue(page, "timetrail_events_total");
    }
  };
  double commits0 = -1, events0 = -1, commits1 = -1, events1 = -1;
  counters(&commits0, &events0);
  double server_cpu = ProcessCpuSeconds(server.pid()), self_cpu = SelfCpuSeconds();
  const auto cpu_start = Clock::now();
  bench::Driver driver("timetrail HTTP " + row->label, cfg.clients, cfg.seconds, cfg.rounds);
  row->tt = driver.Run([&](int t, std::uint64_t i, std::string* error) -> std::int64_t {
    std::string body = AppendBody(t, i, row->batch, last[t]);
    int status = 0;
    std::string answer;
    if (!clients[t]->Request(boost::beast::http::verb::post, "/v1/streams/" + stream(t), body,
                             &status, &answer, error)) {
      return -1;
    }
    if (status != 201) {
      *error = "POST /v1/streams/" + stream(t) + " answered " + std::to_string(status) + ": " +
               answer;
      return -1;
    }
    last[t] = (last[t] ? *last[t] + 1 : 0) + static_cast<std::uint64_t>(row->batch) - 1;
    return row->batch;
  });
  row->server_cpu_seconds = ProcessCpuSeconds(server.pid()) - server_cpu;
  row->bench_cpu_seconds = SelfCpuSeconds() - self_cpu;
  row->cpu_wall_seconds = std::chrono::duration<double>(Clock::now() - cpu_start).count();
  counters(&commits1, &events1);
  if (commits0 >= 0 && commits1 > commits0 && events0 >= 0) {
    row->fsyncs = commits1 - commits0;
    row->events_per_fsync = (events1 - events0) / row->fsyncs;
  }
  // Every acknowledged event must be there: each stream's revision is the last one acked.
  for (int t = 0; t < cfg.clients; ++t) {
    int status = 0;
    std::string answer, error;
    ++row->streams_checked;
    if (!clients[t]->Request(boost::beast::http::verb::get, "/v1/streams/" + stream(t) + "/info",
                             "", &status, &answer, &error)) {
      ++row->streams_wrong;
      row->check_error = error;
      continue;
    }
    Json info = Json::parse(answer, nullptr, false);
    bool ok = status == 200 && info.is_object() &&
              (last[t] ? info["revision"].is_number() &&
                             info["revision"].get<std::uint64_t>() == *last[t]
                       : info["revision"].is_null());
    if (!ok) {
      ++row->streams_wrong;
      row->check_error = stream(t) + ": expected revision " +
                         (last[t] ? std::to_string(*last[t]) : std::string("null")) +
                         ", info answered " + std::to_string(status) + " " + answer;
    }
  }
}

bench::RunResult RunPgAppends(std::vector<std::unique_ptr<bench::PgConn>>& conns,
                              const Config& cfg, const AppendRow& row) {
  std::vector<std::optional<std::uint64_t>> last(cfg.clients);
  std::string stmt = "insert" + std::to_string(row.batch);
  bench::Driver driver("postgres " + row.label, cfg.clients, cfg.seconds, cfg.rounds);
  return driver.Run([&](int t, std::uint64_t i, std::string* error) -> std::int64_t {
    std::uint64_t first = last[t] ? *last[t] + 1 : 0;
    std::string stream = "pg-" + row.name + "-" + std::to_string(t);
    std::vector<std::string> text;
    text.reserve(static_cast<std::size_t>(row.batch) * 4);
    for (int k = 0; k < row.batch; ++k) {
      text.push_back(std::to_string(first + static_cast<std::uint64_t>(k)));
      text.push_back(bench::kEventType);
      text.push_back(bench::EventData(t, i, k));
      text.push_back(bench::kEventMetadata);
    }
    std::vector<const char*> params{stream.c_str()};
    for (auto& p : text) params.push_back(p.c_str());
    std::string sqlstate;
    if (conns[t]->ExecPrepared(stmt, params, error, &sqlstate) < 0) {
      if (sqlstate == "23505") *error = "conflict (unexpected in this benchmark): " + *error;
      return -1;
    }
    last[t] = first + static_cast<std::uint64_t>(row.batch) - 1;
    return row.batch;
  });
}

// ---- Fan-out ---------------------------------------------------------------------------------

struct Received {
  std::uint64_t position;
  std::int64_t received_us;     // wall clock when the bytes arrived
  std::int64_t recorded_at_us;  // the event's recorded_at
};

// One SSE subscriber on a plain socket: the server answers a subscription with a header block
// and then writes events until the connection closes.
class Subscriber {
 public:
  Subscriber(std::string host, std::string port) : host_(std::move(host)), port_(std::move(port)) {}

  // Connects, sends the request and reads up to the ": subscribed" comment.
  bool Open(const std::string& target, std::string* error) {
    boost::system::error_code ec;
    boost::asio::ip::tcp::resolver resolver(ioc_);
    auto endpoints = resolver.resolve(host_, port_, ec);
    if (!ec) boost::asio::connect(socket_, endpoints, ec);
    if (ec) {
      *error = "connect: " + ec.message();
      return false;
    }
    socket_.set_option(boost::asio::ip::tcp::no_delay(true));
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: " + host_ +
                      "\r\nAccept: text/event-stream\r\n\r\n";
    boost::asio::write(socket_, boost::asio::buffer(req), ec);
    while (!ec && pending_.find("\r\n\r\n") == std::string::npos) ReadSome(&ec);
    if (ec) {
      *error = "subscribe: " + ec.message();
      return false;
    }
    if (pending_.rfind("HTTP/1.1 200", 0) != 0) {
      *error = "subscribe answered: " + pending_.substr(0, pending_.find("\r\n"));
      return false;
    }
    pending_.erase(0, pending_.find("\r\n\r\n") + 4);
    return true;
  }

  // Reads events until "*target" events arrived (the target is known once the writers are
  // done) or the connection ends; every event's position, receive time and recorded_at go to
  // events(). Problems with the stream itself go to errors().
  void Follow(const std::atomic<std::uint64_t>* target) {
    boost::system::error_code ec;
    for (;;) {
      Parse();
      if (events_.size() >= target->load()) return;
      ReadSome(&ec);
      if (ec) {
        if (events_.size() < target->load()) errors_.push_back("stream ended: " + ec.message());
        return;
      }
    }
  }

  // Unblocks Follow from another thread (a plain shutdown(2) on the descriptor).
  void Interrupt() { ::shutdown(socket_.native_handle(), SHUT_RDWR); }

  // How many events arrived so far; safe to call while Follow runs.
  std::size_t received() const { return received_.load(); }
  // REQUIRES: Follow has returned.
  const std::vector<Received>& events() const { return events_; }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  void ReadSome(boost::system::error_code* ec) {
    char buf[64 * 1024];
    std::size_t n = socket_.read_some(boost::asio::buffer(buf), *ec);
    now_us_ = WallMicros();
    pending_.append(buf, n);
  }

  // Takes every complete "\n\n"-terminated block out of pending_.
  void Parse() {
    std::size_t start = 0;
    for (;;) {
      auto end = pending_.find("\n\n", start);
      if (end == std::string::npos) break;
      std::string_view block(pending_.data() + start, end - start);
      start = end + 2;
      std::optional<std::uint64_t> id;
      std::string_view data;
      while (!block.empty()) {
        auto nl = block.find('\n');
        std::string_view line = block.substr(0, nl);
        block = nl == std::string_view::npos ? std::string_view() : block.substr(nl + 1);
        if (line.rfind("id: ", 0) == 0) id = std::stoull(std::string(line.substr(4)));
        if (line.rfind("data: ", 0) == 0) data = line.substr(6);
      }
      if (!id) continue;  // a comment (": keepalive")
      Json e = Json::parse(data, nullptr, false);
      std::int64_t recorded = 0;
      if (e.is_object() && e["recorded_at"].is_string()) {
        auto t = timetrail::ParseTimestamp(e["recorded_at"].get<std::string>());
        if (t.ok()) recorded = t->micros;
      }
      if (!e.is_object() || e.value("position", std::uint64_t{0}) != *id || recorded == 0) {
        errors_.push_back("event " + std::to_string(*id) + " is malformed: " +
                          std::string(data.substr(0, 200)));
      }
      events_.push_back(Received{*id, now_us_, recorded});
      received_.store(events_.size());
    }
    pending_.erase(0, start);
  }

  std::string host_, port_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_{ioc_};
  std::string pending_;
  std::int64_t now_us_ = 0;
  std::vector<Received> events_;
  std::atomic<std::size_t> received_{0};
  std::vector<std::string> errors_;
};

struct Acked {
  std::uint64_t position;
  std::int64_t sent_us, acked_us;
};

// Runs the fan-out scenario; fills "out" with its figures and returns false if a check failed.
bool RunFanOut(ServeProcess& server, const Config& cfg, Json* out) {
  HttpClient admin(server.host(), server.port());
  int status = 0;
  std::string answer, error;
  if (!admin.Request(boost::beast::http::verb::get, "/healthz", "", &status, &answer, &error) ||
      status != 200) {
    std::cerr << "fan-out: /healthz failed: " << error << answer << "\n";
    return false;
  }
  std::uint64_t head = Json::parse(answer)["position"].get<std::uint64_t>();
  std::string target = "/v1/subscribe?from=" + std::to_string(head + 1) + "&stream_prefix=fanout-";

  std::vector<std::unique_ptr<Subscriber>> subs;
  for (int s = 0; s < cfg.subscribers; ++s) {
    subs.push_back(std::make_unique<Subscriber>(server.host(), server.port()));
    if (!subs.back()->Open(target, &error)) {
      std::cerr << "fan-out: subscriber " << s << ": " << error << "\n";
      return false;
    }
  }
  std::atomic<std::uint64_t> expected{UINT64_MAX};
  std::vector<std::thread> sub_threads;
  for (auto& s : subs) sub_threads.emplace_back([&s, &expected] { s->Follow(&expected); });

  // Writers: append k of writer w is due at start + (k * writers + w) / rate.
  std::cerr << "fan-out: " << cfg.subscribers << " subscribers, " << cfg.writers
            << " writers appending " << cfg.rate << " events/s for " << cfg.fanout_seconds
            << " s\n";
  std::vector<std::vector<Acked>> acked(cfg.writers);
  std::vector<std::string> writer_errors(cfg.writers);
  std::uint64_t per_writer =
      static_cast<std::uint64_t>(cfg.rate * cfg.fanout_seconds / cfg.writers);
  auto start = Clock::now() + std::chrono::milliseconds(100);
  std::vector<std::thread> writers;
  for (int w = 0; w < cfg.writers; ++w) {
    writers.emplace_back([&, w] {
      HttpClient client(server.host(), server.port());
      std::optional<std::uint64_t> last;
      std::string stream = "fanout-" + std::to_string(w);
      for (std::uint64_t k = 0; k < per_writer; ++k) {
        double due = static_cast<double>(k * static_cast<std::uint64_t>(cfg.writers) +
                                         static_cast<std::uint64_t>(w)) /
                     cfg.rate;
        std::this_thread::sleep_until(start + std::chrono::microseconds(
                                                  static_cast<std::int64_t>(due * 1e6)));
        int st = 0;
        std::string ans, err;
        std::int64_t sent = WallMicros();
        if (!client.Request(boost::beast::http::verb::post, "/v1/streams/" + stream,
                            AppendBody(1000 + w, k, 1, last), &st, &ans, &err) ||
            st != 201) {
          writer_errors[w] = err.empty() ? "answered " + std::to_string(st) + ": " + ans : err;
          return;
        }
        std::int64_t now = WallMicros();
        Json r = Json::parse(ans, nullptr, false);
        if (!r.is_object() || !r["position"].is_number()) {
          writer_errors[w] = "unexpected answer: " + ans;
          return;
        }
        acked[w].push_back(Acked{r["position"].get<std::uint64_t>(), sent, now});
        last = last ? *last + 1 : 0;
      }
    });
  }
  auto progress_start = Clock::now();
  for (auto& t : writers) t.join();
  std::vector<Acked> all;
  for (auto& a : acked) all.insert(all.end(), a.begin(), a.end());
  std::sort(all.begin(), all.end(),
            [](const Acked& a, const Acked& b) { return a.position < b.position; });
  double write_seconds = std::chrono::duration<double>(Clock::now() - progress_start).count();
  std::fprintf(stderr, "  writers done: %zu events acknowledged in %.1f s (%.0f events/s)\n",
               all.size(), write_seconds, static_cast<double>(all.size()) / write_seconds);
  expected.store(all.size());
  // Give the subscribers time to catch up, then stop any that still wait.
  auto deadline = Clock::now() + std::chrono::seconds(30);
  for (;;) {
    bool done = true;
    for (auto& s : subs) done = done && s->received() >= all.size();
    if (done || Clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& s : subs) s->Interrupt();
  for (auto& t : sub_threads) t.join();

  // Checks and latencies.
  std::unordered_map<std::uint64_t, const Acked*> by_position;
  for (const auto& a : all) by_position[a.position] = &a;
  std::vector<std::uint64_t> from_commit_ns, from_ack_ns;
  std::int64_t before_ack = 0;
  std::uint64_t received_total = 0;
  bool ok = true;
  Json per_sub = Json::array();
  for (std::size_t s = 0; s < subs.size(); ++s) {
    const auto& ev = subs[s]->events();
    received_total += ev.size();
    std::uint64_t out_of_order = 0, unexpected = 0, duplicates = 0;
    for (std::size_t i = 0; i < ev.size(); ++i) {
      if (i > 0 && ev[i].position == ev[i - 1].position) ++duplicates;
      else if (i > 0 && ev[i].position < ev[i - 1].position) ++out_of_order;
      auto it = by_position.find(ev[i].position);
      if (it == by_position.end()) {
        ++unexpected;
        continue;
      }
      from_commit_ns.push_back(
          static_cast<std::uint64_t>(std::max<std::int64_t>(0, ev[i].received_us - ev[i].recorded_at_us)) * 1000);
      std::int64_t d = ev[i].received_us - it->second->acked_us;
      if (d < 0) ++before_ack;
      from_ack_ns.push_back(static_cast<std::uint64_t>(std::max<std::int64_t>(0, d)) * 1000);
    }
    bool exact = ev.size() == all.size();
    for (std::size_t i = 0; exact && i < ev.size(); ++i) exact = ev[i].position == all[i].position;
    std::uint64_t missing = 0;
    if (!exact) {
      std::vector<std::uint64_t> got;
      for (const auto& e : ev) got.push_back(e.position);
      std::sort(got.begin(), got.end());
      for (const auto& a : all) {
        if (!std::binary_search(got.begin(), got.end(), a.position)) ++missing;
      }
    }
    Json j{{"received", ev.size()},     {"exactly_once_in_order", exact},
           {"missing", missing},        {"duplicates", duplicates},
           {"out_of_order", out_of_order}, {"unexpected", unexpected},
           {"errors", subs[s]->errors()}};
    if (!exact || !subs[s]->errors().empty()) ok = false;
    per_sub.push_back(j);
    if (!exact) {
      std::fprintf(stderr, "  subscriber %zu: received %zu of %zu (missing %llu, duplicates %llu,"
                           " out of order %llu)\n",
                   s, ev.size(), all.size(), static_cast<unsigned long long>(missing),
                   static_cast<unsigned long long>(duplicates),
                   static_cast<unsigned long long>(out_of_order));
    }
  }
  for (std::size_t w = 0; w < writer_errors.size(); ++w) {
    if (!writer_errors[w].empty()) {
      std::cerr << "  writer " << w << ": " << writer_errors[w] << "\n";
      ok = false;
    }
  }
  auto commit = bench::Summarize(from_commit_ns);
  auto after_ack = bench::Summarize(from_ack_ns);
  *out = Json{{"subscribers", cfg.subscribers},
              {"writers", cfg.writers},
              {"target_rate", cfg.rate},
              {"seconds", cfg.fanout_seconds},
              {"events_acknowledged", all.size()},
              {"achieved_rate", static_cast<double>(all.size()) / write_seconds},
              {"deliveries_expected", all.size() * subs.size()},
              {"deliveries_received", received_total},
              {"all_exactly_once_in_order", ok},
              {"latency_from_recorded_at", commit.ToJson()},
              {"latency_from_writer_ack", after_ack.ToJson()},
              {"deliveries_before_writer_ack", before_ack},
              {"per_subscriber", per_sub},
              {"writer_errors", writer_errors}};
  return ok;
}

// ---- Reporting -------------------------------------------------------------------------------

using bench::Fmt;

using bench::Count;

bool WriteMarkdown(const std::string& path, const std::string& run_name, const Json& out) {
  std::ostringstream md;
  const Json& m = out["machine"];
  md << "#### HTTP appends and subscription fan-out (" << run_name << " run, "
     << out["started_at"].get<std::string>() << ")\n\n";
  md << m["cores"].dump() << " cores, " << Fmt("%.1f", m["memory_gib"].get<double>()) << " GiB, "
     << m["cpu_model"].get<std::string>() << ", disk "
     << Count(m["fsyncs_per_second"].get<double>()) << " fdatasync/s; load average "
     << Fmt("%.2f", m["load_average"][0].get<double>()) << " at start, "
     << Fmt("%.2f", out["load_average_end"][0].get<double>()) << " at end";
  bool pg = out.contains("postgres");
  if (pg) {
    md << "; PostgreSQL " << out["postgres"].value("server_version", std::string("?"))
       << " (fsync=" << out["postgres"].value("fsync", std::string("?"))
       << ", synchronous_commit=" << out["postgres"].value("synchronous_commit", std::string("?"))
       << ", shared_buffers=" << out["postgres"].value("shared_buffers", std::string("?")) << ")";
  }
  const Json& cfg = out["config"];
  md << ". `timetrail serve` with its defaults; " << cfg["clients"].dump()
     << " keep-alive HTTP clients (Boost.Beast, one thread each) and " << cfg["clients"].dump()
     << " PostgreSQL connections, on the same 2 cores; " << cfg["rounds"].dump() << " round(s) of "
     << cfg["seconds_per_scenario"].dump()
     << " s per scenario and system; each figure is from the round with the median throughput,"
        " CPU shares are over all rounds.\n\n";
  md << "| conditional appends | timetrail HTTP events/s | p50 ms | p99 ms | events per fsync |"
        " server CPU | client CPU |";
  if (pg) md << " PostgreSQL events/s | p50 ms | p99 ms | timetrail / PostgreSQL |";
  md << "\n|---|--:|--:|--:|--:|--:|--:|";
  if (pg) md << "--:|--:|--:|--:|";
  md << "\n";
  for (const auto& r : out["appends"]) {
    const Json& tt = r["timetrail_http"];
    double secs = r["cpu_wall_seconds"].get<double>();
    md << "| " << r["label"].get<std::string>() << " | "
       << Count(tt["events_per_second"].get<double>()) << " | "
       << Fmt("%.2f", tt["latency"]["p50_us"].get<double>() / 1000) << " | "
       << Fmt("%.2f", tt["latency"]["p99_us"].get<double>() / 1000) << " | "
       << (r["events_per_fsync"].get<double>() < 0 ? std::string("-")
                                                  : Fmt("%.1f", r["events_per_fsync"].get<double>()))
       << " | " << Fmt("%.0f%%", 100 * r["server_cpu_seconds"].get<double>() / secs) << " | "
       << Fmt("%.0f%%", 100 * r["bench_cpu_seconds"].get<double>() / secs) << " |";
    if (pg && r.contains("postgres")) {
      const Json& p = r["postgres"];
      md << " " << Count(p["events_per_second"].get<double>()) << " | "
         << Fmt("%.2f", p["latency"]["p50_us"].get<double>() / 1000) << " | "
         << Fmt("%.2f", p["latency"]["p99_us"].get<double>() / 1000) << " | **"
         << Fmt("%.2f", r["ratio_events_per_second"].get<double>()) << "x** |";
    }
    md << "\n";
  }
  md << "\nCPU is the share of one core used by the server process and by the load generator's"
        " process during the timetrail run (200% is both cores).\n";
  const Json& f = out["fanout"];
  if (!f.is_null()) {
    const Json& c = f["latency_from_recorded_at"];
    const Json& a = f["latency_from_writer_ack"];
    md << "\nFan-out: " << f["subscribers"].dump() << " SSE subscribers, " << f["writers"].dump()
       << " writers appending single events at " << Count(f["achieved_rate"].get<double>())
       << " events/s for " << f["seconds"].dump() << " s (" << Count(f["events_acknowledged"].get<double>())
       << " events, " << Count(f["deliveries_received"].get<double>()) << " of "
       << Count(f["deliveries_expected"].get<double>())
       << " deliveries). Delivery latency from the event's `recorded_at` to the subscriber"
          " receiving it: **p50 "
       << Fmt("%.2f", c["p50_us"].get<double>() / 1000) << " ms, p99 "
       << Fmt("%.2f", c["p99_us"].get<double>() / 1000) << " ms, max "
       << Fmt("%.2f", c["max_us"].get<double>() / 1000)
       << " ms**; from the writer receiving its 201: p50 "
       << Fmt("%.2f", a["p50_us"].get<double>() / 1000) << " ms, p99 "
       << Fmt("%.2f", a["p99_us"].get<double>() / 1000) << " ms, max "
       << Fmt("%.2f", a["max_us"].get<double>() / 1000) << " ms ("
       << Fmt("%.0f", 100.0 * f["deliveries_before_writer_ack"].get<double>() /
                          std::max(1.0, f["deliveries_received"].get<double>()))
       << "% of deliveries arrived before the writer's 201, counted as 0).\n";
  }
  md << "\nGoals:\n";
  for (const auto& g : out["goals"]) {
    md << "- " << g["goal"].get<std::string>() << ": measured " << g["measured_text"].get<std::string>()
       << " — **" << (g["met"].get<bool>() ? "met" : "not met") << "**\n";
  }
  std::ofstream file(path);
  file << md.str();
  file.close();
  if (!file) {
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
  cfg.timetrail = flags.Get("timetrail", "");
  cfg.data_dir = flags.Get("data-dir", "");
  cfg.pg = flags.Get("pg", "");
  cfg.out = flags.Get("out", "");
  cfg.markdown = flags.Get("markdown", "");
  cfg.run_name = flags.Get("run-name", "custom");
  cfg.seconds = flags.GetDouble("seconds", cfg.seconds);
  cfg.rounds = static_cast<int>(flags.GetInt("rounds", cfg.rounds));
  cfg.fanout_seconds = flags.GetDouble("fanout-seconds", cfg.fanout_seconds);
  cfg.fsync_seconds = flags.GetDouble("fsync-seconds", cfg.fsync_seconds);
  cfg.rate = flags.GetDouble("rate", cfg.rate);
  cfg.clients = static_cast<int>(flags.GetInt("clients", cfg.clients));
  cfg.batch = static_cast<int>(flags.GetInt("batch", cfg.batch));
  cfg.subscribers = static_cast<int>(flags.GetInt("subscribers", cfg.subscribers));
  cfg.writers = static_cast<int>(flags.GetInt("writers", cfg.writers));
  if (!flags.CheckAllUsed()) return 2;
  if (cfg.timetrail.empty() || cfg.data_dir.empty()) {
    std::cerr << "http_bench: --timetrail and --data-dir are required (see --help)\n";
    return 2;
  }
  if (cfg.seconds <= 0 || cfg.rounds < 1 || cfg.fanout_seconds <= 0 || cfg.rate <= 0 || cfg.clients < 1 ||
      cfg.batch < 1 || cfg.batch > 10000 || cfg.subscribers < 1 || cfg.writers < 1 ||
      cfg.rate * cfg.fanout_seconds < cfg.writers) {
    std::cerr << "http_bench: --seconds, --rounds, --fanout-seconds, --rate, --clients, --subscribers and"
                 " --writers must be positive, --batch between 1 and 10000, and the fan-out must"
                 " give each writer at least one event\n";
    return 2;
  }
  std::error_code ec;
  namespace fs = std::filesystem;
  if (fs::exists(cfg.data_dir, ec) && !fs::is_empty(cfg.data_dir, ec)) {
    std::cerr << "http_bench: " << cfg.data_dir << " is not empty; give an empty or new directory\n";
    return 2;
  }
  fs::create_directories(cfg.data_dir, ec);
  signal(SIGPIPE, SIG_IGN);

  Json out;
  out["benchmark"] = "http";
  out["started_at"] = bench::UtcNow();
  out["machine"] = bench::DescribeMachine();
  std::cerr << "measuring the disk's fsync rate for " << cfg.fsync_seconds << "s\n";
  out["machine"]["fsyncs_per_second"] = bench::MeasureFsyncRate(cfg.data_dir, cfg.fsync_seconds);
  out["config"] = Json{{"seconds_per_scenario", cfg.seconds},
                       {"rounds", cfg.rounds},
                       {"clients", cfg.clients},
                       {"batch", cfg.batch},
                       {"subscribers", cfg.subscribers},
                       {"writers", cfg.writers},
                       {"fanout_rate", cfg.rate},
                       {"fanout_seconds", cfg.fanout_seconds},
                       {"event_type", bench::kEventType},
                       {"event_data_bytes", bench::EventData(0, 0, 0).size()},
                       {"event_metadata_bytes", std::string(bench::kEventMetadata).size()},
                       {"server", "timetrail serve --data DIR --listen 127.0.0.1:0 (defaults)"}};

  std::vector<std::unique_ptr<bench::PgConn>> conns;
  bool with_pg = !cfg.pg.empty();
  if (with_pg) {
    std::string error;
    auto admin = bench::PgConn::Connect(cfg.pg, &error);
    if (!admin || !bench::PgCreateEventsTable(*admin, &error)) {
      std::cerr << "http_bench: PostgreSQL: " << error << "\n";
      return 1;
    }
    out["postgres"] = bench::DescribePostgres(*admin);
    std::cerr << "connecting " << cfg.clients << " PostgreSQL clients\n";
    for (int t = 0; t < cfg.clients; ++t) {
      auto c = bench::PgConn::Connect(cfg.pg, &error);
      if (!c || !c->Exec("SET synchronous_commit = on", &error) ||
          !c->Prepare("insert1", bench::PgInsertSql(1), 5, &error) ||
          !c->Prepare("insert" + std::to_string(cfg.batch), bench::PgInsertSql(cfg.batch),
                      1 + 4 * cfg.batch, &error)) {
        std::cerr << "http_bench: PostgreSQL: " << error << "\n";
        return 1;
      }
      conns.push_back(std::move(c));
    }
  }

  std::string error;
  std::cerr << "starting " << cfg.timetrail << " serve\n";
  auto server = ServeProcess::Start(cfg.timetrail, cfg.data_dir + "/serve-data",
                                    cfg.data_dir + "/serve.log", &error);
  if (!server) {
    std::cerr << "http_bench: " << error << "\n";
    return 1;
  }
  std::cerr << "  listening on " << server->host() << ":" << server->port() << "\n";

  bool failed = false;
  std::vector<AppendRow> rows(2);
  rows[0].name = "single";
  rows[0].label = "single events, " + std::to_string(cfg.clients) + " clients";
  rows[0].batch = 1;
  rows[1].name = "batch";
  rows[1].label = std::to_string(cfg.batch) + "-event appends, " + std::to_string(cfg.clients) +
                  " clients";
  rows[1].batch = cfg.batch;
  Json appends = Json::array();
  for (auto& row : rows) {
    std::cerr << "scenario " << row.label << "\n";
    RunHttpAppends(*server, cfg, &row);
    Json j{{"name", row.name},
           {"label", row.label},
           {"batch", row.batch},
           {"timetrail_http", row.tt.ToJson()},
           {"server_cpu_seconds", row.server_cpu_seconds},
           {"bench_cpu_seconds", row.bench_cpu_seconds},
           {"cpu_wall_seconds", row.cpu_wall_seconds},
           {"fsyncs", row.fsyncs},
           {"events_per_fsync", row.events_per_fsync},
           {"streams_checked", row.streams_checked},
           {"streams_wrong", row.streams_wrong}};
    if (row.streams_wrong != 0) {
      j["check_error"] = row.check_error;
      std::cerr << "  read-back check failed: " << row.check_error << "\n";
      failed = true;
    }
    if (with_pg) {
      row.pg = RunPgAppends(conns, cfg, row);
      j["postgres"] = row.pg->ToJson();
      j["ratio_events_per_second"] =
          row.tt.events_per_second / std::max(1e-9, row.pg->events_per_second);
    }
    if (row.tt.errors != 0 || (row.pg && row.pg->errors != 0)) failed = true;
    j["load_average_after"] = bench::LoadAverage();
    appends.push_back(j);
  }
  out["appends"] = appends;

  std::cerr << "scenario fan-out\n";
  Json fanout;
  bool fanout_ok = RunFanOut(*server, cfg, &fanout);
  out["fanout"] = fanout;
  if (!fanout_ok) failed = true;
  int exit_status = server->Stop();
  out["server_exit_status"] = exit_status;
  if (exit_status != 0) {
    std::cerr << "http_bench: timetrail serve exited with " << exit_status << " (see "
              << cfg.data_dir << "/serve.log)\n";
    failed = true;
  }

  Json goals = Json::array();
  if (with_pg) {
    for (const auto& a : appends) {
      double ratio = a["ratio_events_per_second"].get<double>();
      goals.push_back(Json{{"goal", "HTTP " + a["label"].get<std::string>() +
                                        ": at least 5x PostgreSQL"},
                           {"measured", ratio},
                           {"measured_text", Fmt("%.2fx", ratio)},
                           {"met", ratio >= 5.0}});
    }
  }
  if (!fanout.is_null() && fanout.contains("deliveries_received")) {
    goals.push_back(Json{
        {"goal", "every subscriber receives every event exactly once, in order"},
        {"measured", fanout["deliveries_received"]},
        {"measured_text", Count(fanout["deliveries_received"].get<double>()) + " of " +
                              Count(fanout["deliveries_expected"].get<double>()) +
                              " deliveries"},
        {"met", fanout["all_exactly_once_in_order"].get<bool>()}});
  }
  out["goals"] = goals;
  out["finished_at"] = bench::UtcNow();
  out["load_average_end"] = bench::LoadAverage();

  std::printf("\n%-34s %12s %9s %9s", "HTTP appends", "tt ev/s", "tt p50us", "tt p99us");
  if (with_pg) std::printf(" %12s %9s %9s %8s", "pg ev/s", "pg p50us", "pg p99us", "ratio");
  std::printf("\n");
  for (const auto& row : rows) {
    std::printf("%-34s %12.0f %9.0f %9.0f", row.label.c_str(), row.tt.events_per_second,
                row.tt.latency.p50_us, row.tt.latency.p99_us);
    if (row.pg) {
      std::printf(" %12.0f %9.0f %9.0f %7.2fx", row.pg->events_per_second, row.pg->latency.p50_us,
                  row.pg->latency.p99_us,
                  row.tt.events_per_second / std::max(1e-9, row.pg->events_per_second));
    }
    std::printf("\n");
  }
  if (fanout.contains("latency_from_recorded_at")) {
    const Json& c = fanout["latency_from_recorded_at"];
    std::printf("fan-out to %d subscribers: latency from recorded_at p50 %.0f us, p99 %.0f us,"
                " max %.0f us; %s\n",
                cfg.subscribers, c["p50_us"].get<double>(), c["p99_us"].get<double>(),
                c["max_us"].get<double>(),
                fanout["all_exactly_once_in_order"].get<bool>() ? "every event exactly once, in order"
                                                                : "DELIVERY CHECK FAILED");
  }
  for (const auto& g : goals) {
    std::printf("goal %s: measured %s  %s\n", g["goal"].get<std::string>().c_str(),
                g["measured_text"].get<std::string>().c_str(),
                g["met"].get<bool>() ? "MET" : "NOT MET");
  }
  if (!cfg.out.empty() && !bench::WriteJson(cfg.out, out)) return 1;
  if (!cfg.markdown.empty() && !WriteMarkdown(cfg.markdown, cfg.run_name, out)) return 1;
  if (failed) {
    std::cerr << "http_bench: some calls or checks failed (see the results)\n";
    return 1;
  }
  return 0;
}
