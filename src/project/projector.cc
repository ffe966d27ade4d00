#include "project/projector.h"

#include <future>
#include <thread>

#include "capture/pg.h"
#include "project/projection.h"

namespace timetrail::project {
namespace {

using capture::PgConn;
using capture::PgQuery;

constexpr const char* kCheckpoints = "timetrail.projection_checkpoints";

// A target that refuses the projection's tables is a setup to fix, not an outage to wait out.
Status AsInvalid(const Status& s) { return s.ok() ? s : Status::InvalidArgument(s.message()); }

// One projection's tables in one schema, with its checkpoint row, and the batches that keep
// them in step with the log.
class Runner {
 public:
  Runner(LogSource& source, const ProjectionSpec& spec, const RunOptions& options,
         std::string schema, std::string checkpoint)
      : source_(source),
        spec_(spec),
        o_(options),
        schema_name_(std::move(schema)),
        checkpoint_(std::move(checkpoint)),
        projection_(MakeProjection(spec, source)) {}

  // Connects, creates what is missing, and reads the checkpoint.
  Status Open() {
    TT_ASSIGN_OR_RETURN(conn_, capture::PgConnect(o_.target_url, /*replication=*/false));
    schema_ = QuoteIdent(schema_name_);
    // "already exists, skipping" on every start says nothing to the user.
    TT_RETURN_IF_ERROR(Exec(conn_.get(), "SET client_min_messages = warning", "setting up"));
    // Projectors starting together must not race on CREATE ... IF NOT EXISTS, which can fail
    // on a concurrent creation: one at a time creates, under a transaction-level lock.
    TT_RETURN_IF_ERROR(Exec(conn_.get(), "BEGIN", "BEGIN"));
    Status created = Exec(conn_.get(),
                          "SELECT pg_advisory_xact_lock(hashtext('timetrail projection tables'));"
                          "CREATE SCHEMA IF NOT EXISTS timetrail;"
                          "CREATE TABLE IF NOT EXISTS " +
                              std::string(kCheckpoints) +
                              " (name text PRIMARY KEY, position bigint NOT NULL,"
                              " updated_at timestamptz NOT NULL DEFAULT now());"
                              "CREATE SCHEMA IF NOT EXISTS " +
                              schema_,
                          "creating timetrail.projection_checkpoints and schema " + schema_name_);
    if (created.ok()) created = projection_->CreateTables(conn_.get(), schema_);
    if (!created.ok()) {
      Rollback();
      return AsInvalid(created);
    }
    TT_RETURN_IF_ERROR(Exec(conn_.get(), "COMMIT", "COMMIT"));
    TT_RETURN_IF_ERROR(PgQuery(conn_.get(),
                               "INSERT INTO " + std::string(kCheckpoints) +
                                   " (name, position) VALUES ($1, 0) ON CONFLICT DO NOTHING",
                               {checkpoint_})
                           .status());
    TT_ASSIGN_OR_RETURN(
        auto rows, PgQuery(conn_.get(),
                           "SELECT position FROM " + std::string(kCheckpoints) + " WHERE name = $1",
                           {checkpoint_}));
    position_ = committed_ = std::stoull(*rows.at(0).at(0));
    TT_ASSIGN_OR_RETURN(LogPage head, source_.ReadLog(1, 1));
    if (position_ > head.head_position) {
      return Status::InvalidArgument(
          "projection '" + checkpoint_ + "' is at position " + std::to_string(position_) +
          " in the target, past the end of the log of " + source_.Describe() + " (" +
          std::to_string(head.head_position) +
          "): the target was projected from another store; use another name or target");
    }
    head_ = head.head_position;
    return Status::Ok();
  }

  ~Runner() { (void)Settle(nullptr); }

