// Projections into a real PostgreSQL (a private cluster per suite): every table kind equals
// the store's own answers after loads in small batches, restarts, backdated corrections,
// rebuilds while appends go on, and two projectors racing on one checkpoint; an event the
// mapping does not fit names the event and the column and writes nothing.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "capture/pg.h"
#include "fold_check.h"
#include "project/config.h"
#include "project/projector.h"
#include "support/postgres_cluster.h"
#include "support/store_helpers.h"
#include "support/temp_dir.h"

namespace timetrail {
namespace {

using project::ProjectionKind;
using project::ProjectionSpec;

// The projections the tests keep: one of each kind over the employee streams, and the changes
// of every stream.
std::vector<ProjectionSpec> Specs() {
  auto config = project::ParseProjectorConfig(R"({"projections": [
    {"name": "changes", "kind": "changes"},
    {"name": "emp", "kind": "state", "streams": ["employee-"],
     "columns": {"name": "text", "salary": "numeric", "boss": {"path": "/boss/id", "type": "bigint"},
                 "active": "boolean"}},
    {"name": "emp_doc", "kind": "state", "streams": ["employee-"]},
    {"name": "emp_hist", "kind": "history", "streams": ["employee-"],
     "properties": {"name": "text", "salary": "numeric", "boss": {"path": "/boss/id", "type": "bigint"}}}
  ]})");
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  return config->projections;
}

// Appends "count" random changes to employee streams: puts (some with nulls), patches, deletes,
// events that are not document events, transactions of two events of one stream (one
// recorded_at) and across two streams, and backdated corrections in valid time.
void AppendChanges(EventStore& store, std::mt19937& rng, int count, int streams) {
  static std::int64_t valid_clock = ParseTimestamp("2026-01-01T00:00:00Z")->micros;
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  for (int i = 0; i < count; ++i) {
    const std::string stream = "employee-" + std::to_string(pick(streams));
    auto make = [&]() {
      ProposedEvent e;
      const int kind = pick(10);
      if (kind < 2) {
        e.type = "$put";
        e.data = R"({"name":"n)" + std::to_string(pick(5)) + R"(","salary":)" +
                 (pick(6) == 0 ? "null" : std::to_string(1000 * pick(8))) + R"(,"boss":{"id":)" +
                 std::to_string(pick(3)) + R"(},"active":true})";
      } else if (kind < 7) {
        e.type = "$patch";
        e.data = pick(2) ? R"({"salary":)" + std::to_string(1000 * pick(8)) + "}"
                         : R"({"name":"n)" + std::to_string(pick(5)) + R"("})";
      } else if (kind < 8) {
        e.type = "$delete";
      } else {
        e.type = "Noted";
        e.data = R"({"note":"x"})";
      }
      e.metadata = R"({"actor":"user)" + std::to_string(pick(3)) + R"("})";
      valid_clock += 3600LL * 1000000;
      // One change in eight takes effect before changes already recorded: a correction.
      e.valid_from =
          Timestamp{pick(8) == 0 ? valid_clock - 3600LL * 1000000 * (1 + pick(200)) : valid_clock};
      return e;
    };
    Transaction tx;
    StreamAppend a;
    a.stream = stream;
    a.events.push_back(make());
    if (pick(6) == 0) a.events.push_back(make());
    tx.appends.push_back(std::move(a));
    if (pick(8) == 0) {
      StreamAppend other;
      other.stream = "other-" + std::to_string(pick(4));
      other.events.push_back(make());
      tx.appends.push_back(std::move(other));
    }
    ASSERT_TRUE(store.Transact(tx).ok());
  }
}

class ProjectionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pg_ = new testing::PostgresCluster(); }
  static void TearDownTestSuite() {
    delete pg_;
    pg_ = nullptr;
  }
  void SetUp() override {
    // Each test starts from an empty target database.
    pg_->Exec("SET client_min_messages = warning; DROP SCHEMA IF EXISTS timetrail CASCADE");
    store_ = testing::OpenOrDie(dir_.Sub("store"));
    source_ = project::StoreLogSource(*store_, "the test's store");
  }

  project::RunOptions Options(std::size_t batch) const {
    project::RunOptions o;
    o.target_url = pg_->Url();
    o.batch_events = batch;
    return o;
  }

  Result<project::ProjectorStats> Run(const ProjectionSpec& spec, std::size_t batch) {
    std::atomic<bool> stop{false};
    return project::RunProjection(*source_, spec, Options(batch), stop);
  }

  void ExpectSameAsStore(const ProjectionSpec& spec) {
    for (const std::string& d : testing::CompareWithStore(*store_, pg_->Url(), spec)) {
      ADD_FAILURE() << spec.name << ": " << d;
    }
  }

  static testing::PostgresCluster* pg_;
  testing::TempDir dir_;
  std::unique_ptr<EventStore> store_;
  std::unique_ptr<project::LogSource> source_;
};

