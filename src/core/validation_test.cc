#include "core/validation.h"

#include <gtest/gtest.h>

namespace timetrail {
namespace {

Transaction OneEvent(std::string stream, std::string type, std::string data,
                     std::string metadata = "") {
  Transaction tx;
  ProposedEvent e;
  e.type = std::move(type);
  e.data = std::move(data);
  e.metadata = std::move(metadata);
  tx.appends.push_back(StreamAppend{std::move(stream), ExpectedRevision::Any(), {e}});
  return tx;
}

TEST(ValidationTest, Utf8Rules) {
  EXPECT_TRUE(IsPrintableUtf8("public.orders/42"));
  EXPECT_TRUE(IsUtf8("tab\there \xC3\xA9"));  // control characters are UTF-8, just not printable
  EXPECT_FALSE(IsUtf8("caf\xE9"));
  EXPECT_FALSE(IsUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsUtf8("\xED\xA0\x80"));      // a surrogate
  EXPECT_TRUE(IsPrintableUtf8("caf\xC3\xA9/\xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsPrintableUtf8("tab\there"));
  EXPECT_FALSE(IsPrintableUtf8(std::string("nul\0x", 5)));
  EXPECT_FALSE(IsPrintableUtf8("\x7F"));
  EXPECT_FALSE(IsPrintableUtf8("\xC2\x85"));          // C1 control
  EXPECT_FALSE(IsPrintableUtf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(IsPrintableUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsPrintableUtf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsPrintableUtf8("\xE2\x82"));          // truncated
}

TEST(ValidationTest, AcceptsAWellFormedTransaction) {
  EXPECT_TRUE(ValidateTransaction(OneEvent("friend-1", "$put", R"({"a":1})", R"({"actor":"x"})"),
                                  Limits{})
                  .ok());
  EXPECT_TRUE(ValidateTransaction(OneEvent("friend-1", "Moved", "[1,2]"), Limits{}).ok());
  EXPECT_TRUE(ValidateTransaction(OneEvent("friend-1", "$delete", ""), Limits{}).ok());
}

struct BadCase {
  Transaction tx;
  StatusCode code;
  std::string field;  // the message must name it
};

TEST(ValidationTest, EveryRuleNamesTheFieldAndChangesNothing) {
  Limits limits;
  limits.max_event_bytes = 100;
  limits.max_transaction_events = 3;
  std::vector<BadCase> cases;
  cases.push_back({Transaction{}, StatusCode::kInvalidArgument, "appends"});
  cases.push_back({OneEvent("", "T", "1"), StatusCode::kInvalidArgument, "appends[0].stream"});
  cases.push_back({OneEvent(std::string(513, 's'), "T", "1"), StatusCode::kInvalidArgument,
                   "max_stream_name_bytes"});
  cases.push_back({OneEvent("a\nb", "T", "1"), StatusCode::kInvalidArgument, "control"});
  cases.push_back({OneEvent("s", "", "1"), StatusCode::kInvalidArgument, "events[0].type"});
  cases.push_back({OneEvent("s", std::string(257, 't'), "1"), StatusCode::kInvalidArgument,
                   "max_type_bytes"});
  cases.push_back({OneEvent("s", "$snapshot", "{}"), StatusCode::kInvalidArgument, "reserved"});
  cases.push_back({OneEvent("s", "T", "{bad"), StatusCode::kInvalidArgument, "events[0].data"});
  cases.push_back({OneEvent("s", "T", "1", "[1]"), StatusCode::kInvalidArgument, "metadata"});
  cases.push_back({OneEvent("s", "T", "1", "{"), StatusCode::kInvalidArgument, "metadata"});
  cases.push_back({OneEvent("s", "$put", "[1]"), StatusCode::kInvalidArgument, "JSON object"});
  cases.push_back({OneEvent("s", "$patch", "3"), StatusCode::kInvalidArgument, "JSON object"});
  cases.push_back({OneEvent("s", "$delete", R"({"a":1})"), StatusCode::kInvalidArgument, "$delete"});
  cases.push_back({OneEvent("s", "T", "\"" + std::string(200, 'x') + "\""), StatusCode::kTooLarge,
                   "max_event_bytes"});
  {
    Transaction tx = OneEvent("s", "T", "1");
    tx.appends[0].events.assign(4, tx.appends[0].events[0]);
    cases.push_back({tx, StatusCode::kTooLarge, "max_transaction_events"});
  }
  {
    Transaction tx = OneEvent("s", "T", "1");
    tx.appends.push_back(tx.appends[0]);
    cases.push_back({tx, StatusCode::kInvalidArgument, "appears twice"});
  }
  {
    Transaction tx = OneEvent("s", "T", "1");
    tx.appends[0].events.clear();
    cases.push_back({tx, StatusCode::kInvalidArgument, "at least one event"});
  }
  {
    Transaction tx = OneEvent("s", "T", "1");
    tx.appends[0].events[0].id = Uuid::Generate();
    tx.appends[0].events.push_back(tx.appends[0].events[0]);
    cases.push_back({tx, StatusCode::kInvalidArgument, "used by two events"});
  }
  {
    Transaction tx = OneEvent("s", "T", "1");
    tx.appends[0].events[0].id = Uuid{};
    cases.push_back({tx, StatusCode::kInvalidArgument, "nil UUID"});
  }
  {
    Transaction tx = OneEvent("s", "T", "1");
    tx.appends[0].events[0].valid_from = Timestamp{kMaxTimestamp.micros + 1};
    cases.push_back({tx, StatusCode::kInvalidArgument, "valid_from"});
  }
  for (const BadCase& c : cases) {
    Status s = ValidateTransaction(c.tx, limits);
    ASSERT_FALSE(s.ok()) << c.field;
    EXPECT_EQ(s.code(), c.code) << s.ToString();
    EXPECT_NE(s.message().find(c.field), std::string::npos) << s.ToString();
  }
}

TEST(ValidationTest, ExpectedRevisionParsing) {
  EXPECT_EQ(*ExpectedRevision::Parse("any"), ExpectedRevision::Any());
  EXPECT_EQ(*ExpectedRevision::Parse("no_stream"), ExpectedRevision::NoStream());
  EXPECT_EQ(*ExpectedRevision::Parse("exists"), ExpectedRevision::Exists());
  EXPECT_EQ(*ExpectedRevision::Parse("17"), ExpectedRevision::Exact(17));
  EXPECT_FALSE(ExpectedRevision::Parse("-1").ok());
  EXPECT_FALSE(ExpectedRevision::Parse("1x").ok());
  EXPECT_FALSE(ExpectedRevision::Parse("").ok());
  EXPECT_TRUE(ExpectedRevision::Exact(3).Matches(3));
  EXPECT_FALSE(ExpectedRevision::Exact(3).Matches(std::nullopt));
  EXPECT_TRUE(ExpectedRevision::NoStream().Matches(std::nullopt));
  EXPECT_FALSE(ExpectedRevision::Exists().Matches(std::nullopt));
}

TEST(ValidationTest, UuidParsing) {
  Uuid u = Uuid::Generate();
  EXPECT_EQ(Uuid::Parse(u.ToString())->bytes, u.bytes);
  EXPECT_EQ((u.bytes[6] >> 4), 7);  // version 7
  EXPECT_FALSE(Uuid::Parse("not-a-uuid").ok());
  EXPECT_FALSE(Uuid::Parse("0191b7a4-6c1e-7d2a-9f3b-1a2b3c4d5e6g").ok());
  EXPECT_NE(Uuid::Generate(), Uuid::Generate());
}

}  // namespace
}  // namespace timetrail
