// The SQL types a projection's declared columns may have, and the check that a JSON value fits
// one, so that an event the mapping does not fit is refused with its column named before
// anything is written (docs/projections.md, "Typed columns").
#ifndef TIMETRAIL_PROJECT_SQL_TYPES_H_
#define TIMETRAIL_PROJECT_SQL_TYPES_H_

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "timetrail/status.h"

namespace timetrail::project {

enum class SqlType {
  kText,
  kBigint,
  kInteger,
  kSmallint,
  kNumeric,
  kDoublePrecision,
  kBoolean,
  kTimestamptz,
  kDate,
  kUuid,
  kJsonb,
};

// "text", "bigint", "int8", "integer", "int", "int4", "smallint", "int2", "numeric",
// "double precision", "float8", "boolean", "bool", "timestamptz", "date", "uuid", "jsonb" (any
// case). kInvalidArgument lists the names accepted.
Result<SqlType> ParseSqlType(std::string_view name);

// The type as it is written in DDL.
const char* SqlTypeName(SqlType type);

// The value as COPY text for a column of "type", or nullopt (NULL) for a JSON null. A value
// that does not fit is kInvalidArgument saying what it is and what the column takes: text
// takes strings; the integer types whole numbers in their range; numeric and double precision
// numbers; boolean true or false; timestamptz an RFC 3339 time; date YYYY-MM-DD; uuid a UUID
// string; jsonb anything.
Result<std::optional<std::string>> ToSqlText(const nlohmann::json& value, SqlType type);

}  // namespace timetrail::project

#endif  // TIMETRAIL_PROJECT_SQL_TYPES_H_
