// End-to-end tests of the temporal endpoints (/v1/entities/..., /v1/activity) against a real
// `timetrail serve` process.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "server/server_harness.h"
#include "support/temp_dir.h"

namespace timetrail::testing {
namespace {

using nlohmann::json;

class TemporalApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(dir_.Sub("data"));
    ASSERT_TRUE(server_->started());
    client_ = std::make_unique<HttpClient>(server_->port());
    HttpResult put = client_->Post("/v1/streams/friend-1", R"({"expected_revision":"no_stream",
        "events":[{"type":"$put","data":{"name":"Rachel","location":"New York"},
                   "metadata":{"actor":"joey","reason":"we met"}}]})");
    ASSERT_EQ(put.status, 201) << put.body;
    first_time_ = put.json()["recorded_at"].get<std::string>();
    HttpResult patch = client_->Post("/v1/streams/friend-1", R"({"expected_revision":0,
        "events":[{"type":"$patch","data":{"location":"Paris"},
                   "metadata":{"actor":"monica","reason":"she moved"}}]})");
    ASSERT_EQ(patch.status, 201) << patch.body;
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<HttpClient> client_;
  std::string first_time_;
};

TEST_F(TemporalApiTest, EntityStateAtEachKindOfPoint) {
  json latest = client_->Get("/v1/entities/friend-1").json();
  EXPECT_EQ(latest["exists"], true);
  EXPECT_EQ(latest["state"]["location"], "Paris");
  EXPECT_EQ(latest["revision"], 1);
  EXPECT_EQ(latest["metadata"]["actor"], "monica");
  EXPECT_EQ(client_->Get("/v1/entities/friend-1?at_revision=0").json()["state"]["location"],
            "New York");
  EXPECT_EQ(client_->Get("/v1/entities/friend-1?at_position=1").json()["state"]["location"],
            "New York");
  HttpResult as_of = client_->Get("/v1/entities/friend-1?as_of=" + UrlEncode(first_time_));
  ASSERT_EQ(as_of.status, 200) << as_of.body;
  EXPECT_EQ(as_of.json()["state"]["location"], "New York");
  EXPECT_EQ(as_of.json()["revision"], 0);
  HttpResult valid = client_->Get("/v1/entities/friend-1?valid_at=9999-01-01");
  ASSERT_EQ(valid.status, 200) << valid.body;
  EXPECT_EQ(valid.json()["state"]["location"], "Paris");

  EXPECT_EQ(client_->Get("/v1/entities/friend-1?at_revision=0&as_of=2026-01-01").status, 400);
  EXPECT_EQ(client_->Get("/v1/entities/friend-1?as_of=yesterday").status, 400);
  EXPECT_EQ(client_->Get("/v1/entities/friend-1?known_at=2026-01-01").status, 400);
  HttpResult missing = client_->Get("/v1/entities/nobody");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.json()["error"], "not_found");
}

TEST_F(TemporalApiTest, PropertyHistory) {
  HttpResult r = client_->Get("/v1/entities/friend-1/history?path=%2Flocation");
  ASSERT_EQ(r.status, 200) << r.body;
  json h = r.json();
  EXPECT_EQ(h["path"], "/location");
  ASSERT_EQ(h["intervals"].size(), 2u);
  EXPECT_EQ(h["intervals"][0]["value"], "New York");
  EXPECT_EQ(h["intervals"][0]["exists"], true);
  EXPECT_EQ(h["intervals"][0]["from"]["revision"], 0);
  EXPECT_EQ(h["intervals"][0]["to"]["revision"], 1);
  EXPECT_EQ(h["intervals"][0]["metadata"]["actor"], "joey");
  EXPECT_EQ(h["intervals"][1]["value"], "Paris");
  EXPECT_TRUE(h["intervals"][1]["to"].is_null());
  HttpResult absent = client_->Get("/v1/entities/friend-1/history?path=/phone");
  ASSERT_EQ(absent.status, 200) << absent.body;
  ASSERT_GE(absent.json()["intervals"].size(), 1u);
  EXPECT_FALSE(absent.json()["intervals"][0].contains("value"));
  EXPECT_EQ(absent.json()["intervals"][0]["exists"], false);
  EXPECT_EQ(client_->Get("/v1/entities/friend-1/history?path=nope").status, 400);
  EXPECT_EQ(client_->Get("/v1/entities/friend-1/history?path=/x&valid_time=maybe").status, 400);
  HttpResult known = client_->Get("/v1/entities/friend-1/history?path=/x&known_at=2026-01-01");
  EXPECT_EQ(known.status, 400);
  EXPECT_NE(known.body.find("known_at needs valid_time=true"), std::string::npos) << known.body;
  EXPECT_TRUE(h["cursor"].is_null());
}

