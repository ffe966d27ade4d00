// The /v1/capture endpoints (docs/http-api.md, "Capture"): the status of a capture running
// beside the server, its lines in /metrics, and reverting captured rows in the source database.
#ifndef TIMETRAIL_SERVER_CAPTURE_API_H_
#define TIMETRAIL_SERVER_CAPTURE_API_H_

#include <string>

#include "server/api.h"
#include "json/json_writer.h"
#include "json/raw_json.h"
#include "timetrail/store.h"

namespace timetrail::server {

using json::JsonQuote;
using json::ParseRawJson;
using json::RawJson;

// GET /v1/capture. "link" null or without stats: 404, no capture runs here.
ApiResponse CaptureStatusResponse(const CaptureLink* link);

// POST /v1/capture/revert with a JSON object body: either "streams" and "to", or "table" with
// any of "changes_by", "xid", "from", "until"; optional "dry_run", "actor", "reason", and
// "source" (a PostgreSQL URL; where the link allows the request to name one, or equal to the
// link's own). Reverts run in the link's source database (capture::RevertInSource).
ApiResponse CaptureRevertResponse(const EventStore& store, const CaptureLink* link,
                                  const RawJson& body);

// Prometheus lines for a running capture: counters, lag in bytes and seconds.
std::string CaptureMetricsText(const CaptureLink& link);

}  // namespace timetrail::server

#endif  // TIMETRAIL_SERVER_CAPTURE_API_H_
