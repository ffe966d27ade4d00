#include "json/object_scan.h"

#include <cstddef>

namespace timetrail::json {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  void SkipSpace() {
    while (pos_ < text_.size() && IsSpace(text_[pos_])) ++pos_;
  }
  bool Consume(char c) {
    SkipSpace();
    if (pos_ >= text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  bool Peek(char c) {
    SkipSpace();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  bool AtEnd() {
    SkipSpace();
    return pos_ == text_.size();
  }
  // At an opening quote: moves past the closing one. Sets *escaped if the string holds a
  // backslash escape.
  bool SkipString(bool* escaped) {
    ++pos_;  // the opening quote
    while (pos_ < text_.size()) {
      char c = text_[pos_++];
      if (c == '"') return true;
      if (c == '\\') {
        *escaped = true;
        ++pos_;  // the escaped character (for \u, the hex digits are ordinary characters)
      }
    }
    return false;
  }
  // Moves past one value; its text is text_[start, pos_).
  bool SkipValue() {
    SkipSpace();
    if (pos_ >= text_.size()) return false;
    bool escaped = false;
    char c = text_[pos_];
    if (c == '"') return SkipString(&escaped);
    if (c == '{' || c == '[') {
      int depth = 0;
      while (pos_ < text_.size()) {
        c = text_[pos_];
        if (c == '"') {
          if (!SkipString(&escaped)) return false;
          continue;
        }
        ++pos_;
        if (c == '{' || c == '[') {
          ++depth;
        } else if (c == '}' || c == ']') {
          if (--depth == 0) return true;
        }
      }
      return false;
    }
    const std::size_t start = pos_;
    while (pos_ < text_.size() && !IsSpace(text_[pos_]) && text_[pos_] != ',' &&
           text_[pos_] != '}' && text_[pos_] != ']') {
      ++pos_;
    }
    return pos_ > start;
  }
  std::size_t pos() const { return pos_; }
  std::string_view Slice(std::size_t from, std::size_t to) const {
    return text_.substr(from, to - from);
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

bool ScanObjectMembers(std::string_view text,
                       const std::function<bool(const ScannedMember&)>& member) {
  Scanner s(text);
  if (!s.Consume('{')) return false;
  if (s.Consume('}')) return s.AtEnd();
  while (true) {
    if (!s.Peek('"')) return false;
    ScannedMember m;
    const std::size_t key_start = s.pos() + 1;
    if (!s.SkipString(&m.key_escaped)) return false;
    m.raw_key = s.Slice(key_start, s.pos() - 1);
    if (!s.Consume(':')) return false;
    s.SkipSpace();
    const std::size_t value_start = s.pos();
    if (!s.SkipValue()) return false;
    m.value = s.Slice(value_start, s.pos());
    if (!member(m)) return true;
    if (s.Consume(',')) continue;
    if (s.Consume('}')) return s.AtEnd();
    return false;
  }
}

}  // namespace timetrail::json
