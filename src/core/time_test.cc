#include "timetrail/time.h"

#include <gtest/gtest.h>

namespace timetrail {
namespace {

TEST(TimeTest, FormatsWithMicrosecondsAndZ) {
  EXPECT_EQ(FormatTimestamp(Timestamp{0}), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(FormatTimestamp(Timestamp{1795863600123456}), "2026-11-28T11:00:00.123456Z");
  EXPECT_EQ(FormatTimestamp(Timestamp{-1}), "1969-12-31T23:59:59.999999Z");
}

TEST(TimeTest, ParsesTheAcceptedForms) {
  EXPECT_EQ(ParseTimestamp("2026-11-28T11:00:00.123456Z")->micros, 1795863600123456);
  EXPECT_EQ(ParseTimestamp("2026-11-28T11:00:00Z")->micros, 1795863600000000);
  EXPECT_EQ(ParseTimestamp("2026-11-28 11:00:00")->micros, 1795863600000000);
  EXPECT_EQ(ParseTimestamp("2026-11-28T12:30:00+01:30")->micros, 1795863600000000);
  EXPECT_EQ(ParseTimestamp("2026-11-28T11:00:00.1234567Z")->micros, 1795863600123456);
  EXPECT_EQ(ParseTimestamp("2026-11-28")->micros, 1795824000000000);
  EXPECT_EQ(ParseTimestamp("1795863600123456")->micros, 1795863600123456);
}

TEST(TimeTest, RoundTripsAcrossTheRange) {
  for (std::int64_t v : {kMinTimestamp.micros, std::int64_t{-86400000001}, std::int64_t{0},
                         std::int64_t{951782400000000}, kMaxTimestamp.micros}) {
    auto parsed = ParseTimestamp(FormatTimestamp(Timestamp{v}));
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(parsed->micros, v);
  }
}

TEST(TimeTest, RejectsMalformedTimesWithAReason) {
  for (const char* bad : {"", "yesterday", "2026-13-01", "2026-02-30", "2026-11-28T25:00:00Z",
                          "2026-11-28T11:00:00.Z", "2026-11-28T11:00:00+0100",
                          "2026-11-28T11:00:00Zjunk"}) {
    auto r = ParseTimestamp(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("not a valid time"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace timetrail
