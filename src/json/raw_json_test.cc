#include "json/raw_json.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "json/json_writer.h"

namespace timetrail::json {
namespace {

TEST(RawJsonTest, KeepsTheSourceTextOfEveryValue) {
  auto v = ParseRawJson(R"( {"n": 12345678901234567890.10, "s": "a\u00e9", "a": [1, {}]} )");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_NE(v->Find("n"), nullptr);
  EXPECT_EQ(v->Find("n")->text, "12345678901234567890.10");
  EXPECT_EQ(v->Find("s")->str, "a\xC3\xA9");
  EXPECT_EQ(v->Find("a")->text, "[1, {}]");
}

// Found by fuzz/raw_json: bytes that are not UTF-8 inside a string were accepted, although JSON
// text is UTF-8 and the stored data is checked as such.
TEST(RawJsonTest, StringsMustBeUtf8) {
  auto v = ParseRawJson("{\"\xFF\xFF\": 1}");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("not valid UTF-8 at byte 1"), std::string::npos)
      << v.status().message();
  EXPECT_FALSE(ParseRawJson("\"caf\xE9\"").ok());
  EXPECT_TRUE(ParseRawJson("\"caf\xC3\xA9\"").ok());
}

// Found by fuzz/api_request: an error message quoting a method that was not UTF-8 made the
// error body invalid JSON.
TEST(RawJsonTest, QuotingAlwaysGivesValidJson) {
  std::string quoted = JsonQuote("no endpoint \xBF\xBA\n");
  EXPECT_TRUE(nlohmann::json::accept(quoted)) << quoted;
  EXPECT_EQ(nlohmann::json::parse(quoted), "no endpoint \xEF\xBF\xBD\xEF\xBF\xBD\n");
}

// Found by fuzz/raw_json: 9e999 was accepted as a request value, though stored JSON is read back
// as doubles and the store's validation refuses it; it is refused up front, at its byte.
TEST(RawJsonTest, NumbersBeyondDoubleRangeAreRefused) {
  for (const char* text : {"9e999", "[1, -1E+400]", "{\"n\": 1.5e309}"}) {
    auto v = ParseRawJson(text);
    ASSERT_FALSE(v.ok()) << text;
    EXPECT_NE(v.status().message().find("number out of range"), std::string::npos)
        << v.status().message();
    EXPECT_FALSE(nlohmann::json::accept(text)) << text;
  }
  EXPECT_FALSE(ParseRawJson(std::string(309, '9')).ok());
  for (const char* text : {"1e308", "1e-999", "-0.0e0", "123456789012345678901234567890"}) {
    EXPECT_TRUE(ParseRawJson(text).ok()) << text;
    EXPECT_TRUE(nlohmann::json::accept(text)) << text;
  }
  EXPECT_TRUE(ParseRawJson(std::string(308, '9')).ok());
}

}  // namespace
}  // namespace timetrail::json
