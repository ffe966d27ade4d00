// Who and why from a query comment (sql/timetrail_context.sql): a write statement ending with
// /*timetrail {...}*/ on a table with the timetrail_context statement trigger carries that
// context into the captured changes, also in implicit transactions, bulk updates and TRUNCATE;
// the comment cannot be forged through data and never fails a write.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <string>
#include <vector>

#include "capture_test_util.h"
#include "support/temp_dir.h"

namespace timetrail::testing {
namespace {

// One connection, for statements that must share a session (an explicit transaction).
class Session {
 public:
  explicit Session(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    EXPECT_EQ(PQstatus(conn_), CONNECTION_OK) << PQerrorMessage(conn_);
  }
  ~Session() { PQfinish(conn_); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  void Exec(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    EXPECT_TRUE(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
        << sql << ": " << PQerrorMessage(conn_);
    PQclear(r);
  }

 private:
  PGconn* conn_;
};

class CaptureContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LoadContextHelper(pg_);
    pg_.Exec(R"sql(
      CREATE TABLE items (id int PRIMARY KEY, n int, note text);
      INSERT INTO items SELECT g, 0, '' FROM generate_series(1, 50) g;
      CREATE TABLE untracked (id int PRIMARY KEY, n int);
      INSERT INTO untracked VALUES (1, 0);
      CREATE PUBLICATION timetrail FOR TABLE items, untracked)sql");
    EXPECT_EQ(pg_.Scalar("SELECT timetrail.track_context_for_publication('timetrail')"), "2");
    pg_.Exec("SELECT timetrail.untrack_context('untracked')");
    // A second slot decodes the same WAL as text, to count the context messages.
    pg_.Exec("SELECT pg_create_logical_replication_slot('messages', 'test_decoding')");
    store_ = OpenStore(dir_.Sub("store"));
    capture_ = std::make_unique<CaptureThread>(store_.get(), OptionsFor(pg_));
    ASSERT_TRUE(capture_->Prepare().ok());
    capture_->Start();
  }

  // The metadata of the newest event of a captured row.
  json LastMetadata(const std::string& stream) {
    EXPECT_TRUE(capture_->WaitCaughtUp(pg_));
    auto events = ReadAll(*store_, stream);
    if (events.empty()) {
      ADD_FAILURE() << "nothing captured for " << stream;
      return json();
    }
    return json::parse(events.back().metadata);
  }

  // Context messages the source wrote since the last call.
  std::vector<std::string> Messages() {
    std::vector<std::string> out;
    for (const auto& row :
         pg_.Query("SELECT data FROM pg_logical_slot_get_changes('messages', NULL, NULL) "
                   "WHERE data LIKE 'message:%'")) {
      std::string d = row[0].value_or("");
      out.push_back(d.substr(d.find("content:") + 8));
    }
    return out;
  }

