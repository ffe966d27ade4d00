#include "project/sql_types.h"

#include <algorithm>
#include <cctype>
#include <limits>

#include "timetrail/event.h"
#include "timetrail/time.h"

namespace timetrail::project {
namespace {

using nlohmann::json;

struct TypeName {
  const char* name;
  SqlType type;
};

constexpr TypeName kTypeNames[] = {
    {"text", SqlType::kText},
    {"bigint", SqlType::kBigint},
    {"int8", SqlType::kBigint},
    {"integer", SqlType::kInteger},
    {"int", SqlType::kInteger},
    {"int4", SqlType::kInteger},
    {"smallint", SqlType::kSmallint},
    {"int2", SqlType::kSmallint},
    {"numeric", SqlType::kNumeric},
    {"double precision", SqlType::kDoublePrecision},
    {"float8", SqlType::kDoublePrecision},
    {"boolean", SqlType::kBoolean},
    {"bool", SqlType::kBoolean},
    {"timestamptz", SqlType::kTimestamptz},
    {"date", SqlType::kDate},
    {"uuid", SqlType::kUuid},
    {"jsonb", SqlType::kJsonb},
};

// What a JSON value is, for messages: "the string \"abc\"", "the number 1.5", "an object".
std::string Describe(const json& v) {
  std::string text = v.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  switch (v.type()) {
    case json::value_t::string:
      return "the string " + text;
    case json::value_t::boolean:
      return "the boolean " + text;
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    default:
      return "the number " + text;
  }
}

Status DoesNotFit(const json& v, SqlType type, const char* takes) {
  return Status::InvalidArgument(Describe(v) + " does not fit a " + SqlTypeName(type) +
                                 " column, which takes " + takes);
}

bool IsDate(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  const int year = std::stoi(std::string(s.substr(0, 4)));
  const int month = std::stoi(std::string(s.substr(5, 2)));
  const int day = std::stoi(std::string(s.substr(8, 2)));
  constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 || day > kDays[month - 1]) return false;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return !(month == 2 && day == 29 && !leap);
}

Result<std::optional<std::string>> Integer(const json& v, SqlType type, std::int64_t min,
                                           std::int64_t max, const char* takes) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned()) {
      auto u = v.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(max)) return std::optional<std::string>(v.dump());
    } else {
      auto i = v.get<std::int64_t>();
      if (i >= min && i <= max) return std::optional<std::string>(v.dump());
    }
  }
  return DoesNotFit(v, type, takes);
}

}  // namespace

Result<SqlType> ParseSqlType(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const TypeName& t : kTypeNames) {
    if (lower == t.name) return t.type;
  }
  std::string names;
  for (const TypeName& t : kTypeNames) names += std::string(names.empty() ? "" : ", ") + t.name;
  return Status::InvalidArgument("unknown column type '" + std::string(name) + "'; the types are " +
                                 names);
}

const char* SqlTypeName(SqlType type) {
  switch (type) {
    case SqlType::kText:
      return "text";
    case SqlType::kBigint:
      return "bigint";
    case SqlType::kInteger:
      return "integer";
    case SqlType::kSmallint:
      return "smallint";
    case SqlType::kNumeric:
      return "numeric";
    case SqlType::kDoublePrecision:
      return "double precision";
    case SqlType::kBoolean:
      return "boolean";
    case SqlType::kTimestamptz:
      return "timestamptz";
    case SqlType::kDate:
      return "date";
    case SqlType::kUuid:
      return "uuid";
    case SqlType::kJsonb:
      return "jsonb";
  }
  return "text";
}

Result<std::optional<std::string>> ToSqlText(const json& v, SqlType type) {
  if (v.is_null()) return std::optional<std::string>();
  switch (type) {
    case SqlType::kText:
      if (v.is_string()) return std::optional<std::string>(v.get<std::string>());
      return DoesNotFit(v, type, "strings");
    case SqlType::kBigint:
      return Integer(v, type, std::numeric_limits<std::int64_t>::min(),
                     std::numeric_limits<std::int64_t>::max(), "whole numbers");
    case SqlType::kInteger:
      return Integer(v, type, std::numeric_limits<std::int32_t>::min(),
                     std::numeric_limits<std::int32_t>::max(),
                     "whole numbers from -2147483648 to 2147483647");
    case SqlType::kSmallint:
      return Integer(v, type, -32768, 32767, "whole numbers from -32768 to 32767");
    case SqlType::kNumeric:
    case SqlType::kDoublePrecision:
      if (v.is_number()) return std::optional<std::string>(v.dump());
      return DoesNotFit(v, type, "numbers");
    case SqlType::kBoolean:
      if (v.is_boolean()) return std::optional<std::string>(v.get<bool>() ? "t" : "f");
      return DoesNotFit(v, type, "true or false");
    case SqlType::kTimestamptz:
      if (v.is_string()) {
        Result<Timestamp> t = ParseTimestamp(v.get<std::string>());
        if (t.ok()) return std::optional<std::string>(FormatTimestamp(*t));
      }
      return DoesNotFit(v, type, "RFC 3339 times such as \"2026-11-22T13:40:00Z\"");
    case SqlType::kDate:
      if (v.is_string() && IsDate(v.get<std::string>())) {
        return std::optional<std::string>(v.get<std::string>());
      }
      return DoesNotFit(v, type, "dates such as \"2026-11-22\"");
    case SqlType::kUuid:
      if (v.is_string() && Uuid::Parse(v.get<std::string>()).ok()) {
        return std::optional<std::string>(v.get<std::string>());
      }
      return DoesNotFit(v, type, "UUID strings");
    case SqlType::kJsonb:
      return std::optional<std::string>(v.dump());
  }
  return DoesNotFit(v, type, "nothing");
}

}  // namespace timetrail::project
