// Stored-event decoding: a data directory's bytes may have been changed behind timetrail's back
// (the integrity chain exists for that), so decoding must fail cleanly on any input. A value
// that decodes must encode back to the same bytes: the encoding has one form per event.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/event_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  timetrail::Result<timetrail::RecordedEvent> event = timetrail::DecodeStoredEvent(bytes);
  if (event.ok() && timetrail::EncodeStoredEvent(*event) != bytes) std::abort();
  (void)timetrail::CanonicalPart(bytes);
  return 0;
}
