// Backup and restore of a data directory no server holds: the store is opened (which recovers
// its write-ahead log, checks the head against the log and holds the directory's lock, so no
// server can open it meanwhile), then EventStore::Backup writes a checkpoint of it into the new
// directory and verifies that copy. A backup that exists is a backup that opens. The same
// mechanism serves online backups, through a running server (POST /v1/backup).
#include "cli/backup.h"

#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>

#include "cli/output.h"
#include "json/json_writer.h"
#include "json/raw_json.h"
#include "timetrail/copy.h"
#include "timetrail/store.h"

namespace timetrail::cli {
namespace {

namespace fs = std::filesystem;

// Copies the store in "from" into the new directory "to" (which may exist if empty); returns
// the last position of the copy.
Result<Position> CopyStore(const std::string& from, const std::string& to, const char* to_what) {
  std::error_code ec;
  if (fs::exists(to, ec)) {
    if (!fs::is_directory(to, ec) || !fs::is_empty(to, ec)) {
      return Status::InvalidArgument(std::string(to_what) + " '" + to +
                                     "' already exists and is not empty; name a new directory");
    }
    if (fs::equivalent(from, to, ec)) {
      return Status::InvalidArgument("source and destination are the same directory");
    }
    fs::remove(to, ec);  // the checkpoint creates it
  }
  Options options;
  options.create_if_missing = false;
  Result<std::unique_ptr<EventStore>> store = EventStore::Open(options, from);
  if (!store.ok()) {
    if (store.status().code() == StatusCode::kUnavailable) {
      return Status::Unavailable("'" + from +
                                 "' is in use by a running timetrail process; stop the server "
                                 "(SIGTERM) first, or back up through it: timetrail backup "
                                 "--server URL --to NAME");
    }
    return store.status();
  }
  Position last = (*store)->LastPosition();
  Result<VerifyReport> copy = (*store)->Backup(fs::absolute(to).lexically_normal().string());
  if (!copy.ok()) return copy.status();
  if (copy->head.position != last) {
    return Status::Corruption("the copy ends at position " + std::to_string(copy->head.position) +
                              ", the original at " + std::to_string(last));
  }
  return last;
}

int Copy(const char* cmd, const std::string& from, const std::string& to, const char* to_what) {
  Result<Position> last = CopyStore(from, to, to_what);
  if (!last.ok()) return ReportStatus(cmd, last.status());
  std::cout << cmd << ": copied '" << from << "' to '" << to << "'; last position " << *last
            << ", integrity chain verified" << std::endl;
  return kExitOk;
}

// Asks a running server to write a checkpoint of its store (POST /v1/backup).
int OnlineBackup(const CommonOptions& o, const std::string& to) {
  Result<std::unique_ptr<Backend>> backend = OpenBackend(o.target, Access::kWrite);
  if (!backend.ok()) return ReportStatus("backup", backend.status());
  std::string raw;
  json::RawJson res;
  int code = CallJson(**backend, "backup", o, "POST", "/v1/backup",
                      "{\"to\":" + json::JsonQuote(to) + "}", {}, &raw, &res);
  if (code != kExitOk) return code;
  if (o.json) {
    std::cout << OneLine(raw) << "\n";
  } else {
    std::cout << "backup: " << (*backend)->Describe() << " wrote '" << to << "'; last position "
              << Uint(res, "position") << ", integrity chain verified ("
              << Uint(res, "events_checked") << " events)" << std::endl;
  }
  return kExitOk;
}

// `timetrail copy-store`: a whole store from one location to another (a data directory or a
// PostgreSQL database, either way), verified by its chain (include/timetrail/copy.h).
void AddCopyStoreCommand(CLI::App& app) {
  struct Args {
    std::string from, to;
    std::string from_schema = "timetrail_store";
    std::string to_schema = "timetrail_store";
    bool progress = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "copy-store",
      "Copy a whole store between a data directory and a PostgreSQL database (either way), "
      "keeping every position, time, hash and token, and verify the copy by its chain");
  cmd->add_option("--from", a->from, "The store to copy: a data directory or postgresql:// URL")
      ->required();
  cmd->add_option("--to", a->to,
                  "Where to copy it: a new data directory, or a postgresql:// URL whose schema "
                  "holds no store yet")
      ->required();
  cmd->add_option("--from-schema", a->from_schema, "The source's schema, for a PostgreSQL store")
      ->capture_default_str();
  cmd->add_option("--to-schema", a->to_schema, "The copy's schema, for a PostgreSQL store")
      ->capture_default_str();
  cmd->add_flag("--progress", a->progress, "Report keys and bytes copied as it goes");
  cmd->footer(
      "Stop the server that writes the source first; the copy refuses to finish if the\n"
      "source moved meanwhile. Examples:\n"
      "  timetrail copy-store --from ./timetrail-data --to postgresql://tt@db/shop "
      "--to-schema shop_events\n"
      "  timetrail copy-store --from postgresql://tt@db/shop --from-schema shop_events --to "
      "./back-home\n"
      "See docs/postgresql-store.md, \"Moving a store\".");
  cmd->callback([a] {
    CopyStoreOptions o;
    o.from.postgres_schema = a->from_schema;
    o.to.postgres_schema = a->to_schema;
    const bool tty = ::isatty(STDERR_FILENO) == 1;
    if (a->progress || tty) {
      o.progress = [tty](std::uint64_t keys, std::uint64_t bytes) {
        std::cerr << (tty ? "\r" : "") << "copied " << keys << " keys, " << bytes / (1 << 20)
                  << " MiB" << (tty ? "" : "\n") << std::flush;
      };
    }
    Result<CopyStoreReport> r = CopyStore(a->from, a->to, o);
    if (o.progress && tty) std::cerr << "\n";
    if (!r.ok()) throw CLI::RuntimeError(ReportStatus("copy-store", r.status()));
    std::cout << "copied " << r->keys << " keys (" << r->bytes
              << " bytes); the copy verifies: " << r->verify.events_checked
              << " events, chain head at position " << r->head.position << " " << r->head.hash_hex
              << std::endl;
  });
}

}  // namespace

void AddBackupCommands(CLI::App& app) {
  auto common = std::make_shared<CommonOptions>();
  auto to = std::make_shared<std::string>();
  CLI::App* backup = app.add_subcommand(
      "backup",
      "Copy a store into a new directory and verify the copy: through a running server, or "
      "from a data directory no server holds");
  AddCommonOptions(backup, common.get());
  backup->get_option("--data")->envname("TIMETRAIL_DATA");
  backup
      ->add_option("--to", *to,
                   "New directory for the backup (must not exist or be empty); with a server, "
                   "a new directory name inside the server's --backup-dir")
      ->required();
  backup->footer(
      "With --server (the default) the running server writes a consistent copy while it keeps\n"
      "serving, into its --backup-dir (POST /v1/backup; an admin token when authentication is\n"
      "on); on the same file system the copy's files are hard links. With --data, the\n"
      "directory must not be held by\n"
      "a server (exit 5 if it is). The backup is itself a data directory: `timetrail restore`\n"
      "copies it back, or serve it directly with `timetrail serve --data BACKUP`.\n"
      "Examples:\n"
      "  timetrail backup --to timetrail-2026-11-23 --token $ADMIN   # serve --backup-dir "
      "/backups\n"
      "  timetrail backup --data /var/lib/timetrail --to /backups/timetrail-2026-11-23\n"
      "See docs/operations.md.");
  backup->callback([common, to] {
    int code = common->target.data_dir.empty()
                   ? OnlineBackup(*common, *to)
                   : Copy("backup", common->target.data_dir, *to, "backup directory");
    if (code != 0) throw CLI::RuntimeError(code);
  });

  auto from = std::make_shared<std::string>();
  auto into = std::make_shared<std::string>();
  CLI::App* restore =
      app.add_subcommand("restore", "Copy a backup into a new data directory and verify it");
  restore->add_option("--from", *from, "A directory written by `timetrail backup`")->required();
  restore->add_option("--data", *into, "New data directory (must not exist or be empty)")
      ->envname("TIMETRAIL_DATA")
      ->required();
  restore->footer(
      "Example:\n"
      "  timetrail restore --from /backups/timetrail-2026-11-23 --data /var/lib/timetrail-new\n"
      "  timetrail serve --data /var/lib/timetrail-new\n"
      "See docs/operations.md.");
  restore->callback([from, into] {
    int code = Copy("restore", *from, *into, "data directory");
    if (code != 0) throw CLI::RuntimeError(code);
  });

  AddCopyStoreCommand(app);
}

}  // namespace timetrail::cli
