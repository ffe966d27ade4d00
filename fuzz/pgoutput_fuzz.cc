// The replication stream from a PostgreSQL source: CopyData framing and pgoutput messages. A
// corrupt or unexpected message must be an error (the capture stops and reports it), never a
// crash or a read past the buffer.
#include <cstdint>
#include <string_view>
#include <variant>

#include "capture/pgoutput.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto framed = timetrail::capture::DecodeCopyData(bytes);
  if (framed.ok()) {
    if (const auto* x = std::get_if<timetrail::capture::XLogData>(&*framed)) {
      (void)timetrail::capture::DecodePgOutput(x->payload);
    }
  }
  // The same bytes as a bare pgoutput message reach the message decoder's every branch.
  (void)timetrail::capture::DecodePgOutput(bytes);
  (void)timetrail::capture::ParseLsn(bytes);
  return 0;
}
