// A small JSON reader that keeps the source text of every value.
//
// Request bodies carry event data and metadata that timetrail stores exactly as sent, so that
// numbers keep every digit. RawJson parses the body once and remembers, for each value, the
// span of the body it came from; the server stores that span unchanged.
#ifndef TIMETRAIL_JSON_RAW_JSON_H_
#define TIMETRAIL_JSON_RAW_JSON_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "timetrail/status.h"

namespace timetrail::json {

// Intentionally copyable. "text" points into the parsed input, which must outlive it.
struct RawJson {
  enum class Kind : std::uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  std::string_view text;        // the value's exact source text
  bool boolean = false;         // for kBool
  std::string str;              // for kString: the decoded string
  struct Member;                // a key and its value; defined below, once RawJson is complete
  std::vector<Member> members;  // for kObject, in source order
  std::vector<RawJson> items;   // for kArray

  // The member named "key" of an object (the last one if repeated), or nullptr.
  const RawJson* Find(std::string_view key) const;
  bool is_object() const { return kind == Kind::kObject; }
  // For kNumber: the value as an unsigned integer, if it is one that fits.
  std::optional<std::uint64_t> AsUint() const;
  // "a string", "an object"... for error messages.
  std::string_view KindName() const;
};

struct RawJson::Member {
  std::string key;
  RawJson value;
};

// Parses exactly one JSON value (surrounding whitespace allowed). Nesting deeper than 256
// levels is rejected rather than risking the stack. Errors say what and at which byte offset.
Result<RawJson> ParseRawJson(std::string_view text);

}  // namespace timetrail::json

#endif  // TIMETRAIL_JSON_RAW_JSON_H_
