#include "capture/values.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "core/validation.h"

namespace timetrail::capture {
namespace {

enum Oid : std::uint32_t {
  kBool = 16,
  kInt8 = 20,
  kInt2 = 21,
  kInt4 = 23,
  kOid = 26,
  kJson = 114,
  kFloat4 = 700,
  kFloat8 = 701,
  kTimestamp = 1114,
  kTimestampTz = 1184,
  kNumeric = 1700,
  kJsonb = 3802,
};

// Element type of the array types the mapping knows; 0 for anything else.
std::uint32_t ArrayElement(std::uint32_t oid) {
  switch (oid) {
    case 1000:
      return kBool;
    case 1005:
      return kInt2;
    case 1007:
      return kInt4;
    case 1016:
      return kInt8;
    case 1028:
      return kOid;
    case 1021:
      return kFloat4;
    case 1022:
      return kFloat8;
    case 1231:
      return kNumeric;
    case 199:
      return kJson;
    case 3807:
      return kJsonb;
    case 1115:
      return kTimestamp;
    case 1185:
      return kTimestampTz;
    case 1009:    // text[]
    case 1015:    // varchar[]
    case 1014:    // char(n)[]
    case 2951:    // uuid[]
    case 1182:    // date[]
    case 1001:    // bytea[]
      return 25;  // text: kept as strings
    default:
      return 0;
  }
}

std::optional<std::int64_t> ParseInt64(std::string_view s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// A decimal number reduced to sign, significant digits and exponent, so two spellings of the
// same value ("1.50", "1.5", "15e-1") compare equal. nullopt if "s" is not a plain decimal.
std::optional<std::string> CanonicalDecimal(std::string_view s) {
  std::size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) negative = s[i++] == '-';
  std::string digits;
  long exponent = 0;
  bool seen_digit = false, seen_point = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      seen_digit = true;
      digits.push_back(c);
      if (seen_point) --exponent;
    } else if (c == '.' && !seen_point) {
      seen_point = true;
    } else {
      break;
    }
  }
  if (!seen_digit) return std::nullopt;
  if (i < s.size()) {
    if (s[i] != 'e' && s[i] != 'E') return std::nullopt;
    std::string_view exp = s.substr(i + 1);
    if (!exp.empty() && exp[0] == '+') exp.remove_prefix(1);
    auto e = ParseInt64(exp);
    // PostgreSQL's numeric exponents are far smaller; a larger one is not a numeric's text.
    constexpr std::int64_t kMaxExponent = 1'000'000;
    if (!e || *e > kMaxExponent || *e < -kMaxExponent) return std::nullopt;
    exponent += static_cast<long>(*e);
  }
  std::size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) return std::string("0");
  digits.erase(0, first);
  while (!digits.empty() && digits.back() == '0') {
    digits.pop_back();
    ++exponent;
  }
  return std::string(negative ? "-" : "") + digits + "e" + std::to_string(exponent);
}

// numeric: a JSON number only when nothing is lost on the way through int64 or double.
nlohmann::json NumericToJson(std::string_view text) {
  if (auto i = ParseInt64(text)) return *i;
  auto canonical = CanonicalDecimal(text);
  if (!canonical) return std::string(text);  // NaN, Infinity
  double d = std::strtod(std::string(text).c_str(), nullptr);
  if (!std::isfinite(d)) return std::string(text);
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  if (ec != std::errc()) return std::string(text);
  if (CanonicalDecimal(std::string_view(buf, end - buf)) != canonical) return std::string(text);
  return d;
}

nlohmann::json FloatToJson(std::string_view text) {
  double d = std::strtod(std::string(text).c_str(), nullptr);
  if (!std::isfinite(d)) return std::string(text);
  return d;
}

// "2026-11-22 13:40:00.5+00" -> "2026-11-22T13:40:00.5Z"; anything unusual (BC, infinity) stays
// as PostgreSQL wrote it.
std::string TimestampToRfc3339(std::string_view text, bool with_zone) {
  if (text.size() < 19 || text[10] != ' ' || text.find(" BC") != std::string_view::npos) {
    return std::string(text);
  }
  std::string s(text);
  s[10] = 'T';
  if (with_zone) {
    if (s.size() > 3 && s.compare(s.size() - 3, 3, "+00") == 0) {
      s.replace(s.size() - 3, 3, "Z");
    } else if (s.size() > 6 && (s[s.size() - 3] == '+' || s[s.size() - 3] == '-')) {
      s += ":00";
    }
  }
  return s;
}

