// Reverting captured rows in the source: one row to a time, a deleted row back, a filtered set
// (an actor's changes), and a dry run. Each revert is itself captured, with its context.
#include "capture/source_revert.h"

#include <gtest/gtest.h>

#include "capture_test_util.h"
#include "support/temp_dir.h"

namespace timetrail::testing {
namespace {

class SourceRevertTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LoadContextHelper(pg_);
    pg_.Exec("CREATE TABLE orders (id int PRIMARY KEY, status text, total numeric, tags text[])");
    auto s = EventStore::Open(Options{}, dir_.Sub("store"));
    ASSERT_TRUE(s.ok());
    store_ = std::move(s).value();
    capture::CaptureOptions o;
    o.source_url = pg_.Url();
    o.status_interval = std::chrono::milliseconds(200);
    cap_ = std::make_unique<CaptureThread>(store_.get(), o);
    ASSERT_TRUE(cap_->Prepare().ok());
    cap_->Start();
  }
  void TearDown() override {
    if (cap_) {
      EXPECT_TRUE(cap_->Stop().ok());
    }
  }
  capture::SourceRevertOptions RevertOptions() {
    capture::SourceRevertOptions o;
    o.source_url = pg_.Url();
    o.actor = "ops";
    o.reason = "undo a bad change";
    return o;
  }

  PostgresCluster pg_;
  TempDir dir_;
  std::unique_ptr<EventStore> store_;
  std::unique_ptr<CaptureThread> cap_;
};

TEST_F(SourceRevertTest, OneRowGoesBackToItsStateAtATimeAndTheRevertIsCaptured) {
  pg_.Exec("INSERT INTO orders VALUES (42, 'new', 10.50, '{a,b}'), (43, 'new', 5, NULL)");
  pg_.Exec("BEGIN; SELECT timetrail.set_context('{\"actor\": \"mallory\"}');"
           "UPDATE orders SET status = 'cancelled', total = 0, tags = NULL WHERE id = 42;"
           "DELETE FROM orders WHERE id = 43; COMMIT;");
  ASSERT_TRUE(cap_->WaitCaughtUp(pg_));
  auto first = ReadAll(*store_, "public.orders/42");
  ASSERT_EQ(first.size(), 2u);
  auto opts = RevertOptions();
  opts.to = first[0].valid_from;  // just after the insert

  // A dry run prints the SQL and changes nothing.
  opts.dry_run = true;
  auto dry = capture::RevertInSource(*store_, {"public.orders/42", "public.orders/43"}, opts);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  ASSERT_EQ(dry->statements.size(), 5u);
  EXPECT_NE(dry->statements[2].find("'new'::text"), std::string::npos) << dry->statements[2];
  EXPECT_EQ(pg_.Scalar("SELECT status FROM orders WHERE id = 42"), "cancelled");

  opts.dry_run = false;
  auto done = capture::RevertInSource(*store_, {"public.orders/42", "public.orders/43"}, opts);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->rows_changed, 2u);
  auto rows = pg_.Query("SELECT id, status, total::text, tags::text FROM orders ORDER BY id");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (PostgresCluster::Row{"42", "new", "10.5", "{a,b}"}));
  EXPECT_EQ(rows[1], (PostgresCluster::Row{"43", "new", "5", std::nullopt}));

  // The capture recorded the revert like any other change, saying it was a revert.
  ASSERT_TRUE(cap_->WaitCaughtUp(pg_));
  auto after = ReadAll(*store_, "public.orders/42");
  ASSERT_EQ(after.size(), 3u);
  json meta = json::parse(after[2].metadata);
  EXPECT_EQ(meta["actor"], "ops");
  EXPECT_EQ(meta["reason"], "undo a bad change");
  EXPECT_TRUE(meta["revert"].is_object());
  EXPECT_EQ((*Fold(*store_, "public.orders/42"))["status"], "new");
  EXPECT_TRUE(Fold(*store_, "public.orders/43").has_value());

  // Reverting to the state it already has changes nothing.
  auto again = capture::RevertInSource(*store_, {"public.orders/42"}, opts);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->rows_changed, 0u);
}

TEST_F(SourceRevertTest, AnActorsChangesAreUndoneAndOthersAreKept) {
  pg_.Exec("INSERT INTO orders VALUES (1, 'new', 1, NULL), (2, 'new', 2, NULL), (3, 'new', 3, NULL)");
  pg_.Exec("BEGIN; SELECT timetrail.set_context('{\"actor\": \"mallory\"}');"
           "UPDATE orders SET status = 'stolen' WHERE id IN (1, 2);"
           "INSERT INTO orders VALUES (4, 'fake', 0, NULL); COMMIT;");
  pg_.Exec("BEGIN; SELECT timetrail.set_context('{\"actor\": \"alice\"}');"
           "UPDATE orders SET status = 'paid' WHERE id = 3; COMMIT;");
  ASSERT_TRUE(cap_->WaitCaughtUp(pg_));
  capture::RowFilter filter;
  filter.table = "public.orders";
  filter.actor = "mallory";
  auto r = capture::RevertFilteredInSource(*store_, filter, RevertOptions());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows_changed, 3u);
  auto rows = pg_.Query("SELECT id, status FROM orders ORDER BY id");
  ASSERT_EQ(rows.size(), 3u);  // the row mallory inserted is gone again
  EXPECT_EQ(rows[0], (PostgresCluster::Row{"1", "new"}));
  EXPECT_EQ(rows[1], (PostgresCluster::Row{"2", "new"}));
  EXPECT_EQ(rows[2], (PostgresCluster::Row{"3", "paid"}));
  ASSERT_TRUE(cap_->WaitCaughtUp(pg_));
  EXPECT_FALSE(Fold(*store_, "public.orders/4").has_value());
  EXPECT_EQ(json::parse(ReadAll(*store_, "public.orders/4").back().metadata)["actor"], "ops");

  // A name that is not a captured row's stream is refused, and nothing changes.
  auto bad = capture::RevertInSource(*store_, {"orders-42"}, RevertOptions());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace timetrail::testing
