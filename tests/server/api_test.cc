// End-to-end tests of the HTTP API v1: a real `timetrail serve` process, real HTTP requests.
// Each test starts its own server on a free port over its own data directory.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "server/server_harness.h"
#include "support/temp_dir.h"

namespace timetrail::testing {
namespace {

using nlohmann::json;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(
        dir_.Sub("data"), std::vector<std::string>{"--max-body-bytes", "65536"});
    ASSERT_TRUE(server_->started());
    client_ = std::make_unique<HttpClient>(server_->port());
  }

  std::uint64_t Head() { return client_->Get("/healthz").json()["position"].get<std::uint64_t>(); }

  HttpResult Append(const std::string& stream, const std::string& body,
                    const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return client_->Post("/v1/streams/" + UrlEncode(stream), body, headers);
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(ApiTest, AppendReturnsPositionsAndEtagAndKeepsDataExact) {
  HttpResult r = Append("friend/1", R"({"expected_revision":"no_stream","events":[
      {"type":"$put","data":{"name":"Rachel","big":12345678901234567890123,"f":1.50},
       "metadata":{"actor":"joey","reason":"we met"}},
      {"type":"moved","data":{"to":"Paris"}}]})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.header("etag"), "\"1\"");
  json j = r.json();
  EXPECT_EQ(j["stream"], "friend/1");
  EXPECT_EQ(j["first_revision"], 0);
  EXPECT_EQ(j["revision"], 1);
  EXPECT_EQ(j["first_position"], 1);
  EXPECT_EQ(j["position"], 2);
  EXPECT_EQ(j["idempotent_replay"], false);
  EXPECT_TRUE(j["recorded_at"].get<std::string>().ends_with("Z"));

  HttpResult read = client_->Get("/v1/streams/friend%2F1");
  ASSERT_EQ(read.status, 200) << read.body;
  // Spliced from the stored text: every digit and the trailing zero survive.
  EXPECT_NE(read.body.find(R"("big":12345678901234567890123,"f":1.50)"), std::string::npos)
      << read.body;
  json events = read.json()["events"];
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["type"], "$put");
  EXPECT_EQ(events[0]["metadata"]["actor"], "joey");
  EXPECT_EQ(events[1]["revision"], 1);
  EXPECT_EQ(events[1]["position"], 2);
  EXPECT_EQ(events[1]["hash"].get<std::string>().size(), 64u);
  EXPECT_TRUE(read.json()["next"].is_null());
}

TEST_F(ApiTest, IdempotentReplayAnswers200WithTheOriginalResult) {
  std::string body = R"({"events":[{"id":"0191b7a4-6c1e-7d2a-9f3b-1a2b3c4d5e6f","type":"t"}]})";
  HttpResult first = Append("s", body);
  ASSERT_EQ(first.status, 201) << first.body;
  HttpResult again = Append("s", body);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json()["idempotent_replay"], true);
  EXPECT_EQ(again.json()["position"], first.json()["position"]);
  EXPECT_EQ(Head(), 1u);
  HttpResult ev = client_->Get("/v1/events/0191b7a4-6c1e-7d2a-9f3b-1a2b3c4d5e6f");
  ASSERT_EQ(ev.status, 200) << ev.body;
  EXPECT_EQ(ev.json()["stream"], "s");
  EXPECT_EQ(client_->Get("/v1/events/0191b7a4-6c1e-7d2a-9f3b-000000000000").status, 404);
  HttpResult bad = client_->Get("/v1/events/not-a-uuid");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json()["error"], "invalid_argument");
  // A partial overlap of ids is a duplicate, not a replay.
  HttpResult dup =
      Append("s", R"({"events":[{"id":"0191b7a4-6c1e-7d2a-9f3b-1a2b3c4d5e6f","type":"t"},
                                              {"type":"t"}]})");
  EXPECT_EQ(dup.status, 409) << dup.body;
  EXPECT_EQ(dup.json()["error"], "duplicate_event");
  EXPECT_EQ(Head(), 1u);
}

