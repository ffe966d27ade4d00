// Checks a proposed transaction against the rules of the event model and the configured limits
// before anything is written. Every error names the field ("appends[1].events[0].data"), what is
// wrong with it and, for limits, the limit.
#ifndef TIMETRAIL_CORE_VALIDATION_H_
#define TIMETRAIL_CORE_VALIDATION_H_

#include <string>
#include <string_view>

#include "timetrail/event.h"
#include "timetrail/options.h"
#include "timetrail/status.h"

namespace timetrail {

// OK if "tx" may be appended. Checks names, types, JSON, sizes, counts, duplicate streams and
// duplicate event ids within the request.
Status ValidateTransaction(const Transaction& tx, const Limits& limits);

// Stream names: 1..limits.max_stream_name_bytes of valid UTF-8 without control characters.
Status ValidateStreamName(std::string_view stream, const Limits& limits,
                          std::string_view field = "stream");

// True if "text" is well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF).
bool IsUtf8(std::string_view text);

// "text" with each byte that does not belong to a UTF-8 sequence replaced by U+FFFD.
std::string ToValidUtf8(std::string_view text);

// True if "text" is well-formed UTF-8 with no control characters (C0, DEL, C1).
bool IsPrintableUtf8(std::string_view text);

// True if "json" is one syntactically valid JSON value (surrounding whitespace allowed).
bool IsValidJson(std::string_view json);

// True if "json" (already known to be valid) is an object.
bool IsJsonObject(std::string_view json);

}  // namespace timetrail

#endif  // TIMETRAIL_CORE_VALIDATION_H_
