#include "capture/capture.h"

#include <poll.h>

#include <condition_variable>
#include <deque>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "capture/pg.h"
#include "capture/pgoutput.h"
#include "capture/source_checks.h"
#include "capture/values.h"

namespace timetrail::capture {
namespace {

using nlohmann::json;

// A source transaction bigger than this is stored in parts (each its own timetrail transaction,
// below the store's per-transaction limits); the checkpoint records how many parts are stored so
// a restart in the middle neither repeats nor skips one. The cut points depend only on the
// changes, so a replay cuts at the same places.
constexpr std::size_t kPartMaxEvents = 2000;
constexpr std::size_t kPartMaxStreams = 900;
constexpr std::size_t kPartMaxBytes = 8u << 20;
// Row states kept in memory to compute patches without re-reading streams.
constexpr std::size_t kStateCacheMax = 100000;
// Source transactions (or parts) handed to the store before the earlier ones are durable, so
// that the store's group commit writes many of them with one fsync.
constexpr std::size_t kMaxInFlight = 256;
constexpr std::size_t kMaxInFlightBytes = 32u << 20;

struct RelationInfo {
  RelationMessage msg;
  std::vector<std::size_t> key_columns;  // indexes into msg.columns, in key order
  std::string name() const { return msg.schema + "." + msg.table; }
};

// What the checkpoint says: the end of the last whole transaction stored, and, while a large
// transaction is being stored in parts, which one and how many parts.
struct Checkpoint {
  Lsn lsn = 0;
  Lsn part_commit_lsn = 0;
  std::uint64_t parts = 0;
  bool snapshot_incomplete = false;

  std::string Encode() const {
    json j = {{"lsn", FormatLsn(lsn)}};
    if (parts > 0) j["part"] = {{"commit_lsn", FormatLsn(part_commit_lsn)}, {"parts", parts}};
    if (snapshot_incomplete) j["snapshot_incomplete"] = true;
    return j.dump();
  }
  static Result<Checkpoint> Decode(const std::string& text) {
    json j = json::parse(text, nullptr, false);
    Checkpoint c;
    if (!j.is_object() || !j.contains("lsn") || !j["lsn"].is_string()) {
      return Status::Corruption("capture checkpoint '" + text + "' is not understood");
    }
    TT_ASSIGN_OR_RETURN(c.lsn, ParseLsn(j["lsn"].get<std::string>()));
    if (j.contains("part")) {
      TT_ASSIGN_OR_RETURN(c.part_commit_lsn,
                          ParseLsn(j["part"].value("commit_lsn", std::string())));
      c.parts = j["part"].value("parts", 0ull);
    }
    c.snapshot_incomplete = j.value("snapshot_incomplete", false);
    return c;
  }
};

}  // namespace

class Capture::Impl {
 public:
  Impl(EventStore* store, const CaptureOptions& options) : store_(store), o_(options) {}

  Status Prepare();
  Status Run(const std::atomic<bool>& stop);
  CaptureStats stats() const {
    std::lock_guard<std::mutex> lock(stats_mu_);
    return stats_;
  }

 private:
  void Log(const std::string& line) const {
    if (o_.log) o_.log(line);
  }
  std::string CheckpointName() const { return "capture/" + o_.slot; }

  Status Stream(const std::atomic<bool>& stop, bool* received_any);
  Status StreamUntilError(const std::atomic<bool>& stop, bool* received_any);
  Status Handle(std::string_view payload);
  Status OnRelation(RelationMessage msg);
  Status OnInsert(const InsertMessage& m);
  Status OnUpdate(const UpdateMessage& m);
  Status OnDelete(const DeleteMessage& m);
  Status OnTruncate(const TruncateMessage& m);
  Status OnCommit(const CommitMessage& m);
  Status SendStatus(bool reply_requested);
  Status Snapshot(PGconn* repl, const std::string& snapshot_name, Lsn consistent_point);

  Result<const RelationInfo*> Relation(std::uint32_t id) const;
  Result<std::vector<std::size_t>> KeyColumns(const RelationMessage& msg);
  Result<std::string> RowStream(const RelationInfo& rel, const Tuple& tuple,
                                const json* fallback_row);
  // The row as a JSON object; unchanged TOAST values come from "previous" (the row's state).
  json RowJson(const RelationInfo& rel, const Tuple& tuple, const json* previous) const;
  // The row's current state: after this transaction's earlier changes, else from the cache,
  // else folded from the store. nullopt: no row (never seen, or deleted).
  Result<std::optional<json>> State(const std::string& stream);
  json Metadata(const RelationInfo& rel, const char* operation, const json& before) const;
  Status Add(const std::string& stream, std::string_view type, const json& data, json metadata,
             std::optional<json> new_state);
  Status MaybeCutPart();
  Status WritePart(bool final_part, Lsn end_lsn);
  void ResetTransaction();
  // Takes the store's answers for the oldest writes in flight, in order, until at most
  // "keep" remain (waiting for them), or, with keep = SIZE_MAX, only those already answered.
  // Confirms the source positions that became durable. After a failed write it waits for every
  // write in flight and returns the failure, with the capture's state reset to what is stored.
  Status Harvest(std::size_t keep);
  // Forgets cached row states; first waits for the writes in flight, whose rows the store
  // could not yet answer for.
  Status ClearStates();

  EventStore* store_;
  CaptureOptions o_;
  PgConn repl_;
  PgConn sql_;  // catalog lookups while streaming
  // What Prepare learned about the source, to explain the source's errors.
  SourceInfo source_;

  Checkpoint checkpoint_;  // as stored
  Lsn flushed_lsn_ = 0;    // confirmed to the source
  Lsn received_lsn_ = 0;
  Lsn last_sent_flush_ = 0;
  std::chrono::steady_clock::time_point last_status_{};