testing::PostgresCluster* ProjectionTest::pg_ = nullptr;

TEST_F(ProjectionTest, EveryKindEqualsTheStoreAcrossBatchesRunsAndCorrections) {
  std::mt19937 rng(7);
  AppendChanges(*store_, rng, 400, 12);
  for (const ProjectionSpec& spec : Specs()) {
    // Small batches: rows opened in one batch are closed in later ones.
    ASSERT_TRUE(Run(spec, 7).ok()) << spec.name;
    ExpectSameAsStore(spec);
  }
  // A new run knows nothing of the streams: it reads their past from the store.
  AppendChanges(*store_, rng, 300, 12);
  for (const ProjectionSpec& spec : Specs()) {
    Result<project::ProjectorStats> stats = Run(spec, 13);
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    EXPECT_EQ(stats->position, store_->LastPosition());
    ExpectSameAsStore(spec);
  }
}

TEST_F(ProjectionTest, TheWholeEntityAsOfATimeIsOneQuery) {
  auto put = [&](const char* data, const char* valid_from) {
    ProposedEvent e;
    e.type = "$patch";
    e.data = data;
    e.valid_from = *ParseTimestamp(valid_from);
    ASSERT_TRUE(store_->Append("employee-7", ExpectedRevision::Any(), {e}).ok());
  };
  put(R"({"name":"Ann","salary":5000,"boss":{"id":3}})", "2026-01-01T00:00:00Z");
  put(R"({"salary":6000})", "2026-04-01T00:00:00Z");
  const Timestamp before_correction = Now();
  put(R"({"salary":5500})", "2026-02-01T00:00:00Z");  // a backdated correction
  for (const ProjectionSpec& spec : Specs()) ASSERT_TRUE(Run(spec, 100).ok());
  auto one = [&](const std::string& sql) {
    auto rows = pg_->Query(sql);
    EXPECT_EQ(rows.size(), 1u) << sql;
    std::string out;
    for (const auto& v : rows.at(0)) out += (out.empty() ? "" : "|") + v.value_or("NULL");
    return out;
  };
  // Valid time, as known now: the correction holds from February to April.
  EXPECT_EQ(one("SELECT name, salary, boss FROM timetrail.emp_hist_valid_at('2026-03-01') "
                "WHERE stream = 'employee-7'"),
            "Ann|5500|3");
  EXPECT_EQ(one("SELECT name, salary FROM timetrail.emp_hist_valid_at('2026-05-01')"), "Ann|6000");
  // System time: what the record said before the correction was recorded.
  EXPECT_EQ(one("SELECT salary FROM timetrail.emp_hist_as_of('" +
                FormatTimestamp(before_correction) + "')"),
            "6000");
  EXPECT_EQ(one("SELECT salary FROM timetrail.emp_hist_as_of(now())"), "5500");
  // The same without the function: one row per property, found by its range.
  EXPECT_EQ(one("SELECT (SELECT value FROM timetrail.emp_hist_name WHERE stream = 'employee-7' "
                "AND valid_period @> timestamptz '2026-03-01'), (SELECT value FROM "
                "timetrail.emp_hist_salary WHERE stream = 'employee-7' AND valid_period @> "
                "timestamptz '2026-03-01')"),
            "Ann|5500");
  // The constraints hold: no two rows of a stream overlap in any of the three ranges.
  EXPECT_THROW(pg_->Exec("INSERT INTO timetrail.emp_hist_salary VALUES ('employee-7', '7', 1, "
                         "'[0,)', 'empty', 'empty', 99)"),
               std::runtime_error);
}

