// Byte-level encoding helpers shared by the event codec and the key layout.
// Keys use big-endian integers so that RocksDB's bytewise order is numeric order; values use
// little-endian fixed-width integers and LEB128 varints. See docs/format/encoding.md.
#ifndef TIMETRAIL_CORE_CODING_H_
#define TIMETRAIL_CORE_CODING_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace timetrail {

inline void PutFixed64(std::string* out, std::uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(v >> (8 * i));
  out->append(buf, 8);
}

inline void PutBigEndian64(std::string* out, std::uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(v >> (56 - 8 * i));
  out->append(buf, 8);
}

inline std::uint64_t DecodeBigEndian64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<std::uint8_t>(p[i]);
  return v;
}

inline void PutVarint64(std::string* out, std::uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

inline void PutLengthPrefixed(std::string* out, std::string_view s) {
  PutVarint64(out, s.size());
  out->append(s);
}

// Maps signed microseconds onto unsigned so that big-endian byte order is time order.
inline std::uint64_t OrderedFromSigned(std::int64_t v) {
  return static_cast<std::uint64_t>(v) ^ (std::uint64_t{1} << 63);
}
inline std::int64_t SignedFromOrdered(std::uint64_t v) {
  return static_cast<std::int64_t>(v ^ (std::uint64_t{1} << 63));
}

// Reads from a byte string, remembering whether any read ran past its end.
// Intentionally copyable.
class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}

  bool GetFixed64(std::uint64_t* v) {
    if (in_.size() < 8) return Fail();
    std::uint64_t r = 0;
    for (int i = 0; i < 8; ++i) r |= std::uint64_t{static_cast<std::uint8_t>(in_[i])} << (8 * i);
    in_.remove_prefix(8);
    *v = r;
    return true;
  }
  bool GetVarint64(std::uint64_t* v) {
    std::uint64_t r = 0;
    for (int shift = 0; shift <= 63; shift += 7) {
      if (in_.empty()) return Fail();
      std::uint8_t b = static_cast<std::uint8_t>(in_[0]);
      in_.remove_prefix(1);
      r |= std::uint64_t{b & 0x7Fu} << shift;
      if (!(b & 0x80)) {
        // One encoding per value (what PutVarint64 writes): no trailing zero group, nothing
        // past 64 bits. Stored bytes that decode must be the bytes the writer wrote.
        if ((b == 0 && shift > 0) || (shift == 63 && b > 1)) return Fail();
        *v = r;
        return true;
      }
    }
    return Fail();
  }
  bool GetLengthPrefixed(std::string_view* s) {
    std::uint64_t n;
    if (!GetVarint64(&n) || n > in_.size()) return Fail();
    *s = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool GetBytes(std::size_t n, std::string_view* s) {
    if (n > in_.size()) return Fail();
    *s = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool GetByte(std::uint8_t* b) {
    if (in_.empty()) return Fail();
    *b = static_cast<std::uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  std::size_t remaining() const { return in_.size(); }
  bool ok() const { return ok_; }

 private:
  bool Fail() {
    ok_ = false;
    return false;
  }
  std::string_view in_;
  bool ok_ = true;
};

}  // namespace timetrail

#endif  // TIMETRAIL_CORE_CODING_H_