  std::unordered_map<std::uint32_t, RelationInfo> relations_;
  std::unordered_map<std::string, json> known_schemas_;  // table stream -> columns recorded
  std::unordered_map<std::string, std::optional<json>> cache_;

  // The source transaction being received.
  bool in_tx_ = false;
  BeginMessage begin_;
  json context_;
  Transaction tx_;
  std::unordered_map<std::string, std::size_t> tx_index_;
  std::unordered_map<std::string, std::optional<json>> tx_states_;
  std::size_t tx_events_ = 0;
  std::size_t tx_bytes_ = 0;
  std::int64_t commit_micros_ = 0;  // the source commit time of the transaction being ended
  std::uint64_t part_ = 0;          // parts of this transaction cut so far
  std::uint64_t skip_parts_ = 0;    // parts already stored before a restart

  // Writes handed to the store and not yet answered, oldest first. Each names the checkpoint
  // value the one before it writes, so none is stored after one that failed.
  struct InFlight {
    std::uint64_t seq = 0;
    bool write = true;    // false: stores nothing; done once everything before it is
    Lsn confirm_lsn = 0;  // the source position to confirm once durable (0: none)
    bool counts_transaction = false;
    std::int64_t commit_micros = 0;
    std::uint64_t events = 0;
    std::size_t bytes = 0;
  };
  struct Answers {
    std::mutex mu;
    std::condition_variable cv;
    std::unordered_map<std::uint64_t, Status> done;  // GUARDED_BY(mu)
  };
  std::deque<InFlight> in_flight_;
  std::size_t in_flight_bytes_ = 0;
  std::uint64_t next_seq_ = 0;
  std::shared_ptr<Answers> answers_ = std::make_shared<Answers>();
  std::optional<std::string> written_checkpoint_;  // what the last queued write leaves stored

