// Column values from a PostgreSQL source arrive as text in the type's output format; mapping
// them to JSON must cope with any text for any type (a server may send what the mapping did not
// foresee), and row keys decoded from stream names may be anything a user typed.
#include <cstdint>
#include <cstring>
#include <string_view>

#include "capture/values.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  std::uint32_t oid;
  std::memcpy(&oid, data, sizeof oid);
  std::string_view text(reinterpret_cast<const char*>(data) + 4, size - 4);
  // The built-in types are below 10000; fold the fuzzer's oids onto them half of the time.
  if (oid & 1u) oid = (oid >> 1) % 5000;
  nlohmann::json value = timetrail::capture::PgTextToJson(oid, text);
  (void)value.dump();
  (void)timetrail::capture::DecodeRowKey(text);
  return 0;
}