  // One batch in its own target transaction, written on another thread while the next batch
  // is read and folded here: the target's work and the projector's overlap. The events
  // examined; 0 when caught up and every batch is written.
  Result<std::size_t> Step() {
    Result<Prepared> next = Prepare();
    bool fenced = false;
    Status settled = Settle(&fenced);
    if (!next.ok()) return next.status();
    if (!settled.ok()) return settled;
    if (fenced) return std::size_t{1};  // what was folded meanwhile started at the wrong place
    if (next->page.events.empty()) return std::size_t{0};
    const Position from = position_;
    position_ = next->page.events.back().position;
    Inflight f;
    f.to = position_;
    f.events = next->page.events.size();
    f.last_recorded_at = next->page.events.back().recorded_at;
    f.done = std::async(std::launch::async,
                        [this, batch = std::move(next->batch), from, to = position_]() {
                          return WriteTransaction(batch, from, to);
                        });
    inflight_ = std::move(f);
    return next->page.events.size();
  }

  // Waits for the batch being written, if any. Call before returning to the caller.
  Status Finish() { return Settle(nullptr); }

  // One batch inside the caller's transaction, whose checkpoint row the caller has locked.
  Result<std::size_t> StepInTransaction() {
    TT_ASSIGN_OR_RETURN(Prepared next, Prepare());
    if (next.page.events.empty()) return 0;
    TT_RETURN_IF_ERROR(Write(next.batch, next.page.events.back().position));
    position_ = committed_ = next.page.events.back().position;
    Committed(next.page.events.size(), next.page.events.back().recorded_at);
    return next.page.events.size();
  }

  // Locks this projection's checkpoint row in the open transaction; false when it is not
  // where this runner left it (another projector, or a rebuild, moved it).
  Result<bool> LockCheckpoint() {
    TT_ASSIGN_OR_RETURN(Position at, LockedCheckpoint());
    if (at == committed_) return true;
    Moved(at);
    return false;
  }

  void Rollback() { (void)Exec(conn_.get(), "ROLLBACK", "ROLLBACK"); }

  PGconn* conn() { return conn_.get(); }
  Projection& projection() { return *projection_; }
  // The checkpoint: what the target holds.
  Position position() const { return committed_; }
  // Where the next batch starts reading, one past what is folded (ahead of the checkpoint
  // while a batch is being written).
  Position read_position() const { return position_; }
  Position head() const { return head_; }
  std::uint64_t events() const { return events_; }
  double lag_seconds() const { return lag_seconds_; }

 private:
  struct Prepared {
    LogPage page;
    BatchWrite batch;
  };
  struct Inflight {
    std::future<Status> done;
    Position to = 0;
    std::uint64_t events = 0;
    Timestamp last_recorded_at{};
  };
  // What WriteTransaction returns when another projector (or a rebuild) moved the checkpoint.
  static constexpr std::string_view kMovedPrefix = "checkpoint moved to ";

  // Reads the next batch, folds the events the projection takes into it, and renders its
  // writes.
  Result<Prepared> Prepare() {
    Prepared out;
    TT_ASSIGN_OR_RETURN(out.page, source_.ReadLog(position_ + 1, o_.batch_events));
    head_ = std::max(head_, out.page.head_position);
    for (const RecordedEvent& e : out.page.events) {
      std::string_view id;
      if (!spec_.Matches(e.stream, &id)) continue;
      Status s = projection_->Add(e, id);
      if (!s.ok()) {
        projection_->Reset();
        return s.WithPrefix("projection '" + spec_.name + "'");
      }
    }
    if (out.page.events.empty()) return out;
    Result<BatchWrite> batch = projection_->Render(schema_);
    if (!batch.ok()) {
      projection_->Reset();
      return batch.status().WithPrefix("projection '" + spec_.name + "'");
    }
    out.batch = std::move(*batch);
    return out;
  }

