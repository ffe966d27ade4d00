// A request to the HTTP API v1 and its answer, independent of the transport (the HTTP server
// and the CLI's data mode both speak them), and the bodies every endpoint shares: errors and
// the event object (docs/http-api.md, "Errors" and "The event object").
#ifndef TIMETRAIL_SERVER_API_MESSAGE_H_
#define TIMETRAIL_SERVER_API_MESSAGE_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "json/json_writer.h"
#include "timetrail/store.h"

namespace timetrail::server {

// Intentionally copyable.
struct ApiRequest {
  std::string method;         // "GET", "POST", ...
  std::string target;         // path and query, still percent-encoded
  std::string content_type;   // empty when absent
  std::string if_match;       // empty when absent
  std::string if_none_match;  // empty when absent (the web UI's files answer 304 on a match)
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

// A JSON answer.
ApiResponse JsonResponse(int status, std::string body);

// The HTTP status for a status code (contract: "Errors"); 507 for a full disk is decided by
// ErrorResponse, which sees the message.
int HttpStatusFor(StatusCode code);

// An error body and status for "s" (contract: "Errors").
ApiResponse ErrorResponse(const Status& s);
ApiResponse ErrorResponse(int status, std::string_view code, std::string_view message);

// Writes one event as the JSON object of the contract ("The event object"); its data and
// metadata go in as stored, byte for byte.
void WriteEvent(const RecordedEvent& e, json::JsonWriter* out);

// The JSON of one event, on one line.
std::string EventJson(const RecordedEvent& e);

}  // namespace timetrail::server

#endif  // TIMETRAIL_SERVER_API_MESSAGE_H_