  mutable std::mutex stats_mu_;
  CaptureStats stats_;
};

Capture::Capture(EventStore* store, CaptureOptions options)
    : impl_(std::make_unique<Impl>(store, options)), options_(std::move(options)) {}
Capture::~Capture() = default;
Status Capture::Prepare() { return impl_->Prepare(); }
Status Capture::Run(const std::atomic<bool>& stop) { return impl_->Run(stop); }
CaptureStats Capture::stats() const { return impl_->stats(); }

// --- Preparing the source ------------------------------------------------------------------------

Status Capture::Impl::Prepare() {
  TT_ASSIGN_OR_RETURN(sql_, PgConnect(o_.source_url, false));
  TT_ASSIGN_OR_RETURN(source_, CheckSource(sql_.get(), o_.source_url));
  TT_ASSIGN_OR_RETURN(
      auto pub,
      PgQuery(sql_.get(), "SELECT 1 FROM pg_publication WHERE pubname = $1", {o_.publication}));
  if (pub.empty()) {
    std::string target = "FOR ALL TABLES";
    std::vector<std::string> tables = o_.tables;
    if (!o_.table_pattern.empty()) {
      TT_ASSIGN_OR_RETURN(auto rows,
                          PgQuery(sql_.get(),
                                  "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) "
                                  "FROM pg_tables WHERE schemaname || '.' || tablename LIKE $1 "
                                  "ORDER BY 1",
                                  {o_.table_pattern}));
      if (rows.empty()) {
        return Status::InvalidArgument("no table matches the pattern '" + o_.table_pattern +
                                       "' (it is matched with LIKE against schema.table)");
      }
      for (auto& r : rows) tables.push_back(*r[0]);
    }
    if (!tables.empty()) {
      target = "FOR TABLE ";
      for (std::size_t i = 0; i < tables.size(); ++i) target += (i ? ", " : "") + tables[i];
    }
    auto created =
        PgQuery(sql_.get(), "CREATE PUBLICATION " + PgQuoteIdent(o_.publication) + " " + target);
    if (!created.ok()) return ExplainSourceError(created.status(), source_);
    Log("created publication " + o_.publication + " " + target);
  } else {
    Log("using publication " + o_.publication);
  }
  TT_ASSIGN_OR_RETURN(
      auto keyless,
      PgQuery(sql_.get(),
              "SELECT pt.schemaname || '.' || pt.tablename FROM pg_publication_tables pt "
              "JOIN pg_namespace n ON n.nspname = pt.schemaname "
              "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename "
              "WHERE pt.pubname = $1 AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE "
              "i.indrelid = c.oid AND (i.indisprimary OR i.indisreplident)) ORDER BY 1",
              {o_.publication}));
  if (!keyless.empty()) {
    std::string names;
    for (auto& r : keyless) names += (names.empty() ? "" : ", ") + r[0].value_or("");
    return Status::InvalidArgument(
        "captured tables need a primary key (or REPLICA IDENTITY USING INDEX) to name each "
        "row's stream; these have none: " +
        names + ". Add one, or leave the tables out with --tables / --table-pattern");
  }

  auto stored = store_->GetCheckpoint(CheckpointName());
  if (!stored.ok()) return stored.status();
  if (stored->has_value()) {
    TT_ASSIGN_OR_RETURN(checkpoint_, Checkpoint::Decode(**stored));
    if (checkpoint_.snapshot_incomplete) {
      return Status::InvalidArgument(
          "the initial snapshot into this store was interrupted; start again with an empty "
          "data directory and a new slot (drop slot " +
          o_.slot + " first)");
    }
  }

  TT_ASSIGN_OR_RETURN(auto slot, PgQuery(sql_.get(),
                                         "SELECT plugin, database = current_database() FROM "
                                         "pg_replication_slots WHERE slot_name = $1",
                                         {o_.slot}));
  if (!slot.empty()) {
    if (slot[0][0].value_or("") != "pgoutput" || slot[0][1].value_or("f") != "t") {
      return Status::InvalidArgument("replication slot " + o_.slot +
                                     " exists but is not a pgoutput slot of this database; "
                                     "choose another name with --slot");
    }
    Log("using replication slot " + o_.slot);
    return Status::Ok();
  }
  TT_ASSIGN_OR_RETURN(PgConn repl, ExplainSourceError(PgConnect(o_.source_url, true), source_));
  std::string cmd = "CREATE_REPLICATION_SLOT " + PgQuoteIdent(o_.slot) + " LOGICAL pgoutput " +
                    (o_.snapshot ? "EXPORT_SNAPSHOT" : "NOEXPORT_SNAPSHOT");
  TT_ASSIGN_OR_RETURN(auto created, ExplainSourceError(PgQuery(repl.get(), cmd), source_));
  if (created.empty() || created[0].size() < 3) {
    return Status::Internal("CREATE_REPLICATION_SLOT returned no row");
  }
  TT_ASSIGN_OR_RETURN(Lsn consistent, ParseLsn(created[0][1].value_or("")));
  Log("created replication slot " + o_.slot + " at " + FormatLsn(consistent));
  if (o_.snapshot) {
    TT_RETURN_IF_ERROR(Snapshot(repl.get(), created[0][2].value_or(""), consistent));
  }
  return Status::Ok();
}

Status Capture::Impl::Snapshot(PGconn* /*repl: keeps the snapshot alive*/,
                               const std::string& snapshot_name, Lsn consistent_point) {
  TT_RETURN_IF_ERROR(
      PgQuery(sql_.get(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").status());
  TT_RETURN_IF_ERROR(
      PgQuery(sql_.get(), "SET TRANSACTION SNAPSHOT " + PgQuoteLiteral(snapshot_name)).status());
  TT_ASSIGN_OR_RETURN(auto tables,
                      PgQuery(sql_.get(),
                              "SELECT c.oid::text, pt.schemaname, pt.tablename FROM "
                              "pg_publication_tables pt JOIN pg_namespace n ON n.nspname = "
                              "pt.schemaname JOIN pg_class c ON c.relnamespace = n.oid AND "
                              "c.relname = pt.tablename WHERE pt.pubname = $1 ORDER BY 2, 3",
                              {o_.publication}));
  Checkpoint progress;
  progress.snapshot_incomplete = true;
  std::uint64_t rows_total = 0;
  auto last_progress = std::chrono::steady_clock::now();
  Transaction batch;
  auto flush = [&](bool last) -> Status {
    Checkpoint c = last ? Checkpoint{} : progress;
    c.lsn = consistent_point;
    if (batch.appends.empty()) return store_->SetCheckpoint(CheckpointName(), c.Encode());
    auto r = store_->TransactWithCheckpoint(batch, CheckpointName(), c.Encode());
    batch.appends.clear();
    return r.status();
  };
  for (const auto& t : tables) {
    RelationInfo rel;
    rel.msg.relation_id = static_cast<std::uint32_t>(std::stoul(*t[0]));
    rel.msg.schema = *t[1];
    rel.msg.table = *t[2];
    TT_ASSIGN_OR_RETURN(
        auto key_rows,
        PgQuery(sql_.get(),
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
                "i.indrelid AND a.attnum = ANY(i.indkey::int2[]) WHERE i.indrelid = $1::oid "
                "AND (i.indisprimary OR i.indisreplident) ORDER BY i.indisprimary DESC, "
                "array_position(i.indkey::int2[], a.attnum)",
                {*t[0]}));
    std::string sql =
        "SELECT * FROM " + PgQuoteIdent(rel.msg.schema) + "." + PgQuoteIdent(rel.msg.table);
    if (!PQsendQuery(sql_.get(), sql.c_str()) || !PQsetSingleRowMode(sql_.get())) {
      return Status::Unavailable(std::string("snapshot query failed: ") +
                                 PQerrorMessage(sql_.get()));
    }
    std::uint64_t rows = 0;
    bool have_columns = false;
    std::vector<std::string> stream_names;
    while (PgResult res{PQgetResult(sql_.get())}) {
      ExecStatusType st = PQresultStatus(res.get());
      if (st == PGRES_TUPLES_OK) continue;
      if (st != PGRES_SINGLE_TUPLE) {
        return Status::Unavailable("snapshot of " + rel.name() +
                                   " failed: " + PQresultErrorMessage(res.get()));
      }
      if (!have_columns) {
        for (int c = 0; c < PQnfields(res.get()); ++c) {
          Column col;
          col.name = PQfname(res.get(), c);
          col.type_oid = PQftype(res.get(), c);
          rel.msg.columns.push_back(col);
        }
        have_columns = true;
      }
      Tuple tuple;
      for (int c = 0; c < PQnfields(res.get()); ++c) {
        Value v;
        if (!PQgetisnull(res.get(), 0, c)) {
          v.kind = Value::Kind::kText;
          v.bytes.assign(PQgetvalue(res.get(), 0, c), PQgetlength(res.get(), 0, c));
        }
        tuple.push_back(std::move(v));
      }
      if (rel.key_columns.empty()) {
        // The key columns were read from the catalog before the rows began to stream.
        for (const auto& k : key_rows) {
          for (std::size_t i = 0; i < rel.msg.columns.size(); ++i) {
            if (rel.msg.columns[i].name == k[0].value_or("")) rel.key_columns.push_back(i);
          }
        }
      }
      TT_ASSIGN_OR_RETURN(std::string stream, RowStream(rel, tuple, nullptr));
      ProposedEvent e;
      e.type = std::string(kPutType);
      json row = RowJson(rel, tuple, nullptr);
      e.data = row.dump();
      json meta = {{"source",
                    {{"lsn", FormatLsn(consistent_point)},
                     {"table", rel.name()},
                     {"operation", "snapshot"}}}};
      e.metadata = meta.dump();
      batch.appends.push_back(StreamAppend{stream, ExpectedRevision::Any(), {std::move(e)}});
      cache_[stream] = std::move(row);
      ++rows;
      if (batch.appends.size() >= 500) {
        TT_RETURN_IF_ERROR(flush(false));
        auto now = std::chrono::steady_clock::now();
        if (now - last_progress >= std::chrono::seconds(2)) {
          last_progress = now;
          Log("snapshot: " + rel.name() + ": " + std::to_string(rows) + " rows so far");
        }
      }
    }
    rows_total += rows;
    Log("snapshot: " + rel.name() + ": " + std::to_string(rows) + " rows");
  }
  TT_RETURN_IF_ERROR(flush(true));
  (void)PgQuery(sql_.get(), "COMMIT");
  checkpoint_ = Checkpoint{};
  checkpoint_.lsn = consistent_point;
  Log("snapshot done: " + std::to_string(rows_total) + " rows as of " +
      FormatLsn(consistent_point));
  return Status::Ok();
}

// --- Streaming -----------------------------------------------------------------------------------

Status Capture::Impl::Run(const std::atomic<bool>& stop) {
  int failures = 0;
  while (!stop.load()) {
    bool received_any = false;
    Status s = Stream(stop, &received_any);
    repl_.reset();
    ResetTransaction();
    if (s.ok()) return s;
    if (s.code() != StatusCode::kUnavailable) return s;
    if (received_any) failures = 0;
    ++failures;
    if (o_.max_reconnects >= 0 && failures > o_.max_reconnects) return s;
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++stats_.reconnects;
    }
    Log(s.message() + "; reconnecting");
    auto until = std::chrono::steady_clock::now() + o_.reconnect_delay;
    while (!stop.load() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return Status::Ok();
}

Status Capture::Impl::Stream(const std::atomic<bool>& stop, bool* received_any) {
  // The chain of conditional writes starts from what is stored.
  TT_ASSIGN_OR_RETURN(std::optional<std::string> stored, store_->GetCheckpoint(CheckpointName()));
  if (!stored) {
    stored = checkpoint_.Encode();
    TT_RETURN_IF_ERROR(store_->SetCheckpoint(CheckpointName(), *stored));
  }
  written_checkpoint_ = std::move(stored);
  Status s = StreamUntilError(stop, received_any);
  // Nothing may stay in flight once streaming stops: every write is answered first.
  Status drained = Harvest(0);
  if (s.ok() && drained.ok() && stop.load() && repl_ != nullptr) {
    (void)SendStatus(false);  // what became durable while draining
    PQputCopyEnd(repl_.get(), nullptr);
    PQflush(repl_.get());
  }
  return drained.ok() ? s : drained;
}

Status Capture::Impl::StreamUntilError(const std::atomic<bool>& stop, bool* received_any) {
  TT_ASSIGN_OR_RETURN(repl_, ExplainSourceError(PgConnect(o_.source_url, true), source_));
  if (sql_ == nullptr || PQstatus(sql_.get()) != CONNECTION_OK) {
    TT_ASSIGN_OR_RETURN(sql_, PgConnect(o_.source_url, false));
  }
  relations_.clear();  // the server sends every Relation again on a new connection
  std::string pubs = "\"";
  for (char c : o_.publication) {
    if (c == '"') pubs.push_back('"');
    pubs.push_back(c);
  }
  pubs.push_back('"');
  std::string cmd = "START_REPLICATION SLOT " + PgQuoteIdent(o_.slot) + " LOGICAL " +
                    FormatLsn(checkpoint_.lsn) + " (proto_version '1', publication_names " +
                    PgQuoteLiteral(pubs) + ", messages 'true')";
  PgResult res(PQexec(repl_.get(), cmd.c_str()));
  if (PQresultStatus(res.get()) != PGRES_COPY_BOTH) {
    std::string err = PQerrorMessage(repl_.get());
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return ExplainSourceError(
        Status::Unavailable("cannot start replication from slot " + o_.slot + ": " + err), source_);
  }
  res.reset();
  flushed_lsn_ = std::max(flushed_lsn_, checkpoint_.lsn);
  Log("streaming from slot " + o_.slot + " at " + FormatLsn(checkpoint_.lsn));
  last_status_ = std::chrono::steady_clock::now();
  while (true) {
    if (stop.load()) return Status::Ok();  // Stream drains the writes and says goodbye
    char* buf = nullptr;
    int n = PQgetCopyData(repl_.get(), &buf, /*async=*/1);
    if (n > 0) {
      *received_any = true;
      Status s = Handle(std::string_view(buf, static_cast<std::size_t>(n)));
      PQfreemem(buf);
      TT_RETURN_IF_ERROR(s);
    } else if (n == 0) {
      if (!in_flight_.empty()) {
        // Nothing more to read right now: wait for the writes handed over so far (one fsync,
        // usually) and confirm them, then look for more.
        TT_RETURN_IF_ERROR(Harvest(0));
        if (flushed_lsn_ > last_sent_flush_) TT_RETURN_IF_ERROR(SendStatus(false));
        continue;
      }
      pollfd p{PQsocket(repl_.get()), POLLIN, 0};
      poll(&p, 1, 200);
      if (!PQconsumeInput(repl_.get())) {
        return Status::Unavailable(std::string("source connection lost: ") +
                                   PQerrorMessage(repl_.get()));
      }
    } else {
      std::string err = PQerrorMessage(repl_.get());
      while (!err.empty() && err.back() == '\n') err.pop_back();
      return Status::Unavailable("the source ended replication" +
                                 (err.empty() ? std::string() : ": " + err));
    }
    if (std::chrono::steady_clock::now() - last_status_ > o_.status_interval) {
      TT_RETURN_IF_ERROR(SendStatus(false));
    }
  }
}

Status Capture::Impl::SendStatus(bool reply_requested) {
  std::string msg = EncodeStatusUpdate(std::max(received_lsn_, flushed_lsn_), flushed_lsn_, Now(),
                                       reply_requested);
  last_status_ = std::chrono::steady_clock::now();
  last_sent_flush_ = flushed_lsn_;
  if (PQputCopyData(repl_.get(), msg.data(), static_cast<int>(msg.size())) != 1 ||
      PQflush(repl_.get()) != 0) {
    return Status::Unavailable(std::string("cannot send status to the source: ") +
                               PQerrorMessage(repl_.get()));
  }
  return Status::Ok();
}

Status Capture::Impl::Handle(std::string_view payload) {
  TT_ASSIGN_OR_RETURN(CopyData data, DecodeCopyData(payload));
  if (auto* k = std::get_if<Keepalive>(&data)) {
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.server_lsn = std::max(stats_.server_lsn, k->wal_end);
      if (!in_tx_ && in_flight_.empty()) {
        stats_.stored_lsn = std::max(stats_.stored_lsn, k->wal_end);
      }
    }
    // Between transactions everything the server sent before this keepalive is stored, so an
    // idle slot can advance to the server's position and the source can recycle its WAL.
    if (!in_tx_ && in_flight_.empty()) flushed_lsn_ = std::max(flushed_lsn_, k->wal_end);
    if (k->reply_requested || flushed_lsn_ > last_sent_flush_) return SendStatus(false);
    return Status::Ok();
  }
  const XLogData& x = std::get<XLogData>(data);
  received_lsn_ = std::max(received_lsn_, x.wal_start);
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.server_lsn = std::max(stats_.server_lsn, x.wal_end);
  }
  TT_ASSIGN_OR_RETURN(PgOutputMessage msg, DecodePgOutput(x.payload));
  if (auto* b = std::get_if<BeginMessage>(&msg)) {
    ResetTransaction();
    in_tx_ = true;
    begin_ = *b;
    if (checkpoint_.parts > 0 && checkpoint_.part_commit_lsn == b->final_lsn) {
      skip_parts_ = checkpoint_.parts;
    }
    return Status::Ok();
  }
  if (auto* r = std::get_if<RelationMessage>(&msg)) return OnRelation(std::move(*r));
  if (auto* i = std::get_if<InsertMessage>(&msg)) return OnInsert(*i);
  if (auto* u = std::get_if<UpdateMessage>(&msg)) return OnUpdate(*u);
  if (auto* d = std::get_if<DeleteMessage>(&msg)) return OnDelete(*d);
  if (auto* t = std::get_if<TruncateMessage>(&msg)) return OnTruncate(*t);
  if (auto* c = std::get_if<CommitMessage>(&msg)) return OnCommit(*c);
  if (auto* m = std::get_if<LogicalMessage>(&msg)) {
    if (m->transactional && in_tx_ && m->prefix == "timetrail") {
      json parsed = json::parse(m->content, nullptr, false);
      // Context that is not JSON is still kept (as a string) rather than dropped silently.
      context_ = parsed.is_discarded() ? json(m->content) : parsed;
    }
    return Status::Ok();
  }
  return Status::Ok();  // Type and Origin messages carry nothing the mapping needs
}

Result<std::vector<std::size_t>> Capture::Impl::KeyColumns(const RelationMessage& msg) {
  std::vector<std::size_t> keys;
  TT_ASSIGN_OR_RETURN(
      auto rows,
      PgQuery(sql_.get(),
              "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
              "AND a.attnum = ANY(i.indkey::int2[]) WHERE i.indrelid = $1::oid AND "
              "i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)",
              {std::to_string(msg.relation_id)}));
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < msg.columns.size(); ++i) {
      if (msg.columns[i].name == r[0].value_or("")) keys.push_back(i);
    }
  }
  if (keys.empty() && msg.replica_identity == 'i') {
    for (std::size_t i = 0; i < msg.columns.size(); ++i) {
      if (msg.columns[i].key) keys.push_back(i);
    }
  }
  return keys;
}

Status Capture::Impl::OnRelation(RelationMessage msg) {
  RelationInfo info;
  TT_ASSIGN_OR_RETURN(info.key_columns, KeyColumns(msg));
  info.msg = std::move(msg);
  const RelationMessage& m = info.msg;
  json columns = json::array();
  for (const auto& c : m.columns) {
    columns.push_back({{"name", c.name}, {"type_oid", c.type_oid}, {"key", c.key}});
  }
  std::string table_stream = TableStreamName(o_.prefix, m.schema, m.table);
  auto known = known_schemas_.find(table_stream);
  if (known == known_schemas_.end()) {
    json last;
    ReadStreamOptions ro;
    ro.direction = Direction::kBackward;
    ro.max_count = 1;
    auto events = store_->ReadStream(table_stream, ro);
    if (events.ok() && !events->empty()) {
      json d = json::parse(events->front().data, nullptr, false);
      if (d.is_object() && d.contains("columns")) last = d["columns"];
    } else if (!events.ok() && events.status().code() != StatusCode::kNotFound) {
      return events.status();
    }
    known = known_schemas_.emplace(table_stream, last).first;
  }
  if (known->second != columns && in_tx_) {
    json data = {{"columns", columns}, {"replica_identity", std::string(1, m.replica_identity)}};
    json previous = known->second;
    known->second = columns;
    info.msg.relation_id = m.relation_id;
    relations_[m.relation_id] = info;
    TT_RETURN_IF_ERROR(Add(table_stream, "schema", data,
                           Metadata(info, previous.is_null() ? "create" : "alter", json()),
                           std::nullopt));
    return Status::Ok();
  }
  relations_[m.relation_id] = std::move(info);
  return Status::Ok();
}

Result<const RelationInfo*> Capture::Impl::Relation(std::uint32_t id) const {
  auto it = relations_.find(id);
  if (it == relations_.end()) {
    return Status::Corruption("change for relation " + std::to_string(id) +
                              " arrived before its Relation message");
  }
  if (it->second.key_columns.empty()) {
    return Status::InvalidArgument("table " + it->second.name() +
                                   " has no primary key, so its rows cannot be named; add one "
                                   "(or REPLICA IDENTITY USING INDEX) or stop capturing it");
  }
  return &it->second;
}

Result<std::string> Capture::Impl::RowStream(const RelationInfo& rel, const Tuple& tuple,
                                             const json* fallback_row) {
  std::vector<std::string> key;
  for (std::size_t i : rel.key_columns) {
    if (i < tuple.size() && tuple[i].kind == Value::Kind::kText) {
      key.push_back(tuple[i].bytes);
    } else if (fallback_row != nullptr && fallback_row->contains(rel.msg.columns[i].name)) {
      key.push_back(JsonToPgText((*fallback_row)[rel.msg.columns[i].name], ""));
    } else {
      return Status::InvalidArgument("a change to " + rel.name() + " has no value for key column " +
                                     rel.msg.columns[i].name);
    }
  }
  return RowStreamName(o_.prefix, rel.msg.schema, rel.msg.table, key);
}

json Capture::Impl::RowJson(const RelationInfo& rel, const Tuple& tuple,
                            const json* previous) const {
  json row = json::object();
  for (std::size_t i = 0; i < tuple.size() && i < rel.msg.columns.size(); ++i) {
    const Column& c = rel.msg.columns[i];
    switch (tuple[i].kind) {
      case Value::Kind::kNull:
        row[c.name] = nullptr;
        break;
      case Value::Kind::kText:
        row[c.name] = PgTextToJson(c.type_oid, tuple[i].bytes);
        break;
      case Value::Kind::kBinary:
        row[c.name] = tuple[i].bytes;
        break;
      case Value::Kind::kUnchangedToast:
        // Unchanged: the value is whatever the row held before.
        if (previous != nullptr && previous->is_object() && previous->contains(c.name)) {
          row[c.name] = (*previous)[c.name];
        }
        break;
    }
  }
  return row;
}

Result<std::optional<json>> Capture::Impl::State(const std::string& stream) {
  if (auto it = tx_states_.find(stream); it != tx_states_.end()) return it->second;
  if (auto it = cache_.find(stream); it != cache_.end()) return it->second;
  std::optional<json> state;
  ReadStreamOptions ro;
  ro.max_count = 1000;
  Revision next = 0;
  while (true) {
    ro.from_revision = next;
    auto events = store_->ReadStream(stream, ro);
    if (!events.ok()) {
      if (events.status().code() == StatusCode::kNotFound) break;
      return events.status();
    }
    for (const auto& e : *events) {
      if (e.type == kPutType) {
        state = json::parse(e.data, nullptr, false);
      } else if (e.type == kPatchType) {
        if (!state) state = json::object();
        state->merge_patch(json::parse(e.data, nullptr, false));
      } else if (e.type == kDeleteType) {
        state.reset();
      }
      next = e.revision + 1;
    }
    if (events->size() < ro.max_count) break;
  }
  if (cache_.size() >= kStateCacheMax) TT_RETURN_IF_ERROR(ClearStates());
  cache_[stream] = state;
  return state;
}

json Capture::Impl::Metadata(const RelationInfo& rel, const char* operation,
                             const json& before) const {
  json m = json::object();
  if (context_.is_object()) {
    m = context_;
  } else if (!context_.is_null()) {
    m["context"] = context_;
  }
  m["source"] = {{"lsn", FormatLsn(begin_.final_lsn)},
                 {"xid", begin_.xid},
                 {"commit_time", FormatTimestamp(begin_.commit_time)},
                 {"table", rel.name()},
                 {"operation", operation}};
  if (!before.is_null()) m["before"] = before;
  return m;
}

Status Capture::Impl::Add(const std::string& stream, std::string_view type, const json& data,
                          json metadata, std::optional<json> new_state) {
  if (!in_tx_) return Status::Corruption("a change arrived outside a transaction");
  ProposedEvent e;
  e.type = std::string(type);
  e.data = data.is_null() ? std::string() : data.dump();
  e.metadata = metadata.dump();
  e.valid_from = begin_.commit_time;
  tx_bytes_ += e.data.size() + e.metadata.size() + stream.size();
  ++tx_events_;
  auto [it, inserted] = tx_index_.emplace(stream, tx_.appends.size());
  if (inserted) tx_.appends.push_back(StreamAppend{stream, ExpectedRevision::Any(), {}});
  tx_.appends[it->second].events.push_back(std::move(e));
  if (type != "schema") tx_states_[stream] = std::move(new_state);
  return MaybeCutPart();
}

Status Capture::Impl::OnInsert(const InsertMessage& m) {
  TT_ASSIGN_OR_RETURN(const RelationInfo* rel, Relation(m.relation_id));
  json row = RowJson(*rel, m.new_tuple, nullptr);
  TT_ASSIGN_OR_RETURN(std::string stream, RowStream(*rel, m.new_tuple, nullptr));
  return Add(stream, kPutType, row, Metadata(*rel, "insert", json()), row);
}

Status Capture::Impl::OnUpdate(const UpdateMessage& m) {
  TT_ASSIGN_OR_RETURN(const RelationInfo* rel, Relation(m.relation_id));
  TT_ASSIGN_OR_RETURN(std::string new_stream, RowStream(*rel, m.new_tuple, nullptr));
  std::string old_stream = new_stream;
  if (m.old_kind != 0) {
    TT_ASSIGN_OR_RETURN(old_stream, RowStream(*rel, m.old_tuple, nullptr));
  }
  TT_ASSIGN_OR_RETURN(std::optional<json> previous, State(old_stream));
  const json* prev = previous ? &*previous : nullptr;
  json before;
  if (m.old_kind == 'O') before = RowJson(*rel, m.old_tuple, prev);
  json row = RowJson(*rel, m.new_tuple, prev);
  if (old_stream != new_stream) {
    // The key changed: the old row is gone and a row under the new key holds the values.
    json del_meta = Metadata(*rel, "update", before);
    del_meta["moved_to"] = new_stream;
    TT_RETURN_IF_ERROR(Add(old_stream, kDeleteType, json(), del_meta, std::nullopt));
    json put_meta = Metadata(*rel, "update", before);
    put_meta["moved_from"] = old_stream;
    return Add(new_stream, kPutType, row, put_meta, row);
  }
  json patch = json::object();
  json state = previous ? *previous : json::object();
  for (auto it = row.begin(); it != row.end(); ++it) {
    if (!state.contains(it.key()) || state[it.key()] != it.value()) patch[it.key()] = it.value();
  }
  // Columns the row had that the table no longer has (dropped): removed from the document.
  if (previous) {
    for (auto it = previous->begin(); it != previous->end(); ++it) {
      bool present = false;
      for (const auto& c : rel->msg.columns) present = present || c.name == it.key();
      if (!present) patch[it.key()] = nullptr;
    }
  }
  // A JSON merge patch cannot set a value to null (null removes the key), so a column set to
  // NULL is written with the whole row instead.
  bool sets_null = false;
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it.value().is_null() && row.contains(it.key())) sets_null = true;
  }
  json new_state = state;
  new_state.merge_patch(patch);
  if (sets_null) {
    json full = new_state;
    for (auto it = row.begin(); it != row.end(); ++it) full[it.key()] = it.value();
    return Add(new_stream, kPutType, full, Metadata(*rel, "update", before), full);
  }
  return Add(new_stream, kPatchType, patch, Metadata(*rel, "update", before), new_state);
}

