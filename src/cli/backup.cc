// Backup and restore copy a data directory file by file while holding it closed: the store is
// opened once first (recovering its write-ahead log and checking the head against the log),
// closed, then its lock file is held for the copy so no server can open it midway. The copy is
// then opened and its integrity chain verified before the command reports success, so a backup
// that exists is a backup that opens.
#include "cli/backup.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>

#include "cli/output.h"
#include "server/raw_json.h"
#include "timetrail/store.h"

namespace timetrail::cli {
namespace {

namespace fs = std::filesystem;

int ExitFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kUnavailable:
      return kExitUnavailable;
    case StatusCode::kNotFound:
      return kExitNotFound;
    case StatusCode::kInvalidArgument:
      return kExitBadInput;
    default:
      return kExitFailure;
  }
}

// Opens an existing store, verifies its chain, and returns its last position.
Result<Position> OpenAndVerify(const std::string& dir) {
  Options options;
  options.create_if_missing = false;
  Result<std::unique_ptr<EventStore>> store = EventStore::Open(options, dir);
  if (!store.ok()) {
    if (store.status().code() == StatusCode::kUnavailable) {
      return Status::Unavailable("'" + dir +
                                 "' is in use by a running timetrail process; stop the server "
                                 "(SIGTERM) first: a backup copies a closed data directory");
    }
    return store.status();
  }
  Result<VerifyReport> report = (*store)->Verify(VerifyOptions{});
  if (!report.ok()) return report.status();
  if (!report->ok) {
    return Status::Corruption("the integrity chain of '" + dir + "' does not verify: " +
                              report->message);
  }
  return (*store)->LastPosition();
}

// Holds the store's lock file (the same advisory lock the storage engine takes) so that no
// server opens the directory while it is copied.
class DirLock {
 public:
  explicit DirLock(const std::string& dir) {
    fd_ = ::open((fs::path(dir) / "LOCK").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return;
    struct flock f {};
    f.l_type = F_WRLCK;
    f.l_whence = SEEK_SET;
    if (::fcntl(fd_, F_SETLK, &f) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

Status SyncPath(const fs::path& p, bool directory) {
  int fd = ::open(p.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot open '" + p.string() + "' to sync it");
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::IOError("cannot sync '" + p.string() + "'");
  return Status::Ok();
}

// Copies every file of "from" except the lock into the new directory "to", syncing each file
// and directory so the copy survives a crash right after the command returns.
Status CopyStore(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec) return Status::IOError("cannot create '" + to + "': " + ec.message());
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(from, ec)) {
    fs::path rel = fs::relative(e.path(), from, ec);
    if (ec) break;
    fs::path target = fs::path(to) / rel;
    if (e.is_directory()) {
      fs::create_directories(target, ec);
    } else if (rel != "LOCK") {
      fs::copy_file(e.path(), target, fs::copy_options::none, ec);
      if (!ec) TT_RETURN_IF_ERROR(SyncPath(target, false));
    }
    if (ec) return Status::IOError("cannot copy '" + e.path().string() + "': " + ec.message());
  }
  if (ec) return Status::IOError("cannot read '" + from + "': " + ec.message());
  return SyncPath(to, true);
}

// "to" must not exist, or be an empty directory: nothing is ever overwritten.
Status CheckDestination(const std::string& to, const char* what) {
  std::error_code ec;
  if (!fs::exists(to, ec)) return Status::Ok();
  if (fs::is_directory(to, ec) && fs::is_empty(to, ec)) return Status::Ok();
  return Status::InvalidArgument(std::string(what) + " '" + to +
                                 "' already exists and is not empty; name a new directory");
}

int Copy(const char* cmd, const std::string& from, const std::string& to, const char* to_what) {
  auto fail = [cmd](const Status& s) {
    std::cerr << "timetrail " << cmd << ": " << s.ToString() << "\n";
    return ExitFor(s);
  };
  if (Status s = CheckDestination(to, to_what); !s.ok()) return fail(s);
  std::error_code ec;
  if (fs::equivalent(from, to, ec)) {
    return fail(Status::InvalidArgument("source and destination are the same directory"));
  }
  Result<Position> last = OpenAndVerify(from);
  if (!last.ok()) return fail(last.status());
  {
    DirLock lock(from);
    if (!lock.held()) {
      return fail(Status::Unavailable("'" + from + "' was opened by another process meanwhile"));
    }
    bool existed = fs::exists(to, ec);
    Status s = CopyStore(from, to);
    if (!s.ok()) {
      if (!existed) fs::remove_all(to, ec);
      return fail(s);
    }
  }
  Result<Position> copied = OpenAndVerify(to);
  if (!copied.ok()) return fail(copied.status());
  if (*copied != *last) {
    return fail(Status::Corruption("the copy ends at position " + std::to_string(*copied) +
                                   ", the original at " + std::to_string(*last)));
  }
  std::cout << cmd << ": copied '" << from << "' to '" << to << "'; last position " << *last
            << ", integrity chain verified" << std::endl;
  return kExitOk;
}

// Asks a running server to write a checkpoint of its store (POST /v1/backup).
int OnlineBackup(const CommonOptions& o, const std::string& to) {
  Result<std::unique_ptr<Backend>> backend = OpenBackend(o.target, false);
  if (!backend.ok()) return ReportStatus("backup", backend.status());
  std::string raw;
  server::RawJson res;
  int code = CallJson(**backend, "backup", o, "POST", "/v1/backup",
                      "{\"to\":" + server::JsonQuote(to) + "}", {}, &raw, &res);
  if (code != kExitOk) return code;
  if (o.json) {
    std::cout << OneLine(raw) << "\n";
  } else {
    std::cout << "backup: " << (*backend)->Describe() << " wrote '" << to
              << "'; last position " << Uint(res, "position") << ", integrity chain verified ("
              << Uint(res, "events_checked") << " events)" << std::endl;
  }
  return kExitOk;
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
  backup->add_option("--to", *to,
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
      "  timetrail backup --to timetrail-2026-11-23 --token $ADMIN   # serve --backup-dir /backups\n"
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
  CLI::App* restore = app.add_subcommand(
      "restore", "Copy a backup into a new data directory and verify it");
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
}

}  // namespace timetrail::cli