  // The batch's own transaction, on the writer thread: the checkpoint row is locked and must
  // still be where this runner left it, so two projectors never write one batch twice.
  Status WriteTransaction(const BatchWrite& batch, Position from, Position to) {
    TT_RETURN_IF_ERROR(Exec(conn_.get(), "BEGIN", "BEGIN"));
    Result<Position> at = LockedCheckpoint();
    Status s = at.status();
    if (s.ok() && *at != from)
      s = Status::Unavailable(std::string(kMovedPrefix) + std::to_string(*at));
    if (s.ok()) s = Write(batch, to);
    if (s.ok()) s = Exec(conn_.get(), "COMMIT", "COMMIT");
    if (!s.ok()) Rollback();
    return s;
  }

  Status Write(const BatchWrite& batch, Position to) {
    Status s = ExecuteBatch(conn_.get(), batch);
    if (!s.ok()) return s.WithPrefix("projection '" + spec_.name + "'");
    return PgQuery(conn_.get(),
                   "UPDATE " + std::string(kCheckpoints) +
                       " SET position = $2, updated_at = now() WHERE name = $1",
                   {checkpoint_, std::to_string(to)})
        .status();
  }

  Result<Position> LockedCheckpoint() {
    TT_ASSIGN_OR_RETURN(auto rows, PgQuery(conn_.get(),
                                           "SELECT position FROM " + std::string(kCheckpoints) +
                                               " WHERE name = $1 FOR UPDATE",
                                           {checkpoint_}));
    return rows.empty() ? Position{0} : Position{std::stoull(*rows[0][0])};
  }

  // Collects the batch being written. A failure, or a checkpoint moved elsewhere, makes the
  // folded state worthless: it is dropped and reading starts again at the checkpoint.
  Status Settle(bool* fenced) {
    if (!inflight_) return Status::Ok();
    Status s = inflight_->done.get();
    Inflight f = std::move(*inflight_);
    inflight_.reset();
    if (s.ok()) {
      committed_ = f.to;
      Committed(f.events, f.last_recorded_at);
      return s;
    }
    projection_->Reset();
    const std::string& m = s.message();
    if (s.code() == StatusCode::kUnavailable && m.starts_with(kMovedPrefix)) {
      if (fenced != nullptr) *fenced = true;
      Moved(std::stoull(m.substr(kMovedPrefix.size())));
      return Status::Ok();
    }
    position_ = committed_;
    return s;
  }

  void Moved(Position at) {
    if (o_.log) {
      o_.log("checkpoint '" + checkpoint_ + "' moved from " + std::to_string(committed_) + " to " +
             std::to_string(at) + " elsewhere; going on from there");
    }
    projection_->Reset();
    position_ = committed_ = at;
  }

  void Committed(std::uint64_t events, Timestamp last_recorded_at) {
    events_ += events;
    const auto age = Now().micros - last_recorded_at.micros;
    lag_seconds_ = committed_ < head_ ? std::max<double>(0, age / 1e6) : 0;
  }

