// The HTTP API v1 (docs/http-api.md), independent of the transport: a request in, a response
// out. Handle() may block (appends wait for their fsync), so the server calls it on a worker
// pool, never on an event-loop thread.
#ifndef TIMETRAIL_SERVER_API_H_
#define TIMETRAIL_SERVER_API_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "capture/capture.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "subscribe/hub.h"
#include "timetrail/store.h"

namespace timetrail::server {

// Intentionally copyable.
struct ApiRequest {
  std::string method;        // "GET", "POST", ...
  std::string target;        // path and query, still percent-encoded
  std::string content_type;  // empty when absent
  std::string if_match;      // empty when absent
  std::string last_event_id;
  std::string authorization;  // the Authorization header, empty when absent
  std::string body;
};

// Where a subscription starts and what it delivers. Intentionally copyable.
struct SubscribeSpec {
  Position from = 1;
  LogFilter filter;
};

// Intentionally copyable.
struct ApiResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  // Set when the request opened a subscription: the transport streams events from here.
  std::optional<SubscribeSpec> subscribe;
};

// The JSON of one event, on one line (contract: "Event JSON").
std::string EventJson(const RecordedEvent& e);

// An error body and status for "s" (contract: "Errors").
ApiResponse ErrorResponse(const Status& s);
ApiResponse ErrorResponse(int status, std::string_view code, std::string_view message);

// A capture running beside the API (`serve --capture`), for GET /v1/capture, its /metrics lines
// and reverts in its source; or, in the CLI's data mode, leave to revert in the source database
// that a request names. Intentionally copyable.
struct CaptureLink {
  std::string source_url;  // where source reverts go; empty: only a request's own "source"
  std::string slot;
  bool request_may_name_source = false;  // only where the caller already holds the data
  std::function<capture::CaptureStats()> stats;  // empty when no capture runs here
};

// Who may do what (docs/security.md). Intentionally copyable.
struct AuthOptions {
  // Refuse requests without a valid token (401). When false, a request without a token may do
  // everything and one that presents a token is held to that token's scopes.
  bool required = false;
  // The actor recorded in the audit stream for the administrative actions of requests without
  // a token.
  std::string anonymous_actor = "anonymous";
};

class Api {
 public:
  // REQUIRES: every pointer outlives the Api.
  Api(EventStore* store, subscribe::SubscriptionHub* hub, Metrics* metrics)
      : store_(store), hub_(hub), metrics_(metrics), tokens_(store) {}
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // Serves one request. Thread-safe; may block.
  ApiResponse Handle(const ApiRequest& request);

  // True when serving "request" costs little and never waits: GET of one entity's state (latest,
  // at a revision or position, as of a time, valid at a time), of a stream's info, or /healthz,
  // without a min_position wait. The server answers these on its I/O threads: for them, handing
  // the request to a worker thread and the answer back costs more than the query. Everything else
  // (appends, which wait for fsync; waits for a position; reads whose cost grows with the
  // answer) is served by the workers. Conservative: false for anything it does not recognize.
  static bool IsQuick(const ApiRequest& request);

  // Enables the /v1/capture endpoints. REQUIRES: called before the first Handle().
  void SetCapture(CaptureLink link) { capture_ = std::move(link); }

  // Allows POST /v1/backup, into new directories inside "dir" (absolute). REQUIRES: called
  // before the first Handle().
  void SetBackupDirectory(std::string dir) { backup_dir_ = std::move(dir); }

  // Loads the tokens from the audit stream and sets the policy. REQUIRES: called before the
  // first Handle(); without it no token authenticates.
  Status ConfigureAuth(const AuthOptions& options);
  const TokenRegistry& tokens() const { return tokens_; }

 private:
  EventStore* store_;
  subscribe::SubscriptionHub* hub_;
  Metrics* metrics_;
  std::optional<CaptureLink> capture_;
  std::string backup_dir_;
  TokenRegistry tokens_;
  AuthOptions auth_;
};

}  // namespace timetrail::server

#endif  // TIMETRAIL_SERVER_API_H_
