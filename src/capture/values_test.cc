#include "capture/values.h"

#include <gtest/gtest.h>

namespace timetrail::capture {
namespace {

using nlohmann::json;

TEST(ValuesTest, NumericIsANumberOnlyWhenExact) {
  EXPECT_EQ(PgTextToJson(1700, "42"), json(42));
  EXPECT_EQ(PgTextToJson(1700, "19.90"), json(19.9));
  EXPECT_EQ(PgTextToJson(1700, "0.1"), json(0.1));
  EXPECT_EQ(PgTextToJson(1700, "12345678901234567890.5"), json("12345678901234567890.5"));
  EXPECT_EQ(PgTextToJson(1700, "99999999999999999999"), json("99999999999999999999"));
  EXPECT_EQ(PgTextToJson(1700, "NaN"), json("NaN"));
}

// Found by fuzz/pg_values: a value that is not UTF-8 threw when the row was serialized, which
// would end the capture.
TEST(ValuesTest, MalformedUtf8IsKeptWithReplacementCharacters) {
  json text = PgTextToJson(25, "caf\xE9 au lait");
  EXPECT_EQ(text, json("caf\xEF\xBF\xBD au lait"));
  EXPECT_NO_THROW((void)text.dump());
  json array = PgTextToJson(1009, "{ok,\"\xFF\"}");
  EXPECT_EQ(array, json::parse("[\"ok\", \"\\ufffd\"]"));
  EXPECT_EQ(PgTextToJson(25, "caf\xC3\xA9"), json("caf\xC3\xA9"));  // valid UTF-8 untouched
}

// Found by fuzz/pg_values: an exponent marker with nothing after it read past the text.
TEST(ValuesTest, NumericWithAMalformedExponentStaysText) {
  EXPECT_EQ(PgTextToJson(1700, "24908e"), json("24908e"));
  EXPECT_EQ(PgTextToJson(1700, "1e+"), json("1e+"));
  EXPECT_EQ(PgTextToJson(1700, "1e9223372036854775807"), json("1e9223372036854775807"));
  EXPECT_EQ(PgTextToJson(1700, "15e-1"), json(1.5));
}

TEST(ValuesTest, ArraysNestAndKeepNulls) {
  EXPECT_EQ(PgTextToJson(1007, "{{1,2},{3,NULL}}"), json::parse("[[1,2],[3,null]]"));
  EXPECT_EQ(PgTextToJson(1009, R"({"a b","c\"d",NULL,"NULL"})"),
            json::parse(R"(["a b","c\"d",null,"NULL"])"));
  EXPECT_EQ(JsonToPgText(json::parse(R"(["a b","c\"d",null])"), "text[]"),
            R"({"a b","c\"d",NULL})");
  EXPECT_EQ(JsonToPgText(json::parse(R"([[1,2],[3,4]])"), "integer[]"), R"({{"1","2"},{"3","4"}})");
  EXPECT_EQ(JsonToPgText(json::parse(R"([{"x":1},[]])"), "jsonb[]"), R"({"{\"x\":1}","[]"})");
  EXPECT_EQ(JsonToPgText(json::parse(R"({"x":"y"})"), "jsonb"), R"({"x":"y"})");
  EXPECT_EQ(JsonToPgText(json("a\"b"), "json"), R"("a\"b")");
}

TEST(ValuesTest, TimestampsBecomeRfc3339) {
  EXPECT_EQ(PgTextToJson(1184, "2026-11-22 13:40:00.5+00"), json("2026-11-22T13:40:00.5Z"));
  EXPECT_EQ(PgTextToJson(1114, "2026-11-22 13:40:00"), json("2026-11-22T13:40:00"));
  EXPECT_EQ(PgTextToJson(1184, "infinity"), json("infinity"));
}

TEST(ValuesTest, JsonTextIsWhatTheDocumentWouldDump) {
  // (type oid, text): integers, booleans, text-like types with and without escapes and with
  // malformed UTF-8, and the types that still go through a document.
  const std::vector<std::pair<std::uint32_t, std::string>> values = {
      {23, "42"},
      {20, "-9223372036854775808"},
      {21, "7"},
      {26, "12345"},
      {23, "not a number"},
      {16, "t"},
      {16, "f"},
      {25, "plain"},
      {25, ""},
      {25, "quote \" and \\ backslash"},
      {25, "tab\tnew\nline\b\f\x01\x7f"},
      {25, "h\xc3\xa9llo"},
      {25, "bad \xff byte"},
      {1043, "varchar"},
      {2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
      {1082, "2026-11-22"},
      {1700, "19.90"},
      {1700, "12345678901234567890.000000000000000001"},
      {701, "NaN"},
      {700, "1.5"},
      {3802, "{\"b\": {\"c\": true}, \"a\": [1, 2.5]}"},
      {114, "[1, null]"},
      {1184, "2026-11-22 13:40:00.5+00"},
      {1114, "2026-11-22 13:40:00"},
      {1007, "{1,NULL,3}"},
      {1009, "{\"a,b\",NULL}"}};
  for (const auto& [oid, text] : values) {
    std::string out = "[";
    AppendPgTextAsJson(oid, text, &out);
    EXPECT_EQ(out, "[" + PgTextToJson(oid, text).dump()) << oid << " " << text;
  }
}

TEST(ValuesTest, CompositeKeysAreUnambiguous) {
  EXPECT_EQ(RowStreamName("", "public", "orders", {"42"}), "public.orders/42");
  EXPECT_EQ(RowStreamName("app:", "public", "lines", {"4,2", "1"}), "app:public.lines/4%2C2,1");
  EXPECT_NE(RowStreamName("", "s", "t", {"a,b"}), RowStreamName("", "s", "t", {"a", "b"}));
  EXPECT_EQ(DecodeRowKey("4%2C2,1%2Fx"), (std::vector<std::string>{"4,2", "1/x"}));
}

}  // namespace
}  // namespace timetrail::capture
