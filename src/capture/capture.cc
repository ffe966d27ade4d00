#include "capture/capture.h"

#include <poll.h>

#include <algorithm>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "capture/checkpoint.h"
#include "capture/ordered_writes.h"
#include "capture/pg.h"
#include "capture/pgoutput.h"
#include "capture/publication.h"
#include "capture/row_mapping.h"
#include "capture/snapshot.h"
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

}  // namespace

class Capture::Impl {
 public:
  Impl(EventStore* store, const CaptureOptions& options)
      : store_(store), o_(options), writes_(store, "capture/" + options.slot) {}

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
  // Creates the replication slot; with o_.snapshot, records the tables' rows first.
  Status CreateSlot();

  Result<const RelationInfo*> Relation(std::uint32_t id) const;
  Result<std::string> RowStream(const RelationInfo& rel, const Tuple& tuple,
                                const RowDocument* fallback_row) const {
    return capture::RowStream(o_.prefix, rel, tuple, fallback_row);
  }
  // The row's current state: after this transaction's earlier changes, else from the cache,
  // else the store's (EventStore::GetEntity). nullopt: no row (never seen, or deleted).
  // The pointer stays valid until the next Add or ClearStates.
  Result<const std::optional<RowDocument>*> State(const std::string& stream);
  // "before": the row's old values as JSON text (REPLICA IDENTITY FULL), or empty.
  json Metadata(const RelationInfo& rel, const char* operation, std::string_view before) const;
  // The same as JSON text, built from the transaction's part kept as text (every change of a
  // transaction shares its context and source position): no document per change.
  // "extra": more members as JSON text ("\"moved_to\":\"...\""), or empty.
  std::string MetadataText(const RelationInfo& rel, const char* operation,
                           std::string_view before = {}, std::string_view extra = {});
  // "data": the event's JSON text, empty for none.
  Status Add(const std::string& stream, std::string_view type, std::string data,
             std::string metadata, std::optional<RowDocument> new_state);
  Status MaybeCutPart();
  Status WritePart(bool final_part, Lsn end_lsn);
  void ResetTransaction();
  // OrderedWrites::Harvest, confirming the source positions that became durable. After a
  // refused write it returns the refusal, with the capture's state reset to what is stored.
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
  // Relations of CaptureOptions::skip_schemas: their changes are dropped unread.
  std::unordered_set<std::uint32_t> skipped_;
  // Per change: no hashing at all when nothing is skipped (the usual case).
  bool Skipped(std::uint32_t relation_id) const {
    return !skipped_.empty() && skipped_.contains(relation_id);
  }
  std::unordered_map<std::string, json> known_schemas_;  // table stream -> columns recorded
  std::unordered_map<std::string, std::optional<RowDocument>> cache_;

  // The source transaction being received.
  bool in_tx_ = false;
  BeginMessage begin_;
  json context_;
  std::string metadata_prefix_;  // see MetadataText; empty until the first change needs it
  Transaction tx_;
  std::unordered_map<std::string, std::size_t> tx_index_;
  std::unordered_map<std::string, std::optional<RowDocument>> tx_states_;
  std::size_t tx_events_ = 0;
  std::size_t tx_bytes_ = 0;
  std::int64_t commit_micros_ = 0;  // the source commit time of the transaction being ended
  std::uint64_t part_ = 0;          // parts of this transaction cut so far
  std::uint64_t skip_parts_ = 0;    // parts already stored before a restart

  // Source transactions (or parts) handed to the store and not yet answered.
  OrderedWrites writes_;

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
  TT_RETURN_IF_ERROR(ExplainSourceError(
      EnsurePublication(sql_.get(), o_, [this](const std::string& l) { Log(l); }), source_));

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
  return CreateSlot();
}

