#include "capture/source_revert.h"

#include <cstdlib>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "capture/pg.h"
#include "capture/values.h"

namespace timetrail::capture {
namespace {

using nlohmann::json;

struct RowRef {
  std::string stream;
  std::string schema;
  std::string table;
  std::vector<std::string> key;  // key columns' text values, in key order
};

// "<prefix><schema>.<table>/<key>". The schema is taken up to the first '.', so a schema name
// containing '.' cannot be reverted this way.
Result<RowRef> ParseRowStream(std::string_view prefix, const std::string& stream) {
  auto bad = [&] {
    return Status::InvalidArgument("'" + stream + "' is not the stream of a captured row (" +
                                   "expected " + std::string(prefix) + "<schema>.<table>/<key>)");
  };
  if (stream.compare(0, prefix.size(), prefix) != 0) return bad();
  std::string_view rest = std::string_view(stream).substr(prefix.size());
  std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return bad();
  std::string_view table = rest.substr(0, slash);
  std::size_t dot = table.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == table.size()) return bad();
  RowRef r;
  r.stream = stream;
  r.schema = std::string(table.substr(0, dot));
  r.table = std::string(table.substr(dot + 1));
  r.key = DecodeRowKey(rest.substr(slash + 1));
  return r;
}

// The row's document at "query" (nullopt: no row then), folded by the store from its nearest
// snapshot, as every temporal query is.
Result<std::optional<json>> RowState(const EventStore& store, const std::string& stream,
                                     const EntityQuery& query) {
  auto entity = store.GetEntity(stream, query);
  if (!entity.ok()) {
    if (entity.status().code() == StatusCode::kNotFound) return std::optional<json>();
    return entity.status();
  }
  if (!entity->exists) return std::optional<json>();
  json state = json::parse(entity->state, nullptr, false);
  if (state.is_discarded()) {
    return Status::Corruption("the stored state of " + stream + " is not JSON");
  }
  return std::optional<json>(std::move(state));
}

struct TableInfo {
  std::string qualified;                                     // quoted schema.table
  std::vector<std::pair<std::string, std::string>> columns;  // name, format_type
  std::vector<std::string> key;                              // primary key column names
  std::string TypeOf(const std::string& column) const {
    for (const auto& [n, t] : columns) {
      if (n == column) return t;
    }
    return "";
  }
};

Result<TableInfo> LoadTable(PGconn* conn, const RowRef& row) {
  TableInfo t;
  TT_ASSIGN_OR_RETURN(std::string schema, PgQuoteIdent(conn, row.schema));
  TT_ASSIGN_OR_RETURN(std::string table, PgQuoteIdent(conn, row.table));
  t.qualified = schema + "." + table;
  TT_ASSIGN_OR_RETURN(auto cols,
                      PgQuery(conn,
                              "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM "
                              "pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 "
                              "AND NOT a.attisdropped ORDER BY a.attnum",
                              {t.qualified}));
  if (cols.empty()) {
    return Status::InvalidArgument("the source has no table " + row.schema + "." + row.table);
  }
  for (auto& c : cols) t.columns.emplace_back(*c[0], *c[1]);
  TT_ASSIGN_OR_RETURN(auto keys,
                      PgQuery(conn,
                              "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON "
                              "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey::int2[]) "
                              "WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY "
                              "array_position(i.indkey::int2[], a.attnum)",
                              {t.qualified}));
  for (auto& k : keys) t.key.push_back(*k[0]);
  if (t.key.empty()) {
    return Status::InvalidArgument("table " + row.schema + "." + row.table +
                                   " has no primary key in the source");
  }
  if (t.key.size() != row.key.size()) {
    return Status::InvalidArgument("stream " + row.stream + " has " +
                                   std::to_string(row.key.size()) +
                                   " key values but the "
                                   "table's primary key has " +
                                   std::to_string(t.key.size()) + " columns");
  }
  return t;
}

Result<std::string> Literal(PGconn* conn, const json& v, const std::string& type) {
  if (v.is_null()) return std::string("NULL");
  TT_ASSIGN_OR_RETURN(std::string text, PgQuoteLiteral(conn, JsonToPgText(v, type)));
  return text + "::" + type;
}

// The statement that makes the source row equal "desired" (nullopt: no row).
Result<std::string> RowStatement(PGconn* conn, const TableInfo& t, const RowRef& row,
                                 const std::optional<json>& desired) {
  std::string where;
  std::string keys;
  for (std::size_t i = 0; i < t.key.size(); ++i) {
    TT_ASSIGN_OR_RETURN(std::string column, PgQuoteIdent(conn, t.key[i]));
    TT_ASSIGN_OR_RETURN(std::string value, Literal(conn, json(row.key[i]), t.TypeOf(t.key[i])));
    where += (i ? " AND " : "") + column + " = " + value;
    keys += (i ? ", " : "") + column;
  }
  if (!desired) return "DELETE FROM " + t.qualified + " WHERE " + where;
  std::string cols, vals, current_text, wanted_text;
  bool first = true;
  for (const auto& [name, type] : t.columns) {
    if (!desired->contains(name)) continue;  // a column added after that time: left as it is
    TT_ASSIGN_OR_RETURN(std::string column, PgQuoteIdent(conn, name));
    TT_ASSIGN_OR_RETURN(std::string value, Literal(conn, (*desired)[name], type));
    cols += (first ? "" : ", ") + column;
    vals += (first ? "" : ", ") + value;
    current_text += std::string(first ? "" : ", ") + "t." + column + "::text";
    wanted_text += (first ? "" : ", ") + ("(" + value + ")::text");
    first = false;
  }
  // One statement for both cases (the row exists now or not), and no write when the row is
  // already as wanted, so a revert to the current state changes nothing.
  return "INSERT INTO " + t.qualified + " AS t (" + cols + ") VALUES (" + vals + ") ON CONFLICT (" +
         keys + ") DO UPDATE SET (" + cols + ") = ROW(" + vals + ") WHERE ROW(" + current_text +
         ") IS DISTINCT FROM ROW(" + wanted_text + ")";
}

// Runs (or for a dry run only lists) the statements in one source transaction that starts with
// the revert's context message.
Result<SourceRevertResult> Apply(const std::vector<std::pair<RowRef, std::optional<json>>>& rows,
                                 PGconn* conn, const SourceRevertOptions& options,
                                 const json& revert_info) {
  SourceRevertResult result;
  std::vector<std::string> changes;
  std::map<std::string, TableInfo> tables;
  for (const auto& [row, desired] : rows) {
    std::string name = row.schema + "." + row.table;
    auto it = tables.find(name);
    if (it == tables.end()) {
      TT_ASSIGN_OR_RETURN(TableInfo t, LoadTable(conn, row));
      it = tables.emplace(name, std::move(t)).first;
    }
    TT_ASSIGN_OR_RETURN(std::string statement, RowStatement(conn, it->second, row, desired));
    changes.push_back(std::move(statement));
  }
  json context = {{"actor", options.actor.empty() ? "timetrail revert" : options.actor},
                  {"revert", revert_info}};
  if (!options.reason.empty()) context["reason"] = options.reason;
  result.statements.push_back("BEGIN");
  TT_ASSIGN_OR_RETURN(std::string context_literal, PgQuoteLiteral(conn, context.dump()));
  result.statements.push_back("SELECT pg_logical_emit_message(true, 'timetrail', " +
                              context_literal + ")");
  for (auto& c : changes) result.statements.push_back(std::move(c));
  result.statements.push_back("COMMIT");
  if (options.dry_run) return result;
  for (std::size_t i = 0; i < result.statements.size(); ++i) {
    PgResult r(PQexec(conn, result.statements[i].c_str()));
    ExecStatusType st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      std::string err = PQresultErrorMessage(r.get());
      r.reset();
      PgResult rollback(PQexec(conn, "ROLLBACK"));
      return Status::InvalidArgument("the source rejected the revert, nothing was changed: " + err +
                                     " in: " + result.statements[i]);
    }
    if (i >= 2 && i + 1 < result.statements.size()) {
      result.rows_changed += static_cast<std::size_t>(std::atoll(PQcmdTuples(r.get())));
    }
  }
  return result;
}

}  // namespace

