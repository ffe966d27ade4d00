#include "capture/capture_command.h"

#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>

#include "capture/capture.h"
#include "capture/pgoutput.h"
#include "timetrail/store.h"

namespace timetrail::capture {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void OnStopSignal(int) { g_stop.store(true); }

struct CaptureArgs {
  std::string url;
  std::string data_dir;
  CaptureOptions options;
  std::string tables;
  double progress_seconds = 5;
};

std::string Line(const CaptureStats& s, double changes_per_second) {
  double lag_seconds = 0;
  if (s.lag_bytes() > 0 && s.last_commit_micros > 0) {
    lag_seconds = static_cast<double>(Now().micros - s.last_commit_micros) / 1e6;
  }
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "capture: %llu transactions, %llu changes stored (%.0f changes/s); stored to %s, "
                "source at %s, lag %llu bytes %.1f s",
                static_cast<unsigned long long>(s.transactions),
                static_cast<unsigned long long>(s.changes), changes_per_second,
                FormatLsn(s.stored_lsn).c_str(), FormatLsn(s.server_lsn).c_str(),
                static_cast<unsigned long long>(s.lag_bytes()), lag_seconds);
  return buf;
}

int RunCapture(CaptureArgs& args) {
  args.options.source_url = args.url;
  if (!args.tables.empty()) {
    std::string cur;
    for (char c : args.tables + ",") {
      if (c == ',') {
        if (!cur.empty()) args.options.tables.push_back(cur);
        cur.clear();
      } else {
        cur.push_back(c);
      }
    }
  }
  args.options.log = [](const std::string& line) { std::cerr << "capture: " << line << "\n"; };
  auto store = EventStore::Open(Options{}, args.data_dir);
  if (!store.ok()) {
    std::cerr << "error: cannot open the store in " << args.data_dir << ": "
              << store.status().ToString() << "\n";
    return 1;
  }
  Capture capture(store->get(), args.options);
  if (Status s = capture.Prepare(); !s.ok()) {
    std::cerr << "error: " << s.ToString() << "\n";
    return 1;
  }
  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGTERM, OnStopSignal);
  std::cerr << "capture: slot " << args.options.slot << ", publication "
            << args.options.publication << ", into " << args.data_dir << " (Ctrl-C stops)\n";
  std::atomic<bool> done{false};
  std::thread progress([&] {
    auto last = capture.stats();
    auto last_time = std::chrono::steady_clock::now();
    auto period = std::chrono::milliseconds(static_cast<long>(args.progress_seconds * 1000));
    while (!done.load()) {
      auto until = std::chrono::steady_clock::now() + period;
      while (!done.load() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (done.load()) break;
      auto now = std::chrono::steady_clock::now();
      auto s = capture.stats();
      double secs = std::chrono::duration<double>(now - last_time).count();
      std::cerr << Line(s, secs > 0 ? static_cast<double>(s.changes - last.changes) / secs : 0)
                << "\n";
      last = s;
      last_time = now;
    }
  });
  Status s = capture.Run(g_stop);
  done.store(true);
  progress.join();
  std::cerr << Line(capture.stats(), 0) << "\n";
  if (!s.ok()) {
    std::cerr << "error: " << s.ToString() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

void AddCaptureCommand(CLI::App& app) {
  auto args = std::make_shared<CaptureArgs>();
  CLI::App* cmd = app.add_subcommand(
      "capture",
      "Record every row change of a PostgreSQL database, read from its write-ahead log "
      "(logical replication). Needs wal_level=logical and a role with REPLICATION; see "
      "docs/capture.md.");
  cmd->add_option("postgres-url", args->url,
                  "Source database, e.g. postgresql://capture@localhost/shop")
      ->required();
  cmd->add_option("--data", args->data_dir, "timetrail data directory to record into")->required();
  cmd->add_option("--slot", args->options.slot,
                  "Replication slot to create or reuse (default: timetrail)");
  cmd->add_option("--publication", args->options.publication,
                  "Publication to create or reuse (default: timetrail)");
  cmd->add_option("--tables", args->tables,
                  "Comma-separated schema.table names to capture when the publication is created "
                  "(default: all tables)");
  cmd->add_option("--table-pattern", args->options.table_pattern,
                  "LIKE pattern on schema.table, e.g. 'public.%', instead of --tables");
  cmd->add_option("--prefix", args->options.prefix, "Prefix for every stream name");
  cmd->add_flag("--snapshot", args->options.snapshot,
                "When the slot is created, first record the tables' current rows");
  cmd->add_option("--progress-seconds", args->progress_seconds,
                  "Seconds between progress and lag lines on stderr (default: 5)");
  cmd->callback([args]() {
    int rc = RunCapture(*args);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace timetrail::capture
