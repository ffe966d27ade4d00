#include "capture/snapshot.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "capture/checkpoint.h"
#include "capture/pg.h"
#include "capture/row_mapping.h"

namespace timetrail::capture {

using nlohmann::json;

namespace {

// Rows stored per transaction.
constexpr std::size_t kSnapshotBatchRows = 500;

// The names of table "oid"'s key columns, in key order: its primary key's, else its replica
// identity index's.
Result<std::vector<std::string>> KeyColumnNames(PGconn* sql, const std::string& oid) {
  TT_ASSIGN_OR_RETURN(
      auto rows,
      PgQuery(sql,
              "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
              "i.indrelid AND a.attnum = ANY(i.indkey::int2[]) WHERE i.indrelid = $1::oid "
              "AND (i.indisprimary OR i.indisreplident) ORDER BY i.indisprimary DESC, "
              "array_position(i.indkey::int2[], a.attnum)",
              {oid}));
  std::vector<std::string> names;
  for (const auto& r : rows) names.push_back(r[0].value_or(""));
  return names;
}

// The relation's columns from the result's row description, and its key columns by name.
void DescribeColumns(const PGresult* res, const std::vector<std::string>& key_names,
                     RelationInfo* rel) {
  for (int c = 0; c < PQnfields(res); ++c) {
    Column col;
    col.name = PQfname(res, c);
    col.type_oid = PQftype(res, c);
    rel->msg.columns.push_back(col);
  }
  for (const auto& name : key_names) {
    for (std::size_t i = 0; i < rel->msg.columns.size(); ++i) {
      if (rel->msg.columns[i].name == name) rel->key_columns.push_back(i);
    }
  }
}

Tuple RowTuple(const PGresult* res) {
  Tuple tuple;
  for (int c = 0; c < PQnfields(res); ++c) {
    Value v;
    if (!PQgetisnull(res, 0, c)) {
      v.kind = Value::Kind::kText;
      v.bytes.assign(PQgetvalue(res, 0, c), PQgetlength(res, 0, c));
    }
    tuple.push_back(std::move(v));
  }
  return tuple;
}

}  // namespace

Status SnapshotTables(PGconn* sql, EventStore* store, const SnapshotRequest& request,
                      const std::function<void(const std::string& stream, RowDocument row)>& on_row,
                      const std::function<void(const std::string&)>& log) {
  TT_RETURN_IF_ERROR(PgQuery(sql, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").status());
  TT_ASSIGN_OR_RETURN(std::string snapshot, PgQuoteLiteral(sql, request.snapshot_name));
  TT_RETURN_IF_ERROR(PgQuery(sql, "SET TRANSACTION SNAPSHOT " + snapshot).status());
  TT_ASSIGN_OR_RETURN(auto tables,
                      PgQuery(sql,
                              "SELECT c.oid::text, pt.schemaname, pt.tablename FROM "
                              "pg_publication_tables pt JOIN pg_namespace n ON n.nspname = "
                              "pt.schemaname JOIN pg_class c ON c.relnamespace = n.oid AND "
                              "c.relname = pt.tablename WHERE pt.pubname = $1 ORDER BY 2, 3",
                              {request.publication}));
  Checkpoint progress;
  progress.snapshot_incomplete = true;
  progress.lsn = request.consistent_point;
  Transaction batch;
  auto flush = [&](bool last) -> Status {
    Checkpoint c = last ? Checkpoint{} : progress;
    c.lsn = request.consistent_point;
    if (batch.appends.empty()) return store->SetCheckpoint(request.checkpoint_name, c.Encode());
    auto r = store->TransactWithCheckpoint(batch, request.checkpoint_name, c.Encode());
    batch.appends.clear();
    return r.status();
  };
  std::uint64_t rows_total = 0;
  auto last_progress = std::chrono::steady_clock::now();
  for (const auto& t : tables) {
    RelationInfo rel;
    rel.msg.relation_id = static_cast<std::uint32_t>(std::stoul(*t[0]));
    rel.msg.schema = *t[1];
    rel.msg.table = *t[2];
    // Asked before the rows stream: the connection runs nothing else until they are all read.
    TT_ASSIGN_OR_RETURN(std::vector<std::string> key_names, KeyColumnNames(sql, *t[0]));
    TT_ASSIGN_OR_RETURN(std::string schema, PgQuoteIdent(sql, rel.msg.schema));
    TT_ASSIGN_OR_RETURN(std::string table, PgQuoteIdent(sql, rel.msg.table));
    std::string select = "SELECT * FROM " + schema + "." + table;
    if (!PQsendQuery(sql, select.c_str()) || !PQsetSingleRowMode(sql)) {
      return Status::Unavailable(std::string("snapshot query failed: ") + PQerrorMessage(sql));
    }
    const std::string metadata = json({{"source",
                                        {{"lsn", FormatLsn(request.consistent_point)},
                                         {"table", rel.name()},
                                         {"operation", "snapshot"}}}})
                                     .dump();
    std::uint64_t rows = 0;
    while (PgResult res{PQgetResult(sql)}) {
      ExecStatusType st = PQresultStatus(res.get());
      if (st == PGRES_TUPLES_OK) continue;
      if (st != PGRES_SINGLE_TUPLE) {
        return Status::Unavailable("snapshot of " + rel.name() +
                                   " failed: " + PQresultErrorMessage(res.get()));
      }
      if (rel.msg.columns.empty()) DescribeColumns(res.get(), key_names, &rel);
      Tuple tuple = RowTuple(res.get());
      TT_ASSIGN_OR_RETURN(std::string stream, RowStream(request.prefix, rel, tuple, nullptr));
      RowDocument row = RowFromTuple(rel, tuple, nullptr);
      ProposedEvent e;
      e.type = std::string(kPutType);
      e.data = row.ToJson();
      e.metadata = metadata;
      e.valid_from = request.valid_from;
      batch.appends.push_back(StreamAppend{stream, ExpectedRevision::Any(), {std::move(e)}});
      on_row(stream, std::move(row));
      ++rows;
      if (batch.appends.size() >= kSnapshotBatchRows) {
        TT_RETURN_IF_ERROR(flush(false));
        auto now = std::chrono::steady_clock::now();
        if (now - last_progress >= std::chrono::seconds(2)) {
          last_progress = now;
          log("snapshot: " + rel.name() + ": " + std::to_string(rows) + " rows so far");
        }
      }
    }
    rows_total += rows;
    log("snapshot: " + rel.name() + ": " + std::to_string(rows) + " rows");
  }
  TT_RETURN_IF_ERROR(flush(true));
  (void)PgQuery(sql, "COMMIT");
  log("snapshot done: " + std::to_string(rows_total) + " rows as of " +
      FormatLsn(request.consistent_point));
  return Status::Ok();
}

}  // namespace timetrail::capture
