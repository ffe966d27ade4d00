// The PostgreSQL engine: the store's key-value families as tables of one schema in a
// PostgreSQL database, "(k bytea PRIMARY KEY, v bytea)" each, so that the store lives in a
// cluster the team already runs, backs up and replicates.
//
// - A batch is one PostgreSQL transaction: its deletes and upserts per family, each one
//   statement over arrays (unnest), so a group commit costs a fixed number of round trips
//   whatever its size. With "sync" the commit waits for the server's flush
//   (synchronous_commit as the server has it, "on" by default); without, it commits with
//   synchronous_commit=off and SyncWal() later makes it durable.
// - Reads take a connection from a small pool for one statement each. An iterator reads pages
//   of keys in its direction (16 first, growing to 1024 while it keeps moving), so a seek that
//   reads one key costs one small query and a scan costs few.
// - Every statement is prepared once per connection, with binary keys and values.
// - Many processes (timetrail nodes) may write one store. Their writes are serialized by a
//   transaction-level advisory lock on the schema's name, taken at the start of each write
//   transaction (BeginExclusiveWrite, or Write itself) and released by its COMMIT; the write
//   path reads the store's head under it and catches up when another node moved it. Each write
//   ends with a NOTIFY on the schema's channel, which every node LISTENs to on a connection of
//   its own (WaitForOtherWriters). docs/postgresql-store.md says why positions then stay
//   gap-free and never become visible out of order.
#include "storage/postgres_engine.h"

