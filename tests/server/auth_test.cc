// Authentication and authorization of `timetrail serve`, against a real server process: tokens
// made with the real CLI are stored only as hashes in the audit stream, each scope and prefix
// allows and refuses exactly what it should, revocation and expiry take effect at once and
// survive a restart, and every administrative action is an event of "$audit".
#include <openssl/evp.h>

#include <signal.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "server/server_harness.h"
#include "support/temp_dir.h"

namespace timetrail::testing {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Runs `timetrail token create --data DIR ARGS...` and returns the token it printed.
std::string CreateToken(const std::string& data, const std::vector<std::string>& args) {
  std::vector<std::string> all = {"token", "create", "--data", data};
  all.insert(all.end(), args.begin(), args.end());
  auto [code, out] = RunServeBinary(all);
  EXPECT_EQ(code, 0) << out;
  std::size_t at = out.find("tt_");
  if (at == std::string::npos) return "";
  return out.substr(at, out.find('\n', at) - at);
}

Headers Bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[32];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

// Every byte of every file under "dir", to look for a secret in it.
std::string AllBytes(const std::string& dir) {
  std::string out;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    out.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return out;
}

const std::string kEvent = R"({"events":[{"type":"$put","data":{"n":1}}]})";

TEST(AuthTest, TokensAreStoredOnlyAsHashesInTheAuditStream) {
  TempDir dir;
  std::string data = dir.Sub("data");
  std::string token = CreateToken(data, {"--scope", "read", "--name", "dashboard"});
  ASSERT_EQ(token.rfind("tt_", 0), 0u) << token;
  EXPECT_GE(token.size(), 50u);
  // tt_<12 hex digits>_<secret>; the secret's own alphabet includes '_'.
  std::string secret = token.substr(std::string("tt_").size() + 12 + 1);
  ASSERT_EQ(secret.size(), 43u) << token;
  EXPECT_EQ(AllBytes(data).find(secret), std::string::npos)
      << "the token's secret must never be written";

  auto [code, out] = RunServeBinary({"read", "$audit", "--data", data, "--json"});
  ASSERT_EQ(code, 0) << out;
  nlohmann::json page = nlohmann::json::parse(out);
  ASSERT_EQ(page["events"].size(), 1u);
  const nlohmann::json& e = page["events"][0];
  EXPECT_EQ(e["type"], "token-created");
  EXPECT_EQ(e["data"]["name"], "dashboard");
  EXPECT_EQ(e["data"]["scopes"], nlohmann::json::array({"read"}));
  EXPECT_EQ(e["data"]["sha256"], Sha256Hex(token));
  EXPECT_EQ(e["metadata"]["actor"].get<std::string>().rfind("local:", 0), 0u) << e.dump();

  auto [list_code, list] = RunServeBinary({"token", "list", "--data", data});
  EXPECT_EQ(list_code, 0) << list;
  EXPECT_NE(list.find("dashboard"), std::string::npos) << list;
  EXPECT_NE(list.find("active"), std::string::npos) << list;
  EXPECT_EQ(list.find(token), std::string::npos) << "list must not show secrets";

  // Bad requests change nothing.
  auto [bad_scope, o1] = RunServeBinary({"token", "create", "--data", data, "--scope", "root"});
  EXPECT_EQ(bad_scope, 2) << o1;
  auto [bad_prefix, o2] =
      RunServeBinary({"token", "create", "--data", data, "--scope", "read", "--prefix", "$x"});
  EXPECT_EQ(bad_prefix, 2) << o2;
  EXPECT_NE(o2.find("belong to the server"), std::string::npos) << o2;
  auto [past, o3] = RunServeBinary(
      {"token", "create", "--data", data, "--scope", "read", "--expires", "2001-01-01T00:00:00Z"});
  EXPECT_EQ(past, 2) << o3;
  auto [after, o4] = RunServeBinary({"read", "$audit", "--data", data, "--json"});
  EXPECT_EQ(nlohmann::json::parse(o4)["events"].size(), 1u) << o4;

  // An export carries the audit stream; an import leaves it out: tokens belong to their store.
  ASSERT_EQ(RunServeBinary({"append", "s", "-t", "e", "--data", data}).first, 0);
  std::string file = dir.Sub("all.ndjson");
  auto [exported, o5] = RunServeBinary({"export", "--data", data, "-o", file});
  ASSERT_EQ(exported, 0) << o5;
  auto [imported, o6] = RunServeBinary({"import", file, "--data", dir.Sub("copy")});
  ASSERT_EQ(imported, 0) << o6;
  EXPECT_NE(o6.find("1 written"), std::string::npos) << o6;
  EXPECT_NE(o6.find("skipped 1 events of system streams"), std::string::npos) << o6;
  EXPECT_EQ(RunServeBinary({"read", "$audit", "--data", dir.Sub("copy")}).first, 3)
      << "the copy has no audit stream";
}

class ScopedServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.Sub("data");
    admin_ = CreateToken(data_, {"--scope", "admin", "--name", "ops"});
    reader_ = CreateToken(data_, {"--scope", "read", "--name", "dashboard"});
    writer_ = CreateToken(data_, {"--scope", "append", "--name", "ingest"});
    orders_ = CreateToken(data_, {"--scope", "read", "--scope", "append", "--prefix", "orders/",
                                  "--name", "order-service"});
    scoped_admin_ = CreateToken(data_, {"--scope", "admin", "--prefix", "orders/"});
    server_ = std::make_unique<ServerProcess>(data_, std::vector<std::string>{"--auth", "on"});
    ASSERT_TRUE(server_->started());
    client_ = std::make_unique<HttpClient>(server_->port());
  }

  HttpResult Get(const std::string& target, const std::string& token) {
    return client_->Get(target, token.empty() ? Headers{} : Bearer(token));
  }
  HttpResult Post(const std::string& target, const std::string& body, const std::string& token) {
    return client_->Post(target, body, token.empty() ? Headers{} : Bearer(token));
  }

  TempDir dir_;
  std::string data_, admin_, reader_, writer_, orders_, scoped_admin_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(ScopedServerTest, RequestsWithoutAValidTokenAreRefused) {
  HttpResult none = Get("/v1/log", "");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.json()["error"], "unauthenticated");
  EXPECT_EQ(none.header("www-authenticate"), "Bearer realm=\"timetrail\"");
  HttpResult forged = Get("/v1/log", reader_.substr(0, reader_.size() - 2) + "xx");
  EXPECT_EQ(forged.status, 401);
  EXPECT_NE(forged.header("www-authenticate").find("invalid_token"), std::string::npos);
  EXPECT_NE(forged.body.find("unknown token"), std::string::npos) << forged.body;
  EXPECT_NE(forged.body.find("timetrail token create"), std::string::npos) << forged.body;
  EXPECT_EQ(client_->Get("/v1/log", {{"Authorization", "Basic dXNlcjpwYXNz"}}).status, 401);
  EXPECT_EQ(Post("/v1/streams/a", kEvent, "").status, 401);
  EXPECT_EQ(Get("/v1/streams/a/info", admin_).json()["exists"], false)
      << "a refused append must write nothing";
  EXPECT_EQ(Get("/healthz", "").status, 200) << "health checks stay open";
}