TEST_F(ApiTest, ConditionalWritesByBodyAndIfMatch) {
  ASSERT_EQ(Append("c", R"({"expected_revision":"no_stream","events":[{"type":"a"}]})").status,
            201);
  HttpResult conflict = Append("c", R"({"expected_revision":"no_stream","events":[{"type":"a"}]})");
  ASSERT_EQ(conflict.status, 409);
  EXPECT_EQ(conflict.json()["error"], "wrong_expected_revision");
  EXPECT_EQ(conflict.json()["stream"], "c");
  EXPECT_EQ(conflict.json()["actual_revision"], 0);
  EXPECT_FALSE(conflict.json()["message"].get<std::string>().empty());

  HttpResult exact = Append("c", R"({"expected_revision":0,"events":[{"type":"a"}]})");
  ASSERT_EQ(exact.status, 201) << exact.body;
  EXPECT_EQ(exact.header("etag"), "\"1\"");
  HttpResult stale = Append("c", R"({"events":[{"type":"a"}]})", {{"If-Match", "\"0\""}});
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(stale.json()["actual_revision"], 1);
  HttpResult fresh = Append("c", R"({"events":[{"type":"a"}]})", {{"If-Match", "\"1\""}});
  EXPECT_EQ(fresh.status, 201) << fresh.body;
  EXPECT_EQ(fresh.header("etag"), "\"2\"");
  HttpResult bad_tag = Append("c", R"({"events":[{"type":"a"}]})", {{"If-Match", "\"x\""}});
  EXPECT_EQ(bad_tag.status, 400);
  HttpResult exists =
      Append("nothing", R"({"expected_revision":"exists","events":[{"type":"a"}]})");
  EXPECT_EQ(exists.status, 409);
  EXPECT_TRUE(exists.json()["actual_revision"].is_null());
  EXPECT_EQ(Head(), 3u);
}

TEST_F(ApiTest, RejectedRequestsSayWhyAndChangeNothing) {
  ASSERT_EQ(Append("r", R"({"events":[{"type":"a"}]})").status, 201);
  struct Case {
    std::string target, body, content_type;
    int status;
    std::string code;
  };
  std::vector<Case> cases = {
      {"/v1/streams/r", R"({"events":[{"type":"a"}]})", "text/plain", 415,
       "unsupported_media_type"},
      {"/v1/streams/r", R"({"events":[{"type":"a"})", "application/json", 400, "bad_json"},
      {"/v1/streams/r", R"({"events":[{"data":{}}]})", "application/json", 400, "invalid_argument"},
      {"/v1/streams/r", R"({"events":[{"type":"$bogus"}]})", "application/json", 400,
       "invalid_argument"},
      {"/v1/streams/r", R"({"events":[{"type":"$put","data":[1]}]})", "application/json", 400,
       "invalid_argument"},
      {"/v1/streams/r", R"({"events":[{"type":"a","colour":1}]})", "application/json", 400,
       "invalid_argument"},
      {"/v1/streams/r", R"({"expected_revision":"sometimes","events":[{"type":"a"}]})",
       "application/json", 400, "invalid_argument"},
      {"/v1/streams/r", R"({"events":[{"type":"a","valid_from":"yesterday"}]})", "application/json",
       400, "invalid_argument"},
      {"/v1/streams/r", "[]", "application/json", 400, "invalid_argument"},
      {"/v1/streams/bad%01name", R"({"events":[{"type":"a"}]})", "application/json", 400,
       "invalid_argument"},
      {"/v1/streams/r", R"({"events":[{"type":"a","data":")" + std::string(70000, 'x') + R"("}]})",
       "application/json", 413, "too_large"},
      {"/v1/transactions", R"({"appends":[{"stream":"t1","events":[{"type":"a"}]},
                                          {"stream":"r","expected_revision":"no_stream","events":[{"type":"a"}]}]})",
       "application/json", 409, "wrong_expected_revision"},
      {"/v1/transactions", R"({"appends":{}})", "application/json", 400, "invalid_argument"},
      {"/v1/streams/r", std::string(50000, '['), "application/json", 400, "bad_json"},
  };
  for (const Case& c : cases) {
    HttpResult r = client_->Post(c.target, c.body, {{"Content-Type", c.content_type}});
    EXPECT_EQ(r.status, c.status) << c.target << " " << c.body.substr(0, 200) << " -> " << r.body;
    EXPECT_EQ(r.json()["error"], c.code) << r.body;
    EXPECT_FALSE(r.json()["message"].get<std::string>().empty()) << r.body;
  }
  EXPECT_EQ(Head(), 1u);
  EXPECT_EQ(client_->Get("/v1/streams/t1").status, 404);
}