#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace timetrail {
namespace {

constexpr Oid kByteaOid = 17;
constexpr Oid kByteaArrayOid = 1001;

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnCloser>;
struct ResultClearer {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultClearer>;

// The statements prepared on each connection, per family ("f" = family index).
enum class Stmt : int {
  kGet,         // k = $1
  kMultiGet,    // k = ANY($1)
  kFrom,        // k >= $1 ascending, limit $2
  kAfter,       // k > $1 ascending
  kBefore,      // k < $1 descending
  kAtOrBefore,  // k <= $1 descending
  kLast,        // descending from the end
  kUpsert,      // unnest($1, $2) ON CONFLICT DO UPDATE
  kDelete,      // k = ANY($1)
};
constexpr int kStmtCount = 9;

std::string StmtName(Family f, Stmt s) {
  return "tt_" + std::to_string(static_cast<int>(f)) + "_" + std::to_string(static_cast<int>(s));
}

void PutBigEndian32(std::string& out, std::int32_t v) {
  auto u = static_cast<std::uint32_t>(v);
  char b[4] = {static_cast<char>(u >> 24), static_cast<char>(u >> 16), static_cast<char>(u >> 8),
               static_cast<char>(u)};
  out.append(b, 4);
}

// A one-dimensional bytea[] in PostgreSQL's binary array format.
template <typename Range, typename Get>
std::string ByteaArray(const Range& items, Get get) {
  std::string out;
  PutBigEndian32(out, 1);  // dimensions
  PutBigEndian32(out, 0);  // no NULLs
  PutBigEndian32(out, static_cast<std::int32_t>(kByteaOid));
  PutBigEndian32(out, static_cast<std::int32_t>(items.size()));
  PutBigEndian32(out, 1);  // lower bound
  for (const auto& item : items) {
    std::string_view bytes = get(item);
    PutBigEndian32(out, static_cast<std::int32_t>(bytes.size()));
    out.append(bytes);
  }
  return out;
}

Status ConnError(PGconn* conn, std::string_view what) {
  std::string message = PQerrorMessage(conn);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  std::string text = "PostgreSQL store: " + std::string(what) + ": " + message;
  if (PQstatus(conn) != CONNECTION_OK) return Status::Unavailable(text);
  return Status::IOError(text);
}

// Leaves pipeline mode once every segment sent has been read, and when "s" (the pipeline's
// outcome) or leaving failed, rolls back the transaction the pipeline opened. Returns the
// outcome.
Status LeavePipeline(PGconn* conn, Status s) {
  if (PQexitPipelineMode(conn) != 1 && s.ok()) s = ConnError(conn, "leaving pipeline mode");
  if (!s.ok() && PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) {
    PgResult r(PQexec(conn, "ROLLBACK"));
  }
  return s;
}

Status ResultError(PGconn* conn, const PGresult* r, std::string_view what);

// Reads the results of one segment of a pipeline, "queries" queries up to and including its sync
// point: the first error, if any. "on_rows" sees each query's rows (query index, result).
template <typename OnRows>
Status ReadSegment(PGconn* conn, int queries, std::string_view what, OnRows on_rows) {
  Status s;
  for (int i = 0; i < queries; ++i) {
    // Every query's results end with a null result.
    for (;;) {
      PgResult r(PQgetResult(conn));
      if (!r) break;
      ExecStatusType st = PQresultStatus(r.get());
      if (st == PGRES_TUPLES_OK) on_rows(i, r.get());
      if (s.ok() && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        s = ResultError(conn, r.get(), what);
      }
    }
  }
  for (;;) {  // the sync point's result
    PgResult r(PQgetResult(conn));
    if (!r) {
      if (PQstatus(conn) != CONNECTION_OK) return s.ok() ? ConnError(conn, what) : s;
      continue;
    }
    if (PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC) break;
  }
  return s;
}

// Sends, as one segment of a pipeline: the text statements "before", the prepared point read
// of "key" in "family", the text statements "after", and a sync point. False when sending
// failed.
bool SendAroundRead(PGconn* conn, std::initializer_list<const char*> before, Family family,
                    std::string_view key, std::initializer_list<const char*> after) {
  auto send = [conn](const char* sql) {
    return PQsendQueryParams(conn, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
  };
  for (const char* sql : before) {
    if (!send(sql)) return false;
  }
  std::array<const char*, 1> values{key.data()};
  std::array<int, 1> lengths{static_cast<int>(key.size())};
  std::array<int, 1> formats{1};
  if (PQsendQueryPrepared(conn, StmtName(family, Stmt::kGet).c_str(), 1, values.data(),
                          lengths.data(), formats.data(), 1) != 1) {
    return false;
  }
  for (const char* sql : after) {
    if (!send(sql)) return false;
  }
  return PQpipelineSync(conn) == 1;
}

// Reads a segment SendAroundRead sent with "before" and "after" statements: its outcome, and
// the value read into *value (nullopt when the key has none).
Status ReadAroundRead(PGconn* conn, int before, int after, std::string_view what,
                      std::optional<std::string>* value) {
  return ReadSegment(conn, before + 1 + after, what, [&](int i, const PGresult* r) {
    if (i == before && PQntuples(r) == 1) {
      value->emplace(PQgetvalue(r, 0, 0), static_cast<std::size_t>(PQgetlength(r, 0, 0)));
    }
  });
}

Status ResultError(PGconn* conn, const PGresult* r, std::string_view what) {
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  Status s = ConnError(conn, what);
  // Class 08 (connection exception) and 57P (operator intervention, e.g. a shutdown): the
  // server is gone or going; a retry elsewhere may succeed. 40001 on a read: a standby
  // cancelled it because it conflicted with the replay of the primary's changes; a retry
  // succeeds.
  if (state != nullptr &&
      (std::strncmp(state, "08", 2) == 0 || std::strncmp(state, "57P", 3) == 0 ||
       std::strcmp(state, "40001") == 0)) {
    return Status::Unavailable(s.message());
  }
  return s;
}

class PostgresEngine;

// A connection borrowed from the pool for one statement (or one write transaction).
class Lease {
 public:
  Lease(PostgresEngine* engine, Conn conn) : engine_(engine), conn_(std::move(conn)) {}
  Lease(Lease&&) = default;
  ~Lease();
  PGconn* get() const { return conn_.get(); }

 private:
  PostgresEngine* engine_;
  Conn conn_;
};

class PgWriteBatch final : public KvWriteBatch {
 public:
  void Put(Family family, std::string_view key, std::string_view value) override {
    ops_.push_back(Op{family, std::string(key), std::string(value), false});
    bytes_ += key.size() + value.size();
  }
  void Delete(Family family, std::string_view key) override {
    ops_.push_back(Op{family, std::string(key), {}, true});
    bytes_ += key.size();
  }
  std::size_t ApproximateBytes() const override { return bytes_; }
  std::size_t Count() const override { return ops_.size(); }

  struct Op {
    Family family;
    std::string key;
    std::string value;
    bool is_delete;
  };
  std::vector<Op>& ops() { return ops_; }

 private:
  std::vector<Op> ops_;
  std::size_t bytes_ = 0;
};

class PostgresEngine final : public KvEngine {
 public:
  static Result<std::unique_ptr<KvEngine>> Open(const PostgresEngineOptions& options);
  ~PostgresEngine() override;

  Result<std::optional<std::string>> Get(Family family, std::string_view key) const override;
  Result<std::vector<std::optional<std::string>>> MultiGet(
      Family family, std::span<const std::string> keys) const override;
  std::unique_ptr<KvIterator> NewIterator(Family family) const override;
  std::unique_ptr<KvWriteBatch> NewBatch() const override {
    return std::make_unique<PgWriteBatch>();
  }
  Status Write(KvWriteBatch& batch, bool sync) override;
  Status SyncWal() override;
  bool IsShared() const override { return true; }
  Result<std::optional<std::string>> BeginExclusiveWrite(Family family,
                                                         std::string_view key) override;
  void EndExclusiveWrite() override;
  void ChainExclusiveWrite(Family family, std::string_view key) override {
    std::lock_guard<std::mutex> l(write_mu_);
    chain_.emplace(family, std::string(key));
  }
  Result<std::optional<std::string>> GetDurable(Family family, std::string_view key) override;
  bool WaitForOtherWriters(std::chrono::milliseconds timeout) override;
  void InterruptWait() override;
  void WakeWaiter() override;
  std::uint64_t ApproximateDiskBytes() const override;
  Status CreateCheckpoint(const std::string&) override {
    return Status::InvalidArgument(
        "a store kept in PostgreSQL is backed up with PostgreSQL's own tools (pg_dump of the "
        "schema '" +
        schema_ + "', or pg_basebackup and WAL archiving), not with timetrail backup");
  }

  // Runs prepared statement "s" of "family" with binary parameters; rows in binary.
  Result<PgResult> Run(PGconn* conn, Family family, Stmt s,
                       std::initializer_list<std::string_view> params) const;
  // Run on a connection of the read pool. A read that failed as unavailable changed nothing,
  // so it is tried once more: on a new connection when the server dropped this one (it
  // restarted, or failed over; its idle siblings went with it and are replaced too), on the
  // same one when a standby cancelled it for conflicting with replay.
  Result<PgResult> Query(Family family, Stmt s,
                         std::initializer_list<std::string_view> params) const;
  Result<Lease> Acquire() const;
  void Release(Conn conn) const;

 private:
  Result<Conn> Connect() const;
  Status Prepare(PGconn* conn) const;
  Status CreateSchema(PGconn* conn) const;
  // The writer's connection, connected and prepared, with a syncer on the same server: a new
  // pair when there is none yet or the last one lost a connection. REQUIRES: write_mu_ held.
  Status EnsureWriter();
  // Connects a new writer and syncer (see pair_ below) and makes them the current pair; "writer"
  // is used as the new writer's connection when given (Open's, already prepared).
  Status ConnectPair(Conn writer);
  Status PrepareWriter(PGconn* conn) const;
  // Notes that the current pair's server took a write (or a read under the lock) that a
  // SyncWal must confirm. REQUIRES: write_mu_ held.
  void MarkUnsynced();
  std::string Table(Family f) const { return quoted_schema_ + "." + std::string(FamilyName(f)); }

  PostgresEngineOptions options_;
  std::string schema_;
  std::string quoted_schema_;
  // The advisory lock that serializes writers (and schema creation): an int8 literal.
  std::string lock_key_;
  // The channel writes NOTIFY, quoted for LISTEN, and as a string for pg_notify.
  std::string channel_;
  std::string quoted_channel_;
  std::string notify_sql_;
  mutable std::mutex mu_;
  mutable std::condition_variable freed_;
  mutable std::vector<Conn> idle_;
  mutable int open_ = 0;
  // Writes use their own connection; SyncWal another, so that the write path's writer thread
  // writes the next group while its sync thread waits for the flush of the last one. The two
  // are connected together, to one server, as a numbered pair, and a sync confirms only writes
  // made on its own pair's writer: a durable commit on a server says nothing of commits another
  // server (the old primary, before a failover) took and had not yet flushed or replicated.
  // The syncer is connected before any write of its pair, so a sync that succeeds on it proves
  // that server lived through every write of the pair. A pair that lost either connection is
  // never used again: the next write connects a new one.
  std::mutex write_mu_;
  Conn writer_;
  bool in_exclusive_ = false;  // GUARDED_BY(write_mu_): a transaction holding the lock is open
  // ChainExclusiveWrite's key, for the next Write; then, once that Write has begun the next
  // exclusive write, the value it read there (held_ set). GUARDED_BY(write_mu_).
  std::optional<std::pair<Family, std::string>> chain_;
  bool held_ = false;
  std::optional<std::string> held_value_;
  // The server process of writer_, whose own notifications the listener ignores.
  std::atomic<int> writer_pid_{0};
  std::uint64_t pair_ = 0;  // GUARDED_BY(write_mu_ and sync_mu_ to change): the current pair
  std::atomic<bool> pair_lost_{false};
  // The pairs whose writes no successful SyncWal has confirmed yet: the oldest and the newest
  // (0 when none). Only the current pair takes new writes, so these two say it all.
  std::mutex unsynced_mu_;
  std::uint64_t oldest_unsynced_ = 0;  // GUARDED_BY(unsynced_mu_)
  std::uint64_t newest_unsynced_ = 0;  // GUARDED_BY(unsynced_mu_)
  // WaitForOtherWriters' connection (LISTEN), and the eventfd that interrupts or wakes its wait.
  std::mutex listen_mu_;
  Conn listener_;
  int wake_fd_ = -1;
  std::atomic<bool> interrupted_{false};
  std::mutex sync_mu_;
  Conn syncer_;  // GUARDED_BY(sync_mu_): the current pair's
};

Lease::~Lease() {
  if (conn_) engine_->Release(std::move(conn_));
}

Result<Conn> PostgresEngine::Connect() const {
  Conn conn(PQconnectdb(options_.url.c_str()));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    std::string why = conn ? PQerrorMessage(conn.get()) : "out of memory";
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    return Status::Unavailable("cannot connect to the " +
                               DescribePostgresStore(options_.url, options_.schema) + ": " + why);
  }
  // Notices ("schema ... already exists, skipping") are not errors; the store says nothing.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  return conn;
}

PostgresEngine::~PostgresEngine() {
  // An abandoned write section gives its lock back now rather than when the server notices
  // the closed connection.
  EndExclusiveWrite();
  if (wake_fd_ >= 0) close(wake_fd_);
}

Status PostgresEngine::EnsureWriter() {
  if (writer_ && PQstatus(writer_.get()) == CONNECTION_OK &&
      !pair_lost_.load(std::memory_order_acquire)) {
    return Status::Ok();
  }
  if (writer_ && PQstatus(writer_.get()) == CONNECTION_OK && in_exclusive_) {
    PgResult r(PQexec(writer_.get(), "ROLLBACK"));
  }
  in_exclusive_ = false;  // a lost connection took its transaction (and lock) with it
  writer_.reset();
  return ConnectPair(nullptr);
}

Status PostgresEngine::ConnectPair(Conn writer) {
  if (!writer) {
    TT_ASSIGN_OR_RETURN(writer, Connect());
    TT_RETURN_IF_ERROR(PrepareWriter(writer.get()));
  }
  TT_ASSIGN_OR_RETURN(Conn syncer, Connect());
  // A URL naming several hosts could reach two servers, one for each connection.
  if (std::string_view(PQhost(writer.get())) != PQhost(syncer.get()) ||
      std::string_view(PQport(writer.get())) != PQport(syncer.get())) {
    return Status::Unavailable("the " + DescribePostgresStore(options_.url, options_.schema) +
                               " reached two servers at once (" + PQhost(writer.get()) + ":" +
                               PQport(writer.get()) + " and " + PQhost(syncer.get()) + ":" +
                               PQport(syncer.get()) +
                               "); writes wait until one primary answers for both");
  }
  std::lock_guard<std::mutex> l(sync_mu_);
  syncer_ = std::move(syncer);
  writer_ = std::move(writer);
  writer_pid_.store(PQbackendPID(writer_.get()), std::memory_order_relaxed);
  ++pair_;
  pair_lost_.store(false, std::memory_order_release);
  return Status::Ok();
}

void PostgresEngine::MarkUnsynced() {
  std::lock_guard<std::mutex> l(unsynced_mu_);
  if (oldest_unsynced_ == 0) oldest_unsynced_ = pair_;
  newest_unsynced_ = pair_;
}

Status PostgresEngine::PrepareWriter(PGconn* conn) const {
  TT_RETURN_IF_ERROR(Prepare(conn));
  // A node frozen inside a write (stopped, its machine paused) would hold every node's writes
  // up for as long as it stays frozen: PostgreSQL ends its session, and so frees the lock,
  // after a minute. A live node's write transactions last milliseconds. Its commits do not
  // wait for the WAL flush: SyncWal's commit, on the syncer, confirms them.
  PgResult r(PQexec(conn,
                    "SET idle_in_transaction_session_timeout = '60s'; "
                    "SET synchronous_commit = off"));
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    return ResultError(conn, r.get(), "setting up the writer's connection");
  }
  return Status::Ok();
}

Result<std::optional<std::string>> PostgresEngine::BeginExclusiveWrite(Family family,
                                                                       std::string_view key) {
  std::lock_guard<std::mutex> l(write_mu_);
  if (options_.read_only) return ReadOnlyError(schema_);
  if (std::exchange(held_, false) && in_exclusive_ && chain_ && chain_->first == family &&
      chain_->second == key && PQstatus(writer_.get()) == CONNECTION_OK &&
      !pair_lost_.load(std::memory_order_acquire)) {
    // Begun by the last Write, in its round trip (ChainExclusiveWrite).
    chain_.reset();
    MarkUnsynced();
    return std::exchange(held_value_, std::nullopt);
  }
  chain_.reset();
  TT_RETURN_IF_ERROR(EnsureWriter());
  PGconn* conn = writer_.get();
  if (in_exclusive_) {
    PgResult r(PQexec(conn, "ROLLBACK"));
    in_exclusive_ = false;
  }
  // One round trip: BEGIN, the lock, then the read. The read is a statement of its own, so
  // that its snapshot (READ COMMITTED takes one per statement) is taken once the lock is held,
  // after the last writer's commit became visible.
  if (PQenterPipelineMode(conn) != 1) return ConnError(conn, "entering pipeline mode");
  const std::string lock = "SELECT pg_advisory_xact_lock(" + lock_key_ + ")";
  std::optional<std::string> value;
  Status s = SendAroundRead(conn, {"BEGIN", lock.c_str()}, family, key, {})
                 ? ReadAroundRead(conn, 2, 0, "beginning a write", &value)
                 : ConnError(conn, "beginning a write");
  s = LeavePipeline(conn, s);
  if (!s.ok()) {
    if (PQstatus(conn) != CONNECTION_OK) pair_lost_.store(true, std::memory_order_release);
    return s;
  }
  in_exclusive_ = true;
  // Other nodes' commits the read saw may not be durable yet: the next SyncWal makes them so.
  MarkUnsynced();
  return value;
}

void PostgresEngine::EndExclusiveWrite() {
  std::lock_guard<std::mutex> l(write_mu_);
  held_ = false;
  chain_.reset();
  if (!in_exclusive_) return;
  in_exclusive_ = false;
  if (writer_ && PQstatus(writer_.get()) == CONNECTION_OK) {
    PgResult r(PQexec(writer_.get(), "ROLLBACK"));
  }
}

bool PostgresEngine::WaitForOtherWriters(std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> l(listen_mu_);
  if (interrupted_.load(std::memory_order_acquire)) return false;
  if (!listener_ || PQstatus(listener_.get()) != CONNECTION_OK) {
    listener_.reset();
    auto conn = Connect();
    if (conn.ok()) {
      PgResult r(PQexec(conn->get(), ("LISTEN " + quoted_channel_).c_str()));
      if (PQresultStatus(r.get()) == PGRES_COMMAND_OK) listener_ = std::move(conn).value();
    }
    // Whatever was written while nobody listened is read by the caller's poll; a database that
    // is down is tried again after the timeout.
    if (listener_) return true;
  }
  std::array<pollfd, 2> fds{};
  fds[0].fd = wake_fd_;
  fds[0].events = POLLIN;
  fds[1].fd = listener_ ? PQsocket(listener_.get()) : -1;
  fds[1].events = POLLIN;
  if (poll(fds.data(), fds.size(), static_cast<int>(timeout.count())) <= 0) return false;
  if (interrupted_.load(std::memory_order_acquire)) return false;
  if ((fds[0].revents & POLLIN) != 0) {
    // A wake-up (WakeWaiter) is taken once. An interrupt set meanwhile is seen by every later
    // call, so reading its count here loses nothing.
    std::uint64_t count = 0;
    (void)!read(wake_fd_, &count, sizeof count);
  }
  if (!listener_) return false;
  if (PQconsumeInput(listener_.get()) != 1) {
    listener_.reset();  // lost: reconnect (and poll) on the next call
    return true;
  }
  bool told = false;
  const int own = writer_pid_.load(std::memory_order_relaxed);
  while (PGnotify* n = PQnotifies(listener_.get())) {
    if (n->be_pid != own) told = true;  // this process's own writes it knows of already
    PQfreemem(n);
  }
  return told;
}

void PostgresEngine::InterruptWait() {
  interrupted_.store(true, std::memory_order_release);
  WakeWaiter();
}

void PostgresEngine::WakeWaiter() {
  std::uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof one);
}

