// Capture against a real PostgreSQL 15: the value mapping, TOAST, a mixed workload with context
// messages, a source restart, and the errors for a source that is not ready.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "capture/pg.h"
#include "capture/values.h"
#include "capture_test_util.h"
#include "support/temp_dir.h"

namespace timetrail::testing {
namespace {

TEST(CaptureTest, EveryMappedTypeRoundTrips) {
  PostgresCluster pg;
  pg.Exec(R"sql(
    CREATE TABLE all_types (
      id int PRIMARY KEY, b bool, i2 smallint, i4 int, i8 bigint, n numeric, n_exact numeric,
      n_huge numeric, f4 real, f8 double precision, f_nan double precision, t text,
      vc varchar(20), j json, jb jsonb, ts timestamp, tstz timestamptz, d date, u uuid,
      a_int int[], a_text text[], a_num numeric[], a_2d int[], a_jsonb jsonb[], nul text))sql");
  TempDir dir;
  auto store = OpenStore(dir.Sub("store"));
  CaptureThread cap(store.get(), OptionsFor(pg));
  ASSERT_TRUE(cap.Prepare().ok());
  cap.Start();
  pg.Exec(R"sql(
    INSERT INTO all_types VALUES (1, true, -32768, 2147483647, 9223372036854775807, 19.90,
      0.1, 12345678901234567890.000000000000000001, 1.5, 0.1, 'NaN', 'héllo "q" \ x',
      'short', '{"k": [1, 2.5, null]}', '{"b": {"c": true}}', '2026-11-22 13:40:00.123456',
      '2026-11-22 13:40:00.5+02', '2026-11-22', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      '{1,NULL,3}', '{"a,b","c\"d",NULL,"NULL"}', '{1.5,99999999999999999999.5}',
      '{{1,2},{3,4}}', ARRAY['{"x":1}'::jsonb, '[]'], NULL))sql");
  ASSERT_TRUE(cap.WaitCaughtUp(pg));
  auto row = Fold(*store, "public.all_types/1");
  ASSERT_TRUE(row.has_value()) << cap.Stop().ToString() << " " << Log(*store).size();
  json expected = json::parse(R"({
    "id": 1, "b": true, "i2": -32768, "i4": 2147483647, "i8": 9223372036854775807,
    "n": 19.9, "n_exact": 0.1, "n_huge": "12345678901234567890.000000000000000001",
    "f4": 1.5, "f8": 0.1, "f_nan": "NaN", "t": "héllo \"q\" \\ x", "vc": "short",
    "j": {"k": [1, 2.5, null]}, "jb": {"b": {"c": true}},
    "ts": "2026-11-22T13:40:00.123456", "tstz": "2026-11-22T11:40:00.5Z", "d": "2026-11-22",
    "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a_int": [1, null, 3],
    "a_text": ["a,b", "c\"d", null, "NULL"], "a_num": [1.5, "99999999999999999999.5"],
    "a_2d": [[1, 2], [3, 4]], "a_jsonb": [{"x": 1}, []], "nul": null})");
  EXPECT_EQ(*row, expected) << row->dump(2);

