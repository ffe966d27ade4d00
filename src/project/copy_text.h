// Rows in PostgreSQL's COPY text format, which the projections write their batches in: one
// round trip and no per-row statement, the fastest way into a table short of binary COPY.
#ifndef TIMETRAIL_PROJECT_COPY_TEXT_H_
#define TIMETRAIL_PROJECT_COPY_TEXT_H_

#include <optional>
#include <string>
#include <string_view>

namespace timetrail::project {

// Builds rows field by field: tab between fields, newline after each row, \N for NULL, and
// backslash, tab, newline and carriage return escaped inside a field.
class CopyRows {
 public:
  void Field(std::string_view text) {
    Separate();
    for (char c : text) {
      switch (c) {
        case '\\':
          out_ += "\\\\";
          break;
        case '\t':
          out_ += "\\t";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\r':
          out_ += "\\r";
          break;
        default:
          out_ += c;
      }
    }
  }
  void Field(const std::string& text) { Field(std::string_view(text)); }
  void Field(const char* text) { Field(std::string_view(text)); }
  void Field(const std::optional<std::string>& text) {
    if (text) {
      Field(std::string_view(*text));
    } else {
      Null();
    }
  }
  void Null() {
    Separate();
    out_ += "\\N";
  }
  void EndRow() {
    out_ += '\n';
    at_row_start_ = true;
    ++rows_;
  }

  const std::string& text() const { return out_; }
  std::size_t rows() const { return rows_; }
  bool empty() const { return rows_ == 0; }
  void Clear() {
    out_.clear();
    rows_ = 0;
    at_row_start_ = true;
  }

 private:
  void Separate() {
    if (!at_row_start_) out_ += '\t';
    at_row_start_ = false;
  }

  std::string out_;
  std::size_t rows_ = 0;
  bool at_row_start_ = true;
};

}  // namespace timetrail::project

#endif  // TIMETRAIL_PROJECT_COPY_TEXT_H_
