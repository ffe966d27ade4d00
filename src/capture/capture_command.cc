#include "capture/capture_command.h"

#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "capture/capture.h"
#include "capture/pgoutput.h"
#include "capture/source_revert.h"
#include "storage/postgres_engine.h"
#include "timetrail/store.h"

namespace timetrail::capture {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void OnStopSignal(int) { g_stop.store(true); }

// Where the capture's store is: a data directory (--data), or a store kept in PostgreSQL
// (--store, --store-schema; docs/postgresql-store.md).
struct StoreTarget {
  std::string data_dir;
  std::string store_url;
  std::string store_schema = "timetrail_store";

  std::string Describe() const {
    return store_url.empty() ? "data directory '" + data_dir + "'"
                             : DescribePostgresStore(store_url, store_schema);
  }
};

void AddStoreTargetOptions(CLI::App* cmd, StoreTarget* target, const std::string& data_help) {
  cmd->add_option("--data", target->data_dir, data_help);
  cmd->add_option("--store", target->store_url,
                  "Or a store kept in PostgreSQL (postgresql://...; docs/postgresql-store.md)")
      ->envname("TIMETRAIL_STORE");
  cmd->add_option("--store-schema", target->store_schema, "Schema of --store that holds the store")
      ->envname("TIMETRAIL_STORE_SCHEMA")
      ->capture_default_str();
}

// The store the flags name; kInvalidArgument when they name none, both, or a bad URL.
Result<std::unique_ptr<EventStore>> OpenTarget(const StoreTarget& target, Options options) {
  if (target.data_dir.empty() == target.store_url.empty()) {
    return Status::InvalidArgument("give the store as either --data DIR or --store URL");
  }
  if (!target.store_url.empty() && !IsPostgresUrl(target.store_url)) {
    return Status::InvalidArgument("--store must be a postgresql:// URL, got '" + target.store_url +
                                   "' (a data directory goes in --data)");
  }
  options.postgres_schema = target.store_schema;
  auto store =
      EventStore::Open(options, target.store_url.empty() ? target.data_dir : target.store_url);
  if (!store.ok()) return store.status().WithPrefix("cannot open the " + target.Describe());
  return store;
}

struct CaptureArgs {
  std::string url;
  StoreTarget target;
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
  // A store in the source database must not record its own tables' changes.
  if (!args.target.store_url.empty()) args.options.skip_schemas.push_back(args.target.store_schema);
  auto store = OpenTarget(args.target, Options{});
  if (!store.ok()) {
    std::cerr << "error: " << store.status().ToString() << "\n";
    return store.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  Capture capture(store->get(), args.options);
  if (Status s = capture.Prepare(); !s.ok()) {
    std::cerr << "error: " << s.ToString() << "\n";
    return 1;
  }
  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGTERM, OnStopSignal);
  std::cerr << "capture: slot " << args.options.slot << ", publication " << args.options.publication
            << ", into the " << args.target.Describe() << " (Ctrl-C stops)\n";
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

struct RevertArgs {
  std::string url;
  StoreTarget target;
  std::vector<std::string> streams;
  std::string to;
  std::string table, from, until, changes_by;
  std::optional<std::uint64_t> xid;
  SourceRevertOptions options;
};

int RunRevert(RevertArgs& args) {
  args.options.source_url = args.url;
  bool filtered = !args.table.empty();
  if (filtered == !args.streams.empty() || (!filtered && args.to.empty())) {
    std::cerr << "error: give either STREAM... with --to TIME, or --table with --changes-by, "
                 "--xid, --from and/or --until\n";
    return 2;
  }
  auto parse_time = [](const std::string& text, const char* what, Timestamp* out) {
    auto t = ParseTimestamp(text);
    if (!t.ok()) {
      std::cerr << "error: " << what << ": " << t.status().message() << "\n";
      return false;
    }
    *out = *t;
    return true;
  };
  if (!args.to.empty() && !parse_time(args.to, "--to", &args.options.to)) return 2;
  RowFilter filter;
  filter.table = args.table;
  filter.xid = args.xid;
  if (!args.changes_by.empty()) filter.actor = args.changes_by;
  Timestamp t;
  if (!args.from.empty()) {
    if (!parse_time(args.from, "--from", &t)) return 2;
    filter.from = t;
  }
  if (!args.until.empty()) {
    if (!parse_time(args.until, "--until", &t)) return 2;
    filter.until = t;
  }
  // The store is only read (the capture records the revert): read-only, so that it works while
  // the capture holds the directory.
  Options store_options;
  store_options.read_only = true;
  auto store = OpenTarget(args.target, store_options);
  if (!store.ok()) {
    std::cerr << "error: " << store.status().ToString() << "\n";
    return store.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  auto result = filtered ? RevertFilteredInSource(**store, filter, args.options)
                         : RevertInSource(**store, args.streams, args.options);
  if (!result.ok()) {
    std::cerr << "error: " << result.status().ToString() << "\n";
    return result.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  if (result->statements.empty()) {
    std::cerr << "nothing matches: no row to revert\n";
    return 0;
  }
  if (args.options.dry_run) {
    for (const auto& s : result->statements) std::cout << s << ";\n";
  } else {
    std::cerr << "reverted " << result->rows_changed << " row(s) in the source\n";
  }
  return 0;
}

}  // namespace

void AddRevertSourceCommand(CLI::App& app) {
  auto args = std::make_shared<RevertArgs>();
  CLI::App* cmd = app.add_subcommand(
      "revert-source",
      "Put captured PostgreSQL rows back as they were, in the source database, in one "
      "transaction the capture then records (with a context saying it is a revert).\n"
      "  timetrail revert-source postgresql://app@db/shop --data ./audit public.orders/42 "
      "--to 2026-11-22T13:00:00Z\n"
      "  timetrail revert-source postgresql://app@db/shop --data ./audit --table public.orders "
      "--changes-by mallory --dry-run");
  cmd->add_option("postgres-url", args->url, "Source database")->required();
  cmd->add_option("streams", args->streams, "Row streams to revert, e.g. public.orders/42");
  AddStoreTargetOptions(cmd, &args->target, "timetrail data directory holding the capture");
  cmd->add_option("--to", args->to, "Source time to go back to (RFC 3339) for the STREAMs");
  cmd->add_option("--table", args->table,
                  "Revert every row of this schema.table with a matching change to its state "
                  "just before that change");
  cmd->add_option("--changes-by", args->changes_by, "Only changes whose context actor is this");
  cmd->add_option("--xid", args->xid, "Only changes of this source transaction id");
  cmd->add_option("--from", args->from, "Only changes committed at or after this time");
  cmd->add_option("--until", args->until, "Only changes committed before this time");
  cmd->add_option("--prefix", args->options.prefix, "The capture's --prefix, if it had one");
  // --actor, as `timetrail revert` names it; --as is the name earlier releases used.
  cmd->add_option("--actor,--as", args->options.actor,
                  "Actor recorded for the revert (default: \"timetrail revert\")");
  cmd->add_option("--reason", args->options.reason, "Reason recorded for the revert");
  cmd->add_flag("--dry-run", args->options.dry_run, "Print the SQL instead of running it");
  cmd->callback([args]() {
    int rc = RunRevert(*args);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

void AddCaptureCommand(CLI::App& app) {
  AddRevertSourceCommand(app);
  auto args = std::make_shared<CaptureArgs>();
  CLI::App* cmd = app.add_subcommand(
      "capture",
      "Record every row change of a PostgreSQL database, read from its write-ahead log "
      "(logical replication). Needs wal_level=logical and a role with REPLICATION; see "
      "docs/capture.md.");
  cmd->add_option("postgres-url", args->url,
                  "Source database, e.g. postgresql://capture@localhost/shop")
      ->required();
  AddStoreTargetOptions(cmd, &args->target, "timetrail data directory to record into");
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
