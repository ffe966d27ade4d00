#include "timetrail/time.h"

#include <chrono>
#include <cstdio>

namespace timetrail {
namespace {

constexpr std::int64_t kMicrosPerSecond = 1000000;
constexpr std::int64_t kSecondsPerDay = 86400;

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void CivilFromDays(std::int64_t z, std::int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<std::int64_t>(yoe) + era * 400 + (*m <= 2);
}

bool IsLeap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned DaysInMonth(std::int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Reads exactly "n" digits at text[*i] into *out.
bool ReadDigits(std::string_view text, std::size_t* i, int n, int* out) {
  if (*i + n > text.size()) return false;
  int v = 0;
  for (int k = 0; k < n; ++k) {
    char c = text[*i + k];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *i += n;
  *out = v;
  return true;
}

bool Expect(std::string_view text, std::size_t* i, char c) {
  if (*i >= text.size() || text[*i] != c) return false;
  ++*i;
  return true;
}

Status BadTime(std::string_view text, std::string_view why) {
  return Status::InvalidArgument("'" + std::string(text.substr(0, 64)) +
                                 "' is not a valid time: " + std::string(why) +
                                 " (use RFC 3339, e.g. 2026-11-22T13:40:00Z, or a date "
                                 "2026-11-22)");
}

}  // namespace

Timestamp Now() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return Timestamp{std::chrono::duration_cast<std::chrono::microseconds>(now).count()};
}

std::string FormatTimestamp(Timestamp t) {
  std::int64_t secs = t.micros / kMicrosPerSecond;
  std::int64_t frac = t.micros % kMicrosPerSecond;
  if (frac < 0) {
    frac += kMicrosPerSecond;
    --secs;
  }
  std::int64_t days = secs / kSecondsPerDay;
  std::int64_t rem = secs % kSecondsPerDay;
  if (rem < 0) {
    rem += kSecondsPerDay;
    --days;
  }
  std::int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%06lldZ",
                static_cast<long long>(y), m, d, static_cast<long long>(rem / 3600),
                static_cast<long long>(rem / 60 % 60), static_cast<long long>(rem % 60),
                static_cast<long long>(frac));
  return buf;
}

Result<Timestamp> ParseTimestamp(std::string_view text) {
  if (text.empty()) return BadTime(text, "it is empty");
  // A bare integer: microseconds since the epoch.
  bool all_digits = true;
  std::size_t start = text[0] == '-' ? 1 : 0;
  for (std::size_t k = start; k < text.size(); ++k) all_digits &= text[k] >= '0' && text[k] <= '9';
  if (all_digits && text.size() > start && text.size() - start <= 18) {
    std::int64_t v = 0;
    for (std::size_t k = start; k < text.size(); ++k) v = v * 10 + (text[k] - '0');
    Timestamp t{start ? -v : v};
    if (t < kMinTimestamp || t > kMaxTimestamp) return BadTime(text, "out of range");
    return t;
  }
  std::size_t i = 0;
  int year, month, day, hour = 0, minute = 0, second = 0;
  if (!ReadDigits(text, &i, 4, &year) || !Expect(text, &i, '-') ||
      !ReadDigits(text, &i, 2, &month) || !Expect(text, &i, '-') ||
      !ReadDigits(text, &i, 2, &day)) {
    return BadTime(text, "expected a date YYYY-MM-DD");
  }
  if (year < 1 || month < 1 || month > 12) return BadTime(text, "month out of range");
  if (day < 1 || static_cast<unsigned>(day) > DaysInMonth(year, month)) {
    return BadTime(text, "day out of range");
  }
  std::int64_t frac_micros = 0;
  std::int64_t offset_seconds = 0;
  if (i < text.size()) {
    if (text[i] != 'T' && text[i] != 't' && text[i] != ' ') {
      return BadTime(text, "expected 'T' between date and time");
    }
    ++i;
    if (!ReadDigits(text, &i, 2, &hour) || !Expect(text, &i, ':') ||
        !ReadDigits(text, &i, 2, &minute)) {
      return BadTime(text, "expected a time HH:MM:SS");
    }
    if (i < text.size() && text[i] == ':') {
      ++i;
      if (!ReadDigits(text, &i, 2, &second)) return BadTime(text, "expected seconds");
    }
    if (hour > 23 || minute > 59 || second > 60) return BadTime(text, "time out of range");
    if (second == 60) second = 59;  // a leap second is held at :59.999999 below
    if (i < text.size() && (text[i] == '.' || text[i] == ',')) {
      ++i;
      int digits = 0;
      while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        if (digits < 6) frac_micros = frac_micros * 10 + (text[i] - '0');
        ++digits;
        ++i;
      }
      if (digits == 0 || digits > 9) return BadTime(text, "a fraction needs 1 to 9 digits");
      for (int k = digits; k < 6; ++k) frac_micros *= 10;
    }
    if (i >= text.size()) {
      // RFC 3339 requires an offset; a time without one is read as UTC, as documented.
    } else if (text[i] == 'Z' || text[i] == 'z') {
      ++i;
    } else if (text[i] == '+' || text[i] == '-') {
      int sign = text[i] == '-' ? -1 : 1;
      ++i;
      int oh, om;
      if (!ReadDigits(text, &i, 2, &oh) || !Expect(text, &i, ':') ||
          !ReadDigits(text, &i, 2, &om) || oh > 23 || om > 59) {
        return BadTime(text, "expected an offset +HH:MM");
      }
      offset_seconds = sign * (oh * 3600 + om * 60);
    } else {
      return BadTime(text, "expected 'Z' or an offset +HH:MM after the time");
    }
  }
  if (i != text.size()) return BadTime(text, "unexpected text after the time");
  std::int64_t secs = DaysFromCivil(year, month, day) * kSecondsPerDay + hour * 3600 +
                      minute * 60 + second - offset_seconds;
  Timestamp t{secs * kMicrosPerSecond + frac_micros};
  if (t < kMinTimestamp || t > kMaxTimestamp) return BadTime(text, "out of range");
  return t;
}

}  // namespace timetrail