TEST_F(ApiTest, UnknownPathsAndMethods) {
  HttpResult nf = client_->Get("/v2/nothing");
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(nf.json()["error"], "not_found");
  HttpResult na = client_->Request("DELETE", "/v1/streams/x", "", {});
  EXPECT_EQ(na.status, 405);
  EXPECT_EQ(na.json()["error"], "method_not_allowed");
  EXPECT_EQ(na.header("allow"), "GET, POST");
  EXPECT_EQ(client_->Post("/v1/log", "{}").status, 405);
}

TEST_F(ApiTest, TransactionsAreAtomicAcrossStreams) {
  HttpResult r = client_->Post("/v1/transactions", R"({"appends":[
      {"stream":"acct/a","expected_revision":"no_stream","events":[{"type":"debit","data":{"n":5}}]},
      {"stream":"acct/b","expected_revision":"any","events":[{"type":"credit","data":{"n":5}},{"type":"note"}]}]})");
  ASSERT_EQ(r.status, 201) << r.body;
  json j = r.json();
  EXPECT_EQ(j["first_position"], 1);
  EXPECT_EQ(j["position"], 3);
  ASSERT_EQ(j["streams"].size(), 2u);
  EXPECT_EQ(j["streams"][1]["stream"], "acct/b");
  EXPECT_EQ(j["streams"][1]["revision"], 1);
  HttpResult a = client_->Get("/v1/streams/acct%2Fa");
  HttpResult b = client_->Get("/v1/streams/acct%2Fb");
  EXPECT_EQ(a.json()["events"][0]["tx"], b.json()["events"][0]["tx"]);
}

// One transaction object of a batch: "n" events to "stream" at "expected".
std::string BatchTx(const std::string& stream, const std::string& expected, int n,
                    const std::string& id = "") {
  std::string events;
  for (int i = 0; i < n; ++i) {
    if (i > 0) events += ",";
    events += R"({"type":"t","data":{"i":)" + std::to_string(i) + "}" +
              (id.empty() ? "" : R"(,"id":")" + id + "\"") + "}";
  }
  return R"({"appends":[{"stream":")" + stream + R"(","expected_revision":)" + expected +
         R"(,"events":[)" + events + "]}]}";
}