Result<Lease> PostgresEngine::Acquire() const {
  {
    std::unique_lock<std::mutex> l(mu_);
    freed_.wait(l, [&] { return !idle_.empty() || open_ < options_.max_read_connections; });
    if (!idle_.empty()) {
      Conn c = std::move(idle_.back());
      idle_.pop_back();
      return Lease(const_cast<PostgresEngine*>(this), std::move(c));
    }
    ++open_;
  }
  auto conn = Connect();
  Status prepared = conn.ok() ? Prepare(conn->get()) : conn.status();
  if (!prepared.ok()) {
    std::lock_guard<std::mutex> l(mu_);
    --open_;
    freed_.notify_one();
    return prepared;
  }
  return Lease(const_cast<PostgresEngine*>(this), std::move(conn).value());
}

void PostgresEngine::Release(Conn conn) const {
  std::lock_guard<std::mutex> l(mu_);
  if (PQstatus(conn.get()) == CONNECTION_OK && PQtransactionStatus(conn.get()) == PQTRANS_IDLE) {
    idle_.push_back(std::move(conn));
  } else {
    --open_;  // a broken connection is dropped; the next Acquire opens a new one
  }
  freed_.notify_one();
}

Status PostgresEngine::CreateSchema(PGconn* conn) const {
  // Nodes starting at once would race on the catalog ("duplicate key value violates unique
  // constraint"): the writers' lock makes one create and the others find it done.
  std::string sql = "BEGIN; SELECT pg_advisory_xact_lock(" + lock_key_ +
                    "); CREATE SCHEMA IF NOT EXISTS " + quoted_schema_ + ";";
  for (int f = 0; f < kFamilyCount; ++f) {
    sql += "CREATE TABLE IF NOT EXISTS " + Table(static_cast<Family>(f)) +
           " (k bytea PRIMARY KEY, v bytea NOT NULL);";
  }
  sql += "COMMIT";
  PgResult r(PQexec(conn, sql.c_str()));
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    Status s = ResultError(conn, r.get(), "creating schema '" + schema_ + "'");
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) PgResult(PQexec(conn, "ROLLBACK"));
    return s;
  }
  return Status::Ok();
}

