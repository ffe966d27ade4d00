// The JSON reader behind every request body and every NDJSON import line. It must reject, never
// crash on, any input; and what it accepts must be JSON that nlohmann-json (the reference used
// to validate stored data) accepts too, with the same kind.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "json/json_writer.h"
#include "json/raw_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  timetrail::Result<timetrail::json::RawJson> parsed = timetrail::json::ParseRawJson(text);
  if (!parsed.ok()) return 0;
  if (!nlohmann::json::accept(text.begin(), text.end())) std::abort();
  (void)parsed->KindName();
  (void)parsed->AsUint();
  (void)timetrail::json::JsonQuote(parsed->text);
  return 0;
}