TEST_F(ApiTest, BatchesCommitInOrderAndStopAtTheFirstFailure) {
  const std::string id = "5b2c7e0a-7d1e-4c4e-9a53-3d1f7a0b9c11";
  HttpResult ok =
      client_->Post("/v1/transactions/batch",
                    "{\"transactions\":[" + BatchTx("b/1", "\"no_stream\"", 2) + "," +
                        BatchTx("b/2", "\"any\"", 1, id) + "," + BatchTx("b/1", "1", 1) + "]}");
  ASSERT_EQ(ok.status, 200) << ok.body;
  json j = ok.json();
  ASSERT_EQ(j["results"].size(), 3u);
  EXPECT_TRUE(j["failed"].is_null());
  EXPECT_EQ(j["results"][0]["status"], 201);
  EXPECT_EQ(j["results"][0]["committed"]["first_position"], 1);
  EXPECT_EQ(j["results"][2]["committed"]["streams"][0]["revision"], 2);
  EXPECT_EQ(Head(), 4u);

  // The second transaction conflicts: the first is stored (and the already stored id is a
  // replay), nothing after the conflict is.
  HttpResult partly =
      client_->Post("/v1/transactions/batch",
                    "{\"transactions\":[" + BatchTx("b/2", "\"any\"", 1, id) + "," +
                        BatchTx("b/3", "\"no_stream\"", 1) + "," + BatchTx("b/1", "0", 1) + "," +
                        BatchTx("b/4", "\"any\"", 1) + "]}");
  ASSERT_EQ(partly.status, 409) << partly.body;
  json p = partly.json();
  EXPECT_EQ(p["failed"], 2);
  EXPECT_EQ(p["results"][0]["status"], 200);  // the replay
  EXPECT_EQ(p["results"][1]["status"], 201);
  EXPECT_EQ(p["results"][2]["status"], 409);
  EXPECT_EQ(p["results"][2]["error"]["error"], "wrong_expected_revision") << partly.body;
  EXPECT_NE(p["results"][3]["status"], 201);
  EXPECT_EQ(Head(), 5u);
  EXPECT_EQ(client_->Get("/v1/streams/b%2F4").status, 404);

  // A malformed transaction anywhere refuses the whole batch before anything is stored.
  for (const std::string& bad :
       {std::string(R"({"transactions":[]})"), std::string(R"({"transactions":{}})"),
        std::string(R"({"txs":[]})"),
        "{\"transactions\":[" + BatchTx("b/5", "\"any\"", 1) + R"(,{"appends":[{"stream":""}]}]})",
        "{\"transactions\":[" + BatchTx("b/5", "\"any\"", 1) + R"(,{"appends":[],"x":1}]})",
        "{\"transactions\":[" + BatchTx("b/5", "\"any\"", 1) + R"(,[1]]})",
        "{\"transactions\":[" + BatchTx("$audit", "\"any\"", 1) + "]}"}) {
    HttpResult r = client_->Post("/v1/transactions/batch", bad);
    EXPECT_GE(r.status, 400) << bad << " -> " << r.body;
    EXPECT_LT(r.status, 500) << bad << " -> " << r.body;
    EXPECT_FALSE(r.json()["message"].get<std::string>().empty()) << r.body;
  }
  std::string too_many = "{\"transactions\":[";
  for (int i = 0; i < 1001; ++i) too_many += (i ? "," : "") + std::string(R"({"appends":[]})");
  HttpResult many = client_->Post("/v1/transactions/batch", too_many + "]}");
  EXPECT_EQ(many.status, 400) << many.body;
  EXPECT_NE(many.body.find("1 to 1000"), std::string::npos) << many.body;
  EXPECT_EQ(Head(), 5u);
  EXPECT_EQ(client_->Get("/v1/streams/b%2F5").status, 404);
}

