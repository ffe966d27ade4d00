// Every kind of invalid input returns its documented error and leaves the store unchanged.
#include <gtest/gtest.h>

#include "support/store_helpers.h"
#include "support/temp_dir.h"

namespace timetrail {
namespace {

using testing::DumpLog;
using testing::Event;
using testing::OpenOrDie;
using testing::TempDir;

TEST(StoreValidationTest, InvalidRequestsAreRejectedAndChangeNothing) {
  TempDir dir;
  Options options;
  options.limits.max_event_bytes = 1024;
  options.limits.max_transaction_events = 5;
  options.limits.max_transaction_bytes = 2048;
  auto store = OpenOrDie(dir.Sub("data"), options);
  ASSERT_TRUE(store->Append("s", ExpectedRevision::Any(), {Event("$put", R"({"a":1})")}).ok());
  ASSERT_TRUE(store->SetCheckpoint("cp", "1").ok());
  const auto before = DumpLog(*store);
  const auto head = store->GetIntegrityHead();

  struct Case {
    std::string name;
    Transaction tx;
    StatusCode code;
    std::string needle;
  };
  auto one = [](std::string stream, ProposedEvent e) {
    Transaction tx;
    tx.appends.push_back({std::move(stream), ExpectedRevision::Any(), {std::move(e)}});
    return tx;
  };
  std::vector<Case> cases = {
      {"empty transaction", Transaction{}, StatusCode::kInvalidArgument, "at least one stream"},
      {"empty stream name", one("", Event("T")), StatusCode::kInvalidArgument, "appends[0].stream"},
      {"long stream name", one(std::string(600, 'x'), Event("T")), StatusCode::kInvalidArgument,
       "512"},
      {"control character", one("a\x1b", Event("T")), StatusCode::kInvalidArgument, "control"},
      {"invalid UTF-8", one("\xff", Event("T")), StatusCode::kInvalidArgument, "UTF-8"},
      {"empty type", one("s", Event("")), StatusCode::kInvalidArgument, "type"},
      {"reserved type", one("s", Event("$system")), StatusCode::kInvalidArgument, "reserved"},
      {"bad data JSON", one("s", Event("T", "{\"a\":")), StatusCode::kInvalidArgument,
       "data: is not valid JSON"},
      {"trailing garbage", one("s", Event("T", "{} {}")), StatusCode::kInvalidArgument,
       "not valid JSON"},
      {"metadata array", one("s", Event("T", "1", "[]")), StatusCode::kInvalidArgument,
       "metadata: must be a JSON object"},
      {"put of a string", one("s", Event("$put", "\"x\"")), StatusCode::kInvalidArgument,
       "JSON object"},
      {"patch of an array", one("s", Event("$patch", "[]")), StatusCode::kInvalidArgument,
       "JSON object"},
      {"delete with data", one("s", Event("$delete", R"({"x":1})")), StatusCode::kInvalidArgument,
       "$delete"},
      {"event too large", one("s", Event("T", "\"" + std::string(2000, 'x') + "\"")),
       StatusCode::kTooLarge, "max_event_bytes"},
  };
  {
    Transaction tx = one("s", Event("T"));
    tx.appends[0].events.assign(6, Event("T"));
    cases.push_back({"too many events", tx, StatusCode::kTooLarge, "max_transaction_events"});
  }
  {
    Transaction tx;
    for (int i = 0; i < 4; ++i) {
      tx.appends.push_back({"s" + std::to_string(i), ExpectedRevision::Any(),
                            {Event("T", "\"" + std::string(900, 'x') + "\"")}});
    }
    cases.push_back({"transaction too large", tx, StatusCode::kTooLarge, "max_transaction_bytes"});
  }
  {
    // A valid first stream does not get written when the second is invalid.
    Transaction tx = one("fresh", Event("T"));
    tx.appends.push_back({"s", ExpectedRevision::Any(), {Event("$put", "1")}});
    cases.push_back({"second append invalid", tx, StatusCode::kInvalidArgument, "appends[1]"});
  }
  for (const Case& c : cases) {
    auto r = store->Transact(c.tx);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), c.code) << c.name << ": " << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos)
        << c.name << ": " << r.status().ToString();
    // A checkpoint write attached to an invalid transaction is not applied either.
    auto with_cp = store->TransactWithCheckpoint(c.tx, "cp", "2");
    EXPECT_FALSE(with_cp.ok()) << c.name;
  }
  EXPECT_EQ(DumpLog(*store), before);
  EXPECT_EQ(store->GetIntegrityHead().hash_hex, head.hash_hex);
  EXPECT_EQ(store->GetCheckpoint("cp")->value_or(""), "1");
  EXPECT_FALSE(store->GetStreamInfo("fresh")->exists);
  EXPECT_EQ(store->GetStats().rejected, 2 * cases.size());
  // And the store still takes valid appends after all that.
  auto ok = store->Append("s", ExpectedRevision::Exact(0), {Event("T")});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->first_position, 2u);
}

}  // namespace
}  // namespace timetrail
