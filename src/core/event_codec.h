// The stored form of an event (the value of a log record) and the integrity chain over it.
// Format: docs/format/encoding.md.
#ifndef TIMETRAIL_CORE_EVENT_CODEC_H_
#define TIMETRAIL_CORE_EVENT_CODEC_H_

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "timetrail/event.h"
#include "timetrail/status.h"

namespace timetrail {

using Hash = std::array<std::uint8_t, 32>;

inline constexpr std::uint8_t kEventFormatVersion = 1;

// Appends the canonical bytes of "e" (every field but the hash) to *out. These bytes are what
// the integrity chain hashes.
void EncodeCanonicalEvent(const RecordedEvent& e, std::string* out);

// The canonical bytes followed by the 32-byte hash: the stored value.
std::string EncodeStoredEvent(const RecordedEvent& e);

// A stored event decoded in place: the strings point into the stored bytes, which must outlive
// it. For reads that look at many events and keep few. Intentionally copyable.
struct StoredEventView {
  Position position = 0;
  std::string_view stream;
  Revision revision = 0;
  Uuid id;
  std::string_view type;
  Timestamp recorded_at;
  Timestamp valid_from;
  TxId tx = 0;
  std::string_view metadata;
  std::string_view data;
  std::string_view hash;  // 32 bytes

  RecordedEvent ToEvent() const;
};

// Decodes a stored value. kCorruption if it is not one.
Result<StoredEventView> DecodeStoredEventView(std::string_view bytes);
Result<RecordedEvent> DecodeStoredEvent(std::string_view bytes);

// The canonical part of a stored value (without its trailing hash); empty if too short.
std::string_view CanonicalPart(std::string_view stored);

// hash(p) = SHA-256(hash(p-1) || canonical bytes of event p).
Hash ChainHash(const Hash& previous, std::string_view canonical);

// SHA-256 of the concatenation of "parts". Thread-safe.
Hash Sha256(std::initializer_list<std::string_view> parts);

}  // namespace timetrail

#endif  // TIMETRAIL_CORE_EVENT_CODEC_H_