Status PostgresEngine::Prepare(PGconn* conn) const {
  for (int fi = 0; fi < kFamilyCount; ++fi) {
    auto f = static_cast<Family>(fi);
    const std::string t = Table(f);
    const std::array<std::string, kStmtCount> sql = {
        "SELECT v FROM " + t + " WHERE k = $1",
        "SELECT k, v FROM " + t + " WHERE k = ANY($1)",
        "SELECT k, v FROM " + t + " WHERE k >= $1 ORDER BY k LIMIT $2",
        "SELECT k, v FROM " + t + " WHERE k > $1 ORDER BY k LIMIT $2",
        "SELECT k, v FROM " + t + " WHERE k < $1 ORDER BY k DESC LIMIT $2",
        "SELECT k, v FROM " + t + " WHERE k <= $1 ORDER BY k DESC LIMIT $2",
        "SELECT k, v FROM " + t + " ORDER BY k DESC LIMIT $1",
        "INSERT INTO " + t + " (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) " +
            "ON CONFLICT (k) DO UPDATE SET v = excluded.v",
        "DELETE FROM " + t + " WHERE k = ANY($1::bytea[])",
    };
    for (int s = 0; s < kStmtCount; ++s) {
      PgResult r(
          PQprepare(conn, StmtName(f, static_cast<Stmt>(s)).c_str(), sql[s].c_str(), 0, nullptr));
      if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
        return ResultError(conn, r.get(), "preparing statements");
      }
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<KvEngine>> PostgresEngine::Open(const PostgresEngineOptions& options) {
  auto engine = std::unique_ptr<PostgresEngine>(new PostgresEngine());
  engine->options_ = options;
  engine->options_.max_read_connections = std::max(1, options.max_read_connections);
  engine->schema_ = options.schema;
  TT_ASSIGN_OR_RETURN(Conn writer, engine->Connect());
  char* quoted = PQescapeIdentifier(writer.get(), options.schema.data(), options.schema.size());
  if (quoted == nullptr) return ConnError(writer.get(), "schema name '" + options.schema + "'");
  engine->quoted_schema_ = quoted;
  PQfreemem(quoted);
  {
    // The same key as the session lock of releases with one writer: a node of this release
    // waits for such a writer instead of writing beside it.
    const std::string lock_name = "timetrail store " + options.schema;
    std::array<const char*, 1> params{lock_name.c_str()};
    PgResult r(PQexecParams(writer.get(), "SELECT hashtextextended($1, 0)", 1, nullptr,
                            params.data(), nullptr, nullptr, 0));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) {
      return ResultError(writer.get(), r.get(), "naming the store's lock");
    }
    engine->lock_key_ = PQgetvalue(r.get(), 0, 0);
  }
  // A channel name is at most 63 bytes; a long schema name gets a hash of itself instead.
  engine->channel_ = "timetrail_" + options.schema;
  if (engine->channel_.size() > 63) engine->channel_ = "timetrail_" + engine->lock_key_;
  quoted = PQescapeIdentifier(writer.get(), engine->channel_.data(), engine->channel_.size());
  if (quoted == nullptr) return ConnError(writer.get(), "channel name");
  engine->quoted_channel_ = quoted;
  PQfreemem(quoted);
  quoted = PQescapeLiteral(writer.get(), engine->channel_.data(), engine->channel_.size());
  if (quoted == nullptr) return ConnError(writer.get(), "channel name");
  engine->notify_sql_ = std::string("SELECT pg_notify(") + quoted + ", '')";
  PQfreemem(quoted);
  engine->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (options.create_if_missing) {
    TT_RETURN_IF_ERROR(engine->CreateSchema(writer.get()));
  } else {
    PgResult r(PQexecParams(writer.get(), "SELECT 1 FROM pg_namespace WHERE nspname = $1", 1,
                            nullptr, std::array<const char*, 1>{options.schema.c_str()}.data(),
                            nullptr, nullptr, 0));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
      return ResultError(writer.get(), r.get(), "looking up schema '" + options.schema + "'");
    }
    if (PQntuples(r.get()) == 0) {
      return Status::NotFound("PostgreSQL store: schema '" + options.schema +
                              "' does not exist (nothing was created)");
    }
  }
  if (options.read_only) {
    TT_RETURN_IF_ERROR(engine->Prepare(writer.get()));
    engine->writer_ = std::move(writer);
  } else {
    TT_RETURN_IF_ERROR(engine->PrepareWriter(writer.get()));
    std::lock_guard<std::mutex> l(engine->write_mu_);
    TT_RETURN_IF_ERROR(engine->ConnectPair(std::move(writer)));
  }
  return std::unique_ptr<KvEngine>(std::move(engine));
}