Status Capture::Impl::OnDelete(const DeleteMessage& m) {
  TT_ASSIGN_OR_RETURN(const RelationInfo* rel, Relation(m.relation_id));
  TT_ASSIGN_OR_RETURN(std::string stream, RowStream(*rel, m.old_tuple, nullptr));
  json before;
  if (m.old_kind == 'O') {
    TT_ASSIGN_OR_RETURN(std::optional<json> previous, State(stream));
    before = RowJson(*rel, m.old_tuple, previous ? &*previous : nullptr);
  }
  return Add(stream, kDeleteType, json(), Metadata(*rel, "delete", before), std::nullopt);
}

Status Capture::Impl::OnTruncate(const TruncateMessage& m) {
  // The rows to delete are found in the log, which does not yet show the rows of earlier source
  // transactions still in flight: wait for those first (truncates are rare).
  TT_RETURN_IF_ERROR(Harvest(0));
  for (std::uint32_t id : m.relation_ids) {
    auto it = relations_.find(id);
    if (it == relations_.end()) continue;  // not a captured table
    const RelationInfo& rel = it->second;
    std::string prefix = TableStreamName(o_.prefix, rel.msg.schema, rel.msg.table) + "/";
    std::vector<std::string> streams;
    std::unordered_set<std::string> seen;
    ReadLogOptions lo;
    lo.filter.stream_prefix = prefix;
    lo.max_count = 10000;
    lo.max_scan = 100000;
    while (true) {
      auto page = store_->ReadLog(lo);
      if (!page.ok()) return page.status();
      for (const auto& e : page->events) {
        if (seen.insert(e.stream).second) streams.push_back(e.stream);
      }
      if (page->next_position > page->head_position) break;
      lo.from_position = page->next_position;
    }
    for (const auto& [stream, state] : tx_states_) {
      if (stream.compare(0, prefix.size(), prefix) == 0 && seen.insert(stream).second) {
        streams.push_back(stream);
      }
    }
    for (const auto& stream : streams) {
      TT_ASSIGN_OR_RETURN(std::optional<json> state, State(stream));
      if (!state) continue;
      json meta = Metadata(rel, "truncate", json());
      TT_RETURN_IF_ERROR(Add(stream, kDeleteType, json(), meta, std::nullopt));
    }
  }
  return Status::Ok();
}

