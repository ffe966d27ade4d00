// The JSON reader's former location: it is now the timetrail_json library (json/raw_json.h,
// namespace timetrail::json). The CLI's import and export code (cli/import_export.cc,
// cli/ndjson_import.cc) still include it from here under its old names; once they include
// json/raw_json.h and name json::, this header goes.
#ifndef TIMETRAIL_SERVER_RAW_JSON_H_
#define TIMETRAIL_SERVER_RAW_JSON_H_

#include "json/json_writer.h"
#include "json/raw_json.h"

namespace timetrail::server {
using json::JsonQuote;
using json::ParseRawJson;
using json::RawJson;
}  // namespace timetrail::server

#endif  // TIMETRAIL_SERVER_RAW_JSON_H_
