// The route table: which row a request reaches, its path parameters (percent-decoded one
// segment at a time), and the 404 and 405 answers of the dispatcher.
#include "server/router.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/api.h"
#include "server/request_context.h"
#include "server/routes.h"

namespace timetrail::server {
namespace {

// A handler that answers with its own name and the path parameters it was given.
RouteHandler Echo(std::string name) {
  return [name](RequestContext& rc) {
    std::string body = name;
    for (const char* param : {"stream", "id", "name"}) {
      if (!rc.Param(param).empty()) body += " " + std::string(param) + "=" + rc.Param(param);
    }
    return JsonResponse(200, body);
  };
}

RouteTable SampleTable() {
  RouteTable t;
  t.Add({{"GET", "/healthz", Access::kOpen, kQuick, Echo("health")},
         {"GET", "/v1/streams/{stream}", Access::kReadStream, kOnWorker, Echo("read")},
         {"POST", "/v1/streams/{stream}", Access::kAppendStream, kOnWorker, Echo("append")},
         {"GET", "/v1/streams/{stream}/info", Access::kReadStream, kQuick, Echo("info")},
         {"POST", "/v1/consumers/{name}/ack", Access::kRead, kOnWorker, Echo("ack")},
         {"DELETE", "/v1/tokens/{id}", Access::kFullAdmin, kOnWorker, Echo("revoke")}});
  return t;
}

RouteTable::Lookup FindIn(const RouteTable& t, const std::string& method,
                          const std::string& target) {
  Result<Target> parsed = ParseTarget(target);
  EXPECT_TRUE(parsed.ok()) << target;
  return t.Find(method, parsed->segments);
}

TEST(ParseTargetTest, DecodesEachSegmentAfterSplittingAndTheQuery) {
  Result<Target> t =
      ParseTarget("/v1/streams/public.orders%2F42/info?from=1&stream_prefix=a%2Fb+c&x");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->segments, (std::vector<std::string>{"v1", "streams", "public.orders/42", "info"}));
  EXPECT_EQ(t->query.at("from"), "1");
  EXPECT_EQ(t->query.at("stream_prefix"), "a/b c");  // "+" is a space in a query only
  EXPECT_EQ(t->query.at("x"), "");
  // A trailing slash is ignored; "+" in a path is a plus.
  EXPECT_EQ(ParseTarget("/v1/streams/a+b/")->segments,
            (std::vector<std::string>{"v1", "streams", "a+b"}));
  EXPECT_FALSE(ParseTarget("/v1/streams/%zz").ok());
  EXPECT_FALSE(ParseTarget("/v1/log?limit=%4").ok());
}

TEST(RouteTableTest, FindsTheRowForMethodAndPath) {
  RouteTable t = SampleTable();
  RouteTable::Lookup read = FindIn(t, "GET", "/v1/streams/friend-1");
  ASSERT_NE(read.route, nullptr);
  EXPECT_EQ(read.route->pattern, "/v1/streams/{stream}");
  EXPECT_EQ(read.route->method, "GET");
  EXPECT_EQ(read.params, (PathParams{{"stream", "friend-1"}}));
  RouteTable::Lookup append = FindIn(t, "POST", "/v1/streams/friend-1");
  ASSERT_NE(append.route, nullptr);
  EXPECT_EQ(append.route->method, "POST");
  RouteTable::Lookup info = FindIn(t, "GET", "/v1/streams/friend-1/info");
  ASSERT_NE(info.route, nullptr);
  EXPECT_EQ(info.route->runs, kQuick);
  RouteTable::Lookup ack = FindIn(t, "POST", "/v1/consumers/mailer/ack");
  ASSERT_NE(ack.route, nullptr);
  EXPECT_EQ(ack.params, (PathParams{{"name", "mailer"}}));
}

TEST(RouteTableTest, ParametersArePercentDecodedWithinTheirSegment) {
  RouteTable t = SampleTable();
  RouteTable::Lookup l = FindIn(t, "GET", "/v1/streams/public.orders%2F42%20%C3%A9/info");
  ASSERT_NE(l.route, nullptr);
  EXPECT_EQ(l.route->pattern, "/v1/streams/{stream}/info");
  EXPECT_EQ(l.params, (PathParams{{"stream", "public.orders/42 \xC3\xA9"}}));
  // Literal segments match their decoded spelling too.
  RouteTable::Lookup encoded = FindIn(t, "GET", "/v1/stream%73/x");
  ASSERT_NE(encoded.route, nullptr);
  EXPECT_EQ(encoded.params, (PathParams{{"stream", "x"}}));
}

TEST(RouteTableTest, UnknownPathsHaveNoAllowedMethods) {
  RouteTable t = SampleTable();
  for (const char* target : {"/", "/v1", "/v1/streams", "/v1/streams/a/b", "/v1/streams/a/info/x",
                             "/v2/streams/a", "/healthz/x", "/v1/tokens"}) {
    RouteTable::Lookup l = FindIn(t, "GET", target);
    EXPECT_EQ(l.route, nullptr) << target;
    EXPECT_TRUE(l.allowed.empty()) << target;
  }
}

TEST(RouteTableTest, AKnownPathWithAnotherMethodListsTheAllowedOnesInTableOrder) {
  RouteTable t = SampleTable();
  RouteTable::Lookup del = FindIn(t, "DELETE", "/v1/streams/a");
  EXPECT_EQ(del.route, nullptr);
  EXPECT_EQ(del.allowed, (std::vector<std::string>{"GET", "POST"}));
  RouteTable::Lookup head = FindIn(t, "HEAD", "/v1/streams/a/info");
  EXPECT_EQ(head.route, nullptr);
  EXPECT_EQ(head.allowed, (std::vector<std::string>{"GET"}));
  EXPECT_EQ(FindIn(t, "GET", "/v1/tokens/abc").allowed, (std::vector<std::string>{"DELETE"}));
}

TEST(RouteTableTest, OnlyPathsServedByOpenRoutesSkipAuthentication) {
  RouteTable t = SampleTable();
  EXPECT_TRUE(FindIn(t, "GET", "/healthz").open);
  EXPECT_TRUE(FindIn(t, "POST", "/healthz").open);  // a 405, still without a token
  EXPECT_FALSE(FindIn(t, "GET", "/v1/streams/a").open);
  EXPECT_FALSE(FindIn(t, "GET", "/nowhere").open);  // unknown paths need a token first
}

TEST(RouteTableTest, TheFirstRowForAMethodAndPathWins) {
  RouteTable t = SampleTable();
  t.Add({"GET", "/v1/streams/{other}", Access::kRead, kOnWorker, Echo("shadowed")});
  RouteTable::Lookup l = FindIn(t, "GET", "/v1/streams/a");
  ASSERT_NE(l.route, nullptr);
  EXPECT_EQ(l.route->pattern, "/v1/streams/{stream}");
  EXPECT_EQ(l.allowed, (std::vector<std::string>{"GET", "POST"}));
}

// The API's own table: every row has a distinct method and path, and every "{stream}" row
// checks the stream against the token.
TEST(ApiRoutesTest, RowsAreDistinctAndStreamRoutesCheckTheStream) {
  const std::vector<Route>& routes = ApiRoutes();
  ASSERT_FALSE(routes.empty());
  for (std::size_t i = 0; i < routes.size(); ++i) {
    EXPECT_TRUE(std::visit([](const auto& handler) { return static_cast<bool>(handler); },
                           routes[i].handler))
        << routes[i].pattern;
    EXPECT_EQ(routes[i].runs == kAsync,
              std::holds_alternative<AsyncRouteHandler>(routes[i].handler))
        << routes[i].pattern;
    EXPECT_EQ(routes[i].pattern.front(), '/') << routes[i].pattern;
    for (std::size_t j = i + 1; j < routes.size(); ++j) {
      EXPECT_FALSE(routes[i].method == routes[j].method && routes[i].pattern == routes[j].pattern)
          << routes[i].method << " " << routes[i].pattern;
    }
    bool has_stream = routes[i].pattern.find("{stream}") != std::string::npos;
    bool checks_stream = routes[i].access == Access::kReadStream ||
                         routes[i].access == Access::kAppendStream ||
                         routes[i].access == Access::kAdminStream;
    EXPECT_EQ(has_stream, checks_stream) << routes[i].pattern;
  }
}

// The dispatcher's own answers, which need no store: unknown endpoints and wrong methods.
class ApiDispatchTest : public ::testing::Test {
 protected:
  ApiResponse Call(const std::string& method, const std::string& target) {
    ApiRequest r;
    r.method = method;
    r.target = target;
    return api_.Handle(r);
  }
  Api api_{nullptr, nullptr, nullptr};
};

TEST_F(ApiDispatchTest, UnknownEndpointsAre404) {
  for (const char* target : {"/v1/nothing", "/v2/streams/a", "/", "/v1/streams/a/b/c"}) {
    ApiResponse r = Call("GET", target);
    EXPECT_EQ(r.status, 404) << target;
    nlohmann::json body = nlohmann::json::parse(r.body);
    EXPECT_EQ(body["error"], "not_found");
    EXPECT_EQ(body["message"], "no endpoint GET " + std::string(target) + "; see docs/http-api.md");
  }
  // The query is not part of the path in the message.
  EXPECT_EQ(nlohmann::json::parse(Call("GET", "/v1/nothing?x=1").body)["message"],
            "no endpoint GET /v1/nothing; see docs/http-api.md");
}

TEST_F(ApiDispatchTest, WrongMethodsAre405WithAllow) {
  struct Case {
    const char* method;
    const char* target;
    const char* allow;
  };
  for (const Case& c :
       {Case{"DELETE", "/v1/streams/a", "GET, POST"}, Case{"PUT", "/v1/streams/a%2Fb/info", "GET"},
        Case{"GET", "/v1/transactions", "POST"}, Case{"PATCH", "/v1/tokens", "GET, POST"},
        Case{"GET", "/v1/tokens/abc", "DELETE"}, Case{"POST", "/healthz", "GET"},
        Case{"POST", "/metrics", "GET"}, Case{"GET", "/v1/entities/a/revert", "POST"}}) {
    ApiResponse r = Call(c.method, c.target);
    EXPECT_EQ(r.status, 405) << c.method << " " << c.target;
    nlohmann::json body = nlohmann::json::parse(r.body);
    EXPECT_EQ(body["error"], "method_not_allowed");
    EXPECT_EQ(body["message"], std::string(c.method) + " is not allowed here; use " + c.allow);
    ASSERT_EQ(r.headers.size(), 1u);
    EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"Allow", c.allow}));
  }
}

TEST_F(ApiDispatchTest, MalformedTargetsAre400) {
  ApiResponse r = Call("GET", "/v1/streams/%G1");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "invalid_argument");
}

TEST_F(ApiDispatchTest, ExtensionsAddRoutesWithDecodedParameters) {
  ApiExtension extension;
  extension.routes.push_back({"GET", "/v1/extra/{name}", Access::kRead, kQuick, Echo("extra")});
  api_.Extend(extension);
  ApiResponse r = Call("GET", "/v1/extra/a%2Fb");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "extra name=a/b");
  EXPECT_EQ(Call("POST", "/v1/extra/x").status, 405);
  ApiRequest quick;
  quick.method = "GET";
  quick.target = "/v1/extra/x";
  EXPECT_TRUE(api_.IsQuick(quick));
  quick.target = "/v1/extra/x?min_position=3";
  EXPECT_FALSE(api_.IsQuick(quick));
}

}  // namespace
}  // namespace timetrail::server