TEST_F(ApiTest, ReadStreamPagesBothWaysAndInfo) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(
        Append("p", R"({"events":[{"type":"n","data":{"i":)" + std::to_string(i) + "}}]}").status,
        201);
  }
  HttpResult page1 = client_->Get("/v1/streams/p?limit=2");
  ASSERT_EQ(page1.status, 200);
  EXPECT_EQ(page1.json()["events"].size(), 2u);
  EXPECT_EQ(page1.json()["next"], 2);
  HttpResult page3 = client_->Get("/v1/streams/p?limit=2&from=4");
  EXPECT_EQ(page3.json()["events"].size(), 1u);
  EXPECT_TRUE(page3.json()["next"].is_null());
  HttpResult back = client_->Get("/v1/streams/p?direction=backward&limit=2");
  ASSERT_EQ(back.status, 200);
  EXPECT_EQ(back.json()["events"][0]["revision"], 4);
  EXPECT_EQ(back.json()["events"][1]["revision"], 3);
  EXPECT_EQ(back.json()["next"], 2);
  EXPECT_EQ(client_->Get("/v1/streams/p?direction=sideways").status, 400);
  EXPECT_EQ(client_->Get("/v1/streams/p?limit=0").status, 400);
  EXPECT_EQ(client_->Get("/v1/streams/p?limit=abc").status, 400);
  HttpResult missing = client_->Get("/v1/streams/none");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.json()["error"], "not_found");

  json info = client_->Get("/v1/streams/p/info").json();
  EXPECT_EQ(info["exists"], true);
  EXPECT_EQ(info["revision"], 4);
  EXPECT_EQ(info["position"], 5);
  EXPECT_EQ(info["deleted"], false);
  json none = client_->Get("/v1/streams/none/info").json();
  EXPECT_EQ(none["exists"], false);
  EXPECT_TRUE(none["revision"].is_null());
  ASSERT_EQ(Append("d", R"({"events":[{"type":"$put","data":{}},{"type":"$delete"}]})").status,
            201);
  EXPECT_EQ(client_->Get("/v1/streams/d/info").json()["deleted"], true);
}

TEST_F(ApiTest, LogFiltersAndPages) {
  ASSERT_EQ(Append("orders/1", R"({"events":[{"type":"placed"},{"type":"paid"}]})").status, 201);
  ASSERT_EQ(Append("users/1", R"({"events":[{"type":"placed"}]})").status, 201);
  ASSERT_EQ(Append("orders/2", R"({"events":[{"type":"placed"}]})").status, 201);
  json all = client_->Get("/v1/log?from=1&limit=3").json();
  EXPECT_EQ(all["events"].size(), 3u);
  EXPECT_EQ(all["next"], 4);
  EXPECT_EQ(all["head"], 4);
  json orders = client_->Get("/v1/log?stream_prefix=orders%2F").json();
  ASSERT_EQ(orders["events"].size(), 3u);
  EXPECT_EQ(orders["events"][2]["stream"], "orders/2");
  json placed = client_->Get("/v1/log?stream_prefix=orders/&types=placed").json();
  ASSERT_EQ(placed["events"].size(), 2u);
  EXPECT_EQ(placed["events"][1]["position"], 4);
  EXPECT_EQ(client_->Get("/v1/log?from=x").status, 400);
}

TEST_F(ApiTest, MinPositionWaitsOrTimesOut) {
  HttpResult timeout = client_->Get("/v1/log?min_position=1&timeout_ms=50");
  EXPECT_EQ(timeout.status, 504);
  EXPECT_EQ(timeout.json()["error"], "timeout");
  EXPECT_EQ(client_->Get("/v1/log?min_position=1&timeout_ms=999999999").status, 400);
  // A read that waits is answered once another client's write makes the position readable.
  HttpResult waited;
  std::thread reader([&] {
    HttpClient other(server_->port());
    waited = other.Get("/v1/streams/w?min_position=1&timeout_ms=60000");
  });
  // Writes until the reader has its answer; normally the first one suffices.
  ASSERT_EQ(Append("w", R"({"events":[{"type":"a"}]})").status, 201);
  reader.join();
  ASSERT_EQ(waited.status, 200) << waited.body;
  EXPECT_EQ(waited.json()["events"][0]["position"], 1);
}

TEST_F(ApiTest, ConsumersAckAndRead) {
  EXPECT_EQ(client_->Get("/v1/consumers/billing").status, 404);
  ASSERT_EQ(Append("x", R"({"events":[{"type":"a"},{"type":"b"}]})").status, 201);
  HttpResult ack = client_->Post("/v1/consumers/billing/ack", R"({"position":2})");
  ASSERT_EQ(ack.status, 200) << ack.body;
  EXPECT_EQ(ack.json()["name"], "billing");
  EXPECT_EQ(ack.json()["position"], 2);
  EXPECT_EQ(client_->Get("/v1/consumers/billing").json()["position"], 2);
  EXPECT_EQ(client_->Post("/v1/consumers/billing/ack", R"({"position":9})").status, 400);
  EXPECT_EQ(client_->Post("/v1/consumers/billing/ack", R"({"pos":1})").status, 400);
  EXPECT_EQ(client_->Post("/v1/consumers/bad%20name/ack", R"({"position":1})").status, 400);
  EXPECT_EQ(client_->Get("/v1/consumers/billing").json()["position"], 2);
}

