// The HTTP API v1 (docs/http-api.md), independent of the transport: a request in, a response
// out. Placement() tells the server where to run a request: blocking ones (Handle() on a worker
// pool), quick ones (Handle() on the event-loop thread) and asynchronous ones (HandleAsync() on
// the event-loop thread: appends, answered from the store's completion once durable).
//
// Requests are dispatched by a route table (routes.cc): each endpoint is one row with its
// method, path pattern, the access it needs and its handler. Components beside the server add
// their own rows and /metrics lines through Extend(), so the server depends on none of them.
#ifndef TIMETRAIL_SERVER_API_H_
#define TIMETRAIL_SERVER_API_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/api_message.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/request_context.h"
#include "server/router.h"
#include "subscribe/hub.h"
#include "timetrail/consumer_group.h"
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

  // A request's target parsed and looked up in the route table, once: the server asks where
  // to run it (runs) and hands the same lookup to Handle/HandleAsync. Intentionally movable.
  struct Routed {
    Runs runs = Runs::kOnWorker;
    Status target_error;  // the target could not be parsed: the answer says why
    bool ui = false;      // a file of the web UI (server/ui.h): static, served without a token
    Target target;
    RouteTable::Lookup found;
  };
  Routed RouteOf(const ApiRequest& request) const;

  // Serves one request. Thread-safe; may block (it waits for an async route's answer too).
  ApiResponse Handle(const ApiRequest& request) { return Handle(request, RouteOf(request)); }
  ApiResponse Handle(const ApiRequest& request, Routed routed);

  // Serves one request, giving its answer to "respond" exactly once: before returning, unless
  // the request reached a kAsync route whose work was started (then on a store thread, once
  // the work is done). "request" need only outlive the call. Thread-safe. Never waits when
  // routed.runs is kAsync; blocks like Handle() otherwise.
  void HandleAsync(const ApiRequest& request, Respond respond) {
    HandleAsync(request, RouteOf(request), std::move(respond));
  }
  void HandleAsync(const ApiRequest& request, Routed routed, Respond respond);

  // Where the server should run "request":
  //   kQuick    a GET of a route marked quick in the table (one entity's state, a stream's
  //             info, /healthz), with no empty path parameter and no min_position wait: cheaper
  //             answered on the I/O thread than handed to a worker and back.
  //   kAsync    a request to a kAsync route (appends): HandleAsync() on the I/O thread checks
  //             it and queues the write; no thread waits for the fsync.
  //   kOnWorker everything else (waits for a position, reads whose cost grows with the
  //             answer, anything it does not recognize): Handle() on a worker thread.
  Runs Placement(const ApiRequest& request) const { return RouteOf(request).runs; }
  bool IsQuick(const ApiRequest& request) const { return Placement(request) == Runs::kQuick; }

  // Adds endpoints after the API's own (a path and method already served keeps its first
  // handler) and lines to /metrics. REQUIRES: called before the first Handle().
  void Extend(ApiExtension extension);

  // Allows POST /v1/backup, into new directories inside "dir" (absolute). REQUIRES: called
  // before the first Handle().
  void SetBackupDirectory(std::string dir) { services_.backup_dir = std::move(dir); }

  // Ends the long polls of consumer group members (they answer with what they have), so that a
  // server stops without waiting for them.
  void Shutdown();

  // Loads the tokens from the audit stream and sets the policy. REQUIRES: called before the
  // first Handle(); without it no token authenticates.
  Status ConfigureAuth(const AuthOptions& options);
  const TokenRegistry& tokens() const { return tokens_; }

 private:
  // Where a request with "method" that was routed to "routed" runs (see Placement).
  static Runs RunsOn(std::string_view method, const Routed& routed);

  // Who makes "request", from its Authorization header; or the 401 to send instead.
  std::optional<ApiResponse> Authenticate(const ApiRequest& request, Principal* principal) const;

  TokenRegistry tokens_;
  std::unique_ptr<ConsumerGroups> groups_;  // null without a store
  ApiServices services_;
  AuthOptions auth_;
  RouteTable routes_;
};

}  // namespace timetrail::server

#endif  // TIMETRAIL_SERVER_API_H_