Status Capture::Impl::CreateSlot() {
  // Read before the slot exists, so it is no later than any change the slot will stream: the
  // valid time of the snapshot's rows.
  TT_ASSIGN_OR_RETURN(
      auto clock,
      PgQuery(sql_.get(), "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint"));
  Timestamp before_slot{std::stoll(clock.at(0).at(0).value_or("0"))};
  TT_ASSIGN_OR_RETURN(PgConn repl, ExplainSourceError(PgConnect(o_.source_url, true), source_));
  TT_ASSIGN_OR_RETURN(std::string slot, PgQuoteIdent(repl.get(), o_.slot));
  std::string cmd = "CREATE_REPLICATION_SLOT " + slot + " LOGICAL pgoutput " +
                    (o_.snapshot ? "EXPORT_SNAPSHOT" : "NOEXPORT_SNAPSHOT");
  TT_ASSIGN_OR_RETURN(auto created, ExplainSourceError(PgQuery(repl.get(), cmd), source_));
  if (created.empty() || created[0].size() < 3) {
    return Status::Internal("CREATE_REPLICATION_SLOT returned no row");
  }
  TT_ASSIGN_OR_RETURN(Lsn consistent, ParseLsn(created[0][1].value_or("")));
  Log("created replication slot " + o_.slot + " at " + FormatLsn(consistent));
  if (!o_.snapshot) return Status::Ok();
  SnapshotRequest request;
  request.publication = o_.publication;
  request.prefix = o_.prefix;
  request.checkpoint_name = CheckpointName();
  request.snapshot_name = created[0][2].value_or("");
  request.consistent_point = consistent;
  request.valid_from = before_slot;
  // "repl" stays open until the snapshot is read: it keeps the exported snapshot alive.
  TT_RETURN_IF_ERROR(SnapshotTables(
      sql_.get(), store_, request,
      [this](const std::string& stream, RowDocument row) { cache_[stream] = std::move(row); },
      [this](const std::string& line) { Log(line); }));
  checkpoint_ = Checkpoint{};
  checkpoint_.lsn = consistent;
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
  writes_.Restart(std::move(stored));
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
  // publication_names is a literal holding a list of identifiers.
  TT_ASSIGN_OR_RETURN(std::string publication, PgQuoteIdent(repl_.get(), o_.publication));
  TT_ASSIGN_OR_RETURN(std::string publications, PgQuoteLiteral(repl_.get(), publication));
  TT_ASSIGN_OR_RETURN(std::string slot, PgQuoteIdent(repl_.get(), o_.slot));
  std::string cmd = "START_REPLICATION SLOT " + slot + " LOGICAL " + FormatLsn(checkpoint_.lsn) +
                    " (proto_version '1', publication_names " + publications + ", messages 'true')";
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
      // Nothing more to read right now: confirm the writes that became durable, then wait for
      // more changes or for the store's next answer, whichever comes first. (Waiting for the
      // writes alone would leave the source's changes unread for an fsync each time.)
      TT_RETURN_IF_ERROR(Harvest(SIZE_MAX));
      if (flushed_lsn_ > last_sent_flush_) TT_RETURN_IF_ERROR(SendStatus(false));
      pollfd p[2] = {{PQsocket(repl_.get()), POLLIN, 0}, {writes_.wake_fd(), POLLIN, 0}};
      poll(p, writes_.empty() || writes_.wake_fd() < 0 ? 1 : 2, 200);
      if (p[1].revents & POLLIN) writes_.ConsumeWake();
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
      if (!in_tx_ && writes_.empty()) {
        stats_.stored_lsn = std::max(stats_.stored_lsn, k->wal_end);
      }
    }
    // Between transactions everything the server sent before this keepalive is stored, so an
    // idle slot can advance to the server's position and the source can recycle its WAL.
    if (!in_tx_ && writes_.empty()) flushed_lsn_ = std::max(flushed_lsn_, k->wal_end);
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
  if (auto* i = std::get_if<InsertMessage>(&msg)) {
    return Skipped(i->relation_id) ? Status::Ok() : OnInsert(*i);
  }
  if (auto* u = std::get_if<UpdateMessage>(&msg)) {
    return Skipped(u->relation_id) ? Status::Ok() : OnUpdate(*u);
  }
  if (auto* d = std::get_if<DeleteMessage>(&msg)) {
    return Skipped(d->relation_id) ? Status::Ok() : OnDelete(*d);
  }
  if (auto* t = std::get_if<TruncateMessage>(&msg)) return OnTruncate(*t);
  if (auto* c = std::get_if<CommitMessage>(&msg)) return OnCommit(*c);
  if (auto* m = std::get_if<LogicalMessage>(&msg)) {
    if (m->transactional && in_tx_ && m->prefix == "timetrail") {
      json parsed = json::parse(m->content, nullptr, false);
      // Context that is not JSON is still kept (as a string) rather than dropped silently.
      context_ = parsed.is_discarded() ? json(m->content) : parsed;
      metadata_prefix_.clear();
    }
    return Status::Ok();
  }
  return Status::Ok();  // Type and Origin messages carry nothing the mapping needs
}

