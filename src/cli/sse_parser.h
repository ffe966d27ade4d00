// The text/event-stream format (server-sent events, HTML Living Standard §9.2.6), parsed from
// bytes as they arrive: no transport, so the event stream reader and the tests feed it alike.
#ifndef TIMETRAIL_CLI_SSE_PARSER_H_
#define TIMETRAIL_CLI_SSE_PARSER_H_

#include <functional>
#include <string>
#include <string_view>

namespace timetrail::cli {

// One message of a server-sent event stream. Intentionally copyable.
struct SseMessage {
  // The last event ID: set by an "id" field and kept for later messages until another one.
  std::string id;
  // The "event" field; "message" when the message has none.
  std::string event;
  // The "data" fields, joined with "\n".
  std::string data;
};

// Splits a stream into lines (ended by CRLF, LF or CR, also when a chunk of input ends between
// the CR and the LF), gathers the fields of each message and hands it over at the blank line
// that ends it. Comment lines (":" ...) go to "on_comment" without the colon and one space
// after it. "retry" (the CLI does not reconnect) and unknown fields are ignored; a message
// without data is not dispatched, as the standard says; a leading byte order mark is skipped.
// Not thread-safe.
class SseParser {
 public:
  using MessageFn = std::function<bool(const SseMessage&)>;
  using CommentFn = std::function<bool(std::string_view)>;

  // Parses "bytes", the next piece of the stream, calling "on_message" for every message and
  // "on_comment" (may be empty) for every comment it completes, in order. When one of them
  // returns false, stops at once and returns false; the parser must not be fed again then.
  bool Feed(std::string_view bytes, const MessageFn& on_message, const CommentFn& on_comment = {});

 private:
  bool Line(std::string_view line, const MessageFn& on_message, const CommentFn& on_comment);

  std::string line_;        // the line so far, when a piece ended inside it
  bool after_cr_ = false;   // the last piece ended with a CR: an LF next belongs to it
  bool first_line_ = true;  // a byte order mark may start the stream
  std::string last_id_;     // the last event ID buffer
  std::string event_;       // the event type buffer
  std::string data_;        // the data buffer
  bool has_data_ = false;   // a "data" field was seen (the data may still be empty)
};

}  // namespace timetrail::cli

#endif  // TIMETRAIL_CLI_SSE_PARSER_H_
