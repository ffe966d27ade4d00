#include "capture/publication.h"

#include "capture/pg.h"

namespace timetrail::capture {

namespace {

// The tables named in the options, quoted: the listed ones as given (they are SQL already,
// e.g. public."Order"), then those whose schema.table matches the LIKE pattern.
Result<std::vector<std::string>> ChosenTables(PGconn* sql, const CaptureOptions& o) {
  std::vector<std::string> tables = o.tables;
  if (o.table_pattern.empty()) return tables;
  TT_ASSIGN_OR_RETURN(auto rows,
                      PgQuery(sql,
                              "SELECT schemaname, tablename FROM pg_tables WHERE schemaname || "
                              "'.' || tablename LIKE $1 ORDER BY 1, 2",
                              {o.table_pattern}));
  if (rows.empty()) {
    return Status::InvalidArgument("no table matches the pattern '" + o.table_pattern +
                                   "' (it is matched with LIKE against schema.table)");
  }
  for (const auto& r : rows) {
    TT_ASSIGN_OR_RETURN(std::string schema, PgQuoteIdent(sql, r[0].value_or("")));
    TT_ASSIGN_OR_RETURN(std::string table, PgQuoteIdent(sql, r[1].value_or("")));
    tables.push_back(schema + "." + table);
  }
  return tables;
}

}  // namespace

Status EnsurePublication(PGconn* sql, const CaptureOptions& o,
                         const std::function<void(const std::string&)>& log) {
  TT_ASSIGN_OR_RETURN(
      auto pub, PgQuery(sql, "SELECT 1 FROM pg_publication WHERE pubname = $1", {o.publication}));
  if (pub.empty()) {
    TT_ASSIGN_OR_RETURN(std::vector<std::string> tables, ChosenTables(sql, o));
    std::string target = "FOR ALL TABLES";
    if (!tables.empty()) {
      target = "FOR TABLE ";
      for (std::size_t i = 0; i < tables.size(); ++i) target += (i ? ", " : "") + tables[i];
    }
    TT_ASSIGN_OR_RETURN(std::string name, PgQuoteIdent(sql, o.publication));
    TT_RETURN_IF_ERROR(PgQuery(sql, "CREATE PUBLICATION " + name + " " + target).status());
    log("created publication " + o.publication + " " + target);
  } else {
    log("using publication " + o.publication);
  }
  TT_ASSIGN_OR_RETURN(
      auto keyless,
      PgQuery(sql,
              "SELECT pt.schemaname || '.' || pt.tablename FROM pg_publication_tables pt "
              "JOIN pg_namespace n ON n.nspname = pt.schemaname "
              "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename "
              "WHERE pt.pubname = $1 AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE "
              "i.indrelid = c.oid AND (i.indisprimary OR i.indisreplident)) ORDER BY 1",
              {o.publication}));
  if (!keyless.empty()) {
    std::string names;
    for (auto& r : keyless) names += (names.empty() ? "" : ", ") + r[0].value_or("");
    return Status::InvalidArgument(
        "captured tables need a primary key (or REPLICA IDENTITY USING INDEX) to name each "
        "row's stream; these have none: " +
        names + ". Add one, or leave the tables out with --tables / --table-pattern");
  }
  return Status::Ok();
}

}  // namespace timetrail::capture