TEST_F(TemporalApiTest, PropertyHistoryInPages) {
  HttpResult first = client_->Get("/v1/entities/friend-1/history?path=/location&limit=1");
  ASSERT_EQ(first.status, 200) << first.body;
  json p1 = first.json();
  ASSERT_EQ(p1["intervals"].size(), 1u);
  EXPECT_EQ(p1["intervals"][0]["value"], "New York");
  EXPECT_EQ(p1["intervals"][0]["to"]["revision"], 1);  // the event that starts the next page
  ASSERT_TRUE(p1["cursor"].is_string()) << first.body;
  const std::string cursor = p1["cursor"].get<std::string>();
  HttpResult second = client_->Get("/v1/entities/friend-1/history?path=/location&limit=1&cursor=" +
                                   UrlEncode(cursor));
  ASSERT_EQ(second.status, 200) << second.body;
  json p2 = second.json();
  ASSERT_EQ(p2["intervals"].size(), 1u);
  EXPECT_EQ(p2["intervals"][0]["value"], "Paris");
  EXPECT_EQ(p2["intervals"][0]["from"]["revision"], 1);
  EXPECT_TRUE(p2["cursor"].is_null());
  // The same in valid time.
  json v1 =
      client_->Get("/v1/entities/friend-1/history?path=/location&valid_time=true&limit=1").json();
  ASSERT_TRUE(v1["cursor"].is_string());
  json v2 = client_
                ->Get(
                    "/v1/entities/friend-1/history?path=/location&valid_time=true&limit=1"
                    "&cursor=" +
                    UrlEncode(v1["cursor"].get<std::string>()))
                .json();
  ASSERT_EQ(v2["intervals"].size(), 1u);
  EXPECT_EQ(v2["intervals"][0]["value"], "Paris");
  // What is wrong is said, and nothing is answered as if it were right.
  for (const char* bad : {"limit=0", "limit=10001", "limit=x", "cursor=nope", "cursor=r9.9",
                          "cursor=r1.99", "valid_time=true&cursor=r1.2"}) {
    HttpResult r = client_->Get(std::string("/v1/entities/friend-1/history?path=/location&") + bad);
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
  }
}

TEST_F(TemporalApiTest, DiffBetweenRevisions) {
  HttpResult r = client_->Get("/v1/entities/friend-1/diff?from=0&to=1");
  ASSERT_EQ(r.status, 200) << r.body;
  json d = r.json();
  ASSERT_EQ(d["patch"].size(), 1u);
  EXPECT_EQ(d["patch"][0]["op"], "replace");
  EXPECT_EQ(d["patch"][0]["path"], "/location");
  EXPECT_EQ(d["patch"][0]["value"], "Paris");
  EXPECT_EQ(d["from"]["state"]["location"], "New York");
  EXPECT_EQ(d["to"]["state"]["location"], "Paris");
  // The events between only when asked for: absent, not an empty list that would claim that
  // nothing happened.
  EXPECT_FALSE(d.contains("events")) << r.body;
  EXPECT_FALSE(d.contains("cursor")) << r.body;
  HttpResult with = client_->Get("/v1/entities/friend-1/diff?from=0&to=1&events=true");
  ASSERT_EQ(with.status, 200) << with.body;
  json e = with.json();
  EXPECT_EQ(e["patch"], d["patch"]);
  ASSERT_EQ(e["events"].size(), 1u);
  EXPECT_EQ(e["events"][0]["type"], "$patch");
  EXPECT_TRUE(e["cursor"].is_null());
  EXPECT_EQ(
      client_->Get("/v1/entities/friend-1/diff?from=0&events=false").json().contains("events"),
      false);
  EXPECT_EQ(client_->Get("/v1/entities/friend-1/diff?to=1").status, 400);
}

