#include "cli/sse_parser.h"

#include <utility>

namespace timetrail::cli {

bool SseParser::Feed(std::string_view bytes, const MessageFn& on_message,
                     const CommentFn& on_comment) {
  std::size_t i = 0;
  if (after_cr_ && !bytes.empty()) {
    after_cr_ = false;
    if (bytes.front() == '\n') i = 1;  // the rest of a CRLF split between two pieces
  }
  while (i < bytes.size()) {
    std::size_t end = bytes.find_first_of("\r\n", i);
    if (end == std::string_view::npos) {
      line_.append(bytes.substr(i));
      break;
    }
    std::string_view line = bytes.substr(i, end - i);
    if (!line_.empty()) {
      line_.append(line);
      line = line_;
    }
    std::size_t next = end + 1;
    if (bytes[end] == '\r') {
      if (next == bytes.size()) {
        after_cr_ = true;
      } else if (bytes[next] == '\n') {
        ++next;
      }
    }
    bool go = Line(line, on_message, on_comment);
    line_.clear();
    if (!go) return false;
    i = next;
  }
  return true;
}

bool SseParser::Line(std::string_view line, const MessageFn& on_message,
                     const CommentFn& on_comment) {
  if (first_line_) {
    first_line_ = false;
    if (line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
  }
  if (line.empty()) {  // a blank line dispatches the message
    if (!has_data_) {
      event_.clear();
      return true;
    }
    SseMessage message;
    message.id = last_id_;
    message.event = event_.empty() ? "message" : std::move(event_);
    message.data = std::move(data_);
    event_.clear();
    data_.clear();
    has_data_ = false;
    return on_message(message);
  }
  if (line.front() == ':') {
    line.remove_prefix(1);
    if (line.starts_with(' ')) line.remove_prefix(1);
    return !on_comment || on_comment(line);
  }
  std::size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value =
      colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
  if (value.starts_with(' ')) value.remove_prefix(1);
  if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_ = value;
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_ = value;
  }
  return true;
}

}  // namespace timetrail::cli
