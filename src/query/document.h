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
EntityState ToState(std::string_view stream, const Document& doc, std::optional<EventPoint> event);

// Parses an RFC 6901 JSON pointer; kInvalidArgument naming what is wrong.
Result<nlohmann::json::json_pointer> ParsePointer(std::string_view path);

// The value at "pointer" inside "value", or nullopt when absent. Stepping through a
// non-container, or into an array with a token that is not an index, means absent.
std::optional<nlohmann::json> ValueAtPointer(const nlohmann::json& value,
                                             const nlohmann::json::json_pointer& pointer);

// Follows the value at one JSON pointer through a stream's document events without folding the
// whole document: for a pointer below a top-level member, only that member's value is parsed
// from each $put, and a $patch that does not name the member is recognised by a scan of its
// top-level keys. Gives the same values as folding whole documents (Apply) and reading the
// pointer from them; the root pointer "" folds whole documents. Intentionally copyable.
class PointerTracker {
 public:
  static Result<PointerTracker> Make(std::string_view path);

  // The top-level member the pointer lies in (decoded), or nullopt for the root pointer.
  const std::optional<std::string>& member() const { return member_; }
  // Starts from a folded document (e.g. a snapshot's).
  void Reset(const Document& doc);
  // Folds one event in. Sets *changed to false when the event cannot have changed the value
  // (a non-document event, or a $patch that does not name the member). kCorruption as Apply.
  Status Apply(std::string_view type, std::string_view data, bool* changed);
  // The value at the pointer now.
  std::optional<nlohmann::json> Value() const;
  // The same as JSON text, as nlohmann::json::dump() writes it. A string without escapes or a
  // literal is passed through from the event as it was written, without a parse.
  std::optional<std::string> ValueText() const;

 private:
  std::optional<std::string> member_;   // nullopt: the root pointer
  nlohmann::json::json_pointer inner_;  // the rest of the pointer, inside the member
  Document whole_;                      // root pointer only: the whole document
  // The member's value, when present: as text when the pointer is the member itself and the
  // value is a string without escapes or a literal (text that dump() would write the same),
  // else parsed. At most one of the two is set.
  std::optional<nlohmann::json> top_;
  std::optional<std::string> top_text_;
};

// Whether two values given as canonical JSON text (PointerTracker::ValueText) are equal as JSON
// values: equal texts are, strings and literals only then; numbers and containers are compared
// parsed (1 and 1.0 are equal).
bool SameValue(const std::optional<std::string>& a, const std::optional<std::string>& b);

// The RFC 6902 JSON Patch text from "from" to "to".
Result<std::string> DiffStates(const EntityState& from, const EntityState& to);

}  // namespace timetrail::query

#endif  // TIMETRAIL_QUERY_DOCUMENT_H_