TEST_F(TemporalApiTest, DiffEventsArePaged) {
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(
        client_
            ->Post("/v1/streams/friend-1",
                   R"({"events":[{"type":"$patch","data":{"visits":)" + std::to_string(i) + "}}]}")
            .status,
        201);
  }
  // Revisions 1..5 lie after revision 0: pages of 2, 2 and 1, each with the same states and patch.
  std::vector<int> revisions;
  std::string cursor;
  int pages = 0;
  json first;
  do {
    std::string target = "/v1/entities/friend-1/diff?from=0&events=true&limit=2";
    if (!cursor.empty()) target += "&cursor=" + UrlEncode(cursor);
    HttpResult r = client_->Get(target);
    ASSERT_EQ(r.status, 200) << r.body;
    json d = r.json();
    if (pages == 0) first = d;
    EXPECT_EQ(d["patch"], first["patch"]);
    EXPECT_EQ(d["to"]["revision"], 5);
    ASSERT_FALSE(d["events"].empty()) << r.body;
    for (const json& e : d["events"]) revisions.push_back(e["revision"].get<int>());
    cursor = d["cursor"].is_string() ? d["cursor"].get<std::string>() : "";
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(revisions, (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(first["patch"].size(), 2u);  // location replaced, visits added

  json all = client_->Get("/v1/entities/friend-1/diff?from=0&events=true&limit=1000").json();
  EXPECT_EQ(all["events"].size(), 5u);
  EXPECT_TRUE(all["cursor"].is_null());
  json times = client_
                   ->Get("/v1/entities/friend-1/diff?from_time=" + UrlEncode(first_time_) +
                         "&events=true&limit=4")
                   .json();
  EXPECT_EQ(times["events"].size(), 4u);
  EXPECT_TRUE(times["cursor"].is_string());

  const std::string base = "/v1/entities/friend-1/diff?from=0";
  EXPECT_EQ(client_->Get(base + "&limit=2").status, 400);  // paging needs events=true
  EXPECT_EQ(client_->Get(base + "&cursor=r2").status, 400);
  EXPECT_EQ(client_->Get(base + "&events=yes").status, 400);
  EXPECT_EQ(client_->Get(base + "&events=true&limit=0").status, 400);
  EXPECT_EQ(client_->Get(base + "&events=true&limit=1001").status, 400);
  HttpResult bad = client_->Get(base + "&events=true&cursor=garbage");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json()["error"], "invalid_argument");
}

TEST_F(TemporalApiTest, RevertAppendsAndHonoursExpectedRevision) {
  HttpResult stale =
      client_->Post("/v1/entities/friend-1/revert",
                    R"({"to_revision":0,"expected_revision":0,"actor":"ross","reason":"oops"})");
  EXPECT_EQ(stale.status, 409) << stale.body;
  EXPECT_EQ(stale.json()["actual_revision"], 1);
  HttpResult r = client_->Post(
      "/v1/entities/friend-1/revert",
      R"({"to_revision":0,"expected_revision":1,"actor":"ross","reason":"the move was a mistake"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.json()["revision"], 2);
  EXPECT_EQ(r.header("etag"), "\"2\"");
  json now = client_->Get("/v1/entities/friend-1").json();
  EXPECT_EQ(now["state"]["location"], "New York");
  EXPECT_EQ(now["metadata"]["actor"], "ross");
  EXPECT_EQ(client_->Post("/v1/entities/friend-1/revert", R"({"reason":"no target"})").status, 400);
  EXPECT_EQ(client_
                ->Post("/v1/entities/friend-1/revert", R"({"to_revision":0})",
                       {{"Content-Type", "text/plain"}})
                .status,
            415);
}

TEST_F(TemporalApiTest, ActivityNewestFirstFilteredAndPaged) {
  ASSERT_EQ(client_
                ->Post("/v1/streams/other",
                       R"({"events":[{"type":"note","metadata":{"actor":"monica"}}]})")
                .status,
            201);
  HttpResult r = client_->Get("/v1/activity?actor=monica");
  ASSERT_EQ(r.status, 200) << r.body;
  json a = r.json();
  ASSERT_EQ(a["events"].size(), 2u);
  EXPECT_EQ(a["events"][0]["stream"], "other");  // newest first
  EXPECT_EQ(a["events"][1]["type"], "$patch");
  json typed = client_->Get("/v1/activity?type=note").json();
  ASSERT_EQ(typed["events"].size(), 1u);
  json page1 = client_->Get("/v1/activity?limit=2").json();
  ASSERT_EQ(page1["events"].size(), 2u);
  ASSERT_TRUE(page1["cursor"].is_string());
  json page2 =
      client_->Get("/v1/activity?limit=2&cursor=" + UrlEncode(page1["cursor"].get<std::string>()))
          .json();
  ASSERT_EQ(page2["events"].size(), 1u);
  EXPECT_EQ(page2["events"][0]["position"], 1);
  EXPECT_EQ(client_->Get("/v1/activity?since=notatime").status, 400);
}

}  // namespace
}  // namespace timetrail::testing
