// Which tables a capture records: the source's publication, created from the capture's options
// when it does not exist yet, and checked for tables whose rows cannot be named.
#ifndef TIMETRAIL_CAPTURE_PUBLICATION_H_
#define TIMETRAIL_CAPTURE_PUBLICATION_H_

#include <functional>
#include <string>

#include <libpq-fe.h>

#include "capture/capture.h"
#include "timetrail/status.h"

namespace timetrail::capture {

// Creates the publication options.publication (FOR ALL TABLES, or FOR TABLE the listed tables
// and those matching the pattern) unless it exists, then checks that every table it holds has
// a primary key or a replica identity index. kInvalidArgument when no table matches the
// pattern, when PostgreSQL refuses to create it (its message says why), or naming the tables
// without a key.
Status EnsurePublication(PGconn* sql, const CaptureOptions& options,
                         const std::function<void(const std::string&)>& log);

}  // namespace timetrail::capture

#endif  // TIMETRAIL_CAPTURE_PUBLICATION_H_