Result<PgResult> PostgresEngine::Run(PGconn* conn, Family family, Stmt s,
                                     std::initializer_list<std::string_view> params) const {
  std::array<const char*, 3> values{};
  std::array<int, 3> lengths{};
  std::array<int, 3> formats{};
  int n = 0;
  for (std::string_view p : params) {
    values[n] = p.data();
    lengths[n] = static_cast<int>(p.size());
    formats[n] = 1;
    ++n;
  }
  PgResult r(PQexecPrepared(conn, StmtName(family, s).c_str(), n, values.data(), lengths.data(),
                            formats.data(), /*resultFormat=*/1));
  ExecStatusType st = PQresultStatus(r.get());
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    return ResultError(conn, r.get(), std::string(FamilyName(family)));
  }
  return r;
}

Result<PgResult> PostgresEngine::Query(Family family, Stmt s,
                                       std::initializer_list<std::string_view> params) const {
  for (int attempt = 0;; ++attempt) {
    TT_ASSIGN_OR_RETURN(Lease lease, Acquire());
    auto r = Run(lease.get(), family, s, params);
    if (r.ok() || attempt > 0 || r.status().code() != StatusCode::kUnavailable) return r;
    if (PQstatus(lease.get()) == CONNECTION_OK) continue;  // e.g. cancelled by a standby's replay
    std::lock_guard<std::mutex> l(mu_);
    open_ -= static_cast<int>(idle_.size());
    idle_.clear();
  }
}

