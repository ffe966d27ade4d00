// `timetrail import`'s NDJSON reader. Any input is either refused with a message naming a line,
// or read into events whose transaction bodies are valid JSON carrying every event exactly once,
// with the stream and type of its line.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cli/ndjson_import.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  timetrail::Result<std::vector<timetrail::cli::ImportEvent>> events =
      timetrail::cli::ParseNdjson(text);
  if (!events.ok()) {
    if (events.status().message().rfind("line ", 0) != 0) std::abort();
    return 0;
  }
  std::size_t seen = 0;
  for (bool any_revision : {false, true}) {
    seen = 0;
    for (std::size_t begin = 0; begin < events->size();) {
      std::size_t end = timetrail::cli::TransactionEnd(*events, begin);
      if (end <= begin || end > events->size()) std::abort();
      std::string body = timetrail::cli::TransactionBody(*events, begin, end, any_revision);
      nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded()) std::abort();
      for (const auto& append : parsed["appends"]) {
        for (const auto& event : append["events"]) {
          (void)event;
          ++seen;
        }
      }
      begin = end;
    }
    if (seen != events->size()) std::abort();
  }
  return 0;
}
