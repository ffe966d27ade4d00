#include "json/json_writer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <limits>

namespace timetrail::json {
namespace {

TEST(JsonWriterTest, SeparatesMembersAndItemsWithCommas) {
  JsonWriter w;
  w.BeginObject();
  w.Key("a").Uint(1);
  w.Key("b").BeginArray().Uint(1).String("x").BeginObject().EndObject().BeginArray().EndArray();
  w.EndArray();
  w.Key("c").BeginObject().Key("d").Null().Key("e").Bool(true).Key("f").Bool(false).EndObject();
  w.EndObject();
  EXPECT_EQ(w.str(), R"({"a":1,"b":[1,"x",{},[]],"c":{"d":null,"e":true,"f":false}})");
  EXPECT_TRUE(nlohmann::json::accept(w.str()));
}

TEST(JsonWriterTest, EmptyContainersAndTopLevelValues) {
  EXPECT_EQ(JsonWriter().BeginObject().EndObject().str(), "{}");
  EXPECT_EQ(JsonWriter().BeginArray().EndArray().str(), "[]");
  EXPECT_EQ(JsonWriter().String("").str(), "\"\"");
  EXPECT_EQ(JsonWriter().Null().str(), "null");
}

TEST(JsonWriterTest, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(JsonWriter().String("say \"hi\"").str(), R"("say \"hi\"")");
  EXPECT_EQ(JsonWriter().String("C:\\dir\\").str(), R"("C:\\dir\\")");
  EXPECT_EQ(JsonWriter().String("a\nb\rc\td").str(), R"("a\nb\rc\td")");
  EXPECT_EQ(JsonWriter().String(std::string_view("\0\x01\x1f\x7f", 4)).str(),
            R"("\u0000\u0001\u001f\u007f")");
  // Keys are strings too.
  EXPECT_EQ(JsonWriter().BeginObject().Key("k\"\n").Uint(0).EndObject().str(), R"({"k\"\n":0})");
  // Every byte below 0x20 round-trips through a reference parser.
  std::string all;
  for (int c = 0; c < 0x20; ++c) all.push_back(static_cast<char>(c));
  std::string quoted = JsonWriter().String(all).str();
  ASSERT_TRUE(nlohmann::json::accept(quoted)) << quoted;
  EXPECT_EQ(nlohmann::json::parse(quoted).get<std::string>(), all);
}

TEST(JsonWriterTest, PassesUtf8ThroughAndReplacesWhatIsNotUtf8) {
  // "é", "€" and an emoji, unescaped.
  EXPECT_EQ(JsonWriter().String("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80").str(),
            "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
  // Each byte of a lone continuation byte or a truncated sequence becomes U+FFFD: the body
  // stays valid JSON.
  std::string quoted = JsonWriter()
                           .String(
                               "a\xBF"
                               "b\xE2\x82")
                           .str();
  EXPECT_EQ(quoted,
            "\"a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD\xEF\xBF\xBD\"");
  EXPECT_TRUE(nlohmann::json::accept(quoted));
}

TEST(JsonWriterTest, Numbers) {
  EXPECT_EQ(JsonWriter().Uint(0).str(), "0");
  EXPECT_EQ(JsonWriter().Uint(std::numeric_limits<std::uint64_t>::max()).str(),
            "18446744073709551615");
  EXPECT_EQ(JsonWriter().Int(-42).str(), "-42");
  EXPECT_EQ(JsonWriter().Int(std::numeric_limits<std::int64_t>::min()).str(),
            "-9223372036854775808");
  EXPECT_EQ(JsonWriter().Fixed(1.5, 3).str(), "1.500");
  EXPECT_EQ(JsonWriter().Fixed(0, 3).str(), "0.000");
  EXPECT_EQ(JsonWriter().Fixed(2.0 / 3.0, 3).str(), "0.667");
  EXPECT_EQ(JsonWriter().Fixed(std::numeric_limits<double>::quiet_NaN(), 3).str(), "null");
  EXPECT_EQ(JsonWriter().Fixed(std::numeric_limits<double>::infinity(), 3).str(), "null");
  EXPECT_EQ(JsonWriter().UintOrNull(std::nullopt).str(), "null");
  EXPECT_EQ(JsonWriter().UintOrNull(7).str(), "7");
  EXPECT_EQ(JsonWriter().StringOrNull(std::nullopt).str(), "null");
}

// Stored event data is inserted byte for byte: numbers keep every digit, spacing and key order
// stay as the client sent them.
TEST(JsonWriterTest, RawTextIsInsertedUnchanged) {
  const std::string data = R"({"n": 12345678901234567890.10, "z":1,  "a":"\u00e9"})";
  JsonWriter w;
  w.BeginObject().Key("data").Raw(data).Key("next").Null().EndObject();
  EXPECT_EQ(w.str(), "{\"data\":" + data + ",\"next\":null}");
  EXPECT_EQ(JsonWriter().BeginArray().Raw("1").Raw("{}").EndArray().str(), "[1,{}]");
}

TEST(JsonWriterTest, TakeMovesTheText) {
  JsonWriter w(64);
  w.BeginArray().Uint(1).EndArray();
  EXPECT_EQ(w.Take(), "[1]");
}

TEST(JsonQuoteTest, MatchesTheWriter) {
  for (std::string_view s :
       {std::string_view("plain"), std::string_view("q\"\\\n\x01"), std::string_view("\xFF")}) {
    EXPECT_EQ(JsonQuote(s), JsonWriter().String(s).str());
    std::string appended = "x";
    AppendQuoted(s, &appended);
    EXPECT_EQ(appended, "x" + JsonQuote(s));
  }
}

}  // namespace
}  // namespace timetrail::json
