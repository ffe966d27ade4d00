// A small JSON writer: appends objects, arrays, keys, strings, numbers and raw JSON text to one
// std::string, with the commas and colons in between.
//
// Every response body of the HTTP API is written with it. Stored event data and metadata are
// already valid JSON, kept exactly as the client sent them (numbers keep every digit), so they
// go in with Raw(), byte for byte, and are never parsed again on the way out.
#ifndef TIMETRAIL_JSON_JSON_WRITER_H_
#define TIMETRAIL_JSON_JSON_WRITER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace timetrail::json {

// Not thread-safe. The caller keeps the nesting balanced: every Begin has its End, and inside
// an object every value follows a Key. Writing continues after whatever "out" already holds.
class JsonWriter {
 public:
  JsonWriter() = default;
  // Reserves room for about "expected_bytes" of output, when the caller knows.
  explicit JsonWriter(std::size_t expected_bytes) { out_.reserve(expected_bytes); }

  JsonWriter& BeginObject() { return Open('{'); }
  JsonWriter& EndObject() { return Close('}'); }
  JsonWriter& BeginArray() { return Open('['); }
  JsonWriter& EndArray() { return Close(']'); }

  // An object member's name; the next call writes its value.
  JsonWriter& Key(std::string_view key);

  // A string, escaped (quotes, backslashes, control characters; bytes that are not UTF-8
  // become U+FFFD, since JSON text is UTF-8 and error messages may quote what a client sent).
  JsonWriter& String(std::string_view text);
  JsonWriter& Uint(std::uint64_t v);
  JsonWriter& Int(std::int64_t v);
  // "v" with exactly "decimals" digits after the point; null when it is not finite (JSON has no
  // NaN or infinity).
  JsonWriter& Fixed(double v, int decimals);
  JsonWriter& Bool(bool v);
  JsonWriter& Null();
  // JSON text inserted as is. REQUIRES: "json" is one valid JSON value.
  JsonWriter& Raw(std::string_view json);

  // Null when empty, otherwise the value: for optional members the API answers with null.
  // A string such as a paging cursor, where empty means none: null then.
  JsonWriter& NonEmptyStringOrNull(std::string_view text) {
    return text.empty() ? Null() : String(text);
  }
  JsonWriter& UintOrNull(const std::optional<std::uint64_t>& v) { return v ? Uint(*v) : Null(); }
  JsonWriter& StringOrNull(const std::optional<std::string_view>& v) {
    return v ? String(*v) : Null();
  }

  const std::string& str() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  template <typename Integer>
  JsonWriter& Integral(Integer v);
  JsonWriter& Open(char bracket);
  JsonWriter& Close(char bracket);
  // Writes the comma that separates this value (or key) from the one before it.
  void Separate() {
    if (need_comma_) out_.push_back(',');
    need_comma_ = false;
  }

  std::string out_;
  // True after a complete value or member: the next one needs a comma first.
  bool need_comma_ = false;
};

// Appends "text" as a JSON string literal, quotes included, to "out"; escaped as String() does.
void AppendQuoted(std::string_view text, std::string* out);

// "text" as a JSON string literal, quotes included.
std::string JsonQuote(std::string_view text);

}  // namespace timetrail::json

#endif  // TIMETRAIL_JSON_JSON_WRITER_H_
