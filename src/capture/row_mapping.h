// How a captured table's rows become streams and documents (docs/capture.md, "What is
// recorded"): the stream a row is named by, the row as a JSON object, and the document event
// that records an update against the row's previous state.
#ifndef TIMETRAIL_CAPTURE_ROW_MAPPING_H_
#define TIMETRAIL_CAPTURE_ROW_MAPPING_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <libpq-fe.h>

#include <nlohmann/json.hpp>

#include "capture/pgoutput.h"
#include "timetrail/status.h"

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

// The stream of the row "tuple" (see RowStreamName). A key value the tuple lacks (an unchanged
// TOAST key column) is taken from "fallback_row" when given. kInvalidArgument when a key
// value is missing.
Result<std::string> RowStream(std::string_view prefix, const RelationInfo& rel, const Tuple& tuple,
                              const nlohmann::json* fallback_row);

// The row as a JSON object of its columns; unchanged TOAST values come from "previous" (the
// row's state before the change), and are left out when it has none.
nlohmann::json RowJson(const RelationInfo& rel, const Tuple& tuple, const nlohmann::json* previous);

// One document event for a row, and the row's state after it.
struct DocumentChange {
  std::string_view type;  // kPutType or kPatchType
  nlohmann::json data;
  nlohmann::json new_state;
};

// The event recording that a row whose state was "previous" (nullopt: none known) now holds
// "row": a $patch of the columns that changed, with the columns the table no longer has
// removed; a $put of the whole row when a column became NULL, which a JSON merge patch cannot
// say (null removes the member).
DocumentChange UpdateChange(const RelationInfo& rel, const std::optional<nlohmann::json>& previous,
                            const nlohmann::json& row);

}  // namespace timetrail::capture

#endif  // TIMETRAIL_CAPTURE_ROW_MAPPING_H_
