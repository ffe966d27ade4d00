#include "json/raw_json.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>

#include "core/validation.h"

namespace timetrail::json {
namespace {

constexpr int kMaxDepth = 256;

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Status Parse(RawJson* out) {
    SkipWs();
    TT_RETURN_IF_ERROR(Value(out, 0));
    SkipWs();
    if (i_ != s_.size()) return Error("unexpected text after the JSON value");
    return Status::Ok();
  }

 private:
  Status Error(std::string_view what) const {
    return Status::InvalidArgument(std::string(what) + " at byte " + std::to_string(i_));
  }
  void SkipWs() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) {
      ++i_;
    }
  }
  bool Literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  Status Value(RawJson* out, int depth) {
    if (depth > kMaxDepth) return Error("JSON nested deeper than 256 levels");
    if (i_ >= s_.size()) return Error("unexpected end of JSON");
    std::size_t start = i_;
    char c = s_[i_];
    if (c == '{') {
      out->kind = RawJson::Kind::kObject;
      ++i_;
      SkipWs();
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
      } else {
        while (true) {
          SkipWs();
          if (i_ >= s_.size() || s_[i_] != '"') return Error("expected a string key");
          std::string key;
          TT_RETURN_IF_ERROR(String(&key));
          SkipWs();
          if (i_ >= s_.size() || s_[i_] != ':') return Error("expected ':'");
          ++i_;
          SkipWs();
          RawJson v;
          TT_RETURN_IF_ERROR(Value(&v, depth + 1));
          out->members.push_back({std::move(key), std::move(v)});
          SkipWs();
          if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
          if (i_ < s_.size() && s_[i_] == '}') { ++i_; break; }
          return Error("expected ',' or '}'");
        }
      }
    } else if (c == '[') {
      out->kind = RawJson::Kind::kArray;
      ++i_;
      SkipWs();
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
      } else {
        while (true) {
          SkipWs();
          RawJson v;
          TT_RETURN_IF_ERROR(Value(&v, depth + 1));
          out->items.push_back(std::move(v));
          SkipWs();
          if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
          if (i_ < s_.size() && s_[i_] == ']') { ++i_; break; }
          return Error("expected ',' or ']'");
        }
      }
    } else if (c == '"') {
      out->kind = RawJson::Kind::kString;
      TT_RETURN_IF_ERROR(String(&out->str));
    } else if (Literal("true")) {
      out->kind = RawJson::Kind::kBool;
      out->boolean = true;
    } else if (Literal("false")) {
      out->kind = RawJson::Kind::kBool;
    } else if (Literal("null")) {
      out->kind = RawJson::Kind::kNull;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      out->kind = RawJson::Kind::kNumber;
      TT_RETURN_IF_ERROR(Number());
    } else {
      return Error(std::string("unexpected character '") + c + "'");
    }
    out->text = s_.substr(start, i_ - start);
    return Status::Ok();
  }

  static bool Digit(char c) { return c >= '0' && c <= '9'; }

  Status Number() {
    std::size_t start = i_;
    if (s_[i_] == '-') ++i_;
    if (i_ >= s_.size() || !Digit(s_[i_])) return Error("malformed number");
    std::size_t int_start = i_;
    if (s_[i_] == '0') {
      ++i_;
    } else {
      while (i_ < s_.size() && Digit(s_[i_])) ++i_;
    }
    std::size_t int_digits = i_ - int_start;
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (i_ >= s_.size() || !Digit(s_[i_])) return Error("malformed number");
      while (i_ < s_.size() && Digit(s_[i_])) ++i_;
    }
    bool has_exponent = false;
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (i_ >= s_.size() || !Digit(s_[i_])) return Error("malformed number");
      while (i_ < s_.size() && Digit(s_[i_])) ++i_;
      has_exponent = true;
    }
    // Stored JSON is read back as IEEE doubles (document folds, validation), so a number
    // beyond their range is refused here rather than by a later layer. Only an exponent or
    // more than 308 integer digits can get there.
    if (has_exponent || int_digits > 308) {
      double d = std::strtod(std::string(s_.substr(start, i_ - start)).c_str(), nullptr);
      if (!std::isfinite(d)) {
        i_ = start;
        return Error("number out of range (the largest is about 1.8e308)");
      }
    }
    return Status::Ok();
  }

  static void AppendUtf8(std::uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  Status Hex4(std::uint32_t* out) {
    if (i_ + 4 > s_.size()) return Error("truncated \\u escape");
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<std::uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<std::uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<std::uint32_t>(c - 'A' + 10);
      else return Error("bad hex digit in \\u escape");
    }
    *out = v;
    return Status::Ok();
  }

  Status String(std::string* out) {
    const std::size_t start = i_;
    ++i_;  // opening quote
    while (true) {
      if (i_ >= s_.size()) return Error("unterminated string");
      char c = s_[i_];
      if (c == '"') {
        // JSON text is UTF-8 (RFC 8259); escapes are ASCII, so checking the source is enough.
        if (!IsUtf8(s_.substr(start, i_ - start))) {
          i_ = start;
          return Error("string that is not valid UTF-8");
        }
        ++i_;
        return Status::Ok();
      }
      if (static_cast<unsigned char>(c) < 0x20) return Error("control character in string");
      if (c != '\\') { out->push_back(c); ++i_; continue; }
      ++i_;
      if (i_ >= s_.size()) return Error("unterminated string");
      char e = s_[i_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          std::uint32_t cp = 0;
          TT_RETURN_IF_ERROR(Hex4(&cp));
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.substr(i_, 2) != "\\u") return Error("unpaired surrogate in \\u escape");
            i_ += 2;
            std::uint32_t lo = 0;
            TT_RETURN_IF_ERROR(Hex4(&lo));
            if (lo < 0xDC00 || lo > 0xDFFF) return Error("unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return Error("unpaired surrogate in \\u escape");
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          return Error("bad escape in string");
      }
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

const RawJson* RawJson::Find(std::string_view key) const {
  const RawJson* found = nullptr;
  for (const auto& [k, v] : members) {
    if (k == key) found = &v;
  }
  return found;
}

std::optional<std::uint64_t> RawJson::AsUint() const {
  if (kind != Kind::kNumber) return std::nullopt;
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return v;
}

std::string_view RawJson::KindName() const {
  switch (kind) {
    case Kind::kNull: return "null";
    case Kind::kBool: return "a boolean";
    case Kind::kNumber: return "a number";
    case Kind::kString: return "a string";
    case Kind::kArray: return "an array";
    case Kind::kObject: return "an object";
  }
  return "a value";
}

Result<RawJson> ParseRawJson(std::string_view text) {
  RawJson out;
  Parser parser(text);
  TT_RETURN_IF_ERROR(parser.Parse(&out));
  return out;
}

}  // namespace timetrail::json
