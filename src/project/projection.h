// One projection's tables in the target database and how a batch of events changes them. The
// runner (projector.h) owns the target transaction and the checkpoint; a projection folds
// events in (Add) and renders what they change (Render) as statements and COPY payloads, which
// the runner writes in one transaction on its own thread while the next batch is folded.
#ifndef TIMETRAIL_PROJECT_PROJECTION_H_
#define TIMETRAIL_PROJECT_PROJECTION_H_

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "project/config.h"
#include "project/log_source.h"
#include "query/document.h"
#include "timetrail/store.h"

namespace timetrail::project {

// The writes of one batch, in order: statements and COPY payloads. Intentionally copyable.
struct BatchWrite {
  struct Op {
    std::string sql;  // a statement, or for a COPY the table and its columns: s."t" (a, b)
    std::vector<std::optional<std::string>> params;
    std::string copy_rows;  // COPY text rows, for a COPY
    bool copy = false;
    std::string what;  // for messages
  };
  std::vector<Op> ops;

  void Sql(std::string sql, std::vector<std::optional<std::string>> params, std::string what) {
    ops.push_back(Op{std::move(sql), std::move(params), {}, false, std::move(what)});
  }
  void Copy(std::string table_and_columns, std::string rows, std::string what) {
    ops.push_back(Op{std::move(table_and_columns), {}, std::move(rows), true, std::move(what)});
  }
};

// Runs "batch" on "conn" (inside the caller's transaction). kIOError names the operation that
// failed and carries the server's message.
Status ExecuteBatch(PGconn* conn, const BatchWrite& batch);

class Projection {
 public:
  virtual ~Projection() = default;

  // Creates the tables in "schema" (a quoted identifier) when they are missing, and the
  // functions that query them.
  virtual Status CreateTables(PGconn* conn, const std::string& schema) = 0;
  // The tables it keeps (unquoted names), which a rebuild moves into place.
  virtual std::vector<std::string> Tables() const = 0;
  // Folds one event of a stream the projection takes into the pending batch; "id" is the
  // stream's name without its matched prefix. An event the mapping does not fit is
  // kInvalidArgument naming the event and the column.
  virtual Status Add(const RecordedEvent& e, std::string_view id) = 0;
  // What the pending batch writes into "schema"'s tables (a quoted identifier); the pending
  // batch is then empty. It may read the source (history computes corrected streams again).
  virtual Result<BatchWrite> Render(const std::string& schema) = 0;
  // Forgets the pending batch and every cached state: after a batch that did not commit, the
  // caches may be ahead of the tables.
  virtual void Reset() = 0;
};

// The projection "spec" describes, reading what it needs beyond the events from "source".
std::unique_ptr<Projection> MakeProjection(const ProjectionSpec& spec, LogSource& source);

std::unique_ptr<Projection> MakeChangesProjection(const ProjectionSpec& spec, LogSource& source);
std::unique_ptr<Projection> MakeStateProjection(const ProjectionSpec& spec, LogSource& source);
std::unique_ptr<Projection> MakeHistoryProjection(const ProjectionSpec& spec, LogSource& source);

// Helpers the projections share.

// The state of each stream as of the last event a projection folded, read from the source for
// a stream it has not seen since it started. A bounded working set is enough: events of one
// stream come close together in the log.
class StateCache {
 public:
  struct Entry {
    query::Document doc;
    std::optional<std::string> text;  // doc.state as JSON text, when known and doc.exists
  };
  explicit StateCache(LogSource& source) : source_(source) {}
  // The state of e.stream before "e", to fold "e" into.
  Result<Entry*> Before(const RecordedEvent& e);
  void Clear() { states_.clear(); }

 private:
  LogSource& source_;
  std::unordered_map<std::string, Entry> states_;
};

// Runs "sql" (no parameters, any number of statements); kIOError names "what" and carries the
// server's message.
Status Exec(PGconn* conn, const std::string& sql, const std::string& what);
// COPY "rows" into "table_and_columns", e.g. `s."t" (a, b)`. kIOError as Exec.
Status CopyIn(PGconn* conn, const std::string& table_and_columns, const std::string& rows,
              const std::string& what);
// "name" quoted as an SQL identifier: in double quotes, with quotes inside doubled. The names
// come from a JSON configuration, so they are UTF-8, which is what the connections use.
std::string QuoteIdent(std::string_view name);
// A text[] literal ({"a","b\"c"}) of "items".
std::string TextArrayLiteral(const std::vector<std::string>& items);
// The parsed metadata of "e": an object (empty when it is not one).
nlohmann::json MetadataOf(const RecordedEvent& e);
// "event at position 7 (stream 'order-1', id ...)", for messages.
std::string EventLabel(const RecordedEvent& e);

}  // namespace timetrail::project

#endif  // TIMETRAIL_PROJECT_PROJECTION_H_