Status Capture::Impl::MaybeCutPart() {
  if (tx_events_ < kPartMaxEvents && tx_.appends.size() < kPartMaxStreams &&
      tx_bytes_ < kPartMaxBytes) {
    return Status::Ok();
  }
  return WritePart(false, 0);
}

Status Capture::Impl::WritePart(bool final_part, Lsn end_lsn) {
  ++part_;
  bool already_stored = final_part ? end_lsn <= checkpoint_.lsn
                                   : (part_ <= skip_parts_ || begin_.final_lsn <= checkpoint_.lsn);
  Checkpoint next = checkpoint_;
  if (final_part) {
    next = Checkpoint{};
    next.lsn = end_lsn;
  } else {
    next.part_commit_lsn = begin_.final_lsn;
    next.parts = part_;
  }
  if (already_stored) {
    // Stored before a restart: drop it, and forget the states it produced so later changes
    // read them back from the store.
    for (const auto& [stream, state] : tx_states_) cache_.erase(stream);
  } else if (!tx_.appends.empty()) {
    InFlight f;
    f.seq = next_seq_++;
    f.confirm_lsn = final_part ? end_lsn : 0;
    f.counts_transaction = final_part;
    f.commit_micros = final_part ? commit_micros_ : 0;
    f.events = tx_events_;
    f.bytes = tx_bytes_;
    std::string value = next.Encode();
    std::string what = "storing source transaction " + std::to_string(begin_.xid);
    store_->TransactWithCheckpointAsync(
        std::move(tx_), CheckpointName(), value, written_checkpoint_,
        [answers = answers_, seq = f.seq, what](Result<Committed> r) {
          std::lock_guard<std::mutex> lock(answers->mu);
          answers->done[seq] = r.ok() ? Status::Ok() : r.status().WithPrefix(what);
          answers->cv.notify_all();
        });
    written_checkpoint_ = std::move(value);
    in_flight_bytes_ += f.bytes;
    in_flight_.push_back(f);
    // Later changes build on these states before the store can answer for them.
    if (cache_.size() + tx_states_.size() >= kStateCacheMax) TT_RETURN_IF_ERROR(ClearStates());
    for (auto& [stream, state] : tx_states_) cache_[stream] = std::move(state);
    checkpoint_ = next;
    bool full = in_flight_.size() >= kMaxInFlight || in_flight_bytes_ >= kMaxInFlightBytes;
    TT_RETURN_IF_ERROR(Harvest(full ? kMaxInFlight / 2 : SIZE_MAX));
  } else if (part_ > 1 && final_part) {
    // A plain checkpoint write is not conditional: it goes after everything in flight is stored.
    TT_RETURN_IF_ERROR(Harvest(0));
    std::string value = next.Encode();
    TT_RETURN_IF_ERROR(store_->SetCheckpoint(CheckpointName(), value));
    written_checkpoint_ = std::move(value);
    checkpoint_ = next;
  }
  tx_.appends.clear();
  tx_index_.clear();
  tx_states_.clear();
  tx_events_ = 0;
  tx_bytes_ = 0;
  return Status::Ok();
}