  LogSource& source_;
  const ProjectionSpec& spec_;
  RunOptions o_;
  std::string schema_name_;
  std::string checkpoint_;
  std::unique_ptr<Projection> projection_;
  PgConn conn_;
  std::string schema_;      // quoted
  Position position_ = 0;   // read and folded up to here
  Position committed_ = 0;  // the checkpoint in the target
  Position head_ = 0;
  std::uint64_t events_ = 0;
  double lag_seconds_ = 0;
  std::optional<Inflight> inflight_;
};

void Report(const RunOptions& o, const Runner& r, std::chrono::steady_clock::time_point* last,
            bool force = false) {
  if (o.progress != nullptr)
    o.progress->Update(r.position(), r.head(), r.lag_seconds(), r.events());
  auto now = std::chrono::steady_clock::now();
  if (!o.log || !o.log_progress || (!force && now - *last < std::chrono::seconds(1))) return;
  *last = now;
  char lag[32];
  std::snprintf(lag, sizeof lag, "%.1f", r.lag_seconds());
  o.log(std::to_string(r.events()) + " events; at position " + std::to_string(r.position()) + ", " +
        std::to_string(r.head() > r.position() ? r.head() - r.position() : 0) + " behind (" + lag +
        " s)");
}

// Runs batches until caught up with the head the log had at the start (or, following, until
// "stop"): a run that is not following ends even while appends go on.
Status Drive(Runner& r, LogSource& source, const RunOptions& o, bool follow,
             const std::atomic<bool>& stop) {
  auto last = std::chrono::steady_clock::now();
  const Position start_head = r.head();
  Status s;
  while (s.ok() && !stop.load()) {
    Result<std::size_t> examined = r.Step();
    if (!examined.ok()) {
      s = examined.status();
      break;
    }
    Report(o, r, &last);
    if (*examined == 0) {
      if (!follow) break;
      s = source.WaitPast(r.read_position(), std::chrono::milliseconds(500));
    } else if (!follow && r.read_position() >= start_head) {
      break;  // Finish collects the last batch
    }
  }
  Status finished = r.Finish();
  if (s.ok()) s = finished;
  Report(o, r, &last, /*force=*/true);
  return s;
}

}  // namespace

void ProjectionProgress::Update(Position position, Position head, double lag_seconds,
                                std::uint64_t events) {
  {
    std::lock_guard lock(mu_);
    s_.position = position;
    s_.head = std::max(head, position);
    s_.lag_seconds = lag_seconds;
    s_.events = events;
    s_.error.clear();
  }
  moved_.notify_all();
}

void ProjectionProgress::SetRunning(bool running) {
  std::lock_guard lock(mu_);
  s_.running = running;
}

void ProjectionProgress::Fail(const std::string& error) {
  std::lock_guard lock(mu_);
  s_.error = error;
  ++s_.failures;
}

ProgressSnapshot ProjectionProgress::Get() const {
  std::lock_guard lock(mu_);
  return s_;
}

Position ProjectionProgress::WaitFor(Position position, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  moved_.wait_for(lock, timeout, [&] { return s_.position >= position; });
  return s_.position;
}

Result<ProjectorStats> RunProjection(LogSource& source, const ProjectionSpec& spec,
                                     const RunOptions& options, const std::atomic<bool>& stop) {
  if (options.batch_events == 0) return Status::InvalidArgument("batch: must be at least 1");
  TT_RETURN_IF_ERROR(ValidateProjection(spec));
  Runner r(source, spec, options, spec.schema, spec.name);
  TT_RETURN_IF_ERROR(r.Open());
  TT_RETURN_IF_ERROR(Drive(r, source, options, options.follow, stop));
  return ProjectorStats{r.events(), r.position()};
}

Result<ProjectorStats> RebuildProjection(LogSource& source, const ProjectionSpec& spec,
                                         const RunOptions& options, const std::atomic<bool>& stop) {
  if (options.batch_events == 0) return Status::InvalidArgument("batch: must be at least 1");
  TT_RETURN_IF_ERROR(ValidateProjection(spec));
  const std::string shadow = "tt_rebuild_" + spec.name;
  if (shadow.size() > 63) {
    return Status::InvalidArgument("projection '" + spec.name +
                                   "': a name of at most 52 bytes is needed to rebuild it");
  }
  const std::string rebuild_checkpoint = spec.name + "/rebuild";
  {
    // A rebuild starts from nothing, so a configuration changed since an earlier one that
    // stopped half-way cannot meet tables of the old shape.
    TT_ASSIGN_OR_RETURN(PgConn conn, capture::PgConnect(options.target_url, false));
    TT_RETURN_IF_ERROR(Exec(conn.get(), "SET client_min_messages = warning", "setting up"));
    const std::string quoted = QuoteIdent(shadow);
    TT_RETURN_IF_ERROR(Exec(conn.get(), "DROP SCHEMA IF EXISTS " + quoted + " CASCADE",
                            "dropping an earlier rebuild's tables"));
    Status forgot =
        PgQuery(conn.get(), "DELETE FROM timetrail.projection_checkpoints WHERE name = $1",
                {rebuild_checkpoint})
            .status();
    (void)forgot;  // the table may not exist yet
  }
  Runner r(source, spec, options, shadow, rebuild_checkpoint);
  TT_RETURN_IF_ERROR(r.Open());
  if (options.log) options.log("rebuilding '" + spec.name + "' in schema " + shadow);
  TT_RETURN_IF_ERROR(Drive(r, source, options, /*follow=*/false, stop));
  if (stop.load()) return Status::Unavailable("the rebuild was stopped before the swap");

  // The swap: one transaction that holds the live checkpoint's row, so a projector following
  // the old tables waits, then finds the checkpoint moved and goes on with the new tables.
  PGconn* c = r.conn();
  const std::string schema = QuoteIdent(spec.schema);
  const std::string shadow_quoted = QuoteIdent(shadow);
  auto swap = [&]() -> Status {
    TT_RETURN_IF_ERROR(Exec(c, "CREATE SCHEMA IF NOT EXISTS " + schema, "creating the schema"));
    TT_RETURN_IF_ERROR(PgQuery(c,
                               "INSERT INTO timetrail.projection_checkpoints (name, position) "
                               "VALUES ($1, 0) ON CONFLICT DO NOTHING",
                               {spec.name})
                           .status());
    TT_RETURN_IF_ERROR(PgQuery(c,
                               "SELECT position FROM timetrail.projection_checkpoints "
                               "WHERE name = $1 FOR UPDATE",
                               {spec.name})
                           .status());
    TT_ASSIGN_OR_RETURN(bool ours, r.LockCheckpoint());
    if (!ours) return Status::Unavailable("the rebuild's checkpoint moved during the rebuild");
    // Up to the head as it is now; what comes later the live projector adds after the swap.
    TT_ASSIGN_OR_RETURN(LogPage now, source.ReadLog(1, 1));
    while (r.position() < now.head_position) {
      TT_ASSIGN_OR_RETURN(std::size_t examined, r.StepInTransaction());
      if (examined == 0) break;
    }
    for (const std::string& name : r.projection().Tables()) {
      const std::string table = QuoteIdent(name);
      TT_RETURN_IF_ERROR(Exec(c, "DROP TABLE IF EXISTS " + schema + "." + table,
                              "dropping the old table " + spec.schema + "." + name));
      TT_RETURN_IF_ERROR(
          Exec(c, "ALTER TABLE " + shadow_quoted + "." + table + " SET SCHEMA " + schema,
               "moving the new table " + name + " into place"));
    }
    TT_RETURN_IF_ERROR(r.projection().CreateTables(c, schema));
    TT_RETURN_IF_ERROR(PgQuery(c,
                               "UPDATE timetrail.projection_checkpoints SET position = $2, "
                               "updated_at = now() WHERE name = $1",
                               {spec.name, std::to_string(r.position())})
                           .status());
    TT_RETURN_IF_ERROR(PgQuery(c, "DELETE FROM timetrail.projection_checkpoints WHERE name = $1",
                               {rebuild_checkpoint})
                           .status());
    TT_RETURN_IF_ERROR(
        Exec(c, "DROP SCHEMA " + shadow_quoted + " CASCADE", "dropping the rebuild's schema"));
    return Exec(c, "COMMIT", "COMMIT");
  };
  TT_RETURN_IF_ERROR(Exec(c, "BEGIN", "BEGIN"));
  Status swapped = swap();
  if (!swapped.ok()) {
    r.Rollback();
    return swapped.WithPrefix("projection '" + spec.name + "': swapping the rebuilt tables in");
  }
  if (options.log) {
    options.log("rebuilt '" + spec.name + "' up to position " + std::to_string(r.position()) +
                " and swapped it in");
  }
  return ProjectorStats{r.events(), r.position()};
}

}  // namespace timetrail::project