TEST_F(ProjectionTest, AnEventTheMappingDoesNotFitNamesItAndWritesNothing) {
  ProposedEvent ok;
  ok.type = "$put";
  ok.data = R"({"name":"Ann","salary":5000})";
  ASSERT_TRUE(store_->Append("employee-1", ExpectedRevision::Any(), {ok}).ok());
  ProposedEvent bad;
  bad.type = "$patch";
  bad.data = R"({"salary":"a lot"})";
  Result<Committed> c = store_->Append("employee-2", ExpectedRevision::Any(), {ok, bad});
  ASSERT_TRUE(c.ok());
  const ProjectionSpec state = Specs()[1];
  Result<project::ProjectorStats> r = Run(state, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  const std::string message = r.status().message();
  EXPECT_NE(message.find("position " + std::to_string(c->last_position)), std::string::npos)
      << message;
  EXPECT_NE(message.find("employee-2"), std::string::npos) << message;
  EXPECT_NE(message.find("column 'salary'"), std::string::npos) << message;
  EXPECT_NE(message.find("the string \"a lot\" does not fit a numeric column"), std::string::npos)
      << message;
  // Nothing of the batch was written: not the good events before it, not the checkpoint.
  EXPECT_EQ(pg_->Query("SELECT count(*) FROM timetrail.emp")[0][0], "0");
  EXPECT_EQ(pg_->Query("SELECT position FROM timetrail.projection_checkpoints WHERE name = 'emp'")
                .at(0)[0],
            "0");
  // The history projection refuses it the same way, naming the property.
  Result<project::ProjectorStats> h = Run(Specs()[3], 100);
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("property 'salary'"), std::string::npos);
}

TEST_F(ProjectionTest, ARebuildWhileAppendsGoOnSwapsInTablesEqualToTheStore) {
  std::mt19937 rng(11);
  AppendChanges(*store_, rng, 300, 10);
  std::vector<ProjectionSpec> specs = Specs();
  for (const ProjectionSpec& spec : specs) ASSERT_TRUE(Run(spec, 50).ok());
  // The live projectors follow while appends go on and each projection is rebuilt.
  std::atomic<bool> stop_live{false};
  std::atomic<bool> stop_appends{false};
  std::vector<std::thread> live;
  std::vector<Status> live_status(specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    live.emplace_back([&, i] {
      project::RunOptions o = Options(20);
      o.follow = true;
      auto r = project::RunProjection(*source_, specs[i], o, stop_live);
      live_status[i] = r.status();
    });
  }
  std::thread appender([&] {
    std::mt19937 more(12);
    while (!stop_appends.load()) {
      AppendChanges(*store_, more, 5, 10);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a steady rate
    }
  });
  for (const ProjectionSpec& spec : specs) {
    std::atomic<bool> never{false};
    Result<project::ProjectorStats> r =
        project::RebuildProjection(*source_, spec, Options(40), never);
    ASSERT_TRUE(r.ok()) << spec.name << ": " << r.status().ToString();
  }
  stop_appends.store(true);
  appender.join();
  // The live projectors went on with the new tables: let them catch up, then compare.
  const Position head = store_->LastPosition();
  for (int i = 0; i < 600; ++i) {
    auto rows = pg_->Query("SELECT min(position) FROM timetrail.projection_checkpoints");
    if (std::stoull(*rows[0][0]) >= head) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop_live.store(true);
  for (std::thread& t : live) t.join();
  for (std::size_t i = 0; i < specs.size(); ++i) {
    EXPECT_TRUE(live_status[i].ok()) << live_status[i].ToString();
    ExpectSameAsStore(specs[i]);
  }
  // The rebuilds left nothing behind.
  EXPECT_EQ(pg_->Query("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tt_rebuild_%'")[0][0],
            "0");
  EXPECT_EQ(pg_->Query("SELECT count(*) FROM timetrail.projection_checkpoints WHERE name LIKE "
                       "'%/rebuild'")[0][0],
            "0");
}

TEST_F(ProjectionTest, TwoProjectorsOnOneCheckpointWriteEachEventOnce) {
  std::mt19937 rng(5);
  AppendChanges(*store_, rng, 600, 30);
  const ProjectionSpec changes = Specs()[0];
  Status a, b;
  std::thread first([&] { a = Run(changes, 10).status(); });
  std::thread second([&] { b = Run(changes, 10).status(); });
  first.join();
  second.join();
  EXPECT_TRUE(a.ok()) << a.ToString();
  EXPECT_TRUE(b.ok()) << b.ToString();
  ExpectSameAsStore(changes);
  ExpectSameAsStore(changes);
}

TEST(ProjectionConfigTest, RefusesWhatItCannotDoWithAClearMessage) {
  auto error = [](const char* text) {
    Result<project::ProjectorConfig> c = project::ParseProjectorConfig(text);
    EXPECT_FALSE(c.ok()) << text;
    return c.ok() ? std::string() : c.status().message();
  };
  EXPECT_NE(error("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error(R"({"projections": []})").find("non-empty array"), std::string::npos);
  EXPECT_NE(error(R"({"projections": [{"name": "a", "kind": "graph"}]})")
                .find("'graph' is not one of changes, state, history"),
            std::string::npos);
  EXPECT_NE(
      error(R"({"projections": [{"name": "a", "kind": "history"}]})").find("needs \"properties\""),
      std::string::npos);
  EXPECT_NE(error(R"({"projections": [{"name": "a", "kind": "state", "columns": {"x": "money"}}]})")
                .find("unknown column type 'money'"),
            std::string::npos);
  EXPECT_NE(
      error(R"({"projections": [{"name": "a", "kind": "state", "columns": {"stream": "text"}}]})")
          .find("every state table has this column"),
      std::string::npos);
  EXPECT_NE(error(R"({"projections": [{"name": "a", "streams": ["ord", "order-"]}]})")
                .find("a stream would match both"),
            std::string::npos);
  EXPECT_NE(error(R"({"projections": [{"name": "a"}, {"name": "a"}]})").find("named twice"),
            std::string::npos);
  EXPECT_NE(error(R"({"projections": [{"name": "a", "colour": "red"}]})")
                .find("unknown member \"colour\""),
            std::string::npos);
  Result<project::ProjectorConfig> good = project::ParseProjectorConfig(
      R"({"target": "postgresql://x/y", "batch": 100, "projections": [{"name": "s", "kind": "state",
          "streams": ["order-"], "columns": {"total": {"path": "/amount/total", "type": "NUMERIC"},
          "status": "text"}}]})");
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->batch_events, 100u);
  const ProjectionSpec& s = good->projections[0];
  ASSERT_EQ(s.columns.size(), 2u);
  EXPECT_EQ(s.columns[0].name, "total");  // the file's order
  EXPECT_EQ(s.columns[0].path, "/amount/total");
  std::string_view id;
  EXPECT_TRUE(s.Matches("order-42", &id));
  EXPECT_EQ(id, "42");
  EXPECT_FALSE(s.Matches("customer-1", &id));
}