Result<std::optional<std::string>> PostgresEngine::Get(Family family, std::string_view key) const {
  TT_ASSIGN_OR_RETURN(PgResult r, Query(family, Stmt::kGet, {key}));
  if (PQntuples(r.get()) == 0) return std::optional<std::string>();
  return std::optional<std::string>(
      std::string(PQgetvalue(r.get(), 0, 0), static_cast<std::size_t>(PQgetlength(r.get(), 0, 0))));
}

Result<std::vector<std::optional<std::string>>> PostgresEngine::MultiGet(
    Family family, std::span<const std::string> keys) const {
  std::vector<std::optional<std::string>> out(keys.size());
  if (keys.empty()) return out;
  std::string array = ByteaArray(keys, [](const std::string& k) { return std::string_view(k); });
  TT_ASSIGN_OR_RETURN(PgResult r, Query(family, Stmt::kMultiGet, {array}));
  std::map<std::string_view, std::string_view> found;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    found.emplace(std::string_view(PQgetvalue(r.get(), i, 0), PQgetlength(r.get(), i, 0)),
                  std::string_view(PQgetvalue(r.get(), i, 1), PQgetlength(r.get(), i, 1)));
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    auto it = found.find(keys[i]);
    if (it != found.end()) out[i] = std::string(it->second);
  }
  return out;
}

