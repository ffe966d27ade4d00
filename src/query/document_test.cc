#include "query/document.h"

#include <gtest/gtest.h>

#include <random>

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
  EXPECT_EQ(nlohmann::json::parse(s->state),
            nlohmann::json::parse(R"({"a":1,"b":{"d":3},"e":[1]})"));
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

// A random document event over a few member names (one of them needing escapes), nested
// objects, arrays, nulls and scalars; keys are sometimes written with \u escapes, as a client
// may send them.
struct RandomEvents {
  std::mt19937 rng{20261204};
  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }
  nlohmann::json Value(int depth) {
    switch (Pick(depth > 1 ? 5 : 7)) {
      case 0:
        return Pick(100);
      case 1:
        return "s" + std::to_string(Pick(3));
      case 2:
        return nullptr;
      case 3:
        return 1.5 * Pick(3);
      case 4:
        return nlohmann::json::array({Pick(3), "x"});
      default: {
        nlohmann::json o = nlohmann::json::object();
        for (const char* k : {"b", "c"}) {
          if (Pick(2)) o[k] = Value(depth + 1);
        }
        return o;
      }
    }
  }
  std::string Object() {
    nlohmann::json o = nlohmann::json::object();
    for (const char* k : {"a", "b", "a/b", "q\"t"}) {
      if (Pick(2)) o[k] = Value(0);
    }
    std::string text = o.dump();
    if (Pick(3) == 0) {
      // The same object with the name "a" escaped.
      const std::size_t at = text.find("\"a\":");
      if (at != std::string::npos) text.replace(at, 3, "\"\\u0061\"");
    }
    return text;
  }
};

TEST(DocumentTest, PointerTrackerAgreesWithTheWholeFold) {
  RandomEvents gen;
  for (const char* path : {"", "/a", "/a/b", "/a/c/b", "/a/0", "/a~1b", "/q\"t", "/zz"}) {
    auto tracker = PointerTracker::Make(path);
    ASSERT_TRUE(tracker.ok()) << path;
    auto pointer = ParsePointer(path);
    ASSERT_TRUE(pointer.ok());
    Document doc;
    for (int i = 0; i < 400; ++i) {
      std::string type, data;
      switch (gen.Pick(6)) {
        case 0:
          type = "$delete";
          data = "null";
          break;
        case 1:
          type = "Noted";
          data = R"({"a":"not a document event"})";
          break;
        case 2:
          type = "$put";
          data = gen.Object();
          break;
        default:
          type = "$patch";
          data = gen.Object();
      }
      std::optional<nlohmann::json> before = tracker->Value();
      bool changed = true;
      ASSERT_TRUE(tracker->Apply(type, data, &changed).ok()) << data;
      ASSERT_TRUE(Apply(doc, type, data).ok());
      std::optional<nlohmann::json> want =
          doc.exists ? ValueAtPointer(doc.state, *pointer) : std::nullopt;
      ASSERT_EQ(tracker->Value(), want) << path << " after " << type << " " << data;
      ASSERT_EQ(tracker->ValueText(),
                want ? std::optional<std::string>(want->dump()) : std::nullopt)
          << path << " after " << type << " " << data;
      if (!changed) {
        EXPECT_EQ(before, want) << path << ": claimed unchanged by " << data;
      }
      if (i % 50 == 49) {
        // Restarting from a folded document (a snapshot) gives the same value.
        auto restarted = PointerTracker::Make(path);
        restarted->Reset(doc);
        EXPECT_EQ(restarted->Value(), want) << path;
      }
    }
  }
}

TEST(DocumentTest, SameValueComparesJsonValuesGivenAsText) {
  using Text = std::optional<std::string>;
  EXPECT_TRUE(SameValue(std::nullopt, std::nullopt));
  EXPECT_FALSE(SameValue(Text("null"), std::nullopt));
  EXPECT_TRUE(SameValue(Text(R"("a")"), Text(R"("a")")));
  EXPECT_FALSE(SameValue(Text(R"("a")"), Text(R"("b")")));
  EXPECT_FALSE(SameValue(Text("true"), Text(R"("true")")));
  EXPECT_TRUE(SameValue(Text("1"), Text("1.0")));
  EXPECT_FALSE(SameValue(Text("1"), Text("2")));
  EXPECT_TRUE(SameValue(Text(R"({"a":1,"b":[2]})"), Text(R"({"a":1.0,"b":[2.0]})")));
  EXPECT_FALSE(SameValue(Text(R"({"a":1})"), Text(R"({"a":"1"})")));
}

TEST(DocumentTest, PointerTrackerReportsDamagedData) {
  auto t = PointerTracker::Make("/a");
  ASSERT_TRUE(t.ok());
  bool changed = false;
  EXPECT_EQ(t->Apply("$put", "{not json", &changed).code(), StatusCode::kCorruption);
  EXPECT_EQ(t->Apply("$patch", R"({"a": tru})", &changed).code(), StatusCode::kCorruption);
  EXPECT_EQ(t->Apply("$patch", R"(["a"])", &changed).code(), StatusCode::kCorruption);
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