TEST(SqlTypesTest, ValuesFitTheirColumnsOrSayWhyNot) {
  using nlohmann::json;
  using project::SqlType;
  using project::ToSqlText;
  EXPECT_EQ(*ToSqlText(json(5), SqlType::kBigint), std::optional<std::string>("5"));
  EXPECT_FALSE(ToSqlText(json(2.5), SqlType::kBigint).ok());
  EXPECT_FALSE(ToSqlText(json(40000), SqlType::kSmallint).ok());
  EXPECT_FALSE(ToSqlText(json(3000000000LL), SqlType::kInteger).ok());
  EXPECT_EQ(*ToSqlText(json(true), SqlType::kBoolean), std::optional<std::string>("t"));
  EXPECT_FALSE(ToSqlText(json("yes"), SqlType::kBoolean).ok());
  EXPECT_EQ(*ToSqlText(json(nullptr), SqlType::kText), std::nullopt);
  EXPECT_FALSE(ToSqlText(json(12), SqlType::kText).ok());
  EXPECT_TRUE(ToSqlText(json("2026-02-28"), SqlType::kDate).ok());
  EXPECT_FALSE(ToSqlText(json("2026-02-30"), SqlType::kDate).ok());
  EXPECT_FALSE(ToSqlText(json("2025-02-29"), SqlType::kDate).ok());
  EXPECT_TRUE(ToSqlText(json("2026-11-22T13:40:00Z"), SqlType::kTimestamptz).ok());
  EXPECT_FALSE(ToSqlText(json("yesterday"), SqlType::kTimestamptz).ok());
  EXPECT_FALSE(ToSqlText(json("not-a-uuid"), SqlType::kUuid).ok());
  EXPECT_EQ(*ToSqlText(json::parse(R"({"a":[1]})"), SqlType::kJsonb),
            std::optional<std::string>(R"({"a":[1]})"));
}

}  // namespace
}  // namespace timetrail
