#include "capture/row_mapping.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "timetrail/event.h"

namespace timetrail::capture {
namespace {

using nlohmann::json;

RelationInfo Orders() {
  RelationInfo rel;
  rel.msg.schema = "public";
  rel.msg.table = "orders";
  auto column = [](const char* name, std::uint32_t oid) {
    Column c;
    c.name = name;
    c.type_oid = oid;
    return c;
  };
  rel.msg.columns = {column("id", 23), column("status", 25), column("note", 25),
                     column("paid", 16)};
  rel.key_columns = {0};
  return rel;
}

Value Text(std::string text) {
  Value v;
  v.kind = Value::Kind::kText;
  v.bytes = std::move(text);
  return v;
}
Value Null() { return Value{}; }
Value Toast() {
  Value v;
  v.kind = Value::Kind::kUnchangedToast;
  return v;
}

TEST(RowMappingTest, RowsAreJsonTextOfTheirColumns) {
  RelationInfo rel = Orders();
  RowDocument row = RowFromTuple(rel, {Text("42"), Text("new \"1\""), Null(), Text("t")}, nullptr);
  EXPECT_EQ(json::parse(row.ToJson()),
            json::parse(R"({"id":42,"status":"new \"1\"","note":null,"paid":true})"));
  EXPECT_EQ(*RowStream("app:", rel, {Text("42"), Null(), Null(), Null()}, nullptr),
            "app:public.orders/42");

  // An unchanged TOAST value is the previous state's; without one it is left out.
  RowDocument next = RowFromTuple(rel, {Text("42"), Text("paid"), Toast(), Text("t")}, &row);
  EXPECT_EQ(*next.Find("note"), "null");
  RowDocument unknown = RowFromTuple(rel, {Text("42"), Text("paid"), Toast(), Text("t")}, nullptr);
  EXPECT_EQ(unknown.Find("note"), nullptr);
}

TEST(RowMappingTest, UpdatesArePatchesOfTheColumnsThatChanged) {
  RelationInfo rel = Orders();
  RowDocument before = RowFromTuple(rel, {Text("42"), Text("new"), Text("x"), Text("f")}, nullptr);
  RowDocument after = RowFromTuple(rel, {Text("42"), Text("paid"), Text("x"), Text("t")}, &before);
  DocumentChange change = UpdateChange(rel, &before, after);
  EXPECT_EQ(change.type, kPatchType);
  EXPECT_EQ(json::parse(change.data), json::parse(R"({"status":"paid","paid":true})"));
  EXPECT_EQ(json::parse(change.new_state.ToJson()), json::parse(after.ToJson()));

  // No state known: every column is in the patch.
  change = UpdateChange(rel, nullptr, after);
  EXPECT_EQ(change.type, kPatchType);
  EXPECT_EQ(json::parse(change.data), json::parse(after.ToJson()));

  // A column set to NULL: the whole row, as a $put (a merge patch's null would remove it).
  RowDocument cleared = RowFromTuple(rel, {Text("42"), Text("paid"), Null(), Text("t")}, &after);
  change = UpdateChange(rel, &after, cleared);
  EXPECT_EQ(change.type, kPutType);
  EXPECT_EQ(json::parse(change.data),
            json::parse(R"({"id":42,"status":"paid","note":null,"paid":true})"));

  // A member whose column the table dropped is removed by the patch.
  RowDocument old_shape = after;
  old_shape.Append("legacy", "\"gone\"");
  change = UpdateChange(rel, &old_shape, after);
  EXPECT_EQ(change.type, kPatchType);
  EXPECT_EQ(json::parse(change.data), json::parse(R"({"legacy":null})"));
  EXPECT_EQ(change.new_state.Find("legacy"), nullptr);
}

TEST(RowMappingTest, AStoredStateComparesEqualToTheSameRowFromTheSource) {
  // The state read back from the store (folded, then written by the JSON library) and the row
  // built from pgoutput's text must give equal member texts, or every update after a cache miss
  // would repeat unchanged columns.
  RelationInfo rel = Orders();
  RowDocument row = RowFromTuple(
      rel, {Text("7"), Text("tab\there \"q\" \\ \x01 h\xc3\xa9"), Text("plain"), Text("f")},
      nullptr);
  auto stored = RowDocument::Parse(json::parse(row.ToJson()).dump());
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  DocumentChange change = UpdateChange(rel, &*stored, row);
  EXPECT_EQ(change.data, "{}");
  // The state afterwards is in the row's (the columns') order again, whatever the stored one.
  EXPECT_EQ(change.new_state.members(), row.members());

  EXPECT_EQ(RowDocument::Parse("[1]").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(RowDocument::Parse("{not json").status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace timetrail::capture