Status Capture::Impl::OnCommit(const CommitMessage& m) {
  if (!in_tx_) return Status::Corruption("Commit without Begin in the replication stream");
  bool already = m.end_lsn <= checkpoint_.lsn;
  std::uint64_t writes_before = next_seq_;
  commit_micros_ = m.commit_time.micros;
  TT_RETURN_IF_ERROR(WritePart(true, m.end_lsn));
  if (already) known_schemas_.clear();
  if (checkpoint_.lsn < m.end_lsn) checkpoint_.lsn = m.end_lsn;  // nothing to store: still done
  if (next_seq_ == writes_before) {
    // Nothing was handed to the store for this transaction's end; its position may still be
    // confirmed only after everything before it is durable.
    InFlight f;
    f.write = false;
    f.confirm_lsn = m.end_lsn;
    f.counts_transaction = !already;
    f.commit_micros = m.commit_time.micros;
    in_flight_.push_back(f);
    TT_RETURN_IF_ERROR(Harvest(SIZE_MAX));
  }
  received_lsn_ = std::max(received_lsn_, m.end_lsn);
  ResetTransaction();
  // Confirm promptly (but not for every small transaction) so the source can recycle its WAL.
  if (std::chrono::steady_clock::now() - last_status_ > std::chrono::milliseconds(100)) {
    return SendStatus(false);
  }
  return Status::Ok();
}

