#include "server/api.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <string_view>
#include <variant>

#include "server/routes.h"
#include "server/ui.h"

namespace timetrail::server {
namespace {

ApiResponse Unauthorized(const std::string& message, bool token_given) {
  ApiResponse r = ErrorResponse(401, "unauthenticated", message);
  r.headers.emplace_back("WWW-Authenticate",
                         token_given ? "Bearer realm=\"timetrail\", error=\"invalid_token\""
                                     : "Bearer realm=\"timetrail\"");
  return r;
}

// The 415 for a POST or PUT body that does not say it is JSON.
std::optional<ApiResponse> RefuseNonJsonBody(const ApiRequest& req) {
  if ((req.method != "POST" && req.method != "PUT") || req.body.empty()) return std::nullopt;
  std::string_view ct = req.content_type;
  std::string_view base = ct.substr(0, ct.find(';'));
  while (!base.empty() && base.back() == ' ') base.remove_suffix(1);
  if (base == "application/json") return std::nullopt;
  return ErrorResponse(415, "unsupported_media_type",
                       "request bodies must be JSON: send 'Content-Type: application/json'" +
                           std::string(ct.empty() ? "" : " (got '" + std::string(ct) + "')"));
}

ApiResponse NotFound(const ApiRequest& req) {
  std::string path = req.target.substr(0, req.target.find('?'));
  return ErrorResponse(404, "not_found",
                       "no endpoint " + req.method + " " + path + "; see docs/http-api.md");
}

ApiResponse MethodNotAllowed(const ApiRequest& req, const std::vector<std::string>& methods) {
  std::string allowed;
  for (const std::string& m : methods) allowed += (allowed.empty() ? "" : ", ") + m;
  ApiResponse r =
      ErrorResponse(405, "method_not_allowed", req.method + " is not allowed here; use " + allowed);
  r.headers.emplace_back("Allow", allowed);
  return r;
}

// The 403 to send when the principal may not call a route with "access".
std::optional<ApiResponse> DenyAccess(Access access, const RequestContext& rc) {
  switch (access) {
    case Access::kOpen:
    case Access::kAuthenticated:
      return std::nullopt;
    case Access::kRead:
      return rc.Deny(kScopeRead);
    case Access::kAppend:
      return rc.Deny(kScopeAppend);
    case Access::kAdmin:
      return rc.Deny(kScopeAdmin);
    case Access::kReadStream:
      return rc.Deny(kScopeRead, rc.Param("stream"));
    case Access::kAppendStream:
      return rc.Deny(kScopeAppend, rc.Param("stream"));
    case Access::kAdminStream:
      return rc.Deny(kScopeAdmin, rc.Param("stream"));
    // The handler checks it against the stream_prefix it parses.
    case Access::kReadAcrossStreams:
      return std::nullopt;
    case Access::kFullAdmin:
      return rc.DenyUnlessFullAdmin();
  }
  return rc.DenyUnlessFullAdmin();  // unreachable; refuse rather than allow
}

}  // namespace

Api::Api(EventStore* store, subscribe::SubscriptionHub* hub, Metrics* metrics) : tokens_(store) {
  services_.store = store;
  services_.hub = hub;
  services_.metrics = metrics;
  services_.tokens = &tokens_;
  // One per store: the leases of a group's members live here.
  if (store != nullptr) groups_ = std::make_unique<ConsumerGroups>(store);
  services_.groups = groups_.get();
  routes_.Add(ApiRoutes());
}

void Api::Extend(ApiExtension extension) {
  routes_.Add(std::move(extension.routes));
  if (extension.metrics) services_.metrics_sources.push_back(std::move(extension.metrics));
}

std::optional<ApiResponse> Api::Authenticate(const ApiRequest& request,
                                             Principal* principal) const {
  if (request.authorization.empty()) {
    principal->actor = auth_.anonymous_actor;
    if (!auth_.required) return std::nullopt;
    return Unauthorized(
        "this server requires an API token: send 'Authorization: Bearer "
        "<token>' (timetrail commands: --token or TIMETRAIL_TOKEN); see "
        "docs/security.md",
        false);
  }
  Result<Principal> p = tokens_.Authenticate(request.authorization);
  if (!p.ok()) return Unauthorized(p.status().message(), true);
  *principal = std::move(*p);
  return std::nullopt;
}

ApiResponse Api::Handle(const ApiRequest& request, Routed routed) {
  // An async route answers from a store thread: wait for it here. The answer is set and the
  // waiter notified under the lock, so "answered" cannot end before the notification is done.
  std::mutex mu;
  std::condition_variable answered;
  std::optional<ApiResponse> answer;
  HandleAsync(request, std::move(routed), [&](ApiResponse response) {
    std::lock_guard<std::mutex> lock(mu);
    answer.emplace(std::move(response));
    answered.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  answered.wait(lock, [&] { return answer.has_value(); });
  return std::move(*answer);
}

void Api::HandleAsync(const ApiRequest& request, Routed routed, Respond respond) {
  if (!routed.target_error.ok()) return respond(ErrorResponse(routed.target_error));
  // The UI's files hold no data (every call the UI makes carries the user's token), so a
  // browser can load the sign-in page before it has one.
  if (routed.ui) return respond(ServeUi(request));
  RouteTable::Lookup& found = routed.found;

  // The order of refusals is part of the contract: who you are (401) and what you sent (415)
  // before whether the endpoint exists (404, 405) and whether you may call it (403).
  Principal principal;
  if (!found.open) {  // open endpoints (/healthz) serve probes that carry no token
    if (std::optional<ApiResponse> refused = Authenticate(request, &principal)) {
      return respond(std::move(*refused));
    }
  }
  if (std::optional<ApiResponse> refused = RefuseNonJsonBody(request)) {
    return respond(std::move(*refused));
  }

  RequestContext rc(services_, request, std::move(routed.target.query), std::move(found.params),
                    std::move(principal));
  if (request.method == "GET" || request.method == "HEAD") {
    Status waited = rc.WaitForMinPosition();
    if (!waited.ok()) return respond(ErrorResponse(waited));
  }
  if (found.allowed.empty()) return respond(NotFound(request));
  if (found.route == nullptr) return respond(MethodNotAllowed(request, found.allowed));
  if (std::optional<ApiResponse> denied = DenyAccess(found.route->access, rc)) {
    return respond(std::move(*denied));
  }
  if (const auto* run_async = std::get_if<AsyncRouteHandler>(&found.route->handler)) {
    return (*run_async)(rc, std::move(respond));
  }
  respond(std::get<RouteHandler>(found.route->handler)(rc));
}

Api::Routed Api::RouteOf(const ApiRequest& request) const {
  Routed routed;
  if (IsUiPath(std::string_view(request.target).substr(0, request.target.find('?')))) {
    routed.ui = true;
    routed.runs = Runs::kQuick;  // bytes already in memory: no reason to hand it to a worker
    return routed;
  }
  // An undecodable target goes to the workers, whose answer says what is wrong with it.
  Result<Target> target = ParseTarget(request.target);
  if (!target.ok()) {
    routed.target_error = target.status();
    return routed;
  }
  routed.target = std::move(*target);
  routed.found = routes_.Find(request.method, routed.target.segments);
  routed.runs = RunsOn(request.method, routed);
  return routed;
}

Runs Api::RunsOn(std::string_view method, const Routed& routed) {
  const Route* route = routed.found.route;
  if (route == nullptr) return Runs::kOnWorker;
  // A GET's min_position wait may block for seconds: never on an I/O thread.
  if (method == "GET" && routed.target.query.contains("min_position")) return Runs::kOnWorker;
  // An async route never waits, whatever its parameters: its handler checks them and answers
  // at once, or queues the work.
  if (route->runs == Runs::kAsync) return Runs::kAsync;
  if (method != "GET" || route->runs != Runs::kQuick) return Runs::kOnWorker;
  bool no_empty_param = std::none_of(routed.found.params.begin(), routed.found.params.end(),
                                     [](const auto& param) { return param.second.empty(); });
  return no_empty_param ? Runs::kQuick : Runs::kOnWorker;
}

void Api::Shutdown() {
  if (groups_) groups_->Close();
}

Status Api::ConfigureAuth(const AuthOptions& options) {
  auth_ = options;
  return tokens_.Load();
}

}  // namespace timetrail::server
