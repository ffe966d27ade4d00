// Small value types of the public event model: Uuid, ExpectedRevision, LogFilter helpers.
#include "timetrail/event.h"

#include <atomic>
#include <charconv>
#include <random>

#include "core/hex.h"
#include "timetrail/store.h"

namespace timetrail {

bool Uuid::is_nil() const {
  for (auto b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

std::string Uuid::ToString() const {
  std::string hex = HexEncode(bytes.data(), bytes.size());
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

namespace {

// The error for text that is not a UUID; long inputs are cut to 64 bytes in the message.
Status NotAUuid(std::string_view text, std::string_view why) {
  std::string message = "'";
  message.append(text.substr(0, 64)).append("' is not a UUID (").append(why).append(")");
  return Status::InvalidArgument(message);
}

}  // namespace

Result<Uuid> Uuid::Parse(std::string_view text) {
  std::string hex;
  hex.reserve(32);
  if (text.size() == 36) {
    for (std::size_t i = 0; i < text.size(); ++i) {
      bool dash_place = i == 8 || i == 13 || i == 18 || i == 23;
      if (dash_place != (text[i] == '-')) {
        return NotAUuid(text, "expected 8-4-4-4-12 hex digits");
      }
      if (!dash_place) hex.push_back(text[i]);
    }
  } else if (text.size() == 32) {
    hex = text;
  } else {
    return NotAUuid(text, "expected 36 characters like 0191b7a4-6c1e-7d2a-9f3b-1a2b3c4d5e6f");
  }
  Uuid u;
  if (!HexDecode(hex, u.bytes.data(), u.bytes.size())) return NotAUuid(text, "non-hex digit");
  return u;
}

Uuid Uuid::Generate() {
  // Version 7: 48 bits of Unix milliseconds, then random bits, so ids sort by creation time and
  // land near each other in the id index.
  thread_local std::mt19937_64 rng([] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }());
  Uuid u;
  std::uint64_t ms = static_cast<std::uint64_t>(Now().micros / 1000);
  std::uint64_t r1 = rng(), r2 = rng();
  for (int i = 0; i < 6; ++i) u.bytes[i] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
  for (int i = 6; i < 8; ++i) u.bytes[i] = static_cast<std::uint8_t>(r1 >> (8 * i));
  for (int i = 8; i < 16; ++i) u.bytes[i] = static_cast<std::uint8_t>(r2 >> (8 * (i - 8)));
  u.bytes[6] = static_cast<std::uint8_t>((u.bytes[6] & 0x0F) | 0x70);  // version 7
  u.bytes[8] = static_cast<std::uint8_t>((u.bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return u;
}

Result<ExpectedRevision> ExpectedRevision::Parse(std::string_view text) {
  if (text == "any") return Any();
  if (text == "no_stream") return NoStream();
  if (text == "exists") return Exists();
  Revision r = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), r);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return Status::InvalidArgument("expected_revision '" + std::string(text.substr(0, 64)) +
                                   "' is not one of any, no_stream, exists or a revision number");
  }
  return Exact(r);
}

std::string ExpectedRevision::ToString() const {
  switch (kind_) {
    case Kind::kAny: return "any";
    case Kind::kNoStream: return "no_stream";
    case Kind::kExists: return "exists";
    case Kind::kExact: return std::to_string(revision_);
  }
  return "any";
}

bool ExpectedRevision::Matches(std::optional<Revision> actual) const {
  switch (kind_) {
    case Kind::kAny: return true;
    case Kind::kNoStream: return !actual.has_value();
    case Kind::kExists: return actual.has_value();
    case Kind::kExact: return actual.has_value() && *actual == revision_;
  }
  return false;
}

std::string RecordedEvent::HashHex() const { return HexEncode(hash.data(), hash.size()); }

bool LogFilter::Matches(std::string_view stream, std::string_view type) const {
  if (!stream_prefix.empty() && !stream.starts_with(stream_prefix)) return false;
  if (skip_system_streams && stream.starts_with('$')) return false;
  if (event_types.empty()) return true;
  for (const auto& t : event_types) {
    if (t == type) return true;
  }
  return false;
}

}  // namespace timetrail
