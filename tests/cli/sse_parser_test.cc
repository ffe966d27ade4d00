// The event stream parser on its own: fields, multi-line data, comments, every kind of line end,
// and the same messages however the bytes are split into pieces.
#include "cli/sse_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace timetrail::cli {
namespace {

struct Parsed {
  std::vector<SseMessage> messages;
  std::vector<std::string> comments;
};

Parsed Parse(const std::vector<std::string_view>& pieces) {
  Parsed out;
  SseParser parser;
  for (std::string_view piece : pieces) {
    EXPECT_TRUE(parser.Feed(
        piece,
        [&](const SseMessage& m) {
          out.messages.push_back(m);
          return true;
        },
        [&](std::string_view c) {
          out.comments.emplace_back(c);
          return true;
        }));
  }
  return out;
}

Parsed Parse(std::string_view text) { return Parse(std::vector<std::string_view>{text}); }

bool Same(const SseMessage& a, const SseMessage& b) {
  return a.id == b.id && a.event == b.event && a.data == b.data;
}

std::string Show(const std::vector<SseMessage>& messages) {
  std::string out;
  for (const SseMessage& m : messages) {
    out += "{id '" + m.id + "', event '" + m.event + "', data '" + m.data + "'}\n";
  }
  return out;
}

void ExpectMessages(const std::vector<SseMessage>& got, const std::vector<SseMessage>& want) {
  ASSERT_EQ(got.size(), want.size()) << Show(got);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(Same(got[i], want[i])) << "message " << i << ":\n" << Show(got);
  }
}

TEST(SseParserTest, FieldsMultiLineDataAndComments) {
  Parsed p = Parse(
      ": subscribed\n\n"
      "id: 17\nevent: event\ndata: {\"a\":1}\n\n"
      ": keepalive\n\n"
      "data: first line\ndata: second line\ndata:\ndata:  two spaces\n\n");
  ExpectMessages(p.messages, {{"17", "event", "{\"a\":1}"},
                              {"17", "message", "first line\nsecond line\n\n two spaces"}});
  EXPECT_EQ(p.comments, (std::vector<std::string>{"subscribed", "keepalive"}));
}

TEST(SseParserTest, CrlfLfAndCrEndLines) {
  SseMessage want{"1", "event", "x\ny"};
  ExpectMessages(Parse("id: 1\r\nevent: event\r\ndata: x\r\ndata: y\r\n\r\n").messages, {want});
  ExpectMessages(Parse("id: 1\nevent: event\ndata: x\ndata: y\n\n").messages, {want});
  ExpectMessages(Parse("id: 1\revent: event\rdata: x\rdata: y\r\r").messages, {want});
  ExpectMessages(Parse("id: 1\revent: event\r\ndata: x\ndata: y\n\r").messages, {want});
}

TEST(SseParserTest, EverySplitOfTheBytesGivesTheSameMessages) {
  const std::string text =
      "\xEF\xBB\xBF: hello\r\n\r\n"
      "id: 1\r\nevent: event\r\ndata: {\"stream\":\"a\"}\r\n\r\n"
      "id: 2\revent: event\rdata: one\rdata: two\r\r"
      ": keepalive\n\n"
      "id: 3\nevent: event\ndata: three\n\n";
  const std::vector<SseMessage> want = {
      {"1", "event", "{\"stream\":\"a\"}"}, {"2", "event", "one\ntwo"}, {"3", "event", "three"}};
  ExpectMessages(Parse(text).messages, want);
  for (std::size_t a = 0; a <= text.size(); ++a) {
    for (std::size_t b = a; b <= text.size(); ++b) {
      std::string_view t = text;
      Parsed p = Parse({t.substr(0, a), t.substr(a, b - a), t.substr(b)});
      ASSERT_NO_FATAL_FAILURE(ExpectMessages(p.messages, want)) << "split at " << a << ", " << b;
      ASSERT_EQ(p.comments, (std::vector<std::string>{"hello", "keepalive"}));
    }
  }
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < text.size(); ++i)
    bytes.push_back(std::string_view(text).substr(i, 1));
  ExpectMessages(Parse(bytes).messages, want);
}

TEST(SseParserTest, FieldValuesFollowTheStandard) {
  // Only one space after the colon is dropped; a field without a colon has an empty value;
  // unknown fields, "retry" and field names in another case are ignored.
  ExpectMessages(Parse("data:x\n\ndata:  y\n\ndata\n\n").messages,
                 {{"", "message", "x"}, {"", "message", " y"}, {"", "message", ""}});
  ExpectMessages(Parse("retry: 100\nfoo: bar\nDATA: no\ndata: yes\n\n").messages,
                 {{"", "message", "yes"}});
  // The event type belongs to one message; the last event ID stays until another "id", an
  // empty "id" clears it, and one with a NUL is ignored.
  ExpectMessages(Parse("id: 5\nevent: a\ndata: 1\n\ndata: 2\n\nid\ndata: 3\n\n").messages,
                 {{"5", "a", "1"}, {"5", "message", "2"}, {"", "message", "3"}});
  ExpectMessages(Parse(std::string_view("id: 7\ndata: 1\n\nid: 8\0x\ndata: 2\n\n", 32)).messages,
                 {{"7", "message", "1"}, {"7", "message", "2"}});
  // A value may hold colons.
  ExpectMessages(Parse("data: a:b: c\n\n").messages, {{"", "message", "a:b: c"}});
}

TEST(SseParserTest, OnlyABlankLineDispatchesAndOnlyWithData) {
  // No data: nothing to dispatch, and the event type does not carry over.
  Parsed p = Parse("event: lonely\nid: 9\n\ndata: x\n\n");
  ExpectMessages(p.messages, {{"9", "message", "x"}});
  // A message the stream ends inside is never dispatched.
  EXPECT_TRUE(Parse("data: unfinished\n").messages.empty());
  EXPECT_TRUE(Parse("data: unfinished").messages.empty());
}

TEST(SseParserTest, ACallbackThatReturnsFalseStopsTheFeed) {
  SseParser parser;
  int messages = 0;
  auto on_message = [&](const SseMessage&) { return ++messages < 2; };
  EXPECT_FALSE(parser.Feed("data: 1\n\ndata: 2\n\ndata: 3\n\n", on_message));
  EXPECT_EQ(messages, 2);

  SseParser commented;
  int seen = 0;
  EXPECT_FALSE(commented.Feed(
      ": error the store is closing\n\ndata: after\n\n",
      [&](const SseMessage&) {
        ++seen;
        return true;
      },
      [](std::string_view c) { return !c.starts_with("error "); }));
  EXPECT_EQ(seen, 0);
}

}  // namespace
}  // namespace timetrail::cli