Status PostgresEngine::Write(KvWriteBatch& batch_base, bool sync) {
  auto& batch = static_cast<PgWriteBatch&>(batch_base);
  // The last operation on a key wins, as in a RocksDB batch; per family, deletes and upserts
  // then go as one statement each.
  std::array<std::map<std::string_view, const PgWriteBatch::Op*>, kFamilyCount> last;
  for (const auto& op : batch.ops()) last[static_cast<int>(op.family)][op.key] = &op;
  std::lock_guard<std::mutex> l(write_mu_);
  if (options_.read_only) return ReadOnlyError(schema_);
  // Within a write section the transaction and its lock are there already; else this write
  // opens its own, so that it too is serialized with every other node's.
  const bool begun = in_exclusive_ && writer_ && PQstatus(writer_.get()) == CONNECTION_OK;
  in_exclusive_ = false;
  held_ = false;
  const std::optional<std::pair<Family, std::string>> chain = std::exchange(chain_, std::nullopt);
  if (!begun) TT_RETURN_IF_ERROR(EnsureWriter());
  PGconn* conn = writer_.get();
  const std::string lock = "SELECT pg_advisory_xact_lock(" + lock_key_ + ")";

  // One round trip: BEGIN, every statement and COMMIT go out in a pipeline, then the results
  // come back. After an error the server skips the rest up to the sync, and the transaction,
  // left failed, is rolled back.
  if (PQenterPipelineMode(conn) != 1) return ConnError(conn, "entering pipeline mode");
  int sent = 0;
  bool send_ok = true;
  auto send_text = [&](const char* sql) {
    send_ok =
        send_ok && PQsendQueryParams(conn, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
    ++sent;
  };
  auto send_prepared = [&](Family f, Stmt st, std::initializer_list<std::string_view> params) {
    std::array<const char*, 2> values{};
    std::array<int, 2> lengths{};
    std::array<int, 2> formats{1, 1};
    int n = 0;
    for (std::string_view p : params) {
      values[n] = p.data();
      lengths[n] = static_cast<int>(p.size());
      ++n;
    }
    send_ok = send_ok && PQsendQueryPrepared(conn, StmtName(f, st).c_str(), n, values.data(),
                                             lengths.data(), formats.data(), 1) == 1;
    ++sent;
  };
  if (!begun) {
    send_text("BEGIN");
    send_text(lock.c_str());
  }
  // The writer's session commits with synchronous_commit off (PrepareWriter).
  if (sync) send_text("SET LOCAL synchronous_commit = on");
  for (int fi = 0; fi < kFamilyCount; ++fi) {
    std::vector<const PgWriteBatch::Op*> puts, deletes;
    for (const auto& [key, op] : last[fi]) (op->is_delete ? deletes : puts).push_back(op);
    auto f = static_cast<Family>(fi);
    if (!deletes.empty()) {
      send_prepared(
          f, Stmt::kDelete,
          {ByteaArray(deletes, [](const auto* op) { return std::string_view(op->key); })});
    }
    if (!puts.empty()) {
      std::string keys = ByteaArray(puts, [](const auto* op) { return std::string_view(op->key); });
      std::string values =
          ByteaArray(puts, [](const auto* op) { return std::string_view(op->value); });
      send_prepared(f, Stmt::kUpsert, {keys, values});
    }
  }
  // Delivered to the listening nodes when (and only if) the transaction commits.
  send_text(notify_sql_.c_str());
  send_text("COMMIT");
  send_ok = send_ok && PQpipelineSync(conn) == 1;
  // The next exclusive write, begun in the same round trip: a segment of its own, so that the
  // write's outcome does not depend on it. (After a failed write it fails too, and is undone.)
  const bool chained =
      chain && send_ok &&
      SendAroundRead(conn, {"BEGIN", lock.c_str()}, chain->first, chain->second, {});
  Status s = send_ok ? ReadSegment(conn, sent, "writing", [](int, const PGresult*) {})
                     : ConnError(conn, "sending a write");
  Status next;
  std::optional<std::string> next_value;
  if (chained) next = ReadAroundRead(conn, 2, 0, "beginning the next write", &next_value);
  if (PQexitPipelineMode(conn) != 1 && s.ok()) s = ConnError(conn, "leaving pipeline mode");
  // A failed COMMIT, or a connection lost during it, leaves the outcome unknown: the write path
  // treats any error from Write as fatal for the batch and reports it.
  if (!s.ok() || !chained || !next.ok()) {
    if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) {
      PgResult r(PQexec(conn, "ROLLBACK"));
    }
  } else {
    in_exclusive_ = true;
    held_ = true;
    held_value_ = std::move(next_value);
    chain_ = chain;
  }
  if (!s.ok()) {
    if (PQstatus(conn) != CONNECTION_OK) pair_lost_.store(true, std::memory_order_release);
    return s;
  }
  if (!sync) MarkUnsynced();
  return Status::Ok();
}

Status PostgresEngine::SyncWal() {
  std::lock_guard<std::mutex> l(sync_mu_);
  std::uint64_t oldest, newest;
  {
    std::lock_guard<std::mutex> u(unsynced_mu_);
    oldest = std::exchange(oldest_unsynced_, 0);
    newest = std::exchange(newest_unsynced_, 0);
  }
  if (oldest == 0) return Status::Ok();
  auto lost = [&](std::string why) {
    return Status::Unavailable(
        "PostgreSQL store: " + why +
        ", so the writes made since the last confirmed one may or may not be stored (a "
        "failover can lose them); they are not confirmed, and the next write reconnects");
  };
  // pair_ changes only under this mutex too (ConnectPair), so it is the syncer's pair here.
  if (oldest != pair_) {
    // Writes of an earlier pair, which no connection of this one can vouch for. The current
    // pair's own writes, if any, still need a sync of their own.
    if (newest == pair_) {
      std::lock_guard<std::mutex> u(unsynced_mu_);
      if (oldest_unsynced_ == 0) oldest_unsynced_ = pair_;
      newest_unsynced_ = pair_;
    }
    return lost("the connection that took some writes was lost before they were confirmed");
  }
  if (!syncer_ || PQstatus(syncer_.get()) != CONNECTION_OK || pair_lost_.load()) {
    pair_lost_.store(true, std::memory_order_release);
    return lost("the connection to the server that took the last writes was lost");
  }
  // A commit with synchronous_commit on flushes the WAL up to its own record (and waits for
  // synchronous standbys to have it), and so covers every asynchronous commit that completed
  // before it on that server. PostgreSQL waits so only for a transaction that wrote WAL before
  // its commit: one that only took a transaction id commits asynchronously. So this one writes
  // a transactional logical message (a WAL record at any wal_level, read by no one).
  PgResult r(PQexec(syncer_.get(),
                    "BEGIN; SET LOCAL synchronous_commit = on; "
                    "SELECT pg_logical_emit_message(true, 'timetrail-sync', ''); COMMIT"));
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    // The outcome of the sync, and so of the writes, is unknown: this pair is done.
    pair_lost_.store(true, std::memory_order_release);
    Status s = ResultError(syncer_.get(), r.get(), "syncing");
    return lost("syncing failed (" + s.message() + ")");
  }
  return Status::Ok();
}

