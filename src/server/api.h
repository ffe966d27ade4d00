// The HTTP API v1 (docs/http-api.md), independent of the transport: a request in, a response
// out. Handle() may block (appends wait for their fsync), so the server calls it on a worker
// pool, never on an event-loop thread, unless IsQuick() says the request never waits.
//
// Requests are dispatched by a route table (routes.cc): each endpoint is one row with its
// method, path pattern, the access it needs and its handler. Components beside the server add
// their own rows and /metrics lines through Extend(), so the server depends on none of them.
#ifndef TIMETRAIL_SERVER_API_H_
#define TIMETRAIL_SERVER_API_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/api_message.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/request_context.h"
#include "server/router.h"
#include "subscribe/hub.h"
#include "timetrail/store.h"

namespace timetrail::server {

// Endpoints and /metrics lines that a component running beside the API adds to it (e.g. the
// change capture's /v1/capture). Intentionally copyable.
struct ApiExtension {
  std::vector<Route> routes;
  MetricsSource metrics;  // Prometheus lines appended to GET /metrics; may be empty
};

class Api {
 public:
  // REQUIRES: every pointer outlives the Api.
  Api(EventStore* store, subscribe::SubscriptionHub* hub, Metrics* metrics);
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // Serves one request. Thread-safe; may block.
  ApiResponse Handle(const ApiRequest& request);

  // True when serving "request" costs little and never waits: a GET of a route marked quick in
  // the table (one entity's state, a stream's info, /healthz), with no empty path parameter and
  // no min_position wait. The server answers these on its I/O threads: for them, handing the
  // request to a worker thread and the answer back costs more than the query. Everything else
  // (appends, which wait for fsync; waits for a position; reads whose cost grows with the
  // answer) is served by the workers. Conservative: false for anything it does not recognize.
  bool IsQuick(const ApiRequest& request) const;

  // Adds endpoints after the API's own (a path and method already served keeps its first
  // handler) and lines to /metrics. REQUIRES: called before the first Handle().
  void Extend(ApiExtension extension);

  // Allows POST /v1/backup, into new directories inside "dir" (absolute). REQUIRES: called
  // before the first Handle().
  void SetBackupDirectory(std::string dir) { services_.backup_dir = std::move(dir); }

  // Loads the tokens from the audit stream and sets the policy. REQUIRES: called before the
  // first Handle(); without it no token authenticates.
  Status ConfigureAuth(const AuthOptions& options);
  const TokenRegistry& tokens() const { return tokens_; }

 private:
  // Who makes "request", from its Authorization header; or the 401 to send instead.
  std::optional<ApiResponse> Authenticate(const ApiRequest& request, Principal* principal) const;

  TokenRegistry tokens_;
  ApiServices services_;
  AuthOptions auth_;
  RouteTable routes_;
};

}  // namespace timetrail::server

#endif  // TIMETRAIL_SERVER_API_H_