Status Capture::Impl::Harvest(std::size_t keep) {
  Status failure;
  while (!in_flight_.empty() && (in_flight_.size() > keep || keep == SIZE_MAX || !failure.ok())) {
    InFlight& f = in_flight_.front();
    Status result;
    if (f.write) {
      std::unique_lock<std::mutex> lock(answers_->mu);
      auto it = answers_->done.find(f.seq);
      if (it == answers_->done.end()) {
        if (keep == SIZE_MAX && failure.ok()) break;  // not answered yet, and not waiting
        answers_->cv.wait(lock, [&] { return answers_->done.count(f.seq) > 0; });
        it = answers_->done.find(f.seq);
      }
      result = std::move(it->second);
      answers_->done.erase(it);
    }
    if (!result.ok() && failure.ok()) failure = result;
    if (failure.ok()) {
      if (f.confirm_lsn > 0) flushed_lsn_ = std::max(flushed_lsn_, f.confirm_lsn);
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.changes += f.events;
      if (f.counts_transaction) ++stats_.transactions;
      if (f.confirm_lsn > 0) {
        stats_.stored_lsn = std::max(stats_.stored_lsn, f.confirm_lsn);
        stats_.last_commit_micros = f.commit_micros;
      }
    }
    in_flight_bytes_ -= f.bytes;
    in_flight_.pop_front();
  }
  if (failure.ok()) return Status::Ok();
  // Every write after the failed one was refused too (each names its predecessor's
  // checkpoint): start again from what is stored.
  cache_.clear();
  known_schemas_.clear();
  auto stored = store_->GetCheckpoint(CheckpointName());
  if (stored.ok() && stored->has_value()) {
    auto decoded = Checkpoint::Decode(**stored);
    if (decoded.ok()) checkpoint_ = *decoded;
    written_checkpoint_ = **stored;
  }
  return failure;
}

