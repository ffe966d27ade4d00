// The document fold and what is computed from it (property history, diff), as pure functions
// over events already read: no I/O here, so the store decides what to read and the same code
// answers every kind of point (docs/temporal.md).
#ifndef TIMETRAIL_QUERY_DOCUMENT_H_
#define TIMETRAIL_QUERY_DOCUMENT_H_

#include <nlohmann/json.hpp>

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "timetrail/event.h"
#include "timetrail/status.h"
#include "timetrail/temporal.h"

namespace timetrail::query {

// Whether "type" is $put, $patch or $delete.
bool IsDocumentType(std::string_view type);

// A folded document. Intentionally copyable.
struct Document {
  bool exists = false;
  nlohmann::json state;  // null when !exists
};

// Folds one event into "doc": $put replaces it, $patch merges (RFC 7386) into it ({} when it
// does not exist), $delete removes it. Any other type leaves it unchanged. kCorruption if a
// stored document event's data is not the JSON the write path accepted.
Status Apply(Document& doc, std::string_view type, std::string_view data);

// The point (revision, position, times, metadata) of "e".
EventPoint PointOf(const RecordedEvent& e);

// Whether "a" comes before "b" in valid-time fold order: (valid_from, position).
bool ValidOrderLess(const RecordedEvent& a, const RecordedEvent& b);

// The state after folding "events" (in the order given) into "start", whose last document event
// was "start_event".
Result<EntityState> Fold(std::string_view stream, Document start,
                         std::optional<EventPoint> start_event,
                         std::span<const RecordedEvent> events);

// The state of "doc" as an EntityState.
EntityState ToState(std::string_view stream, const Document& doc,
                    std::optional<EventPoint> event);

// Parses an RFC 6901 JSON pointer; kInvalidArgument naming what is wrong.
Result<nlohmann::json::json_pointer> ParsePointer(std::string_view path);

// Property history: the intervals of the value at "path" over "events", given in fold order
// (all of the stream's events, or those known at a time in valid order). Intervals start at the
// first document event; an event that leaves the value unchanged does not split one.
Result<std::vector<PropertyInterval>> History(std::span<const RecordedEvent> events,
                                              const nlohmann::json::json_pointer& path);

// The RFC 6902 JSON Patch text from "from" to "to".
Result<std::string> DiffStates(const EntityState& from, const EntityState& to);

}  // namespace timetrail::query

#endif  // TIMETRAIL_QUERY_DOCUMENT_H_