  // The way back: each captured value, given to PostgreSQL as its column's type, equals the
  // stored value (what revert relies on).
  auto types = pg.Query(
      "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
      "'all_types'::regclass AND attnum > 0 ORDER BY attnum");
  auto conn = capture::PgConnect(pg.Url(), false);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  for (const auto& t : types) {
    const std::string& name = *t[0];
    const json& v = (*row)[name];
    if (v.is_null()) continue;
    auto quoted = capture::PgQuoteLiteral(conn->get(), capture::JsonToPgText(v, *t[1]));
    ASSERT_TRUE(quoted.ok()) << quoted.status().ToString();
    const std::string& literal = *quoted;
    // json has no equality operator; compare it as jsonb.
    std::string type = *t[1] == "json" ? "jsonb" : *t[1];
    std::string same = pg.Scalar("SELECT (" + *capture::PgQuoteIdent(conn->get(), name) +
                                 "::" + type + " IS NOT DISTINCT FROM " + literal + "::" + type +
                                 ")::text FROM all_types WHERE id = 1");
    EXPECT_EQ(same, "true") << name << " = " << literal;
  }
  EXPECT_TRUE(cap.Stop().ok());
}

TEST(CaptureTest, UnchangedToastValuesKeepTheirValues) {
  PostgresCluster pg;
  pg.Exec("CREATE TABLE docs (id int PRIMARY KEY, title text, body text)");
  TempDir dir;
  auto store = OpenStore(dir.Sub("store"));
  CaptureThread cap(store.get(), OptionsFor(pg));
  ASSERT_TRUE(cap.Prepare().ok());
  cap.Start();
  // Random hex does not compress below the TOAST threshold, so body is stored out of line.
  pg.Exec(
      "INSERT INTO docs SELECT 1, 'first', string_agg(md5(random()::text), '') "
      "FROM generate_series(1, 4000)");
  pg.Exec("UPDATE docs SET title = 'second' WHERE id = 1");
  pg.Exec("UPDATE docs SET title = 'third' WHERE id = 1");
  ASSERT_TRUE(cap.WaitCaughtUp(pg));
  std::string body = pg.Scalar("SELECT body FROM docs WHERE id = 1");
  ASSERT_GT(body.size(), 100000u);
  auto events = ReadAll(*store, "public.docs/1");
  ASSERT_EQ(events.size(), 3u);
  // The updates record only what changed: body is neither repeated nor recorded as missing.
  EXPECT_EQ(json::parse(events[1].data), json::parse(R"({"title": "second"})"));
  EXPECT_EQ(json::parse(events[2].data), json::parse(R"({"title": "third"})"));
  auto row = Fold(*store, "public.docs/1");
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ((*row)["body"], body);
  EXPECT_EQ((*row)["title"], "third");
  EXPECT_TRUE(cap.Stop().ok());
}

TEST(CaptureTest, UnchangedToastValuesAreCarriedIntoAFullRowAndBeforeImage) {
  PostgresCluster pg;
  pg.Exec(
      "CREATE TABLE docs (id int PRIMARY KEY, title text, body text);"
      "ALTER TABLE docs REPLICA IDENTITY FULL");
  TempDir dir;
  auto store = OpenStore(dir.Sub("store"));
  CaptureThread cap(store.get(), OptionsFor(pg));
  ASSERT_TRUE(cap.Prepare().ok());
  cap.Start();
  pg.Exec(
      "INSERT INTO docs SELECT 1, 'first', string_agg(md5(random()::text), '') "
      "FROM generate_series(1, 4000)");
  // Setting a column to NULL is written as the whole row (a merge patch cannot hold a null).
  pg.Exec("UPDATE docs SET title = NULL WHERE id = 1");
  ASSERT_TRUE(cap.WaitCaughtUp(pg));
  std::string body = pg.Scalar("SELECT body FROM docs WHERE id = 1");
  auto events = ReadAll(*store, "public.docs/1");
  ASSERT_EQ(events.size(), 2u);
  json data = json::parse(events[1].data);
  EXPECT_EQ(events[1].type, "$put");
  EXPECT_EQ(data["body"], body);
  EXPECT_TRUE(data["title"].is_null());
  json meta = json::parse(events[1].metadata);
  EXPECT_EQ(meta["before"]["title"], "first");
  EXPECT_EQ(meta["before"]["body"], body);
  EXPECT_TRUE(cap.Stop().ok());
}

// One source transaction as the test expects to find it: per change, stream, type, data and
// the context ("actor") it must carry.
struct Expected {
  std::string stream, type, data, actor;
};

TEST(CaptureTest, MixedWorkloadIsRecordedTransactionByTransactionWithContext) {
  PostgresCluster pg;
  LoadContextHelper(pg);
  pg.Exec(R"sql(
    CREATE TABLE customers (id int PRIMARY KEY, name text);
    CREATE TABLE orders (id int PRIMARY KEY, customer int, status text, total numeric);
    ALTER TABLE orders REPLICA IDENTITY FULL;
    CREATE TABLE lines (order_id int, line int, sku text, PRIMARY KEY (order_id, line));
    CREATE TABLE ignored (id int PRIMARY KEY))sql");
  TempDir dir;
  auto store = OpenStore(dir.Sub("store"));
  auto options = OptionsFor(pg);
  options.tables = {"public.customers", "public.orders", "public.lines"};
  CaptureThread cap(store.get(), options);
  ASSERT_TRUE(cap.Prepare().ok());
  cap.Start();
  std::vector<std::string> sql = {
      // 1: context before the changes
      "BEGIN; SELECT timetrail.set_context('{\"actor\": \"alice\", \"reason\": \"signup\"}');"
      "INSERT INTO customers VALUES (7, 'Ann');"
      "INSERT INTO orders VALUES (42, 7, 'new', 10.5);"
      "INSERT INTO lines VALUES (42, 1, 'a/b'), (42, 2, 'c');"
      "INSERT INTO ignored VALUES (1); COMMIT;",
      // 2: no context; an update and a delete
      "BEGIN; UPDATE orders SET status = 'paid' WHERE id = 42;"
      "DELETE FROM lines WHERE order_id = 42 AND line = 2; COMMIT;",
      // 3: the context changes in the middle of the transaction
      "BEGIN; SELECT timetrail.set_context('{\"actor\": \"bob\"}');"
      "UPDATE customers SET name = 'Anne' WHERE id = 7;"
      "SELECT timetrail.set_context('{\"actor\": \"carol\"}');"
      "INSERT INTO customers VALUES (8, 'Cy'); COMMIT;",
      // 4: a new column
      "ALTER TABLE customers ADD COLUMN email text;"
      "UPDATE customers SET email = 'ann@example.com' WHERE id = 7;",
      // 5: a dropped column disappears from the row at its next change
      "ALTER TABLE customers DROP COLUMN email; UPDATE customers SET name = 'Ann' WHERE id = 7;",
      // 6: truncate deletes every known row
      "TRUNCATE lines;",
  };
  for (const auto& s : sql) pg.Exec(s);
  ASSERT_TRUE(cap.WaitCaughtUp(pg));

  std::vector<std::vector<Expected>> expected = {
      {{"public.customers/7", "$put", R"({"id":7,"name":"Ann"})", "alice"},
       {"public.orders/42", "$put", R"({"id":42,"customer":7,"status":"new","total":10.5})",
        "alice"},
       {"public.lines/42,1", "$put", R"({"order_id":42,"line":1,"sku":"a/b"})", "alice"},
       {"public.lines/42,2", "$put", R"({"order_id":42,"line":2,"sku":"c"})", "alice"}},
      {{"public.orders/42", "$patch", R"({"status":"paid"})", ""},
       {"public.lines/42,2", "$delete", "null", ""}},
      {{"public.customers/7", "$patch", R"({"name":"Anne"})", "bob"},
       {"public.customers/8", "$put", R"({"id":8,"name":"Cy"})", "carol"}},
      {{"public.customers/7", "$patch", R"({"email":"ann@example.com"})", ""}},
      {{"public.customers/7", "$patch", R"({"email":null,"name":"Ann"})", ""}},
      {{"public.lines/42,1", "$delete", "null", ""}},
  };
  // Group the captured row events by timetrail transaction; "schema" events are checked apart.
  std::map<TxId, std::vector<RecordedEvent>> by_tx;
  std::vector<RecordedEvent> schema_events;
  for (const auto& e : Log(*store)) {
    if (e.type == "schema") {
      schema_events.push_back(e);
    } else {
      by_tx[e.tx].push_back(e);
    }
  }
  ASSERT_EQ(by_tx.size(), expected.size());
  std::size_t i = 0;
  std::map<std::string, std::string> xids;
  for (const auto& [tx, events] : by_tx) {
    SCOPED_TRACE("transaction " + std::to_string(i + 1));
    ASSERT_EQ(events.size(), expected[i].size());
    std::set<std::uint64_t> source_xids;
    for (const auto& want : expected[i]) {
      auto it = std::find_if(events.begin(), events.end(), [&](const RecordedEvent& e) {
        return e.stream == want.stream && e.type == want.type;
      });
      ASSERT_NE(it, events.end()) << want.stream << " " << want.type;
      EXPECT_EQ(json::parse(it->data), json::parse(want.data)) << want.stream;
      json meta = json::parse(it->metadata);
      EXPECT_EQ(meta.value("actor", ""), want.actor) << want.stream;
      EXPECT_TRUE(meta["source"]["lsn"].is_string());
      EXPECT_EQ(meta["source"]["table"], want.stream.substr(0, want.stream.find('/')));
      source_xids.insert(meta["source"]["xid"].get<std::uint64_t>());
      // valid_from is the source's commit time.
      EXPECT_EQ(FormatTimestamp(it->valid_from), meta["source"]["commit_time"]);
    }
    EXPECT_EQ(source_xids.size(), 1u) << "one source transaction per timetrail transaction";
    ++i;
  }
  // The reason from the context travels too, and the full before image of orders.
  auto order_events = ReadAll(*store, "public.orders/42");
  ASSERT_EQ(order_events.size(), 2u);
  EXPECT_EQ(json::parse(order_events[0].metadata)["reason"], "signup");
  EXPECT_EQ(json::parse(order_events[1].metadata)["before"]["status"], "new");
  EXPECT_EQ(json::parse(order_events[1].metadata)["source"]["operation"], "update");
  EXPECT_EQ(json::parse(ReadAll(*store, "public.lines/42,1")[1].metadata)["source"]["operation"],
            "truncate");
  // Schema changes are recorded on the table's stream: created, column added, column dropped.
  auto customers_schema = ReadAll(*store, "public.customers");
  ASSERT_EQ(customers_schema.size(), 3u);
  EXPECT_EQ(json::parse(customers_schema[1].data)["columns"].size(), 3u);
  EXPECT_EQ(json::parse(customers_schema[2].data)["columns"].size(), 2u);
  EXPECT_FALSE(Fold(*store, "public.ignored/1").has_value());
  EXPECT_EQ(*Fold(*store, "public.customers/7"), json::parse(R"({"id":7,"name":"Ann"})"));
  EXPECT_TRUE(cap.Stop().ok());
}

// --snapshot records the rows that existed before the slot once, as snapshot events, and the
// changes after the slot's start once each; --table-pattern chooses the tables.
TEST(CaptureTest, SnapshotAndTablePatternRecordEveryRowOnce) {
  PostgresCluster pg;
  pg.Exec(R"sql(
    CREATE TABLE items (id int PRIMARY KEY, name text);
    CREATE TABLE item_tags (item int, tag text, PRIMARY KEY (item, tag));
    CREATE TABLE audit_notes (id int PRIMARY KEY, note text);
    INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1200) g;
    INSERT INTO item_tags VALUES (1, 'red'), (1, 'big'), (2, 'red');
    INSERT INTO audit_notes VALUES (1, 'not captured'))sql");
  TempDir dir;
  auto store = OpenStore(dir.Sub("store"));
  auto options = OptionsFor(pg);
  options.table_pattern = "public.item%";
  options.snapshot = true;
  CaptureThread cap(store.get(), options);
  Timestamp before_prepare =
      *ParseTimestamp(pg.Scalar("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                                "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"));
  ASSERT_TRUE(cap.Prepare().ok());
  EXPECT_EQ(pg.Scalar("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM "
                      "pg_publication_tables WHERE pubname = 'timetrail'"),
            "item_tags,items");
  // Every existing row, once, marked as a snapshot event, before anything else.
  std::vector<RecordedEvent> snapshot = Log(*store);
  ASSERT_EQ(snapshot.size(), 1203u);
  std::set<std::string> streams;
  for (const auto& e : snapshot) {
    EXPECT_EQ(e.type, "$put");
    EXPECT_EQ(json::parse(e.metadata)["source"]["operation"], "snapshot") << e.metadata;
    EXPECT_TRUE(streams.insert(e.stream).second) << e.stream << " recorded twice";
    // Valid from the source's clock before the slot existed: no later than any change the slot
    // streams afterwards, so valid-time folds put the snapshot first.
    EXPECT_GE(e.valid_from, before_prepare);
    EXPECT_LT(e.valid_from, e.recorded_at);
    EXPECT_EQ(e.valid_from, snapshot.front().valid_from);
  }
  EXPECT_TRUE(streams.count("public.item_tags/1,big"));
  EXPECT_FALSE(streams.count("public.audit_notes/1"));

  cap.Start();
  pg.Exec("UPDATE items SET name = 'renamed' WHERE id = 7");
  pg.Exec("INSERT INTO items VALUES (5000, 'new')");
  pg.Exec("DELETE FROM item_tags WHERE item = 2");
  pg.Exec("UPDATE audit_notes SET note = 'still not captured'");
  ASSERT_TRUE(cap.WaitCaughtUp(pg));
  EXPECT_TRUE(cap.Stop().ok());
  EXPECT_EQ((*Fold(*store, "public.items/7"))["name"], "renamed");
  EXPECT_EQ(ReadAll(*store, "public.items/7").size(), 2u);  // the snapshot, then the update
  EXPECT_EQ(ReadAll(*store, "public.items/5000").size(), 1u);
  EXPECT_FALSE(Fold(*store, "public.item_tags/2,red").has_value());
  EXPECT_EQ(ReadAll(*store, "public.audit_notes/1").size(), 0u);
  std::size_t changes = 0;
  for (const auto& e : Log(*store)) changes += e.type == "schema" ? 0 : 1;
  EXPECT_EQ(changes, 1203u + 3u);

  // Started again on the same slot: no second snapshot, nothing recorded twice.
  std::uint64_t head = store->LastPosition();
  CaptureThread again(store.get(), options);
  ASSERT_TRUE(again.Prepare().ok());
  again.Start();
  pg.Exec("UPDATE items SET name = 'again' WHERE id = 8");
  ASSERT_TRUE(again.WaitCaughtUp(pg));
  EXPECT_TRUE(again.Stop().ok());
  std::size_t after = 0;
  for (const auto& e : Log(*store)) after += e.position > head && e.type != "schema" ? 1 : 0;
  EXPECT_EQ(after, 1u);
}

TEST(CaptureTest, SourceRestartDuringCaptureLosesNothing) {
  PostgresCluster pg;
  pg.Exec("CREATE TABLE counters (id int PRIMARY KEY, n int)");
  TempDir dir;
  auto store = OpenStore(dir.Sub("store"));
  CaptureThread cap(store.get(), OptionsFor(pg));
  ASSERT_TRUE(cap.Prepare().ok());
  cap.Start();
  for (int i = 0; i < 50; ++i) {
    pg.Exec("INSERT INTO counters VALUES (" + std::to_string(i) + ", 0)");
  }
  pg.Restart();
  for (int i = 0; i < 50; ++i) {
    pg.Exec("UPDATE counters SET n = n + 1 WHERE id = " + std::to_string(i));
    pg.Exec("INSERT INTO counters VALUES (" + std::to_string(100 + i) + ", 1)");
  }
  ASSERT_TRUE(cap.WaitCaughtUp(pg));
  EXPECT_GE(cap.capture().stats().reconnects, 1u);
  for (const auto& r : pg.Query("SELECT id, n FROM counters")) {
    auto row = Fold(*store, "public.counters/" + *r[0]);
    ASSERT_TRUE(row.has_value()) << *r[0];
    EXPECT_EQ((*row)["n"], std::stoi(*r[1])) << *r[0];
  }
  // Each change exactly once: 50 inserts, then 50 updates and 50 inserts.
  std::size_t events = 0;
  for (const auto& e : Log(*store)) events += e.type == "schema" ? 0 : 1;
  EXPECT_EQ(events, 150u);
  EXPECT_TRUE(cap.Stop().ok());
}

TEST(CaptureTest, IdleSlotAdvances) {
  PostgresCluster pg;
  pg.Exec("CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE other (id int PRIMARY KEY)");
  TempDir dir;
  auto store = OpenStore(dir.Sub("store"));
  auto options = OptionsFor(pg);
  options.tables = {"public.t"};
  // The way `timetrail serve --capture` runs it: on its own thread beside other work.
  auto bg = capture::BackgroundCapture::Start(store.get(), options);
  ASSERT_TRUE(bg.ok()) << bg.status().ToString();
  // Changes to a table that is not captured still produce WAL; the slot must move past it.
  pg.Exec("INSERT INTO other SELECT generate_series(1, 1000)");
  std::string target = pg.Scalar("SELECT pg_current_wal_insert_lsn()");
  bool advanced = false;
  for (int i = 0; i < 300 && !advanced; ++i) {
    advanced =
        pg.Scalar("SELECT (confirmed_flush_lsn >= '" + target +
                  "')::text FROM pg_replication_slots WHERE slot_name = 'timetrail'") == "true";
    if (!advanced) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(advanced);
  EXPECT_GE((*bg)->stats().stored_lsn, *capture::ParseLsn(target));
  EXPECT_TRUE(Log(*store).size() <= 1u);  // at most the table's schema event
  EXPECT_TRUE((*bg)->Stop().ok());
}

TEST(CaptureTest, SourceWithoutLogicalWalLevelGetsTheDocumentedError) {
  PostgresCluster::Settings settings;
  settings.wal_level = "replica";
  PostgresCluster pg(settings);
  TempDir dir;
  auto store = OpenStore(dir.Sub("store"));
  capture::Capture cap(store.get(), OptionsFor(pg));
  Status s = cap.Prepare();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("wal_level=replica"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("ALTER SYSTEM SET wal_level = logical"), std::string::npos);
  EXPECT_EQ(pg.Scalar("SELECT count(*) FROM pg_publication"), "0");
  EXPECT_EQ(store->LastPosition(), 0u);
}

TEST(CaptureTest, RoleWithoutReplicationAndKeylessTablesGetTheDocumentedErrors) {
  PostgresCluster pg;
  pg.Exec("CREATE ROLE app LOGIN; CREATE TABLE t (id int PRIMARY KEY)");
  TempDir dir;
  auto store = OpenStore(dir.Sub("store"));
  auto options = OptionsFor(pg);
  options.source_url = pg.Url("app");
  capture::Capture cap(store.get(), options);
  Status s = cap.Prepare();
  // PostgreSQL's own refusal of the replication connection, with what to do about it.
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("must be superuser or replication role to start walsender"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("Run ALTER ROLE \"app\" REPLICATION; as a superuser"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(pg.Scalar("SELECT count(*) FROM pg_publication"), "0");
  EXPECT_EQ(pg.Scalar("SELECT count(*) FROM pg_replication_slots"), "0");

  pg.Exec("CREATE TABLE log_lines (msg text)");
  capture::Capture cap2(store.get(), OptionsFor(pg));
  s = cap2.Prepare();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("public.log_lines"), std::string::npos) << s.message();
  EXPECT_EQ(pg.Scalar("SELECT count(*) FROM pg_replication_slots"), "0");

  // A database whose encoding is not UTF8.
  pg.Exec(
      "CREATE DATABASE latin ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' "
      "TEMPLATE template0");
  auto latin = OptionsFor(pg);
  latin.source_url = pg.Url();
  latin.source_url.replace(latin.source_url.rfind('/'), std::string::npos, "/latin");
  capture::Capture cap_latin(store.get(), latin);
  s = cap_latin.Prepare();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("the source database's encoding is LATIN1"), std::string::npos)
      << s.message();

  // Unreachable source: kUnavailable with libpq's reason.
  auto bad = OptionsFor(pg);
  bad.source_url = "postgresql://postgres@127.0.0.1:" + std::to_string(FreeLoopbackPort()) + "/x";
  capture::Capture cap3(store.get(), bad);
  s = cap3.Prepare();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("cannot connect"), std::string::npos) << s.message();
  EXPECT_EQ(store->LastPosition(), 0u);
}

}  // namespace
}  // namespace timetrail::testing