Status Capture::Impl::ClearStates() {
  TT_RETURN_IF_ERROR(Harvest(0));
  cache_.clear();
  return Status::Ok();
}

void Capture::Impl::ResetTransaction() {
  in_tx_ = false;
  context_ = json();
  tx_.appends.clear();
  tx_index_.clear();
  tx_states_.clear();
  tx_events_ = 0;
  tx_bytes_ = 0;
  part_ = 0;
  skip_parts_ = 0;
}

BackgroundCapture::BackgroundCapture(EventStore* store, CaptureOptions options)
    : capture_(store, options), options_(std::move(options)) {}

Result<std::unique_ptr<BackgroundCapture>> BackgroundCapture::Start(EventStore* store,
                                                                    CaptureOptions options) {
  std::unique_ptr<BackgroundCapture> bg(new BackgroundCapture(store, std::move(options)));
  TT_RETURN_IF_ERROR(bg->capture_.Prepare());
  BackgroundCapture* self = bg.get();
  bg->thread_ = std::thread([self] {
    self->result_ = self->capture_.Run(self->stop_);
    if (!self->result_.ok() && self->options_.log) {
      self->options_.log("capture stopped: " + self->result_.ToString());
    }
  });
  return bg;
}

BackgroundCapture::~BackgroundCapture() { (void)Stop(); }

Status BackgroundCapture::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  return result_;
}

}  // namespace timetrail::capture
