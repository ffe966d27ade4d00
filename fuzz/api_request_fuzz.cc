// The HTTP API v1 behind the transport: every route's path, query string, headers and JSON body
// (events, transactions, reverts, acks) against a real store. Input: five lines (method,
// target, content type, If-Match, Last-Event-ID), then the body. Every answer must be a JSON
// object (or an event stream), with a status the contract lists; a 5xx other than 503/504
// means a request crashed into an internal error.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_store.h"
#include "server/api.h"
#include "subscribe/hub.h"

namespace {

std::string_view NextLine(std::string_view* rest) {
  std::size_t end = rest->find('\n');
  std::string_view line = rest->substr(0, end);
  rest->remove_prefix(end == std::string_view::npos ? rest->size() : end + 1);
  return line;
}

bool ContractStatus(int status) {
  switch (status) {
    case 200: case 201: case 400: case 404: case 405: case 408: case 409: case 413: case 415:
    case 503: case 504:
      return true;
    default:
      return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static timetrail::server::Metrics metrics;
  static timetrail::subscribe::SubscriptionHub hub(timetrail::fuzz::FuzzStore());
  static timetrail::server::Api api(timetrail::fuzz::FuzzStore(), &hub, &metrics);

  std::string_view rest(reinterpret_cast<const char*>(data), size);
  timetrail::server::ApiRequest request;
  request.method = NextLine(&rest);
  request.target = NextLine(&rest);
  request.content_type = NextLine(&rest);
  request.if_match = NextLine(&rest);
  request.last_event_id = NextLine(&rest);
  request.body = rest;
  // A consistency-token wait for a position that never comes blocks for up to a minute by
  // design; that is the contract, not a hang.
  timetrail::server::ApiResponse response = api.Handle(request);
  bool ok = ContractStatus(response.status) &&
            (response.subscribe.has_value() || response.content_type != "application/json" ||
             nlohmann::json::accept(response.body));
  if (!ok) {
    std::fprintf(stderr, "%s %s answered %d %s: %s\n", request.method.c_str(),
                 request.target.c_str(), response.status, response.content_type.c_str(),
                 response.body.c_str());
    std::abort();
  }
  return 0;
}
