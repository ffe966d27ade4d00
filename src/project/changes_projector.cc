#include "project/changes_projector.h"

#include <chrono>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "capture/pg.h"
#include "query/document.h"
#include "timetrail/temporal.h"

namespace timetrail::project {
namespace {

using capture::PgConn;
using capture::PgQuery;
using capture::PgResult;
using nlohmann::json;

// Appends "text" to a COPY text-format field: backslash, tab, newline and carriage return are
// escaped; everything else goes as it is.
void AppendCopyField(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
}

// An optional JSON string member of "metadata", or empty.
std::optional<std::string> StringMember(const json& metadata, const char* key) {
  auto it = metadata.find(key);
  if (it == metadata.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// The top-level members whose values differ between two states, as a text[] literal.
std::string ChangedMembers(const query::Document& before, const query::Document& after) {
  std::vector<std::string> keys;
  const json empty = json::object();
  const json& b = before.exists && before.state.is_object() ? before.state : empty;
  const json& a = after.exists && after.state.is_object() ? after.state : empty;
  for (const auto& [k, v] : a.items()) {
    auto it = b.find(k);
    if (it == b.end() || *it != v) keys.push_back(k);
  }
  for (const auto& [k, v] : b.items()) {
    if (!a.contains(k)) keys.push_back(k);
  }
  std::sort(keys.begin(), keys.end());
  std::string out = "{";
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : keys[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

class Projector {
 public:
  Projector(EventStore& store, const ProjectorOptions& o) : store_(store), o_(o) {}

  Result<ProjectorStats> Run(const std::atomic<bool>& stop);

 private:
  Status Prepare();
  Result<std::uint64_t> ReadCheckpoint();
  // The row of "e" in COPY text format, folding it into its stream's state.
  Status AppendRow(const RecordedEvent& e, std::string& out);
  Result<query::Document*> StateBefore(const RecordedEvent& e);
  Status WriteBatch(const std::string& rows, std::uint64_t last_position);

  EventStore& store_;
  ProjectorOptions o_;
  PgConn conn_;
  std::string table_;  // quoted schema.table
  std::unordered_map<std::string, query::Document> states_;
};

Status Projector::Prepare() {
  TT_ASSIGN_OR_RETURN(conn_, capture::PgConnect(o_.target_url, /*replication=*/false));
  TT_ASSIGN_OR_RETURN(std::string schema, capture::PgQuoteIdent(conn_.get(), o_.schema));
  const std::string name = o_.table.empty() ? o_.name : o_.table;
  TT_ASSIGN_OR_RETURN(std::string table, capture::PgQuoteIdent(conn_.get(), name));
  TT_ASSIGN_OR_RETURN(std::string by_stream, capture::PgQuoteIdent(conn_.get(), name + "_stream"));
  TT_ASSIGN_OR_RETURN(std::string by_row, capture::PgQuoteIdent(conn_.get(), name + "_row"));
  TT_ASSIGN_OR_RETURN(std::string by_actor, capture::PgQuoteIdent(conn_.get(), name + "_actor"));
  table_ = schema + "." + table;
  // The indexes answer the questions the table is for: every change of one row or stream,
  // and everything one actor changed in a time window.
  const std::string ddl =
      "CREATE SCHEMA IF NOT EXISTS timetrail;"
      "CREATE TABLE IF NOT EXISTS timetrail.projection_checkpoints ("
      " name text PRIMARY KEY, position bigint NOT NULL,"
      " updated_at timestamptz NOT NULL DEFAULT now());"
      "CREATE SCHEMA IF NOT EXISTS " +
      schema +
      ";"
      "CREATE TABLE IF NOT EXISTS " +
      table_ +
      " ("
      " position bigint PRIMARY KEY, stream text NOT NULL, revision bigint NOT NULL,"
      " tx bigint NOT NULL, event_id uuid NOT NULL, type text NOT NULL, operation text NOT NULL,"
      " table_name text, row_key text, data jsonb, before jsonb, after jsonb,"
      " changed text[] NOT NULL, actor text, reason text, metadata jsonb NOT NULL,"
      " recorded_at timestamptz NOT NULL, valid_from timestamptz NOT NULL);"
      "CREATE INDEX IF NOT EXISTS " +
      by_stream + " ON " + table_ +
      " (stream, position);"
      "CREATE INDEX IF NOT EXISTS " +
      by_row + " ON " + table_ +
      " (table_name, row_key, position) WHERE table_name IS NOT NULL;"
      "CREATE INDEX IF NOT EXISTS " +
      by_actor + " ON " + table_ + " (actor, recorded_at);";
  PgResult r(PQexec(conn_.get(), ddl.c_str()));
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    return Status::InvalidArgument("target database: creating the projection's tables: " +
                                   std::string(PQerrorMessage(conn_.get())));
  }
  return Status::Ok();
}

Result<std::uint64_t> Projector::ReadCheckpoint() {
  TT_ASSIGN_OR_RETURN(auto rows, PgQuery(conn_.get(),
                                         "SELECT position FROM timetrail.projection_checkpoints "
                                         "WHERE name = $1",
                                         {o_.name}));
  if (rows.empty() || !rows[0][0]) return 0;
  std::uint64_t position = std::stoull(*rows[0][0]);
  if (position > store_.LastPosition()) {
    return Status::InvalidArgument(
        "projection '" + o_.name + "' is at position " + std::to_string(position) +
        " in the target, past the end of this store (" + std::to_string(store_.LastPosition()) +
        "): the target was projected from another store; use another --name or target");
  }
  return position;
}

Result<query::Document*> Projector::StateBefore(const RecordedEvent& e) {
  // A small working set is enough: events of one stream come close together in the log.
  if (states_.size() > 100000) states_.clear();
  auto it = states_.find(e.stream);
  if (it != states_.end()) return &it->second;
  query::Document doc;
  if (e.revision > 0) {
    TT_ASSIGN_OR_RETURN(EntityState s,
                        store_.GetEntity(e.stream, EntityQuery::AtRevision(e.revision - 1)));
    doc.exists = s.exists;
    doc.state = json::parse(s.state);
  }
  return &states_.emplace(e.stream, std::move(doc)).first->second;
}

Status Projector::AppendRow(const RecordedEvent& e, std::string& out) {
  TT_ASSIGN_OR_RETURN(query::Document * state, StateBefore(e));
  const query::Document before = *state;
  TT_RETURN_IF_ERROR(query::Apply(*state, e.type, e.data));
  const query::Document& after = *state;
  const json metadata = json::parse(e.metadata, nullptr, false);
  const json meta = metadata.is_object() ? metadata : json::object();
  std::optional<std::string> table = StringMember(meta, "table");
  std::optional<std::string> operation = StringMember(meta, "operation");
  if (!operation) {
    if (!query::IsDocumentType(e.type)) {
      operation = e.type;
    } else if (!after.exists) {
      operation = "delete";
    } else {
      operation = before.exists ? "update" : "insert";
    }
  }
  std::optional<std::string> row_key;
  if (table) {
    std::size_t slash = e.stream.find('/');
    if (slash != std::string::npos) row_key = e.stream.substr(slash + 1);
  }
  auto field = [&](const std::optional<std::string>& v) {
    if (v) {
      AppendCopyField(out, *v);
    } else {
      out += "\\N";
    }
    out += '\t';
  };
  auto state_text = [](const query::Document& d) -> std::optional<std::string> {
    if (!d.exists) return std::nullopt;
    return d.state.dump();
  };
  field(std::to_string(e.position));
  field(e.stream);
  field(std::to_string(e.revision));
  field(std::to_string(e.tx));
  field(e.id.ToString());
  field(e.type);
  field(operation);
  field(table);
  field(row_key);
  field(e.data);
  field(state_text(before));
  field(state_text(after));
  field(ChangedMembers(before, after));
  field(StringMember(meta, "actor"));
  field(StringMember(meta, "reason"));
  field(e.metadata);
  field(FormatTimestamp(e.recorded_at));
  AppendCopyField(out, FormatTimestamp(e.valid_from));
  out += '\n';
  return Status::Ok();
}

Status Projector::WriteBatch(const std::string& rows, std::uint64_t last_position) {
  PGconn* c = conn_.get();
  auto fail = [&](const std::string& what) {
    std::string message = PQerrorMessage(c);
    PgResult rollback(PQexec(c, "ROLLBACK"));
    return Status::IOError("target database: " + what + ": " + message);
  };
  PgResult begin(PQexec(c, "BEGIN"));
  if (PQresultStatus(begin.get()) != PGRES_COMMAND_OK) return fail("BEGIN");
  const std::string copy =
      "COPY " + table_ +
      " (position, stream, revision, tx, event_id, type, operation, table_name, row_key, data,"
      " before, after, changed, actor, reason, metadata, recorded_at, valid_from) FROM STDIN";
  PgResult start(PQexec(c, copy.c_str()));
  if (PQresultStatus(start.get()) != PGRES_COPY_IN) return fail("COPY");
  if (PQputCopyData(c, rows.data(), static_cast<int>(rows.size())) != 1 ||
      PQputCopyEnd(c, nullptr) != 1) {
    return fail("COPY");
  }
  for (PgResult r(PQgetResult(c)); r; r.reset(PQgetResult(c))) {
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) return fail("COPY");
  }
  auto saved = PgQuery(c,
                       "INSERT INTO timetrail.projection_checkpoints (name, position, updated_at) "
                       "VALUES ($1, $2, now()) ON CONFLICT (name) DO UPDATE "
                       "SET position = excluded.position, updated_at = now()",
                       {o_.name, std::to_string(last_position)});
  if (!saved.ok()) return fail("saving the checkpoint");
  PgResult commit(PQexec(c, "COMMIT"));
  if (PQresultStatus(commit.get()) != PGRES_COMMAND_OK) return fail("COMMIT");
  return Status::Ok();
}

Result<ProjectorStats> Projector::Run(const std::atomic<bool>& stop) {
  TT_RETURN_IF_ERROR(Prepare());
  ProjectorStats stats;
  TT_ASSIGN_OR_RETURN(stats.position, ReadCheckpoint());
  auto last_report = std::chrono::steady_clock::now();
  while (!stop.load()) {
    ReadLogOptions ro;
    ro.from_position = stats.position + 1;
    ro.max_count = o_.batch_events;
    TT_ASSIGN_OR_RETURN(LogPage page, store_.ReadLog(ro));
    if (page.events.empty()) {
      if (!o_.follow) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      TT_RETURN_IF_ERROR(store_.Refresh());  // a read-only store sees what its writer added
      continue;
    }
    std::string rows;
    for (const RecordedEvent& e : page.events) {
      Status s = AppendRow(e, rows);
      if (!s.ok()) {
        return s.WithPrefix("event at position " + std::to_string(e.position) + " of stream '" +
                            e.stream + "'");
      }
    }
    TT_RETURN_IF_ERROR(WriteBatch(rows, page.events.back().position));
    stats.position = page.events.back().position;
    stats.events += page.events.size();
    auto now = std::chrono::steady_clock::now();
    if (o_.log && now - last_report > std::chrono::seconds(1)) {
      o_.log("projected " + std::to_string(stats.events) + " events; at position " +
             std::to_string(stats.position) + ", " +
             std::to_string(store_.LastPosition() - stats.position) + " behind");
      last_report = now;
    }
  }
  return stats;
}

}  // namespace

Result<ProjectorStats> RunChangesProjection(EventStore& store, const ProjectorOptions& options,
                                            const std::atomic<bool>& stop) {
  if (options.batch_events == 0) return Status::InvalidArgument("batch: must be at least 1");
  Projector projector(store, options);
  return projector.Run(stop);
}

}  // namespace timetrail::project
