#include "project/projection.h"

#include <nlohmann/json.hpp>

#include "capture/pg.h"

namespace timetrail::project {

using capture::PgResult;

std::unique_ptr<Projection> MakeProjection(const ProjectionSpec& spec, LogSource& source) {
  switch (spec.kind) {
    case ProjectionKind::kChanges:
      return MakeChangesProjection(spec, source);
    case ProjectionKind::kState:
      return MakeStateProjection(spec, source);
    case ProjectionKind::kHistory:
      return MakeHistoryProjection(spec, source);
  }
  return MakeChangesProjection(spec, source);
}

Result<StateCache::Entry*> StateCache::Before(const RecordedEvent& e) {
  if (states_.size() > 100000) states_.clear();
  auto it = states_.find(e.stream);
  if (it != states_.end()) return &it->second;
  Entry entry;
  query::Document& doc = entry.doc;
  if (e.revision > 0) {
    TT_ASSIGN_OR_RETURN(EntityState s, source_.StateAt(e.stream, e.revision - 1));
    doc.exists = s.exists;
    doc.state = nlohmann::json::parse(s.state, nullptr, /*allow_exceptions=*/false);
    if (doc.exists) entry.text = std::move(s.state);
    if (doc.state.is_discarded()) {
      return Status::Corruption("the state of '" + e.stream + "' at revision " +
                                std::to_string(e.revision - 1) + " is not JSON");
    }
  }
  return &states_.emplace(e.stream, std::move(entry)).first->second;
}

Status Exec(PGconn* conn, const std::string& sql, const std::string& what) {
  PgResult r(PQexec(conn, sql.c_str()));
  const ExecStatusType s = PQresultStatus(r.get());
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
    return Status::IOError("target database: " + what + ": " + PQerrorMessage(conn));
  }
  return Status::Ok();
}

Status CopyIn(PGconn* conn, const std::string& table_and_columns, const std::string& rows,
              const std::string& what) {
  const std::string copy = "COPY " + table_and_columns + " FROM STDIN";
  PgResult start(PQexec(conn, copy.c_str()));
  if (PQresultStatus(start.get()) != PGRES_COPY_IN) {
    return Status::IOError("target database: " + what + ": " + PQerrorMessage(conn));
  }
  bool sent = PQputCopyData(conn, rows.data(), static_cast<int>(rows.size())) == 1 &&
              PQputCopyEnd(conn, nullptr) == 1;
  std::string error;
  for (PgResult r(PQgetResult(conn)); r; r.reset(PQgetResult(conn))) {
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK && error.empty()) {
      error = PQerrorMessage(conn);
    }
  }
  if (!sent && error.empty()) error = PQerrorMessage(conn);
  if (!error.empty()) return Status::IOError("target database: " + what + ": " + error);
  return Status::Ok();
}

std::string QuoteIdent(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

Status ExecuteBatch(PGconn* conn, const BatchWrite& batch) {
  for (const BatchWrite::Op& op : batch.ops) {
    if (op.copy) {
      TT_RETURN_IF_ERROR(CopyIn(conn, op.sql, op.copy_rows, op.what));
    } else if (op.params.empty()) {
      TT_RETURN_IF_ERROR(Exec(conn, op.sql, op.what));
    } else {
      Result<std::vector<capture::PgRow>> r = capture::PgQuery(conn, op.sql, op.params);
      if (!r.ok())
        return Status::IOError("target database: " + op.what + ": " + r.status().message());
    }
  }
  return Status::Ok();
}

std::string TextArrayLiteral(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

nlohmann::json MetadataOf(const RecordedEvent& e) {
  nlohmann::json m = nlohmann::json::parse(e.metadata, nullptr, /*allow_exceptions=*/false);
  return m.is_object() ? m : nlohmann::json::object();
}

std::string EventLabel(const RecordedEvent& e) {
  return "event at position " + std::to_string(e.position) + " (stream '" + e.stream +
         "', revision " + std::to_string(e.revision) + ", id " + e.id.ToString() + ")";
}

}  // namespace timetrail::project