Result<std::optional<std::string>> PostgresEngine::GetDurable(Family family, std::string_view key) {
  // The read and a durable commit in one transaction on one connection: the commit flushes the
  // WAL past every commit the read saw, on the server the read saw them on. So a connection
  // replaced meanwhile cannot confirm another server's commits.
  TT_ASSIGN_OR_RETURN(Lease lease, Acquire());
  PGconn* conn = lease.get();
  if (PQenterPipelineMode(conn) != 1) return ConnError(conn, "entering pipeline mode");
  std::optional<std::string> value;
  Status s =
      SendAroundRead(conn, {"BEGIN", "SET LOCAL synchronous_commit = on"}, family, key,
                     {"SELECT pg_logical_emit_message(true, 'timetrail-sync', '')", "COMMIT"})
          ? ReadAroundRead(conn, 2, 2, "a durable read", &value)
          : ConnError(conn, "a durable read");
  s = LeavePipeline(conn, s);
  if (!s.ok()) return s;
  return value;
}

std::uint64_t PostgresEngine::ApproximateDiskBytes() const {
  auto lease = Acquire();
  if (!lease.ok()) return 0;
  std::array<const char*, 1> params{schema_.c_str()};
  PgResult r(PQexecParams(lease->get(),
                          "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::text "
                          "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                          "WHERE n.nspname = $1 AND c.relkind = 'r'",
                          1, nullptr, params.data(), nullptr, nullptr, 0));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) return 0;
  return std::strtoull(PQgetvalue(r.get(), 0, 0), nullptr, 10);
}

// Pages of rows in one direction; a change of direction reads a new page from the current key.
class PgIterator final : public KvIterator {
 public:
  PgIterator(const PostgresEngine* engine, Family family) : engine_(engine), family_(family) {}

  void Seek(std::string_view key) override { Load(Stmt::kFrom, key, true); }
  void SeekForPrev(std::string_view key) override { Load(Stmt::kAtOrBefore, key, false); }
  // An empty key with a null data pointer would go to libpq as SQL NULL, which no key follows.
  void SeekToFirst() override { Load(Stmt::kFrom, std::string_view("", 0), true); }
  void SeekToLast() override { Load(Stmt::kLast, std::string_view(), false); }
  bool Valid() const override { return status_.ok() && index_ < rows_.size(); }
  void Next() override { Step(true); }
  void Prev() override { Step(false); }
  std::string_view key() const override { return rows_[index_].first; }
  std::string_view value() const override { return rows_[index_].second; }
  Status status() const override { return status_; }

 private:
  void Step(bool forward) {
    if (forward == forward_) {
      if (++index_ < rows_.size() || !more_) return;
      page_ = std::min<std::size_t>(page_ * 4, 1024);
    } else {
      page_ = 16;
    }
    std::string from = rows_[forward == forward_ ? index_ - 1 : index_].first;
    Load(forward ? Stmt::kAfter : Stmt::kBefore, from, forward);
  }

  void Load(Stmt s, std::string_view key, bool forward) {
    if (s == Stmt::kFrom || s == Stmt::kAtOrBefore || s == Stmt::kLast) page_ = 16;
    forward_ = forward;
    rows_.clear();
    index_ = 0;
    // LIMIT is an int8 parameter: sent as binary, big-endian.
    std::string limit_bytes(8, '\0');
    for (int i = 0; i < 8; ++i) limit_bytes[7 - i] = static_cast<char>(page_ >> (8 * i));
    auto r = s == Stmt::kLast ? engine_->Query(family_, s, {limit_bytes})
                              : engine_->Query(family_, s, {key, limit_bytes});
    if (!r.ok()) {
      status_ = r.status();
      return;
    }
    status_ = Status::Ok();
    const int n = PQntuples(r->get());
    rows_.reserve(n);
    for (int i = 0; i < n; ++i) {
      rows_.emplace_back(std::string(PQgetvalue(r->get(), i, 0), PQgetlength(r->get(), i, 0)),
                         std::string(PQgetvalue(r->get(), i, 1), PQgetlength(r->get(), i, 1)));
    }
    more_ = static_cast<std::size_t>(n) == page_;
  }

  const PostgresEngine* engine_;
  Family family_;
  std::vector<std::pair<std::string, std::string>> rows_;
  std::size_t index_ = 0;
  std::size_t page_ = 16;
  bool forward_ = true;
  bool more_ = false;
  Status status_;
};

std::unique_ptr<KvIterator> PostgresEngine::NewIterator(Family family) const {
  return std::make_unique<PgIterator>(this, family);
}

}  // namespace

std::string DescribePostgresStore(std::string_view url, std::string_view schema) {
  std::string shown(url);
  // postgresql://user:secret@host/db -> postgresql://user@host/db
  std::size_t scheme = shown.find("://");
  std::size_t at = shown.find('@', scheme == std::string::npos ? 0 : scheme + 3);
  std::size_t slash = shown.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (scheme != std::string::npos && at != std::string::npos &&
      (slash == std::string::npos || at < slash)) {
    std::size_t colon = shown.find(':', scheme + 3);
    if (colon != std::string::npos && colon < at) shown.erase(colon, at - colon);
  }
  // ...?password=secret&... -> ...?password=...&...
  std::size_t p = shown.find("password=");
  if (p != std::string::npos) {
    std::size_t end = shown.find('&', p);
    shown.replace(p + 9, (end == std::string::npos ? shown.size() : end) - (p + 9), "...");
  }
  return "PostgreSQL store '" + std::string(schema) + "' at " + shown;
}

bool IsPostgresUrl(std::string_view location) {
  return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

Result<std::unique_ptr<KvEngine>> OpenPostgresEngine(const PostgresEngineOptions& options) {
  return PostgresEngine::Open(options);
}

}  // namespace timetrail
