// How PostgreSQL values become JSON in captured events, how captured rows are named, and the way
// back (JSON to the text PostgreSQL accepts) for reverting a row in the source.
//
// Values arrive in PostgreSQL's text output form (the capture sets DateStyle=ISO, TimeZone=UTC
// and extra_float_digits=3 on its connection so the form is fixed). The mapping, by column type:
//   smallint, integer, bigint, oid           JSON integer
//   real, double precision                   JSON number; NaN and ±Infinity as strings
//   numeric                                  JSON number when the decimal value survives a trip
//                                            through int64 or double exactly, else a string
//                                            with every digit ("12345678901234567890.5")
//   boolean                                  true / false
//   json, jsonb                              the JSON itself
//   timestamptz                              "2026-11-22T13:40:00.5Z" (RFC 3339, UTC)
//   timestamp                                "2026-11-22T13:40:00.5" (no offset: it has none)
//   arrays of any of these                   JSON arrays (nested for multi-dimensional)
//   NULL                                     null
//   everything else (text, uuid, date, ...)  the text form, as a string
#ifndef TIMETRAIL_CAPTURE_VALUES_H_
#define TIMETRAIL_CAPTURE_VALUES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace timetrail::capture {

// The JSON for a value of type "type_oid" given in PostgreSQL's text form.
nlohmann::json PgTextToJson(std::uint32_t type_oid, std::string_view text);

// Appends PgTextToJson(type_oid, text).dump() to "out": the same bytes, without building a
// document for integers, booleans and text-like values (the capture's common case).
void AppendPgTextAsJson(std::uint32_t type_oid, std::string_view text, std::string* out);

// Appends nlohmann::json(text).dump() to "out" (invalid UTF-8 replaced by U+FFFD): a JSON
// string literal written as the rest of the capture's documents write it.
void AppendJsonString(std::string_view text, std::string* out);

// The text PostgreSQL accepts as input for a column from its captured JSON. "column_type" is
// the column's type as format_type() names it ("integer[]", "jsonb", "text"): for an array
// type a JSON array becomes an array literal (nested arrays are dimensions, except in json[] /
// jsonb[] where they are values); for json and jsonb the JSON text is written as it is.
// REQUIRES: !value.is_null() (NULL is not a text value).
std::string JsonToPgText(const nlohmann::json& value, std::string_view column_type);

// A row's stream name: "<prefix><schema>.<table>/<key>", where <key> is the key columns' text
// values in key order joined by ','; inside each value '%', ',', '/' and control characters are
// written as %XX (upper-case hex), so distinct keys always give distinct names:
//   public.orders/42        public.order_lines/42,1        public.files/a%2Fb%2Cc
std::string RowStreamName(std::string_view prefix, std::string_view schema, std::string_view table,
                          const std::vector<std::string>& key_values);

// The stream recording a table's columns as they change: "<prefix><schema>.<table>".
std::string TableStreamName(std::string_view prefix, std::string_view schema,
                            std::string_view table);

// Splits the key part of a row stream name back into the key columns' text values.
std::vector<std::string> DecodeRowKey(std::string_view key);

}  // namespace timetrail::capture

#endif  // TIMETRAIL_CAPTURE_VALUES_H_