Result<SourceRevertResult> RevertInSource(const EventStore& store,
                                          const std::vector<std::string>& streams,
                                          const SourceRevertOptions& options) {
  std::vector<std::pair<RowRef, std::optional<json>>> rows;
  for (const auto& stream : streams) {
    TT_ASSIGN_OR_RETURN(RowRef row, ParseRowStream(options.prefix, stream));
    // A captured row's valid time is its source commit time: its state at "to" in the source.
    TT_ASSIGN_OR_RETURN(auto desired, RowState(store, stream, EntityQuery::ValidAt(options.to)));
    rows.emplace_back(std::move(row), std::move(desired));
  }
  TT_ASSIGN_OR_RETURN(PgConn conn, PgConnect(options.source_url, false));
  json info = {{"to", FormatTimestamp(options.to)}, {"streams", streams}};
  return Apply(rows, conn.get(), options, info);
}

Result<SourceRevertResult> RevertFilteredInSource(const EventStore& store, const RowFilter& filter,
                                                  const SourceRevertOptions& options) {
  if (filter.table.find('.') == std::string::npos) {
    return Status::InvalidArgument("the filter needs a table as schema.table, e.g. public.orders");
  }
  auto matches = [&](const RecordedEvent& e) {
    if (filter.from && e.valid_from < *filter.from) return false;
    if (filter.until && e.valid_from >= *filter.until) return false;
    if (filter.actor || filter.xid) {
      json m = json::parse(e.metadata, nullptr, false);
      if (filter.actor && (!m.is_object() || m.value("actor", "") != *filter.actor)) return false;
      if (filter.xid && (!m.is_object() || !m.contains("source") ||
                         m["source"].value("xid", 0ull) != *filter.xid)) {
        return false;
      }
    }
    return true;
  };
  // The first matching change of each row, in log order.
  std::map<std::string, Revision> first_match;
  std::vector<std::string> order;
  ReadLogOptions lo;
  lo.filter.stream_prefix = options.prefix + filter.table + "/";
  lo.max_count = 10000;
  lo.max_scan = 100000;
  while (true) {
    TT_ASSIGN_OR_RETURN(LogPage page, store.ReadLog(lo));
    for (const auto& e : page.events) {
      if (e.type == "schema" || first_match.count(e.stream) || !matches(e)) continue;
      first_match[e.stream] = e.revision;
      order.push_back(e.stream);
    }
    if (page.next_position > page.head_position) break;
    lo.from_position = page.next_position;
  }
  std::vector<std::pair<RowRef, std::optional<json>>> rows;
  for (const auto& stream : order) {
    TT_ASSIGN_OR_RETURN(RowRef row, ParseRowStream(options.prefix, stream));
    // The row as it was before its first matching change.
    Revision first = first_match[stream];
    std::optional<json> desired;
    if (first > 0) {
      TT_ASSIGN_OR_RETURN(desired, RowState(store, stream, EntityQuery::AtRevision(first - 1)));
    }
    rows.emplace_back(std::move(row), std::move(desired));
  }
  if (rows.empty()) return SourceRevertResult{};
  TT_ASSIGN_OR_RETURN(PgConn conn, PgConnect(options.source_url, false));
  json info = {{"table", filter.table}, {"streams", order}};
  if (filter.actor) info["actor"] = *filter.actor;
  if (filter.xid) info["xid"] = *filter.xid;
  if (filter.from) info["from"] = FormatTimestamp(*filter.from);
  if (filter.until) info["until"] = FormatTimestamp(*filter.until);
  return Apply(rows, conn.get(), options, info);
}

}  // namespace timetrail::capture
