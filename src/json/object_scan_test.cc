#include "json/object_scan.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace timetrail::json {
namespace {

struct Seen {
  std::string key;
  bool escaped;
  std::string value;
};

std::vector<Seen> Scan(std::string_view text, bool* ok) {
  std::vector<Seen> seen;
  *ok = ScanObjectMembers(text, [&](const ScannedMember& m) {
    seen.push_back({std::string(m.raw_key), m.key_escaped, std::string(m.value)});
    return true;
  });
  return seen;
}

TEST(ObjectScanTest, MembersWithTheirSourceText) {
  bool ok = false;
  auto seen = Scan(
      R"( { "a" : 1.50 , "b":{"x":"}]","y":[1,{"z":null}]}, "c\"d":"q\"}" ,"e":[ ],"f":true } )",
      &ok);
  ASSERT_TRUE(ok);
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[0].key, "a");
  EXPECT_EQ(seen[0].value, "1.50");
  EXPECT_EQ(seen[1].value, R"({"x":"}]","y":[1,{"z":null}]})");
  EXPECT_EQ(seen[2].key, R"(c\"d)");
  EXPECT_TRUE(seen[2].escaped);
  EXPECT_EQ(seen[2].value, R"("q\"}")");
  EXPECT_EQ(seen[3].value, "[ ]");
  EXPECT_EQ(seen[4].value, "true");
  EXPECT_FALSE(seen[0].escaped);
}

TEST(ObjectScanTest, EmptyObjectAndStoppingEarly) {
  bool ok = false;
  EXPECT_TRUE(Scan("{}", &ok).empty());
  EXPECT_TRUE(ok);
  int calls = 0;
  EXPECT_TRUE(ScanObjectMembers(R"({"a":1,"b":2})", [&](const ScannedMember&) {
    ++calls;
    return false;
  }));
  EXPECT_EQ(calls, 1);
}

TEST(ObjectScanTest, NotAnObjectIsRefused) {
  for (std::string_view bad :
       {"", "[1]", "null", R"({"a")", R"({"a":})", R"({"a":1,})", R"({"a":1} x)",
        R"({"a":"unterminated)", R"({"a":{"b":1})", R"({a:1})"}) {
    bool ok = true;
    Scan(bad, &ok);
    EXPECT_FALSE(ok) << bad;
  }
}

}  // namespace
}  // namespace timetrail::json