TEST_F(ScopedServerTest, WhoamiTellsEachTokenWhatItMayDo) {
  HttpResult orders = Get("/v1/whoami", orders_);
  ASSERT_EQ(orders.status, 200) << orders.body;
  nlohmann::json o = orders.json();
  EXPECT_EQ(o["actor"], "order-service");
  EXPECT_EQ(o["scopes"], nlohmann::json::array({"read", "append"}));
  EXPECT_EQ(o["prefixes"], nlohmann::json::array({"orders/"}));
  EXPECT_TRUE(o["expires_at"].is_null());
  EXPECT_TRUE(o["token_id"].is_string());
  // Any valid token may ask, whatever its scopes; without one the answer is 401.
  EXPECT_EQ(Get("/v1/whoami", writer_).json()["scopes"], nlohmann::json::array({"append"}));
  EXPECT_EQ(Get("/v1/whoami", admin_).json()["scopes"], nlohmann::json::array({"admin"}));
  EXPECT_EQ(Get("/v1/whoami", "").status, 401);
}

TEST_F(ScopedServerTest, EachScopeAllowsAndRefusesExactlyWhatItShould) {
  ASSERT_EQ(Post("/v1/streams/users%2F1", kEvent, admin_).status, 201);
  // {token, method, target, body, expected status}
  const std::vector<std::tuple<std::string, std::string, std::string, std::string, int>> cases = {
      {reader_, "GET", "/v1/streams/users%2F1", "", 200},
      {reader_, "GET", "/v1/entities/users%2F1", "", 200},
      {reader_, "GET", "/v1/log", "", 200},
      {reader_, "GET", "/v1/integrity", "", 200},
      {reader_, "GET", "/metrics", "", 200},
      {reader_, "POST", "/v1/streams/users%2F2", kEvent, 403},
      {reader_, "POST", "/v1/integrity/verify", "", 403},
      {reader_, "POST", "/v1/entities/users%2F1/revert", R"({"to_revision":0})", 403},
      {reader_, "GET", "/v1/streams/%24audit", "", 403},
      {reader_, "GET", "/v1/tokens", "", 403},
      {writer_, "POST", "/v1/streams/users%2F3", kEvent, 201},
      {writer_, "POST", "/v1/transactions",
       R"({"appends":[{"stream":"users/4","events":[{"type":"e"}]}]})", 201},
      {writer_, "GET", "/v1/streams/users%2F1", "", 403},
      {writer_, "GET", "/v1/log", "", 403},
      {orders_, "POST", "/v1/streams/orders%2F1", kEvent, 201},
      {orders_, "GET", "/v1/streams/orders%2F1", "", 200},
      {orders_, "GET", "/v1/log?stream_prefix=orders/", "", 200},
      {orders_, "GET", "/v1/activity?stream_prefix=orders/", "", 200},
      {orders_, "POST", "/v1/streams/users%2F5", kEvent, 403},
      {orders_, "GET", "/v1/streams/users%2F1", "", 403},
      {orders_, "GET", "/v1/entities/users%2F1/history", "", 403},
      {orders_, "GET", "/v1/log", "", 403},
      {orders_, "GET", "/v1/log?stream_prefix=o", "", 403},
      {orders_, "GET", "/v1/activity", "", 403},
      {scoped_admin_, "POST", "/v1/entities/orders%2F1/revert", R"({"to_revision":0})", 201},
      {scoped_admin_, "POST", "/v1/entities/users%2F1/revert", R"({"to_revision":0})", 403},
      {scoped_admin_, "GET", "/v1/tokens", "", 403},
      {scoped_admin_, "POST", "/v1/backup", R"({"to":"/nonexistent/b"})", 403},
      {reader_, "POST", "/v1/backup", R"({"to":"/nonexistent/b"})", 403},
      {scoped_admin_, "GET", "/v1/streams/%24audit", "", 403},
      {admin_, "GET", "/v1/streams/%24audit", "", 200},
      {admin_, "GET", "/v1/tokens", "", 200},
      {admin_, "POST", "/v1/streams/%24audit", kEvent, 400},
      {admin_, "POST", "/v1/transactions",
       R"({"appends":[{"stream":"$audit","events":[{"type":"e"}]}]})", 400},
  };
  for (const auto& [token, method, target, body, want] : cases) {
    HttpResult r = client_->Request(
        method, target, body,
        {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
    EXPECT_EQ(r.status, want) << method << " " << target << " -> " << r.body;
    if (want == 403) {
      EXPECT_EQ(r.json()["error"], "forbidden") << r.body;
    }
  }

  // A transaction reaching outside the token's prefixes is refused whole.
  HttpResult mixed = Post("/v1/transactions",
                          R"({"appends":[{"stream":"orders/9","events":[{"type":"e"}]},)"
                          R"({"stream":"users/9","events":[{"type":"e"}]}]})",
                          orders_);
  EXPECT_EQ(mixed.status, 403) << mixed.body;
  EXPECT_NE(mixed.body.find("users/9"), std::string::npos) << mixed.body;
  EXPECT_EQ(Get("/v1/streams/orders%2F9/info", admin_).json()["exists"], false);

  // Prefixed reads see only their streams; non-admin readers never see the audit stream.
  for (const auto& [token, target] :
       std::vector<std::pair<std::string, std::string>>{{orders_, "/v1/log?stream_prefix=orders/"},
                                                        {reader_, "/v1/log"},
                                                        {reader_, "/v1/activity"}}) {
    HttpResult r = Get(target, token);
    ASSERT_EQ(r.status, 200) << r.body;
    nlohmann::json events = r.json()["events"];
    ASSERT_FALSE(events.empty()) << target;
    for (const auto& e : events) {
      std::string stream = e["stream"];
      EXPECT_NE(stream[0], '$') << target;
      if (token == orders_) {
        EXPECT_EQ(stream.rfind("orders/", 0), 0u) << stream;
      }
    }
  }
  bool admin_sees_audit = false;
  HttpResult admin_log = Get("/v1/log", admin_);
  nlohmann::json admin_events = admin_log.json()["events"];
  for (const auto& e : admin_events) {
    admin_sees_audit = admin_sees_audit || e["stream"] == "$audit";
  }
  EXPECT_TRUE(admin_sees_audit) << admin_log.status << " " << admin_log.body;

  // An event by id is refused outside the token's prefixes.
  std::string users_event = Get("/v1/streams/users%2F1", admin_).json()["events"][0]["id"];
  EXPECT_EQ(Get("/v1/events/" + users_event, orders_).status, 403);
  EXPECT_EQ(Get("/v1/events/" + users_event, reader_).status, 200);

  // Subscriptions follow the same rules.
  SseClient refused(server_->port(), "/v1/subscribe", Bearer(orders_));
  EXPECT_EQ(refused.status(), 403);
  SseClient allowed(server_->port(), "/v1/subscribe?stream_prefix=orders/", Bearer(orders_));
  ASSERT_EQ(allowed.status(), 200);
  std::optional<SseEvent> first = allowed.Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(nlohmann::json::parse(first->data)["stream"].get<std::string>().rfind("orders/", 0),
            0u);
}

TEST_F(ScopedServerTest, ConsumerGroupsNeedReadToConsumeAndAdminToCreate) {
  ASSERT_EQ(Post("/v1/streams/orders%2F1", kEvent, admin_).status, 201);
  auto call = [&](const std::string& token, const std::string& method, const std::string& target,
                  const std::string& body) {
    return client_->Request(
        method, target, body,
        {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
  };
  const std::string member = R"({"member":"w"})";
  // {token, method, target, body, expected status}
  const std::vector<std::tuple<std::string, std::string, std::string, std::string, int>> cases = {
      {reader_, "PUT", "/v1/groups/all", "{}", 403},
      {writer_, "PUT", "/v1/groups/all", "{}", 403},
      {admin_, "PUT", "/v1/groups/all", "{}", 201},
      {scoped_admin_, "PUT", "/v1/groups/users", R"({"stream_prefix":"users/"})", 403},
      {scoped_admin_, "PUT", "/v1/groups/orders", R"({"stream_prefix":"orders/"})", 201},
      {reader_, "POST", "/v1/groups/all/read", member, 200},
      {writer_, "POST", "/v1/groups/all/read", member, 403},
      {orders_, "POST", "/v1/groups/all/read", member, 403},
      {orders_, "GET", "/v1/groups/all", "", 403},
      {orders_, "POST", "/v1/groups/all/ack", R"({"positions":[1]})", 403},
      {reader_, "POST", "/v1/groups/all/replay-parked", "", 403},
      {scoped_admin_, "POST", "/v1/groups/all/replay-parked", "", 403},
      {admin_, "POST", "/v1/groups/all/replay-parked", "", 200},
      {orders_, "DELETE", "/v1/groups/orders", "", 403},
      {scoped_admin_, "DELETE", "/v1/groups/all", "", 403},
      {reader_, "DELETE", "/v1/groups/all", "", 403},
      {admin_, "DELETE", "/v1/groups/all", "", 200},
  };
  for (const auto& [token, method, target, body, want] : cases) {
    HttpResult r = call(token, method, target, body);
    EXPECT_EQ(r.status, want) << method << " " << target << " -> " << r.body;
  }
  HttpResult got = call(orders_, "POST", "/v1/groups/orders/read", member);
  ASSERT_EQ(got.status, 200) << got.body;
  ASSERT_EQ(got.json()["events"].size(), 1u) << got.body;
  EXPECT_EQ(got.json()["events"][0]["event"]["stream"], "orders/1");
  std::string position = got.json()["events"][0]["position"].dump();
  EXPECT_EQ(
      call(orders_, "POST", "/v1/groups/orders/ack", R"({"positions":[)" + position + "]}").status,
      200);
  // A token limited to prefixes lists only the groups it may use.
  nlohmann::json listed = Get("/v1/groups", orders_).json()["groups"];
  ASSERT_EQ(listed.size(), 1u) << listed;
  EXPECT_EQ(listed[0]["name"], "orders");
  // Creating and deleting are administrative actions, on record.
  std::string audit = Get("/v1/streams/%24audit", admin_).body;
  EXPECT_NE(audit.find("group-create"), std::string::npos) << audit;
  EXPECT_NE(audit.find("group-delete"), std::string::npos) << audit;
}

TEST_F(ScopedServerTest, AdministrativeActionsAreRecordedInTheAuditStream) {
  ASSERT_EQ(Post("/v1/streams/orders%2F1", kEvent, orders_).status, 201);
  ASSERT_EQ(
      Post("/v1/streams/orders%2F1", R"({"events":[{"type":"$put","data":{"n":2}}]})", orders_)
          .status,
      201);
  HttpResult verify = Post("/v1/integrity/verify", "", admin_);
  ASSERT_EQ(verify.status, 200) << verify.body;
  HttpResult revert =
      Post("/v1/entities/orders%2F1/revert", R"({"to_revision":0,"reason":"bad import"})", admin_);
  ASSERT_EQ(revert.status, 201) << revert.body;
  HttpResult created = Post("/v1/tokens", R"({"name":"temp","scopes":["read"]})", admin_);
  ASSERT_EQ(created.status, 201) << created.body;
  std::string temp = created.json()["token"];
  std::string temp_id = created.json()["id"];
  EXPECT_EQ(Get("/v1/log", temp).status, 200) << "a token made through the API works at once";
  HttpResult revoked = client_->Request("DELETE", "/v1/tokens/" + temp_id, "", Bearer(admin_));
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_FALSE(revoked.json()["revoked_at"].is_null());
  HttpResult after = Get("/v1/log", temp);
  EXPECT_EQ(after.status, 401);
  EXPECT_NE(after.body.find("revoked"), std::string::npos) << after.body;
  EXPECT_EQ(client_->Request("DELETE", "/v1/tokens/000000000000", "", Bearer(admin_)).status, 404);

  HttpResult audit = Get("/v1/streams/%24audit?limit=1000", admin_);
  ASSERT_EQ(audit.status, 200) << audit.body;
  std::vector<std::string> types;
  const nlohmann::json events = audit.json()["events"];
  for (const auto& e : events) {
    types.push_back(e["type"]);
    if (e["type"] == "token-created" && e["data"]["name"] != "temp") continue;  // made by CLI
    EXPECT_EQ(e["metadata"]["actor"], "ops") << e.dump();
    EXPECT_FALSE(e["metadata"]["token_id"].get<std::string>().empty());
  }
  // Five tokens by the CLI, then verify, revert, create, revoke, in order.
  std::vector<std::string> want(5, "token-created");
  want.insert(want.end(), {"verify", "revert", "token-created", "token-revoked"});
  EXPECT_EQ(types, want);
  ASSERT_EQ(events.size(), want.size());
  EXPECT_EQ(events[5]["data"]["ok"], true);
  EXPECT_EQ(events[6]["data"]["stream"], "orders/1");
  EXPECT_EQ(events[6]["data"]["request"]["reason"], "bad import");
  EXPECT_EQ(events[6]["data"]["position"], revert.json()["position"]);
  EXPECT_EQ(events[8]["data"]["token_id"], temp_id);
}

TEST_F(ScopedServerTest, RevocationAndExpiryHoldAcrossARestart) {
  // expires_at must be an RFC 3339 time: anything else is refused and changes nothing.
  HttpResult created =
      Post("/v1/tokens", R"({"name":"short","scopes":["read"],"expires_at":1900000000})", admin_);
  EXPECT_EQ(created.status, 400) << created.body;
  EXPECT_EQ(Get("/v1/tokens", admin_).json()["tokens"].size(), 5u);

  auto in_two_seconds = std::chrono::system_clock::now() + std::chrono::seconds(2);
  std::time_t t = std::chrono::system_clock::to_time_t(in_two_seconds);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  created = Post("/v1/tokens",
                 R"({"name":"short","scopes":["read"],"expires_at":")" + std::string(when) + "\"}",
                 admin_);
  ASSERT_EQ(created.status, 201) << created.body;
  std::string short_lived = created.json()["token"];
  EXPECT_EQ(Get("/v1/log", short_lived).status, 200);
  ASSERT_EQ(
      client_
          ->Request("DELETE",
                    "/v1/tokens/" +
                        Get("/v1/tokens", admin_).json()["tokens"][2]["id"].get<std::string>(),
                    "", Bearer(admin_))
          .status,
      200);  // the third token: "ingest"
  EXPECT_EQ(Post("/v1/streams/x", kEvent, writer_).status, 401);

  std::this_thread::sleep_until(in_two_seconds + std::chrono::milliseconds(1100));
  HttpResult expired = Get("/v1/log", short_lived);
  EXPECT_EQ(expired.status, 401);
  EXPECT_NE(expired.body.find("expired"), std::string::npos) << expired.body;

  client_.reset();
  ASSERT_EQ(server_->Stop(SIGTERM), 0);
  ServerProcess again(data_, {"--auth", "on"});
  ASSERT_TRUE(again.started());
  HttpClient client(again.port());
  EXPECT_EQ(client.Get("/v1/log", Bearer(reader_)).status, 200);
  EXPECT_EQ(client.Post("/v1/streams/x", kEvent, Bearer(writer_)).status, 401);
  EXPECT_EQ(client.Get("/v1/log", Bearer(short_lived)).status, 401);
}

TEST(AuthDefaultTest, AuthIsOnByDefaultBeyondLoopbackAndOffOnLoopback) {
  TempDir dir;
  {
    ServerProcess open(dir.Sub("a"));
    ASSERT_TRUE(open.started());
    EXPECT_EQ(HttpClient(open.port()).Post("/v1/streams/s", kEvent).status, 201);
  }
  ServerProcess wide(dir.Sub("b"), {"--listen", "0.0.0.0:0"});
  ASSERT_TRUE(wide.started());
  HttpClient client(wide.port());
  EXPECT_EQ(client.Post("/v1/streams/s", kEvent).status, 401);
  EXPECT_EQ(client.Get("/healthz").status, 200);
  auto [code, out] = RunServeBinary({"serve", "--data", dir.Sub("c"), "--auth", "maybe"});
  EXPECT_EQ(code, 2) << out;
}

TEST(AuthCliTest, ClientCommandsSendTheirToken) {
  TempDir dir;
  std::string data = dir.Sub("data");
  std::string admin = CreateToken(data, {"--scope", "admin", "--name", "ops"});
  ServerProcess server(data, {"--auth", "on"});
  ASSERT_TRUE(server.started());
  std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  auto [refused, o1] = RunServeBinary({"append", "s", "-t", "e", "--server", url});
  EXPECT_EQ(refused, 6) << o1;
  EXPECT_NE(o1.find("unauthenticated"), std::string::npos) << o1;
  auto [ok, o2] = RunServeBinary({"append", "s", "-t", "e", "--server", url, "--token", admin});
  EXPECT_EQ(ok, 0) << o2;
  auto [made, o3] = RunServeBinary({"token", "create", "--server", url, "--token", admin, "--scope",
                                    "read", "--name", "viewer"});
  ASSERT_EQ(made, 0) << o3;
  std::size_t at = o3.find("tt_");
  ASSERT_NE(at, std::string::npos) << o3;
  std::string viewer = o3.substr(at, o3.find('\n', at) - at);
  auto [read, o4] = RunServeBinary({"read", "s", "--server", url, "--token", viewer});
  EXPECT_EQ(read, 0) << o4;
  auto [denied, o5] = RunServeBinary({"verify", "--server", url, "--token", viewer});
  EXPECT_EQ(denied, 6) << o5;
  EXPECT_NE(o5.find("lacks the 'admin' scope"), std::string::npos) << o5;
  auto [list, o6] = RunServeBinary({"token", "list", "--server", url, "--token", admin});
  EXPECT_EQ(list, 0) << o6;
  EXPECT_NE(o6.find("viewer"), std::string::npos) << o6;
}

}  // namespace
}  // namespace timetrail::testing