// Parses one array literal level starting at text[*pos] == '{'.
std::optional<nlohmann::json> ParseArray(std::string_view text, std::size_t* pos,
                                         std::uint32_t element) {
  if (*pos >= text.size() || text[*pos] != '{') return std::nullopt;
  ++*pos;
  nlohmann::json out = nlohmann::json::array();
  if (*pos < text.size() && text[*pos] == '}') {
    ++*pos;
    return out;
  }
  while (*pos < text.size()) {
    char c = text[*pos];
    if (c == '{') {
      auto inner = ParseArray(text, pos, element);
      if (!inner) return std::nullopt;
      out.push_back(std::move(*inner));
    } else if (c == '"') {
      std::string s;
      ++*pos;
      while (*pos < text.size() && text[*pos] != '"') {
        if (text[*pos] == '\\' && *pos + 1 < text.size()) ++*pos;
        s.push_back(text[(*pos)++]);
      }
      if (*pos >= text.size()) return std::nullopt;
      ++*pos;
      out.push_back(PgTextToJson(element, s));
    } else {
      std::size_t end = text.find_first_of(",}", *pos);
      if (end == std::string_view::npos) return std::nullopt;
      std::string_view s = text.substr(*pos, end - *pos);
      *pos = end;
      if (s == "NULL") {
        out.push_back(nullptr);
      } else {
        out.push_back(PgTextToJson(element, s));
      }
    }
    if (*pos >= text.size()) return std::nullopt;
    if (text[*pos] == ',') {
      ++*pos;
    } else if (text[*pos] == '}') {
      ++*pos;
      return out;
    } else {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

void AppendEscapedKeyPart(std::string* out, std::string_view v) {
  static const char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : v) {
    if (c == '%' || c == ',' || c == '/' || c < 0x20 || c == 0x7f) {
      out->push_back('%');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
}

void AppendArrayLiteral(std::string* out, const nlohmann::json& value, bool json_elements) {
  out->push_back('{');
  bool first = true;
  for (const auto& e : value) {
    if (!first) out->push_back(',');
    first = false;
    if (e.is_null()) {
      *out += "NULL";
    } else if (e.is_array() && !json_elements) {
      AppendArrayLiteral(out, e, json_elements);
    } else {
      std::string text = JsonToPgText(e, json_elements ? "jsonb" : "");
      out->push_back('"');
      for (char c : text) {
        if (c == '"' || c == '\\') out->push_back('\\');
        out->push_back(c);
      }
      out->push_back('"');
    }
  }
  out->push_back('}');
}

// PgTextToJson without the UTF-8 guard.
nlohmann::json MapPgText(std::uint32_t type_oid, std::string_view text) {
  switch (type_oid) {
    case kBool:
      return text == "t" || text == "true";
    case kInt2:
    case kInt4:
    case kInt8:
    case kOid: {
      auto v = ParseInt64(text);
      if (v) return *v;
      return std::string(text);
    }
    case kFloat4:
    case kFloat8:
      return FloatToJson(text);
    case kNumeric:
      return NumericToJson(text);
    case kJson:
    case kJsonb: {
      auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded()) return std::string(text);
      return parsed;
    }
    case kTimestamp:
      return TimestampToRfc3339(text, false);
    case kTimestampTz:
      return TimestampToRfc3339(text, true);
    default:
      break;
  }
  if (std::uint32_t element = ArrayElement(type_oid); element != 0) {
    std::size_t pos = 0;
    auto parsed = ParseArray(text, &pos, element);
    if (parsed && pos == text.size()) return std::move(*parsed);
  }
  return std::string(text);
}

}  // namespace

nlohmann::json PgTextToJson(std::uint32_t type_oid, std::string_view text) {
  nlohmann::json value = MapPgText(type_oid, text);
  if (IsUtf8(text)) return value;
  // pgoutput sends text in the database's encoding, and capture refuses databases that are not
  // UTF8 (docs/capture.md). Should a source break that promise, the value is kept with each
  // malformed byte replaced by U+FFFD: an exception when the row is serialized would end the
  // capture, and a row recorded with a visible replacement is better than no record.
  return nlohmann::json::parse(
      value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void AppendJsonString(std::string_view text, std::string* out) {
  bool plain = IsUtf8(text);
  for (std::size_t i = 0; plain && i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    plain = c >= 0x20 && c != '"' && c != '\\';
  }
  if (plain) {
    out->push_back('"');
    out->append(text);
    out->push_back('"');
    return;
  }
  // Escapes and replacement exactly as nlohmann::json writes them.
  *out += nlohmann::json(std::string(text))
              .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void AppendPgTextAsJson(std::uint32_t type_oid, std::string_view text, std::string* out) {
  switch (type_oid) {
    case kBool:
      out->append(text == "t" || text == "true" ? "true" : "false");
      return;
    case kInt2:
    case kInt4:
    case kInt8:
    case kOid:
      if (auto v = ParseInt64(text)) {
        out->append(std::to_string(*v));
        return;
      }
      break;
    case kFloat4:
    case kFloat8:
    case kNumeric:
    case kJson:
    case kJsonb:
    case kTimestamp:
    case kTimestampTz:
      break;
    default:
      if (ArrayElement(type_oid) == 0) return AppendJsonString(text, out);
      break;
  }
  *out += PgTextToJson(type_oid, text).dump();
}

std::string JsonToPgText(const nlohmann::json& value, std::string_view column_type) {
  bool is_array = column_type.size() > 2 && column_type.substr(column_type.size() - 2) == "[]";
  bool json_type = column_type.substr(0, 4) == "json";
  if (is_array && value.is_array()) {
    std::string out;
    AppendArrayLiteral(&out, value, json_type);
    return out;
  }
  if (json_type) return value.dump();
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  return value.dump();
}

std::string RowStreamName(std::string_view prefix, std::string_view schema, std::string_view table,
                          const std::vector<std::string>& key_values) {
  std::string out = TableStreamName(prefix, schema, table);
  out.push_back('/');
  for (std::size_t i = 0; i < key_values.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendEscapedKeyPart(&out, key_values[i]);
  }
  return out;
}

std::string TableStreamName(std::string_view prefix, std::string_view schema,
                            std::string_view table) {
  std::string out(prefix);
  out += schema;
  out.push_back('.');
  out += table;
  return out;
}

std::vector<std::string> DecodeRowKey(std::string_view key) {
  std::vector<std::string> parts(1);
  for (std::size_t i = 0; i < key.size(); ++i) {
    char c = key[i];
    if (c == ',') {
      parts.emplace_back();
    } else if (c == '%' && i + 2 < key.size()) {
      unsigned v = 0;
      std::from_chars(key.data() + i + 1, key.data() + i + 3, v, 16);
      parts.back().push_back(static_cast<char>(v));
      i += 2;
    } else {
      parts.back().push_back(c);
    }
  }
  return parts;
}

}  // namespace timetrail::capture
