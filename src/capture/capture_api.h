// The /v1/capture endpoints (docs/http-api.md, "Capture"): the status of a capture running
// beside the server, its lines in /metrics, and reverting captured rows in the source database.
// They reach the server as an extension of its route table (server::Api::Extend), so the
// server does not depend on the capture; the `timetrail` command adds them.
#ifndef TIMETRAIL_CAPTURE_CAPTURE_API_H_
#define TIMETRAIL_CAPTURE_CAPTURE_API_H_

#include <functional>
#include <optional>
#include <string>

#include "capture/capture.h"
#include "server/api.h"

namespace timetrail::capture {

// A capture running beside the API (`serve --capture`), for GET /v1/capture, its /metrics lines
// and reverts in its source; or, in the CLI's data mode, leave to revert in the source database
// that a request names. Intentionally copyable.
struct CaptureLink {
  std::string source_url;  // where source reverts go; empty: only a request's own "source"
  std::string slot;
  bool request_may_name_source = false;  // only where the caller already holds the data
  std::function<CaptureStats()> stats;   // empty when no capture runs here
};

// The endpoints of a capture beside the API and its lines in /metrics. Without a link (no
// capture runs here) both endpoints are still served, answering 404 with how to start one.
server::ApiExtension CaptureApi(std::optional<CaptureLink> link);

}  // namespace timetrail::capture

#endif  // TIMETRAIL_CAPTURE_CAPTURE_API_H_
