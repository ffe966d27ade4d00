// How a captured table's rows become streams and documents (docs/capture.md, "What is
// recorded"): the stream a row is named by, the row as a JSON document, and the document event
// that records an update against the row's previous state. Rows are built as JSON text straight
// from pgoutput's text values: no JSON document is built per change.
#ifndef TIMETRAIL_CAPTURE_ROW_MAPPING_H_
#define TIMETRAIL_CAPTURE_ROW_MAPPING_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "capture/pgoutput.h"
#include "timetrail/status.h"

// As libpq-fe.h declares it, so that this header does not need libpq's include directory.
typedef struct pg_conn PGconn;

namespace timetrail::capture {

// A captured table as the replication stream (or the snapshot) describes it. Intentionally
// copyable.
struct RelationInfo {
  RelationMessage msg;
  std::vector<std::size_t> key_columns;  // indexes into msg.columns, in key order
  std::string name() const { return msg.schema + "." + msg.table; }
};

// The columns naming a row of "msg": the primary key's (looked up in the catalog through
// "sql"), else, for REPLICA IDENTITY USING INDEX, the index's. Empty when there are none.
Result<std::vector<std::size_t>> LoadKeyColumns(PGconn* sql, const RelationMessage& msg);

// A row as the capture records it and keeps it between changes: its members in order, each
// value as the JSON text nlohmann::json::dump() writes (so equal values have equal text).
// Intentionally copyable.
class RowDocument {
 public:
  using Member = std::pair<std::string, std::string>;  // name, value as JSON text

  // A stored state (a JSON object's text). kCorruption when it is not an object.
  static Result<RowDocument> Parse(std::string_view json_text);

  // The value of member "name" as JSON text; null when there is none.
  const std::string* Find(std::string_view name) const;
  // Appends member "name". REQUIRES: the document has no member of that name.
  void Append(std::string_view name, std::string value_json) {
    members_.emplace_back(std::string(name), std::move(value_json));
  }
  const std::vector<Member>& members() const { return members_; }
  // {"name":value,...} in member order.
  std::string ToJson() const;

 private:
  std::vector<Member> members_;
};

// The row "tuple" as a document; unchanged TOAST values come from "previous" (the row's state
// before the change), and are left out when it has none.
RowDocument RowFromTuple(const RelationInfo& rel, const Tuple& tuple, const RowDocument* previous);

// The stream of the row "tuple" (see RowStreamName). A key value the tuple lacks (an unchanged
// TOAST key column) is taken from "fallback_row" when given. kInvalidArgument when a key
// value is missing.
Result<std::string> RowStream(std::string_view prefix, const RelationInfo& rel, const Tuple& tuple,
                              const RowDocument* fallback_row);

// One document event for a row, and the row's state after it.
struct DocumentChange {
  std::string_view type;  // kPutType or kPatchType
  std::string data;       // JSON text
  RowDocument new_state;
};

// The event recording that a row whose state was "previous" (null: none known) now holds
// "row": a $patch of the columns that changed, with the columns the table no longer has
// removed; a $put of the whole row when a column became NULL, which a JSON merge patch cannot
// say (null removes the member).
DocumentChange UpdateChange(const RelationInfo& rel, const RowDocument* previous,
                            const RowDocument& row);

}  // namespace timetrail::capture

#endif  // TIMETRAIL_CAPTURE_ROW_MAPPING_H_
