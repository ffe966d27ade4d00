// Helpers shared by the capture tests: run a capture in a thread, wait for it to catch up with
// the source, fold a row's stream.
#ifndef TIMETRAIL_TESTS_CAPTURE_CAPTURE_TEST_UTIL_H_
#define TIMETRAIL_TESTS_CAPTURE_CAPTURE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "capture/capture.h"
#include "capture/pgoutput.h"
#include "support/postgres_cluster.h"
#include "timetrail/store.h"

namespace timetrail::testing {

using nlohmann::json;

// Capture options for "pg" as "user", with short status and reconnect intervals, logging to
// stderr.
inline capture::CaptureOptions OptionsFor(const PostgresCluster& pg,
                                          const std::string& user = "postgres") {
  capture::CaptureOptions o;
  o.source_url = pg.Url(user);
  o.status_interval = std::chrono::milliseconds(200);
  o.reconnect_delay = std::chrono::milliseconds(200);
  o.log = [](const std::string& line) { std::fprintf(stderr, "capture: %s\n", line.c_str()); };
  return o;
}

inline std::unique_ptr<EventStore> OpenStore(const std::string& dir) {
  auto s = EventStore::Open(Options{}, dir);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

inline void LoadContextHelper(const PostgresCluster& pg) {
  std::ifstream f(std::string(TIMETRAIL_SOURCE_DIR) + "/sql/timetrail_context.sql");
  std::stringstream ss;
  ss << f.rdbuf();
  pg.Exec(ss.str());
}

// Runs Capture::Run on a thread until Stop() or destruction.
class CaptureThread {
 public:
  CaptureThread(EventStore* store, capture::CaptureOptions options)
      : capture_(store, std::move(options)) {}
  ~CaptureThread() { (void)Stop(); }

  Status Prepare() { return capture_.Prepare(); }
  void Start() {
    thread_ = std::thread([this] { result_ = capture_.Run(stop_); });
  }
  Status Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    return result_;
  }
  capture::Capture& capture() { return capture_; }

  // Waits (bounded) until everything the source has written so far is stored.
  bool WaitCaughtUp(const PostgresCluster& pg,
                    std::chrono::seconds limit = std::chrono::seconds(60)) {
    auto target = capture::ParseLsn(pg.Scalar("SELECT pg_current_wal_insert_lsn()"));
    if (!target.ok()) return false;
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (capture_.stats().stored_lsn >= *target) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

 private:
  capture::Capture capture_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  Status result_;
};

inline std::vector<RecordedEvent> ReadAll(const EventStore& store, const std::string& stream) {
  ReadStreamOptions o;
  o.max_count = 1000000;
  auto r = store.ReadStream(stream, o);
  if (!r.ok()) return {};
  return *r;
}

// The document fold of a stream; nullopt when the row does not exist.
inline std::optional<json> Fold(const EventStore& store, const std::string& stream) {
  std::optional<json> state;
  for (const auto& e : ReadAll(store, stream)) {
    if (e.type == "$put") {
      state = json::parse(e.data);
    } else if (e.type == "$patch") {
      if (!state) state = json::object();
      state->merge_patch(json::parse(e.data));
    } else if (e.type == "$delete") {
      state.reset();
    }
  }
  return state;
}

inline std::vector<RecordedEvent> Log(const EventStore& store) {
  ReadLogOptions o;
  o.max_count = SIZE_MAX;
  auto page = store.ReadLog(o);
  EXPECT_TRUE(page.ok()) << page.status().ToString();
  return page.ok() ? page->events : std::vector<RecordedEvent>{};
}

}  // namespace timetrail::testing

#endif  // TIMETRAIL_TESTS_CAPTURE_CAPTURE_TEST_UTIL_H_
