// Which requests the server may answer on its I/O threads (Api::IsQuick): only short reads that
// never wait; anything unrecognized goes to the workers.
#include <gtest/gtest.h>

#include "server/api.h"

namespace timetrail::server {
namespace {

bool Quick(const std::string& method, const std::string& target) {
  ApiRequest r;
  r.method = method;
  r.target = target;
  return Api::IsQuick(r);
}

TEST(ApiIsQuickTest, EntityReadsStreamInfoAndHealthAreQuick) {
  EXPECT_TRUE(Quick("GET", "/v1/entities/order-1"));
  EXPECT_TRUE(Quick("GET", "/v1/entities/order%2F1?as_of=2026-01-01T00:00:00Z"));
  EXPECT_TRUE(Quick("GET", "/v1/entities/o?valid_at=2026-01-01T00:00:00Z&known_at=now"));
  EXPECT_TRUE(Quick("GET", "/v1/streams/order-1/info"));
  EXPECT_TRUE(Quick("GET", "/healthz"));
}

TEST(ApiIsQuickTest, WaitsWritesAndReadsThatGrowWithTheAnswerAreNot) {
  EXPECT_FALSE(Quick("GET", "/v1/entities/o?min_position=5"));
  EXPECT_FALSE(Quick("GET", "/v1/entities/o?as_of=x&min%5Fposition=5"));  // encoded name
  EXPECT_FALSE(Quick("GET", "/v1/entities/o?%zz=1"));                      // undecodable: let the handler say why
  EXPECT_FALSE(Quick("POST", "/v1/entities/o/revert"));
  EXPECT_FALSE(Quick("POST", "/v1/streams/o"));
  EXPECT_FALSE(Quick("HEAD", "/v1/entities/o"));
  EXPECT_FALSE(Quick("GET", "/v1/streams/o"));
  EXPECT_FALSE(Quick("GET", "/v1/entities/o/history?path=/a"));
  EXPECT_FALSE(Quick("GET", "/v1/entities/o/diff"));
  EXPECT_FALSE(Quick("GET", "/v1/log"));
  EXPECT_FALSE(Quick("GET", "/v1/activity?actor=a"));
  EXPECT_FALSE(Quick("GET", "/v1/subscribe"));
  EXPECT_FALSE(Quick("GET", "/v1/entities/"));
  EXPECT_FALSE(Quick("GET", "/v1//x"));
  EXPECT_FALSE(Quick("GET", "v1/entities/o"));
  EXPECT_FALSE(Quick("GET", "/metrics"));
}

}  // namespace
}  // namespace timetrail::server
