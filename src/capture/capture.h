// Change capture: records every row change of a PostgreSQL database in an EventStore, reading
// the write-ahead log through logical replication (the built-in "pgoutput" plugin).
//
//   timetrail::capture::CaptureOptions o;
//   o.source_url = "postgresql://capture@db.example/shop";
//   timetrail::capture::Capture capture(store.get(), o);
//   if (Status s = capture.Prepare(); !s.ok()) { /* s.message() says what the source lacks */ }
//   std::atomic<bool> stop{false};
//   Status s = capture.Run(stop);   // until "stop" becomes true or an unrecoverable error
//
// Each source transaction becomes one timetrail transaction (see docs/capture.md for the
// mapping), written with the source position in the same atomic write under the checkpoint
// "capture/<slot>", so a restart resumes exactly after the last stored transaction. The slot's
// flushed position is confirmed to PostgreSQL only after the events are durable.
//
// Thread safety: Run is called from one thread; stats() may be called from any thread.
#ifndef TIMETRAIL_CAPTURE_CAPTURE_H_
#define TIMETRAIL_CAPTURE_CAPTURE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "timetrail/status.h"
#include "timetrail/store.h"

namespace timetrail::capture {

// Intentionally copyable.
struct CaptureOptions {
  // libpq connection URL or "key=value" string of the source database.
  std::string source_url;
  // Replication slot and publication; created when missing, reused when present.
  std::string slot = "timetrail";
  std::string publication = "timetrail";
  // Tables to capture when the publication is created: "schema.table" names, or a LIKE pattern
  // on "schema.table" (e.g. "public.%"). Both empty: all tables.
  std::vector<std::string> tables;
  std::string table_pattern;
  // Put in front of every stream name.
  std::string prefix;
  // Schemas whose tables are never recorded, even when the publication has them: the schema
  // of a store kept in PostgreSQL in the source database itself, whose own writes would
  // otherwise come back as changes to record, without end.
  std::vector<std::string> skip_schemas;
  // When the slot is created: first record the captured tables' current rows, read from the
  // snapshot the slot starts at.
  bool snapshot = false;
  // How often a status update goes to the source even without a keepalive asking for one.
  std::chrono::milliseconds status_interval{10000};
  // Pause before reconnecting after the connection broke.
  std::chrono::milliseconds reconnect_delay{1000};
  // Give up after this many failed reconnects in a row (-1: never).
  int max_reconnects = -1;
  // Receives one line per notable happening (slot created, reconnecting, ...). May be empty.
  std::function<void(const std::string&)> log;
};

// Intentionally copyable.
struct CaptureStats {
  std::uint64_t transactions = 0;  // source transactions stored since Run began
  std::uint64_t changes = 0;       // row events stored since Run began
  std::uint64_t reconnects = 0;
  std::uint64_t stored_lsn = 0;         // end of the last stored source transaction
  std::uint64_t server_lsn = 0;         // the source's WAL position as last reported
  std::int64_t last_commit_micros = 0;  // source commit time of the last stored transaction
  // Bytes of WAL the source has written that are not yet stored (0 when idle).
  std::uint64_t lag_bytes() const { return server_lsn > stored_lsn ? server_lsn - stored_lsn : 0; }
};

class Capture {
 public:
  // "store" must outlive the Capture.
  Capture(EventStore* store, CaptureOptions options);
  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // Checks the source's requirements and creates the publication and slot if missing.
  // Errors (documented in docs/capture.md, "When the source is not ready"):
  //   kUnavailable      cannot connect (the message has libpq's reason)
  //   kInvalidArgument  wal_level is not logical; the role lacks REPLICATION; a captured table
  //                     has no primary key; the slot exists with another plugin
  Status Prepare();

  // Streams changes into the store until "stop" is true (then returns OK). Reconnects after a
  // broken connection (PostgreSQL restarting) and continues where the store left off.
  // REQUIRES: Prepare() returned OK.
  Status Run(const std::atomic<bool>& stop);

  CaptureStats stats() const;

  // The checkpoint name holding this capture's source position.
  std::string CheckpointName() const { return "capture/" + options_.slot; }

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  CaptureOptions options_;
};

// A Capture running on its own thread beside other work (e.g. inside `timetrail serve`):
//
//   auto bg = BackgroundCapture::Start(store.get(), options);   // Prepare()s first
//   if (!bg.ok()) { /* bg.status(): the source is not ready */ }
//   ...
//   Status s = (*bg)->Stop();   // also on destruction; returns how Run ended
class BackgroundCapture {
 public:
  // Prepares the source (see Capture::Prepare) and starts streaming on a new thread.
  static Result<std::unique_ptr<BackgroundCapture>> Start(EventStore* store,
                                                          CaptureOptions options);
  ~BackgroundCapture();
  BackgroundCapture(const BackgroundCapture&) = delete;
  BackgroundCapture& operator=(const BackgroundCapture&) = delete;

  // Stops streaming and waits for the thread. Returns OK, or the error that ended the capture
  // early (which was also passed to options.log). Idempotent.
  Status Stop();
  CaptureStats stats() const { return capture_.stats(); }

 private:
  BackgroundCapture(EventStore* store, CaptureOptions options);
  Capture capture_;
  CaptureOptions options_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  Status result_;
};

}  // namespace timetrail::capture

#endif  // TIMETRAIL_CAPTURE_CAPTURE_H_
