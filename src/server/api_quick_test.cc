// Where the server runs a request (Api::Placement, the "runs" column of the route table): short
// reads that never wait are answered on the I/O threads, appends are started there and answered
// from the store's completion, anything else (or unrecognized) goes to the workers.
#include <gtest/gtest.h>

#include "server/api.h"

namespace timetrail::server {
namespace {

Runs Placement(const std::string& method, const std::string& target) {
  // Placement reads only the route table: no store is needed to build one.
  static Api api(nullptr, nullptr, nullptr);
  ApiRequest r;
  r.method = method;
  r.target = target;
  return api.Placement(r);
}

bool Quick(const std::string& method, const std::string& target) {
  return Placement(method, target) == Runs::kQuick;
}

TEST(ApiIsQuickTest, EntityReadsStreamInfoAndHealthAreQuick) {
  EXPECT_TRUE(Quick("GET", "/v1/entities/order-1"));
  EXPECT_TRUE(Quick("GET", "/v1/entities/order%2F1?as_of=2026-01-01T00:00:00Z"));
  EXPECT_TRUE(Quick("GET", "/v1/entities/o?valid_at=2026-01-01T00:00:00Z&known_at=now"));
  EXPECT_TRUE(Quick("GET", "/v1/streams/order-1/info"));
  EXPECT_TRUE(Quick("GET", "/healthz"));
}

TEST(ApiIsQuickTest, WaitsWritesAndReadsThatGrowWithTheAnswerAreNot) {
  const std::pair<const char*, const char*> slow[] = {
      {"GET", "/v1/entities/o?min_position=5"},
      {"GET", "/v1/entities/o?as_of=x&min%5Fposition=5"},  // an encoded name
      {"GET", "/v1/entities/o?%zz=1"},                     // undecodable: the handler says why
      {"POST", "/v1/entities/o/revert"},
      {"HEAD", "/v1/entities/o"},
      {"GET", "/v1/streams/o"},
      {"GET", "/v1/entities/o/history?path=/a"},
      {"GET", "/v1/entities/o/diff"},
      {"GET", "/v1/log"},
      {"GET", "/v1/activity?actor=a"},
      {"GET", "/v1/subscribe"},
      {"GET", "/v1/entities/"},
      {"GET", "/v1//x"},
      {"GET", "/v1/entities//"},
      {"GET", "/metrics"},
  };
  for (const auto& [method, target] : slow) EXPECT_FALSE(Quick(method, target)) << target;
}

TEST(ApiPlacementTest, AppendsAreAsynchronous) {
  EXPECT_EQ(Placement("POST", "/v1/streams/order-1"), Runs::kAsync);
  EXPECT_EQ(Placement("POST", "/v1/streams/order%2F1"), Runs::kAsync);
  EXPECT_EQ(Placement("POST", "/v1/transactions"), Runs::kAsync);
}

TEST(ApiPlacementTest, OtherWritesAndUnknownRequestsGoToTheWorkers) {
  EXPECT_EQ(Placement("POST", "/v1/entities/o/revert"), Runs::kOnWorker);
  EXPECT_EQ(Placement("POST", "/v1/consumers/c/ack"), Runs::kOnWorker);
  EXPECT_EQ(Placement("POST", "/v1/tokens"), Runs::kOnWorker);
  EXPECT_EQ(Placement("PUT", "/v1/streams/o"), Runs::kOnWorker);
  EXPECT_EQ(Placement("POST", "/v1/nothing"), Runs::kOnWorker);
  EXPECT_EQ(Placement("POST", "/v1/streams/%zz"), Runs::kOnWorker);
}

}  // namespace
}  // namespace timetrail::server
