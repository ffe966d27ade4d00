// The log of a running server as a projection's source (`timetrail project --server URL`):
// the projections' reads as HTTP API calls (GET /v1/log, /v1/streams, /v1/entities).
#ifndef TIMETRAIL_CLI_HTTP_LOG_SOURCE_H_
#define TIMETRAIL_CLI_HTTP_LOG_SOURCE_H_

#include <memory>

#include "cli/backend.h"
#include "project/log_source.h"

namespace timetrail::cli {

// Reads through "backend" (which must outlive the source), sending "headers" (the token).
std::unique_ptr<project::LogSource> HttpLogSource(Backend& backend, Headers headers);

}  // namespace timetrail::cli

#endif  // TIMETRAIL_CLI_HTTP_LOG_SOURCE_H_
