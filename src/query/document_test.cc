#include "query/document.h"

#include <gtest/gtest.h>

namespace timetrail::query {
namespace {

RecordedEvent Ev(Revision r, std::string type, std::string data, std::int64_t valid = 0) {
  RecordedEvent e;
  e.revision = r;
  e.position = r + 1;
  e.type = std::move(type);
  e.data = std::move(data);
  e.metadata = "{}";
  e.valid_from = Timestamp{valid};
  return e;
}

TEST(DocumentTest, PutPatchDeleteFold) {
  std::vector<RecordedEvent> events = {
      Ev(0, "$put", R"({"a":1,"b":{"c":2}})"),
      Ev(1, "Noted", R"("domain events are ignored")"),
      Ev(2, "$patch", R"({"b":{"c":null,"d":3},"e":[1]})"),
  };
  auto s = Fold("s", Document{}, std::nullopt, events);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->exists);
  EXPECT_EQ(nlohmann::json::parse(s->state), nlohmann::json::parse(R"({"a":1,"b":{"d":3},"e":[1]})"));
  ASSERT_TRUE(s->event);
  EXPECT_EQ(s->event->revision, 2u);

  events.push_back(Ev(3, "$delete", "null"));
  s = Fold("s", Document{}, std::nullopt, events);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->exists);
  EXPECT_EQ(s->state, "null");

  // A patch after a delete applies to {}.
  events.push_back(Ev(4, "$patch", R"({"x":true})"));
  s = Fold("s", Document{}, std::nullopt, events);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->state, R"({"x":true})");
}

TEST(DocumentTest, DamagedStoredDataIsCorruption) {
  std::vector<RecordedEvent> events = {Ev(0, "$put", "{not json")};
  auto s = Fold("s", Document{}, std::nullopt, events);
  EXPECT_EQ(s.status().code(), StatusCode::kCorruption);
}

TEST(DocumentTest, HistoryIsMinimal) {
  std::vector<RecordedEvent> events = {
      Ev(0, "$put", R"({"loc":"NY","n":1})"),
      Ev(1, "$patch", R"({"n":2})"),  // does not touch /loc: no new interval
      Ev(2, "$patch", R"({"loc":"SF"})"),
      Ev(3, "$delete", "null"),
      Ev(4, "$put", R"({"loc":"SF"})"),
  };
  auto p = ParsePointer("/loc");
  ASSERT_TRUE(p.ok());
  auto h = History(events, *p);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 4u);
  EXPECT_EQ((*h)[0].value, "\"NY\"");
  EXPECT_EQ((*h)[0].from.revision, 0u);
  EXPECT_EQ((*h)[0].to->revision, 2u);
  EXPECT_EQ((*h)[1].value, "\"SF\"");
  EXPECT_FALSE((*h)[2].present);
  EXPECT_EQ((*h)[3].from.revision, 4u);
  EXPECT_FALSE((*h)[3].to.has_value());
}

TEST(DocumentTest, BadPointerIsInvalidArgument) {
  EXPECT_EQ(ParsePointer("loc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParsePointer("/a~2").status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(ParsePointer("").ok());
}

TEST(DocumentTest, DiffIsJsonPatch) {
  EntityState a, b;
  a.state = R"({"loc":"NY"})";
  b.state = R"({"loc":"SF","x":1})";
  auto d = DiffStates(a, b);
  ASSERT_TRUE(d.ok());
  nlohmann::json patch = nlohmann::json::parse(*d);
  EXPECT_EQ(nlohmann::json::parse(a.state).patch(patch), nlohmann::json::parse(b.state));
}

}  // namespace
}  // namespace timetrail::query
