#include "capture/pg.h"

namespace timetrail::capture {

Result<PgConn> PgConnect(const std::string& url, bool replication) {
  const char* keys[] = {"dbname",           "replication",     "options",
                        "application_name", "connect_timeout", nullptr};
  const char* values[] = {url.c_str(),
                          replication ? "database" : nullptr,
                          "-c DateStyle=ISO -c TimeZone=UTC -c extra_float_digits=3 "
                          "-c IntervalStyle=postgres",
                          "timetrail-capture",
                          "10",
                          nullptr};
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
    if (PQstatus(conn) != CONNECTION_OK)
      return Status::Unavailable("source connection lost: " + err);
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

namespace {

Result<std::string> Escaped(PGconn* conn, char* quoted, std::string_view what) {
  if (quoted == nullptr) {
    std::string err = PQerrorMessage(conn);
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    return Status::InvalidArgument("cannot quote " + std::string(what) + " for SQL: " + err);
  }
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

}  // namespace

Result<std::string> PgQuoteIdent(PGconn* conn, std::string_view name) {
  return Escaped(conn, PQescapeIdentifier(conn, name.data(), name.size()),
                 "the name '" + std::string(name) + "'");
}

Result<std::string> PgQuoteLiteral(PGconn* conn, std::string_view text) {
  return Escaped(conn, PQescapeLiteral(conn, text.data(), text.size()), "a value");
}

}  // namespace timetrail::capture