  PostgresCluster pg_;
  TempDir dir_;
  std::unique_ptr<EventStore> store_;
  std::unique_ptr<CaptureThread> capture_;
};

TEST_F(CaptureContextTest, ImplicitTransactionCarriesTheCommentsContext) {
  pg_.Exec(R"(UPDATE items SET n = 1 WHERE id = 1 /*timetrail {"actor":"alice","reason":"fix"}*/)");
  json meta = LastMetadata("public.items/1");
  EXPECT_EQ(meta.value("actor", ""), "alice");
  EXPECT_EQ(meta.value("reason", ""), "fix");
  // Trailing blanks and a semicolon after the comment are fine.
  pg_.Exec("UPDATE items SET n = 2 WHERE id = 1 /*timetrail {\"actor\":\"bob\"}*/ ;\n ");
  EXPECT_EQ(LastMetadata("public.items/1").value("actor", ""), "bob");
  // The context belongs to its transaction: the next write without a comment has none.
  pg_.Exec("UPDATE items SET n = 3 WHERE id = 1");
  EXPECT_FALSE(LastMetadata("public.items/1").contains("actor"));
}

TEST_F(CaptureContextTest, BulkUpdateCarriesItOnEveryRowWithOneMessage) {
  Messages();
  pg_.Exec(R"(UPDATE items SET n = n + 1 WHERE id <= 40 /*timetrail {"actor":"batch"}*/)");
  ASSERT_TRUE(capture_->WaitCaughtUp(pg_));
  for (int id = 1; id <= 40; ++id) {
    auto events = ReadAll(*store_, "public.items/" + std::to_string(id));
    ASSERT_FALSE(events.empty()) << id;
    EXPECT_EQ(json::parse(events.back().metadata).value("actor", ""), "batch") << id;
  }
  EXPECT_EQ(Messages(), std::vector<std::string>{R"({"actor":"batch"})"});
  // Statements sent one by one in an explicit transaction, as drivers do: the same context
  // again is not repeated; a new one in the middle applies from there on.
  Session session(pg_.Url());
  for (const char* sql :
       {"BEGIN", R"(UPDATE items SET n = 10 WHERE id = 41 /*timetrail {"actor":"c"}*/)",
        R"(UPDATE items SET n = 10 WHERE id = 42 /*timetrail {"actor":"c"}*/)",
        R"(UPDATE items SET n = 10 WHERE id = 43 /*timetrail {"actor":"d"}*/)",
        "UPDATE items SET n = 10 WHERE id = 44", "COMMIT"}) {
    session.Exec(sql);
  }
  EXPECT_EQ(LastMetadata("public.items/42").value("actor", ""), "c");
  EXPECT_EQ(LastMetadata("public.items/43").value("actor", ""), "d");
  EXPECT_EQ(LastMetadata("public.items/44").value("actor", ""), "d");
  // A text of several statements is one query: its comment, at the end, speaks for all.
  pg_.Exec(R"(UPDATE items SET n = 11 WHERE id = 45; UPDATE items SET n = 11 WHERE id = 46
              /*timetrail {"actor":"e"}*/)");
  EXPECT_EQ(LastMetadata("public.items/45").value("actor", ""), "e");
  EXPECT_EQ(LastMetadata("public.items/46").value("actor", ""), "e");
  EXPECT_EQ(Messages().size(), 3u);
}

TEST_F(CaptureContextTest, TruncateCarriesIt) {
  pg_.Exec("UPDATE items SET n = 1 WHERE id = 7");  // the store now knows row 7
  pg_.Exec(R"(TRUNCATE items /*timetrail {"actor":"ops","reason":"reset"}*/)");
  json meta = LastMetadata("public.items/7");
  EXPECT_EQ(ReadAll(*store_, "public.items/7").back().type, "$delete");
  EXPECT_EQ(meta.value("actor", ""), "ops");
  EXPECT_EQ(meta.value("reason", ""), "reset");
}

TEST_F(CaptureContextTest, DataCannotForgeAContext) {
  // A literal holding a comment is not the end of the statement text.
  pg_.Exec(R"(UPDATE items SET note = '/*timetrail {"actor":"mallory"}*/' WHERE id = 2)");
  EXPECT_FALSE(LastMetadata("public.items/2").contains("actor"));
  // A '/' in the context could close the comment early or hide a marker: the comment is
  // ignored. Clients write '/' as \u002f, which arrives as '/'.
  pg_.Exec(R"(UPDATE items SET n = 5 WHERE id = 2 /*timetrail {"actor":"a/b"}*/)");
  EXPECT_FALSE(LastMetadata("public.items/2").contains("actor"));
  pg_.Exec(R"(UPDATE items SET n = 6 WHERE id = 2 /*timetrail {"actor":"a\u002fb"}*/)");
  EXPECT_EQ(LastMetadata("public.items/2").value("actor", ""), "a/b");
}

TEST_F(CaptureContextTest, ABadCommentNeverFailsTheWrite) {
  pg_.Exec("UPDATE items SET n = 7 WHERE id = 3 /*timetrail not json at all*/");
  json meta = LastMetadata("public.items/3");
  EXPECT_EQ(meta.value("context", ""), "not json at all");
  EXPECT_EQ(pg_.Scalar("SELECT n FROM items WHERE id = 3"), "7");
  pg_.Exec("UPDATE items SET n = 8 WHERE id = 3 /*timetrail */");
  EXPECT_FALSE(LastMetadata("public.items/3").contains("context"));
}

TEST_F(CaptureContextTest, ExplicitSetContextWinsInItsTransaction) {
  pg_.Exec(R"(BEGIN; SELECT timetrail.set_context('{"actor":"explicit","reason":"audit"}');
    UPDATE items SET n = 9 WHERE id = 4 /*timetrail {"actor":"request"}*/; COMMIT;)");
  json meta = LastMetadata("public.items/4");
  EXPECT_EQ(meta.value("actor", ""), "explicit");
  EXPECT_EQ(meta.value("reason", ""), "audit");
  // ...and only there.
  pg_.Exec(R"(UPDATE items SET n = 10 WHERE id = 4 /*timetrail {"actor":"request"}*/)");
  EXPECT_EQ(LastMetadata("public.items/4").value("actor", ""), "request");
}

TEST_F(CaptureContextTest, RolledBackContextLeavesNothingBehind) {
  Messages();
  pg_.Exec(R"(BEGIN; UPDATE items SET n = 11 WHERE id = 5 /*timetrail {"actor":"gone"}*/;
    ROLLBACK;)");
  pg_.Exec(R"(UPDATE items SET n = 12 WHERE id = 5 /*timetrail {"actor":"gone"}*/)");
  json meta = LastMetadata("public.items/5");
  EXPECT_EQ(meta.value("actor", ""), "gone");
  EXPECT_EQ(ReadAll(*store_, "public.items/5").size(), 1u);
  // The rolled-back transaction's message is not decoded; the next one emitted its own.
  EXPECT_EQ(Messages().size(), 1u);
}

TEST_F(CaptureContextTest, TableWithoutTheTriggerIgnoresComments) {
  pg_.Exec(R"(UPDATE untracked SET n = 1 WHERE id = 1 /*timetrail {"actor":"alice"}*/)");
  EXPECT_FALSE(LastMetadata("public.untracked/1").contains("actor"));
}

}  // namespace
}  // namespace timetrail::testing
