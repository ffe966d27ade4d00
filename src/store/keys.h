// The key layout of the event store inside the engine's families (docs/format/key-layout.md).
#ifndef TIMETRAIL_STORE_KEYS_H_
#define TIMETRAIL_STORE_KEYS_H_

#include <optional>
#include <string>
#include <string_view>

#include "core/coding.h"
#include "core/event_codec.h"
#include "timetrail/event.h"

namespace timetrail::keys {

// kLog: big-endian position.
inline std::string Log(Position p) {
  std::string k;
  PutBigEndian64(&k, p);
  return k;
}

// kStreamIndex: stream bytes, 0x00, big-endian revision. Stream names hold no control
// characters, so 0x00 ends the name unambiguously and one stream's keys are contiguous.
inline std::string StreamIndexPrefix(std::string_view stream) {
  std::string k(stream);
  k.push_back('\0');
  return k;
}
inline std::string StreamIndex(std::string_view stream, Revision r) {
  std::string k = StreamIndexPrefix(stream);
  PutBigEndian64(&k, r);
  return k;
}

// kEventIds: the 16 id bytes.
inline std::string EventId(const Uuid& id) {
  return std::string(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
}

// kTimeIndex: big-endian recorded_at (sign bit flipped).
inline std::string Time(Timestamp t) {
  std::string k;
  PutBigEndian64(&k, OrderedFromSigned(t.micros));
  return k;
}

// kMeta keys.
inline constexpr std::string_view kHeadState = "store/head";
// The key layout's version, as decimal text. Written when a store is created (or first opened
// by a release that knows it); a store whose version is newer than kLayoutVersion is refused.
inline constexpr std::string_view kFormatVersion = "store/format";
inline constexpr int kLayoutVersion = 1;
inline std::string Checkpoint(std::string_view name) {
  return "checkpoint/" + std::string(name);
}

// Value of kStreamHeads.
struct StreamHead {
  Revision last_revision = 0;
  Position last_position = 0;
  bool deleted = false;  // last document event was $delete
};

inline std::string EncodeStreamHead(const StreamHead& h) {
  std::string v;
  PutFixed64(&v, h.last_revision);
  PutFixed64(&v, h.last_position);
  v.push_back(h.deleted ? 1 : 0);
  return v;
}

inline std::optional<StreamHead> DecodeStreamHead(std::string_view v) {
  Decoder d(v);
  StreamHead h;
  std::uint8_t flags = 0;
  d.GetFixed64(&h.last_revision);
  d.GetFixed64(&h.last_position);
  d.GetByte(&flags);
  if (!d.ok()) return std::nullopt;
  h.deleted = flags & 1;
  return h;
}

// Value of kMeta/kHeadState: what the write path resumes from.
struct HeadState {
  Position last_position = 0;
  TxId last_tx = 0;
  Timestamp last_recorded_at{0};
  Hash hash{};
};

inline std::string EncodeHeadState(const HeadState& s) {
  std::string v;
  PutFixed64(&v, s.last_position);
  PutFixed64(&v, s.last_tx);
  PutFixed64(&v, static_cast<std::uint64_t>(s.last_recorded_at.micros));
  v.append(reinterpret_cast<const char*>(s.hash.data()), s.hash.size());
  return v;
}

inline std::optional<HeadState> DecodeHeadState(std::string_view v) {
  Decoder d(v);
  HeadState s;
  std::uint64_t t = 0;
  std::string_view hash;
  d.GetFixed64(&s.last_position);
  d.GetFixed64(&s.last_tx);
  d.GetFixed64(&t);
  d.GetBytes(32, &hash);
  if (!d.ok()) return std::nullopt;
  s.last_recorded_at.micros = static_cast<std::int64_t>(t);
  std::copy(hash.begin(), hash.end(), reinterpret_cast<char*>(s.hash.data()));
  return s;
}

// Position values (kStreamIndex, kEventIds, kTimeIndex) are fixed64.
inline std::string EncodePosition(Position p) {
  std::string v;
  PutFixed64(&v, p);
  return v;
}
inline std::optional<Position> DecodePosition(std::string_view v) {
  Decoder d(v);
  Position p = 0;
  if (!d.GetFixed64(&p)) return std::nullopt;
  return p;
}

}  // namespace timetrail::keys

#endif  // TIMETRAIL_STORE_KEYS_H_
