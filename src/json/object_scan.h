// Reading the top-level members of a JSON object without building a tree of it.
//
// Stored document events are JSON objects the write path already validated. Queries that need
// one member of many documents (a property's history) or only the names a patch touches (the
// signature the temporal index keeps per event) skip the other members' values instead of
// parsing them.
#ifndef TIMETRAIL_JSON_OBJECT_SCAN_H_
#define TIMETRAIL_JSON_OBJECT_SCAN_H_

#include <functional>
#include <string_view>

namespace timetrail::json {

// One top-level member as it appears in the text.
struct ScannedMember {
  // The key's source text between its quotes: escapes are not decoded.
  std::string_view raw_key;
  // Whether raw_key holds a backslash escape (then it is not the key's bytes).
  bool key_escaped = false;
  // The value's exact source text.
  std::string_view value;
};

// Calls "member" for each top-level member of the object "text", in source order, until it
// returns false. Returns false when "text" is not an object this scanner can step through
// (then the caller must not rely on what it saw); it does not validate scalars, which the write
// path did.
bool ScanObjectMembers(std::string_view text,
                       const std::function<bool(const ScannedMember&)>& member);

}  // namespace timetrail::json

#endif  // TIMETRAIL_JSON_OBJECT_SCAN_H_
