#include "project/projector.h"

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
    TT_ASSIGN_OR_RETURN(schema_, Ident(conn_.get(), schema_name_));
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
    position_ = std::stoull(*rows.at(0).at(0));
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

  // One batch in its own target transaction. The events examined; 0 when caught up.
  Result<std::size_t> Step() {
    TT_ASSIGN_OR_RETURN(LogPage page, Fold());
    if (page.events.empty()) return 0;
    TT_RETURN_IF_ERROR(Exec(conn_.get(), "BEGIN", "BEGIN"));
    Result<bool> locked = LockCheckpoint();
    if (!locked.ok() || !*locked) {
      Rollback();
      projection_->Reset();
      if (!locked.ok()) return locked.status();
      return page.events.size();  // another projector moved it: go on from where it is
    }
    Status written = Write(page);
    if (written.ok()) written = Exec(conn_.get(), "COMMIT", "COMMIT");
    if (!written.ok()) {
      Rollback();
      projection_->Reset();
      return written;
    }
    Advance(page);
    return page.events.size();
  }

  // One batch inside the caller's transaction, whose checkpoint row the caller has locked.
  Result<std::size_t> StepInTransaction() {
    TT_ASSIGN_OR_RETURN(LogPage page, Fold());
    if (page.events.empty()) return 0;
    TT_RETURN_IF_ERROR(Write(page));
    Advance(page);
    return page.events.size();
  }

  // Locks this projection's checkpoint row in the open transaction; false when it is not
  // where this runner left it (another projector, or a rebuild, moved it).
  Result<bool> LockCheckpoint() {
    TT_ASSIGN_OR_RETURN(auto rows, PgQuery(conn_.get(),
                                           "SELECT position FROM " + std::string(kCheckpoints) +
                                               " WHERE name = $1 FOR UPDATE",
                                           {checkpoint_}));
    const Position at = rows.empty() ? 0 : std::stoull(*rows[0][0]);
    if (at == position_) return true;
    if (o_.log) {
      o_.log("checkpoint '" + checkpoint_ + "' moved from " + std::to_string(position_) + " to " +
             std::to_string(at) + " elsewhere; going on from there");
    }
    position_ = at;
    return false;
  }

  void Rollback() { (void)Exec(conn_.get(), "ROLLBACK", "ROLLBACK"); }

  PGconn* conn() { return conn_.get(); }
  Projection& projection() { return *projection_; }
  Position position() const { return position_; }
  Position head() const { return head_; }
  std::uint64_t events() const { return events_; }
  double lag_seconds() const { return lag_seconds_; }

 private:
  // Reads the next batch and folds the events the projection takes into it.
  Result<LogPage> Fold() {
    TT_ASSIGN_OR_RETURN(LogPage page, source_.ReadLog(position_ + 1, o_.batch_events));
    head_ = std::max(head_, page.head_position);
    for (const RecordedEvent& e : page.events) {
      std::string_view id;
      if (!spec_.Matches(e.stream, &id)) continue;
      Status s = projection_->Add(e, id);
      if (!s.ok()) {
        projection_->Reset();
        return s.WithPrefix("projection '" + spec_.name + "'");
      }
    }
    return page;
  }

  Status Write(const LogPage& page) {
    Status s = projection_->Flush(conn_.get(), schema_);
    if (!s.ok()) return s.WithPrefix("projection '" + spec_.name + "'");
    return PgQuery(conn_.get(),
                   "UPDATE " + std::string(kCheckpoints) +
                       " SET position = $2, updated_at = now() WHERE name = $1",
                   {checkpoint_, std::to_string(page.events.back().position)})
        .status();
  }

  void Advance(const LogPage& page) {
    position_ = page.events.back().position;
    events_ += page.events.size();
    const auto age = Now().micros - page.events.back().recorded_at.micros;
    lag_seconds_ = position_ < head_ ? std::max<double>(0, age / 1e6) : 0;
  }

  LogSource& source_;
  const ProjectionSpec& spec_;
  RunOptions o_;
  std::string schema_name_;
  std::string checkpoint_;
  std::unique_ptr<Projection> projection_;
  PgConn conn_;
  std::string schema_;  // quoted
  Position position_ = 0;
  Position head_ = 0;
  std::uint64_t events_ = 0;
  double lag_seconds_ = 0;
};

void Report(const RunOptions& o, const Runner& r, std::chrono::steady_clock::time_point* last,
            bool force = false) {
  if (o.progress != nullptr)
    o.progress->Update(r.position(), r.head(), r.lag_seconds(), r.events());
  auto now = std::chrono::steady_clock::now();
  if (!o.log || (!force && now - *last < std::chrono::seconds(1))) return;
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
  while (!stop.load()) {
    TT_ASSIGN_OR_RETURN(std::size_t examined, r.Step());
    Report(o, r, &last);
    if (examined > 0 && (follow || r.position() < start_head)) continue;
    if (!follow) break;
    TT_RETURN_IF_ERROR(source.WaitPast(r.position(), std::chrono::milliseconds(500)));
  }
  Report(o, r, &last, /*force=*/true);
  return Status::Ok();
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
    TT_ASSIGN_OR_RETURN(std::string quoted, Ident(conn.get(), shadow));
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
  TT_ASSIGN_OR_RETURN(std::string schema, Ident(c, spec.schema));
  TT_ASSIGN_OR_RETURN(std::string shadow_quoted, Ident(c, shadow));
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
      TT_ASSIGN_OR_RETURN(std::string table, Ident(c, name));
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
