// The key layout of the event store inside the engine's families (docs/format/key-layout.md).
#ifndef TIMETRAIL_STORE_KEYS_H_
#define TIMETRAIL_STORE_KEYS_H_

#include <algorithm>
#include <array>
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

// kEventIds: the 16 id bytes. Since layout 2, only for ids the appending client chose: an id
// the store generates carries the event's position (GeneratedId), so finding its event needs no
// index entry.
inline std::string EventId(const Uuid& id) {
  return std::string(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
}

// A store's id tag: 6 random bytes, kept in kMeta/kIdTag, the first 6 bytes of every id it
// generates.
using IdTag = std::array<std::uint8_t, 6>;

// The id the store generates for the event at position "p" (p < 2^62): a version 8 UUID (RFC
// 9562) made of the tag, the version nibble, the position's bits 61..48 around the variant bits,
// its bits 47..0, and a check byte, so that a random or foreign id is almost never mistaken for
// one (and is then still checked against the event it names).
inline Uuid GeneratedId(const IdTag& tag, Position p) {
  Uuid id;
  std::copy(tag.begin(), tag.end(), id.bytes.begin());
  id.bytes[6] = 0x80;
  id.bytes[7] = static_cast<std::uint8_t>(p >> 54);
  id.bytes[8] = static_cast<std::uint8_t>(0x80 | ((p >> 48) & 0x3F));
  for (int i = 0; i < 6; ++i) id.bytes[9 + i] = static_cast<std::uint8_t>(p >> (40 - 8 * i));
  std::uint8_t check = 0x5A;
  for (int i = 0; i < 15; ++i) check ^= id.bytes[i];
  id.bytes[15] = check;
  return id;
}

// The position that "id" names if it has the form of an id generated with "tag".
inline std::optional<Position> PositionOfGeneratedId(const IdTag& tag, const Uuid& id) {
  if (!std::equal(tag.begin(), tag.end(), id.bytes.begin()) || id.bytes[6] != 0x80 ||
      (id.bytes[8] & 0xC0) != 0x80) {
    return std::nullopt;
  }
  std::uint8_t check = 0x5A;
  for (int i = 0; i < 15; ++i) check ^= id.bytes[i];
  if (check != id.bytes[15]) return std::nullopt;
  Position p = (Position{id.bytes[7]} << 54) | (Position{id.bytes[8] & 0x3Fu} << 48);
  for (int i = 0; i < 6; ++i) p |= Position{id.bytes[9 + i]} << (40 - 8 * i);
  return p;
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
// Layout 2 (from layout 1, upgraded in place on open): ids the store generates carry their
// position and have no kEventIds entry, and a group of transactions shares one kTimeIndex entry.
inline constexpr int kLayoutVersion = 2;
// The store's IdTag (6 bytes), written with layout 2.
inline constexpr std::string_view kIdTag = "store/id_tag";
// The first position from which every event has a type index entry (kIndex 't'), as decimal
// text: 1 for a store created by a release that indexes types, else the first position such a
// release appended. Written once, on its first open of the directory and before it appends;
// activity by type reads the index from there and scans the log below it, so directories
// written earlier need no upgrade step.
inline constexpr std::string_view kTypesSince = "index/types_since";
inline std::string Checkpoint(std::string_view name) { return "checkpoint/" + std::string(name); }

// Value of kStreamHeads.
struct StreamHead {
  Revision last_revision = 0;
  Position last_position = 0;
  bool deleted = false;  // last document event was $delete
  // The largest valid_from of the stream's document events (nullopt: it has none), which the
  // temporal index needs to recognise a backdated correction. Unknown for streams last written
  // by layout 1 (the index then finds it with a seek) and stays so when they are appended to.
  bool max_valid_from_known = true;
  std::optional<Timestamp> max_valid_from;
};

// Flags byte of a stream head.
inline constexpr std::uint8_t kHeadDeleted = 1, kHeadMaxValidKnown = 2, kHeadHasMaxValid = 4;

// fixed64 last revision, fixed64 last position, flags, then (kHeadHasMaxValid) fixed64 ordered
// max_valid_from. Layout 1 wrote the first 17 bytes only, with flags 0 or 1.
inline std::string EncodeStreamHead(const StreamHead& h) {
  std::string v;
  PutFixed64(&v, h.last_revision);
  PutFixed64(&v, h.last_position);
  std::uint8_t flags = h.deleted ? kHeadDeleted : 0;
  if (h.max_valid_from_known) flags |= kHeadMaxValidKnown;
  if (h.max_valid_from_known && h.max_valid_from) flags |= kHeadHasMaxValid;
  v.push_back(static_cast<char>(flags));
  if (flags & kHeadHasMaxValid) PutFixed64(&v, OrderedFromSigned(h.max_valid_from->micros));
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
  h.deleted = flags & kHeadDeleted;
  h.max_valid_from_known = flags & kHeadMaxValidKnown;
  if (flags & kHeadHasMaxValid) {
    std::uint64_t ordered = 0;
    if (!d.GetFixed64(&ordered)) return std::nullopt;
    h.max_valid_from = Timestamp{SignedFromOrdered(ordered)};
  }
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

// The head record as read from the engine (nullopt: a store with none yet), or Corruption.
inline Result<std::optional<HeadState>> ParseHeadRecord(const std::optional<std::string>& raw) {
  if (!raw) return std::optional<HeadState>();
  std::optional<HeadState> head = DecodeHeadState(*raw);
  if (!head) return Status::Corruption("the store's head record is damaged");
  return head;
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
