// Hex encoding of byte strings (hashes, UUIDs).
#ifndef TIMETRAIL_CORE_HEX_H_
#define TIMETRAIL_CORE_HEX_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace timetrail {

// Lower-case hex digits, two per byte.
inline std::string HexEncode(const std::uint8_t* data, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0xF];
  }
  return out;
}

// Decodes exactly 2*n hex digits (either case) into out[0..n). False on any other input.
inline bool HexDecode(std::string_view hex, std::uint8_t* out, std::size_t n) {
  if (hex.size() != 2 * n) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < n; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return true;
}

}  // namespace timetrail

#endif  // TIMETRAIL_CORE_HEX_H_
