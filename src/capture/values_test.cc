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

TEST(ValuesTest, ArraysNestAndKeepNulls) {
  EXPECT_EQ(PgTextToJson(1007, "{{1,2},{3,NULL}}"), json::parse("[[1,2],[3,null]]"));
  EXPECT_EQ(PgTextToJson(1009, R"({"a b","c\"d",NULL,"NULL"})"),
            json::parse(R"(["a b","c\"d",null,"NULL"])"));
  EXPECT_EQ(JsonToPgText(json::parse(R"(["a b","c\"d",null])"), "text[]"), R"({"a b","c\"d",NULL})");
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

TEST(ValuesTest, CompositeKeysAreUnambiguous) {
  EXPECT_EQ(RowStreamName("", "public", "orders", {"42"}), "public.orders/42");
  EXPECT_EQ(RowStreamName("app:", "public", "lines", {"4,2", "1"}), "app:public.lines/4%2C2,1");
  EXPECT_NE(RowStreamName("", "s", "t", {"a,b"}), RowStreamName("", "s", "t", {"a", "b"}));
  EXPECT_EQ(DecodeRowKey("4%2C2,1%2Fx"), (std::vector<std::string>{"4,2", "1/x"}));
}

}  // namespace
}  // namespace timetrail::capture