TEST_F(ApiTest, ConsumerGroupsRefuseBadInputAndChangeNothing) {
  auto put = [&](const std::string& name, const std::string& body) {
    return client_->Request("PUT", "/v1/groups/" + name, body,
                            {{"Content-Type", "application/json"}});
  };
  ASSERT_EQ(Append("jobs/1", R"({"events":[{"type":"a"},{"type":"b"}]})").status, 201);
  HttpResult created = put("g", R"({"stream_prefix":"jobs/","max_retries":2})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.json()["parked_stream"], "$parked/g");
  // Bad settings and bodies: 400, and the group is as it was.
  const std::vector<std::string> bad_puts = {R"({"max_retries":0})",
                                             R"({"lease_ms":"1s"})",
                                             R"({"types":"a"})",
                                             R"({"colour":1})",
                                             R"({"stream_prefix":"other/"})",
                                             R"({"start_position":-1})",
                                             "{not json",
                                             "[]"};
  for (const std::string& body : bad_puts) {
    HttpResult r = put("g", body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
    EXPECT_TRUE(r.json()["error"] == "invalid_argument" || r.json()["error"] == "bad_json")
        << r.body;
  }
  EXPECT_EQ(put("bad%20name", "{}").status, 400);
  EXPECT_EQ(client_->Request("PUT", "/v1/groups/h", "{}", {{"Content-Type", "text/plain"}}).status,
            415);
  EXPECT_EQ(client_->Get("/v1/groups/h").status, 404);
  EXPECT_EQ(client_->Get("/v1/groups/g").json()["max_retries"], 2);

  const std::string read = "/v1/groups/g/read";
  const std::vector<std::string> bad_reads = {R"({})",
                                              R"({"member":7})",
                                              R"({"member":"a b"})",
                                              R"({"member":"w","max":0})",
                                              R"({"member":"w","wait_ms":60001})",
                                              R"({"member":"w","extra":1})",
                                              "nope"};
  for (const std::string& body : bad_reads) {
    HttpResult r = client_->Post(read, body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
  }
  EXPECT_EQ(client_->Post("/v1/groups/none/read", R"({"member":"w"})").status, 404);
  HttpResult got = client_->Post(read, R"({"member":"w","max":1})");
  ASSERT_EQ(got.status, 200) << got.body;
  ASSERT_EQ(got.json()["events"].size(), 1u);
  EXPECT_EQ(got.json()["events"][0]["position"], 1);
  EXPECT_EQ(got.json()["events"][0]["delivery_count"], 1);
  EXPECT_EQ(got.json()["events"][0]["event"]["stream"], "jobs/1");

  // Position 2 was never delivered: refused, and position 1 stays held.
  HttpResult not_held = client_->Post("/v1/groups/g/ack", R"({"positions":[1,2]})");
  EXPECT_EQ(not_held.status, 409) << not_held.body;
  EXPECT_EQ(not_held.json()["error"], "not_held");
  const std::vector<std::string> bad_acks = {R"({})", R"({"positions":[]})",
                                             R"({"positions":["1"]})",
                                             R"({"positions":[1],"action":"retry"})"};
  for (const std::string& body : bad_acks) {
    EXPECT_EQ(client_->Post("/v1/groups/g/ack", body).status, 400) << body;
  }
  const std::vector<std::string> bad_nacks = {
      R"({"positions":[1],"action":"drop"})", R"({"positions":[1],"reason":7})",
      R"({"positions":[1],"member":7})", R"({"positions":[1],"member":""})",
      R"({"positions":[1],"reason":")" + std::string(1001, 'x') + R"("})"};
  for (const std::string& body : bad_nacks) {
    EXPECT_EQ(client_->Post("/v1/groups/g/nack", body).status, 400) << body.substr(0, 60);
  }
  // A nack naming a member that does not hold the event is refused, and changes nothing.
  HttpResult other = client_->Post("/v1/groups/g/nack", R"({"positions":[1],"member":"v"})");
  EXPECT_EQ(other.status, 409) << other.body;
  EXPECT_EQ(other.json()["error"], "not_held");
  json g = client_->Get("/v1/groups/g").json();
  EXPECT_EQ(g["in_flight"], 1);
  const std::string metrics = client_->Get("/metrics").body;
  EXPECT_NE(metrics.find("timetrail_group_in_flight{group=\"g\"} 1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("timetrail_group_members{group=\"g\"} 1\n"), std::string::npos);
  EXPECT_EQ(g["acked_through"], 0);
  EXPECT_EQ(g["members"][0]["name"], "w");
  HttpResult acked = client_->Post("/v1/groups/g/ack", R"({"positions":[1]})");
  ASSERT_EQ(acked.status, 200) << acked.body;
  EXPECT_EQ(client_->Post("/v1/groups/g/ack", R"({"positions":[1]})").status, 409);
  EXPECT_EQ(client_->Get("/v1/groups/g").json()["acked_through"], 1);
  EXPECT_EQ(client_->Get("/v1/groups").json()["groups"].size(), 1u);
  EXPECT_EQ(client_->Request("DELETE", "/v1/groups/g", "", {}).status, 200);
  EXPECT_EQ(client_->Get("/v1/groups/g").status, 404);
}

TEST_F(ApiTest, IntegrityHeadVerifyHealthAndMetrics) {
  json empty = client_->Get("/v1/integrity").json();
  EXPECT_EQ(empty["position"], 0);
  ASSERT_EQ(Append("i", R"({"events":[{"type":"a"},{"type":"b"}]})").status, 201);
  ASSERT_EQ(Append("i", R"({"expected_revision":0,"events":[{"type":"a"}]})").status, 409);
  json head = client_->Get("/v1/integrity").json();
  EXPECT_EQ(head["position"], 2);
  EXPECT_EQ(head["hash"].get<std::string>().size(), 64u);
  EXPECT_NE(head["hash"], empty["hash"]);
  HttpResult verify = client_->Post("/v1/integrity/verify", "");
  ASSERT_EQ(verify.status, 200) << verify.body;
  EXPECT_EQ(verify.json()["ok"], true);
  EXPECT_EQ(verify.json()["events_checked"], 2);
  EXPECT_EQ(verify.json()["head"]["hash"], head["hash"]);
  EXPECT_EQ(client_->Get("/healthz").json()["status"], "ok");
  HttpResult metrics = client_->Get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_TRUE(metrics.header("content-type").starts_with("text/plain"));
  // The append, and the verification recorded in $audit.
  EXPECT_NE(metrics.body.find("timetrail_appends_total 2\n"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("timetrail_events_total 3\n"), std::string::npos);
  json audit = client_->Get("/v1/streams/%24audit").json();
  ASSERT_EQ(audit["events"].size(), 1u);
  EXPECT_EQ(audit["events"][0]["type"], "verify");
  EXPECT_EQ(audit["events"][0]["data"]["events_checked"], 2);
  EXPECT_NE(metrics.body.find("timetrail_conflicts_total 1\n"), std::string::npos);
  EXPECT_NE(metrics.body.find("timetrail_http_request_duration_seconds_count"), std::string::npos);
  EXPECT_NE(metrics.body.find("timetrail_storage_bytes"), std::string::npos);
  EXPECT_NE(metrics.body.find("timetrail_subscribers 0\n"), std::string::npos);
}

TEST_F(ApiTest, OversizedHeadersAreRejected) {
  HttpResult r = client_->Get("/healthz", {{"X-Big", std::string(20000, 'a')}});
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(r.json()["error"], "too_large");
  HttpClient fresh(server_->port());
  EXPECT_EQ(fresh.Get("/healthz").status, 200);
}

TEST(ServeCommandTest, SlowRequestGets408) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"), {"--request-timeout-ms", "300"});
  ASSERT_TRUE(server.started());
  // Half a request, then silence: the server answers 408 once the read time is up.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string partial =
      "POST /v1/streams/s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
  ASSERT_EQ(send(fd, partial.data(), partial.size(), 0), static_cast<ssize_t>(partial.size()));
  std::string answer;
  char buf[1024];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) answer.append(buf, static_cast<std::size_t>(n));
  close(fd);
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 408")) << answer;
  EXPECT_NE(answer.find("request_timeout"), std::string::npos) << answer;
  HttpClient client(server.port());
  EXPECT_EQ(client.Get("/healthz").json()["position"], 0);
}

TEST(ServeCommandTest, ConnectionLimitAnswers503) {
  TempDir dir;
  ServerProcess server(dir.Sub("data"), {"--max-connections", "2"});
  ASSERT_TRUE(server.started());
  HttpClient a(server.port()), b(server.port()), c(server.port());
  ASSERT_EQ(a.Get("/healthz").status, 200);
  ASSERT_EQ(b.Get("/healthz").status, 200);
  HttpResult third = c.Get("/healthz");
  EXPECT_EQ(third.status, 503);
  EXPECT_EQ(third.json()["error"], "unavailable");
}

TEST(ServeCommandTest, ConfigFileAndEnvironmentConfigureTheServer) {
  TempDir dir;
  std::string config = dir.Sub("timetrail.conf");
  {
    std::ofstream out(config);
    out << "# test config\ndata = " << dir.Sub("from-config") << "\nlisten = 127.0.0.1:0\n"
        << "max-body-bytes = 100\n";
  }
  {
    ServerProcess server("", {"--config", config});
    ASSERT_TRUE(server.started());
    HttpClient client(server.port());
    EXPECT_EQ(client
                  .Post("/v1/streams/s",
                        R"({"events":[{"type":"a","data":")" + std::string(200, 'x') + "\"}]}")
                  .status,
              413);
    EXPECT_EQ(server.Stop(SIGTERM), 0);
  }
  EXPECT_TRUE(std::filesystem::exists(dir.Sub("from-config")));
  {
    // The environment wins over the file.
    ServerProcess server("", {"--config", config}, {"TIMETRAIL_DATA=" + dir.Sub("from-env")});
    ASSERT_TRUE(server.started());
    EXPECT_EQ(server.Stop(SIGTERM), 0);
  }
  EXPECT_TRUE(std::filesystem::exists(dir.Sub("from-env")));
  {
    std::ofstream out(config, std::ios::app);
    out << "colour = blue\n";
  }
  auto [code, output] = RunServeBinary({"serve", "--config", config});
  EXPECT_NE(code, 0);
  EXPECT_NE(output.find("unknown key 'colour'"), std::string::npos) << output;
}

TEST(ServeCommandTest, HelpAndBadListenAddress) {
  auto [code, output] = RunServeBinary({"serve", "--help"});
  EXPECT_EQ(code, 0);
  EXPECT_NE(output.find("--listen"), std::string::npos);
  EXPECT_NE(output.find("TIMETRAIL_DATA"), std::string::npos);
  TempDir dir;
  auto [bad, msg] = RunServeBinary({"serve", "--data", dir.Sub("d"), "--listen", "nowhere"});
  EXPECT_EQ(bad, 2);
  EXPECT_NE(msg.find("HOST:PORT"), std::string::npos) << msg;
}

}  // namespace
}  // namespace timetrail::testing
