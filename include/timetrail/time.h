// Timestamps: UTC microseconds since the Unix epoch, and their RFC 3339 text form.
//
//   Result<Timestamp> t = ParseTimestamp("2026-11-22T13:40:00Z");
//   std::string s = FormatTimestamp(*t);   // "2026-11-22T13:40:00.000000Z"
#ifndef TIMETRAIL_TIME_H_
#define TIMETRAIL_TIME_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "timetrail/status.h"

namespace timetrail {

// Microseconds since 1970-01-01T00:00:00Z, UTC. Intentionally copyable.
struct Timestamp {
  std::int64_t micros = 0;

  friend constexpr auto operator<=>(const Timestamp&, const Timestamp&) = default;
};

// The earliest and latest instants timetrail accepts (0001-01-01 and 9999-12-31T23:59:59.999999).
inline constexpr Timestamp kMinTimestamp{-62135596800LL * 1000000};
inline constexpr Timestamp kMaxTimestamp{253402300799LL * 1000000 + 999999};

// The current wall-clock time.
Timestamp Now();

// Always "YYYY-MM-DDTHH:MM:SS.ffffffZ".
std::string FormatTimestamp(Timestamp t);

// Accepts RFC 3339 with any fraction of up to 9 digits (extra precision below microseconds is
// truncated) and a "Z" or "+HH:MM"/"-HH:MM" offset; a space in place of "T"; a time without a
// fraction; a plain date ("2026-11-22", meaning midnight UTC); or a whole number of microseconds
// since the epoch. Errors name what was wrong with the text.
Result<Timestamp> ParseTimestamp(std::string_view text);

}  // namespace timetrail

#endif  // TIMETRAIL_TIME_H_
