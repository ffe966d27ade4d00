#include "capture/pg.h"

namespace timetrail::capture {

Result<PgConn> PgConnect(const std::string& url, bool replication) {
  const char* keys[] = {"dbname", "replication", "options", "application_name",
                        "connect_timeout", nullptr};
  const char* values[] = {url.c_str(), replication ? "database" : nullptr,
                          "-c DateStyle=ISO -c TimeZone=UTC -c extra_float_digits=3 "
                          "-c IntervalStyle=postgres",
                          "timetrail-capture", "10", nullptr};
  PgConn conn(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
  if (conn == nullptr) return Status::Unavailable("out of memory connecting to PostgreSQL");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    std::string err = PQerrorMessage(conn.get());
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    return Status::Unavailable("cannot connect to the source database: " + err);
  }
  return conn;
}

Result<std::vector<PgRow>> PgQuery(PGconn* conn, const std::string& sql,
                                   const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PgResult res(params.empty() ? PQexec(conn, sql.c_str())
                              : PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()),
                                             nullptr, values.data(), nullptr, nullptr, 0));
  ExecStatusType st = PQresultStatus(res.get());
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    std::string err = res ? PQresultErrorMessage(res.get()) : PQerrorMessage(conn);
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    if (PQstatus(conn) != CONNECTION_OK) return Status::Unavailable("source connection lost: " + err);
    return Status::InvalidArgument("the source rejected \"" + sql + "\": " + err);
  }
  std::vector<PgRow> rows;
  for (int r = 0; r < PQntuples(res.get()); ++r) {
    PgRow row;
    for (int c = 0; c < PQnfields(res.get()); ++c) {
      if (PQgetisnull(res.get(), r, c)) {
        row.push_back(std::nullopt);
      } else {
        row.emplace_back(std::string(PQgetvalue(res.get(), r, c), PQgetlength(res.get(), r, c)));
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string PgQuoteIdent(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string PgQuoteLiteral(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  out.push_back('\'');
  // A backslash is literal under standard_conforming_strings (on by default since 9.1); E''
  // syntax is not used, so nothing else needs escaping.
  return out;
}

}  // namespace timetrail::capture
