// Small RAII helpers over libpq for the capture (libpq types stay inside src/capture).
#ifndef TIMETRAIL_CAPTURE_PG_H_
#define TIMETRAIL_CAPTURE_PG_H_

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "timetrail/status.h"

namespace timetrail::capture {

struct PgConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using PgConn = std::unique_ptr<PGconn, PgConnCloser>;

struct PgResultClearer {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultClearer>;

// Connects to "url". With "replication", opens a walsender connection (replication=database).
// The session uses ISO dates in UTC and full float precision, which the value mapping expects.
// kUnavailable carries libpq's reason.
Result<PgConn> PgConnect(const std::string& url, bool replication);

using PgRow = std::vector<std::optional<std::string>>;
// Runs one statement with text parameters; returns its rows. kInvalidArgument carries the
// server's message (for SQL the source rejected), kUnavailable a broken connection.
Result<std::vector<PgRow>> PgQuery(PGconn* conn, const std::string& sql,
                                   const std::vector<std::optional<std::string>>& params = {});

// "name" quoted as an SQL identifier, and "text" as a literal, by libpq (PQescapeIdentifier,
// PQescapeLiteral), which knows the connection's client encoding and whether backslashes are
// literal. kInvalidArgument when the text is not valid in that encoding.
Result<std::string> PgQuoteIdent(PGconn* conn, std::string_view name);
Result<std::string> PgQuoteLiteral(PGconn* conn, std::string_view text);

}  // namespace timetrail::capture

#endif  // TIMETRAIL_CAPTURE_PG_H_