Status Capture::Impl::OnRelation(RelationMessage msg) {
  const auto& skip = o_.skip_schemas;
  if (std::find(skip.begin(), skip.end(), msg.schema) != skip.end()) {
    skipped_.insert(msg.relation_id);  // its truncates are skipped too: it has no RelationInfo
    relations_.erase(msg.relation_id);
    return Status::Ok();
  }
  skipped_.erase(msg.relation_id);
  RelationInfo info;
  TT_ASSIGN_OR_RETURN(info.key_columns, LoadKeyColumns(sql_.get(), msg));
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
    TT_RETURN_IF_ERROR(Add(table_stream, "schema", data.dump(),
                           Metadata(info, previous.is_null() ? "create" : "alter", {}).dump(),
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

Result<const std::optional<RowDocument>*> Capture::Impl::State(const std::string& stream) {
  if (auto it = tx_states_.find(stream); it != tx_states_.end()) return &it->second;
  if (auto it = cache_.find(stream); it != cache_.end()) return &it->second;
  std::optional<RowDocument> state;
  auto entity = store_->GetEntity(stream, EntityQuery::Latest());
  if (!entity.ok() && entity.status().code() != StatusCode::kNotFound) return entity.status();
  if (entity.ok() && entity->exists) {
    auto parsed = RowDocument::Parse(entity->state);
    if (!parsed.ok()) return parsed.status().WithPrefix(stream);
    state = std::move(*parsed);
  }
  if (cache_.size() >= kStateCacheMax) TT_RETURN_IF_ERROR(ClearStates());
  auto& slot = cache_[stream];
  slot = std::move(state);
  return &slot;
}

json Capture::Impl::Metadata(const RelationInfo& rel, const char* operation,
                             std::string_view before) const {
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
  if (!before.empty()) m["before"] = json::parse(before);
  return m;
}

std::string Capture::Impl::MetadataText(const RelationInfo& rel, const char* operation,
                                        std::string_view before, std::string_view extra) {
  auto with_extra = [&](std::string text) {
    if (!extra.empty()) {
      text.pop_back();  // '}'
      text += ',';
      text += extra;
      text += '}';
    }
    return text;
  };
  // A context of its own "before" member is rare: Metadata() decides which one stays.
  if (context_.is_object() && context_.contains("before")) {
    return with_extra(Metadata(rel, operation, before).dump());
  }
  if (metadata_prefix_.empty()) {
    // Metadata() without the table and operation: '{' + the context's members + the source's
    // position and time, ready for the rest.
    json m = json::object();
    if (context_.is_object()) {
      m = context_;
    } else if (!context_.is_null()) {
      m["context"] = context_;
    }
    m.erase("source");
    std::string context = m.dump();
    context.pop_back();  // '}'
    metadata_prefix_ = std::move(context);
    if (metadata_prefix_.size() > 1) metadata_prefix_ += ',';
    metadata_prefix_ += "\"source\":{\"lsn\":\"" + FormatLsn(begin_.final_lsn) +
                        "\",\"xid\":" + std::to_string(begin_.xid) + ",\"commit_time\":\"" +
                        FormatTimestamp(begin_.commit_time) + "\",\"table\":";
  }
  std::string text = metadata_prefix_;
  AppendJsonString(rel.name(), &text);
  text += ",\"operation\":\"";
  text += operation;
  text += "\"}";
  if (!before.empty()) {
    text += ",\"before\":";
    text += before;
  }
  text += '}';
  return with_extra(std::move(text));
}

Status Capture::Impl::Add(const std::string& stream, std::string_view type, std::string data,
                          std::string metadata, std::optional<RowDocument> new_state) {
  if (!in_tx_) return Status::Corruption("a change arrived outside a transaction");
  ProposedEvent e;
  e.type = std::string(type);
  e.data = std::move(data);
  e.metadata = std::move(metadata);
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
  RowDocument row = RowFromTuple(*rel, m.new_tuple, nullptr);
  TT_ASSIGN_OR_RETURN(std::string stream, RowStream(*rel, m.new_tuple, nullptr));
  std::string data = row.ToJson();
  return Add(stream, kPutType, std::move(data), MetadataText(*rel, "insert"), std::move(row));
}

Status Capture::Impl::OnUpdate(const UpdateMessage& m) {
  TT_ASSIGN_OR_RETURN(const RelationInfo* rel, Relation(m.relation_id));
  TT_ASSIGN_OR_RETURN(std::string new_stream, RowStream(*rel, m.new_tuple, nullptr));
  std::string old_stream = new_stream;
  if (m.old_kind != 0) {
    TT_ASSIGN_OR_RETURN(old_stream, RowStream(*rel, m.old_tuple, nullptr));
  }
  // Used before the first Add, which may move or forget the states.
  TT_ASSIGN_OR_RETURN(const std::optional<RowDocument>* previous, State(old_stream));
  const RowDocument* prev = previous->has_value() ? &**previous : nullptr;
  std::string before;
  if (m.old_kind == 'O') before = RowFromTuple(*rel, m.old_tuple, prev).ToJson();
  RowDocument row = RowFromTuple(*rel, m.new_tuple, prev);
  if (old_stream != new_stream) {
    // The key changed: the old row is gone and a row under the new key holds the values.
    std::string moved_to = "\"moved_to\":";
    AppendJsonString(new_stream, &moved_to);
    std::string moved_from = "\"moved_from\":";
    AppendJsonString(old_stream, &moved_from);
    TT_RETURN_IF_ERROR(Add(old_stream, kDeleteType, "",
                           MetadataText(*rel, "update", before, moved_to), std::nullopt));
    std::string data = row.ToJson();
    return Add(new_stream, kPutType, std::move(data),
               MetadataText(*rel, "update", before, moved_from), std::move(row));
  }
  DocumentChange change = UpdateChange(*rel, prev, row);
  return Add(new_stream, change.type, std::move(change.data), MetadataText(*rel, "update", before),
             std::move(change.new_state));
}

Status Capture::Impl::OnDelete(const DeleteMessage& m) {
  TT_ASSIGN_OR_RETURN(const RelationInfo* rel, Relation(m.relation_id));
  TT_ASSIGN_OR_RETURN(std::string stream, RowStream(*rel, m.old_tuple, nullptr));
  std::string before;
  if (m.old_kind == 'O') {
    TT_ASSIGN_OR_RETURN(const std::optional<RowDocument>* previous, State(stream));
    before =
        RowFromTuple(*rel, m.old_tuple, previous->has_value() ? &**previous : nullptr).ToJson();
  }
  return Add(stream, kDeleteType, "", MetadataText(*rel, "delete", before), std::nullopt);
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
      TT_ASSIGN_OR_RETURN(const std::optional<RowDocument>* state, State(stream));
      if (!state->has_value()) continue;
      TT_RETURN_IF_ERROR(Add(stream, kDeleteType, "", MetadataText(rel, "truncate"), std::nullopt));
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
    OrderedWrites::Write w;
    w.confirm_lsn = final_part ? end_lsn : 0;
    w.counts_transaction = final_part;
    w.commit_micros = final_part ? commit_micros_ : 0;
    w.events = tx_events_;
    w.bytes = tx_bytes_;
    writes_.Submit(std::move(tx_), next.Encode(), w,
                   "storing source transaction " + std::to_string(begin_.xid));
    // Later changes build on these states before the store can answer for them.
    if (cache_.size() + tx_states_.size() >= kStateCacheMax) TT_RETURN_IF_ERROR(ClearStates());
    for (auto& [stream, state] : tx_states_) cache_[stream] = std::move(state);
    checkpoint_ = next;
    bool full = writes_.size() >= kMaxInFlight || writes_.bytes() >= kMaxInFlightBytes;
    TT_RETURN_IF_ERROR(Harvest(full ? kMaxInFlight / 2 : SIZE_MAX));
  } else if (part_ > 1 && final_part) {
    // A plain checkpoint write is not conditional: it goes after everything in flight is stored.
    TT_RETURN_IF_ERROR(Harvest(0));
    std::string value = next.Encode();
    TT_RETURN_IF_ERROR(store_->SetCheckpoint(CheckpointName(), value));
    writes_.Restart(std::move(value));
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
  const std::uint64_t submitted_before = writes_.submitted();
  commit_micros_ = m.commit_time.micros;
  TT_RETURN_IF_ERROR(WritePart(true, m.end_lsn));
  if (already) known_schemas_.clear();
  if (checkpoint_.lsn < m.end_lsn) checkpoint_.lsn = m.end_lsn;  // nothing to store: still done
  if (writes_.submitted() == submitted_before) {
    // Nothing was handed to the store for this transaction's end; its position may still be
    // confirmed only after everything before it is durable.
    OrderedWrites::Write w;
    w.confirm_lsn = m.end_lsn;
    w.counts_transaction = !already;
    w.commit_micros = m.commit_time.micros;
    writes_.Mark(w);
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
  Status failure = writes_.Harvest(keep, [this](const OrderedWrites::Write& w) {
    if (w.confirm_lsn > 0) flushed_lsn_ = std::max(flushed_lsn_, w.confirm_lsn);
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.changes += w.events;
    if (w.counts_transaction) ++stats_.transactions;
    if (w.confirm_lsn > 0) {
      stats_.stored_lsn = std::max(stats_.stored_lsn, w.confirm_lsn);
      stats_.last_commit_micros = w.commit_micros;
    }
  });
  if (failure.ok()) return Status::Ok();
  // Every write after the refused one was refused too: start again from what is stored.
  cache_.clear();
  known_schemas_.clear();
  auto stored = store_->GetCheckpoint(CheckpointName());
  if (stored.ok() && stored->has_value()) {
    auto decoded = Checkpoint::Decode(**stored);
    if (decoded.ok()) checkpoint_ = *decoded;
    writes_.Restart(**stored);
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
  metadata_prefix_.clear();
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
