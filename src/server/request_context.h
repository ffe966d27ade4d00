// What an endpoint's handler works with: the request, its path and query parameters, the
// principal making it, the store and the other services of the Api, and the checks and parsing
// that several endpoints share (scopes and prefixes, JSON bodies, audit records, paging).
#ifndef TIMETRAIL_SERVER_REQUEST_CONTEXT_H_
#define TIMETRAIL_SERVER_REQUEST_CONTEXT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "json/json_writer.h"
#include "json/raw_json.h"
#include "server/api_message.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/router.h"
#include "subscribe/hub.h"
#include "timetrail/consumer_group.h"
#include "timetrail/store.h"

namespace timetrail::server {

// Who may do what (docs/security.md). Intentionally copyable.
struct AuthOptions {
  // Refuse requests without a valid token (401). When false, a request without a token may do
  // everything and one that presents a token is held to that token's scopes.
  bool required = false;
  // The actor recorded in the audit stream for the administrative actions of requests without
  // a token.
  std::string anonymous_actor = "anonymous";
};

// Prometheus lines that a component beside the server adds to GET /metrics.
using MetricsSource = std::function<std::string()>;

// What the Api shares with every endpoint. Set up before the first request; read-only after.
struct ApiServices {
  EventStore* store = nullptr;
  subscribe::SubscriptionHub* hub = nullptr;
  ConsumerGroups* groups = nullptr;
  Metrics* metrics = nullptr;
  TokenRegistry* tokens = nullptr;
  std::string backup_dir;  // where POST /v1/backup may write; empty: no online backups
  std::vector<MetricsSource> metrics_sources;
};

class RequestContext {
 public:
  RequestContext(const ApiServices& services, const ApiRequest& request, Query query,
                 PathParams params, Principal principal)
      : services_(services),
        request_(request),
        query_(std::move(query)),
        params_(std::move(params)),
        principal_(std::move(principal)) {}
  RequestContext(const RequestContext&) = delete;
  RequestContext& operator=(const RequestContext&) = delete;

  const ApiRequest& request() const { return request_; }
  const ApiServices& services() const { return services_; }
  EventStore& store() const { return *services_.store; }
  subscribe::SubscriptionHub& hub() const { return *services_.hub; }
  TokenRegistry& tokens() const { return *services_.tokens; }
  const Principal& principal() const { return principal_; }

  // The path parameter "name" of the route's pattern. REQUIRES: the pattern has it.
  const std::string& Param(std::string_view name) const;
  // The decoded query parameter "name", or null when absent.
  const std::string* QueryParam(std::string_view name) const;

  // The 403 to send when the principal lacks "scope" or, given a stream, may not use it.
  std::optional<ApiResponse> Deny(Scope scope, std::optional<std::string_view> stream = {}) const;
  // Reads across streams (the log, subscriptions, activity) need the read scope and a stream
  // prefix within the token's prefixes; "*skip_system" says whether to leave out system
  // streams (everyone but admins without prefixes).
  std::optional<ApiResponse> DenyAcrossStreams(const std::string& prefix, bool* skip_system) const;
  // Token management, backups and source reverts are for admin tokens that reach every stream.
  std::optional<ApiResponse> DenyUnlessFullAdmin() const;

  // Parses the body as a JSON object. The values point into the request, which outlives this.
  Result<json::RawJson> BodyObject();
  // The answer to a BodyObject() error: 400 bad_json when the body was not JSON at all.
  ApiResponse BodyError(const Status& s) const;

  // Records an administrative action in the audit stream. When that fails, the action has
  // happened but is not on record: the answer says so rather than answer as if all were well.
  std::optional<ApiResponse> Audit(std::string_view type, const std::string& data_json);

  // Shared query parameters.
  Result<std::uint64_t> UintParam(std::string_view name) const;  // REQUIRES: present
  Result<std::size_t> LimitParam() const;  // "limit": 1 to 1000, 100 when absent
  // "limit": 1 to "max", "fallback" when absent.
  Result<std::size_t> LimitParam(std::size_t fallback, std::size_t max) const;
  Result<std::optional<Timestamp>> TimeParam(std::string_view name) const;
  // "stream_prefix" and "types" (comma-separated).
  LogFilter FilterParams() const;

  // Waits until the "min_position" parameter, if any, is readable (up to "timeout_ms").
  Status WaitForMinPosition() const;

 private:
  std::string PrefixList() const;

  const ApiServices& services_;
  const ApiRequest& request_;
  Query query_;
  PathParams params_;
  Principal principal_;
  bool bad_json_ = false;  // the last BodyObject() found no JSON at all
};

// Shared by the endpoints of several files.

// "text" as a non-negative whole number; errors name "what".
Result<std::uint64_t> ParseUint(std::string_view text, std::string_view what);
// The parts of a comma-separated list, without empty ones.
std::vector<std::string> SplitComma(std::string_view s);
// An If-Match header's revision: "3" in quotes (the ETag of a write), or bare.
Result<std::uint64_t> IfMatchRevision(std::string_view if_match);
// An expected_revision value: "any", "no_stream", "exists" or a revision; Any when absent.
Result<ExpectedRevision> ParseExpected(const json::RawJson* v, const std::string& field);
// The 400 for an append or revert to a '$' stream, which belong to the server.
std::optional<ApiResponse> RefuseSystemStreamWrite(std::string_view stream);

// The first "count" events as a JSON array.
void WriteEvents(const std::vector<RecordedEvent>& events, std::size_t count,
                 json::JsonWriter* out);
// The answer to an append or revert (single: one stream's fields) or a transaction.
std::string CommittedJson(const Committed& c, bool single);
// 201 (200 for an idempotent replay) with the stream's new revision as ETag.
ApiResponse CommittedResponse(const Committed& c);

}  // namespace timetrail::server

#endif  // TIMETRAIL_SERVER_REQUEST_CONTEXT_H_
