// Several stores opened on one PostgreSQL store at once, as several timetrail nodes do: each
// appends, and each sees the others' appends, with expected revisions, idempotent retries,
// gap-free positions and one integrity chain across them; the same with the second node
// sending its reads to a read replica (Options::postgres_read_replica), here the primary's own
// URL, so that its reads wait for positions the replica publishes. Runs only against
// PostgreSQL, as shared_store_test_postgres (an embedded store has one writing process);
// tests/cli/read_replica_test.sh runs a real streaming standby.
#include <gtest/gtest.h>

#include <libpq-fe.h>

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "storage/postgres_engine.h"
#include "support/store_helpers.h"
#include "support/temp_dir.h"

namespace timetrail {
namespace {

using testing::Event;
using testing::EventWithId;
using testing::OpenOrDie;
using testing::TempDir;

// The parameter: whether node b reads through a read replica.
class SharedStoreTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    ASSERT_NE(testing::TestStoreUrl(), nullptr)
        << "run under tests/support/with_postgres.sh with TIMETRAIL_TEST_STORE=postgresql";
    a_ = OpenOrDie(dir_.Sub("data"));
    Options b_options;
    if (GetParam()) b_options.postgres_read_replica = testing::TestStoreUrl();
    b_ = OpenOrDie(dir_.Sub("data"), b_options);
    ASSERT_TRUE(a_ && b_);
  }
  TempDir dir_;
  std::unique_ptr<EventStore> a_, b_;
};

TEST_P(SharedStoreTest, NodesAppendInTurnWithExpectedRevisionsAndOneChain) {
  ASSERT_TRUE(a_->Append("s", ExpectedRevision::NoStream(), {Event("one")}).ok());
  // Node b has not seen the stream, but checks the expectation against the store.
  auto stale = b_->Append("s", ExpectedRevision::NoStream(), {Event("two")});
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), StatusCode::kWrongExpectedRevision);
  auto two = b_->Append("s", ExpectedRevision::Exact(0), {Event("two")});
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  EXPECT_EQ(two->first_position, 2u);
  EXPECT_EQ(two->tx, 2u);
  // Node a, whose cached head of "s" is out of date, is corrected under the lock.
  auto again = a_->Append("s", ExpectedRevision::Exact(0), {Event("three")});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kWrongExpectedRevision);
  auto three = a_->Append("s", ExpectedRevision::Exact(1), {Event("three")});
  ASSERT_TRUE(three.ok()) << three.status().ToString();
  EXPECT_EQ(three->first_position, 3u);
  ASSERT_TRUE(b_->Refresh().ok());
  EXPECT_EQ(b_->LastPosition(), 3u);
  auto events = b_->ReadStream("s", {});
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[2].type, "three");
  for (EventStore* s : {a_.get(), b_.get()}) {
    auto report = s->Verify({});
    ASSERT_TRUE(report.ok());
    EXPECT_TRUE(report->ok) << report->message;
    EXPECT_EQ(report->events_checked, 3u);
  }
  EXPECT_EQ(a_->GetIntegrityHead().hash_hex, b_->GetIntegrityHead().hash_hex);
}

TEST_P(SharedStoreTest, ARetryOnAnotherNodeIsAReplay) {
  Uuid id = Uuid::Generate();
  auto first = a_->Append("s", ExpectedRevision::Any(), {EventWithId("T", "1", id)});
  ASSERT_TRUE(first.ok());
  auto retry = b_->Append("s", ExpectedRevision::Any(), {EventWithId("T", "1", id)});
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  EXPECT_TRUE(retry->idempotent_replay);
  EXPECT_EQ(retry->first_position, first->first_position);
  ASSERT_TRUE(b_->Refresh().ok());
  EXPECT_EQ(b_->LastPosition(), 1u);
}

TEST_P(SharedStoreTest, WaitersAndListenersWakeForAnotherNodesAppend) {
  std::atomic<Position> heard{0};
  std::uint64_t id = b_->AddCommitListener([&](Position p) { heard = p; });
  std::thread waiter([&] { EXPECT_TRUE(b_->WaitForPosition(1, std::chrono::seconds(30)).ok()); });
  ASSERT_TRUE(a_->Append("s", ExpectedRevision::Any(), {Event("T")}).ok());
  waiter.join();
  EXPECT_EQ(b_->LastPosition(), 1u);
  for (int i = 0; i < 300 && heard.load() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(heard.load(), 1u);
  b_->RemoveCommitListener(id);
}

TEST_P(SharedStoreTest, ConcurrentAppendsOnBothNodesAreGapFreeAndCountedOnce) {
  constexpr int kThreads = 4, kPerThread = 50;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      EventStore* s = t % 2 ? b_.get() : a_.get();
      for (int i = 0; i < kPerThread; ++i) {
        // Every writer appends to the same counter stream with its expected revision, reading
        // the revision from whichever node it uses, so conflicts across nodes happen.
        for (;;) {
          auto info = s->GetStreamInfo("counter");
          ASSERT_TRUE(info.ok());
          ExpectedRevision e = info->exists ? ExpectedRevision::Exact(*info->last_revision)
                                            : ExpectedRevision::NoStream();
          Transaction tx;
          tx.appends.push_back({"counter", e, {Event("inc")}});
          tx.appends.push_back({"own-" + std::to_string(t), ExpectedRevision::Any(), {Event("x")}});
          auto r = s->Transact(tx);
          if (r.ok()) break;
          ASSERT_EQ(r.status().code(), StatusCode::kWrongExpectedRevision) << r.status().ToString();
          (void)s->Refresh();
        }
        ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(ok.load(), kThreads * kPerThread);
  for (EventStore* s : {a_.get(), b_.get()}) {
    ASSERT_TRUE(s->Refresh().ok());
    EXPECT_EQ(s->LastPosition(), 2u * kThreads * kPerThread);
    auto counter = s->ReadStream("counter", {});
    ASSERT_TRUE(counter.ok());
    ASSERT_EQ(counter->size(), static_cast<std::size_t>(kThreads * kPerThread));
    ReadLogOptions o;
    o.max_count = SIZE_MAX;
    auto log = s->ReadLog(o);
    ASSERT_TRUE(log.ok());
    for (std::size_t i = 0; i < log->events.size(); ++i) {
      ASSERT_EQ(log->events[i].position, i + 1);
    }
    auto report = s->Verify({});
    ASSERT_TRUE(report.ok());
    EXPECT_TRUE(report->ok) << report->message;
  }
}

TEST_P(SharedStoreTest, AReadOnlyStoreFollowsTheWritersWithRefresh) {
  Options options;
  options.read_only = true;
  std::string location = testing::StoreLocation(dir_.Sub("data"), options);
  auto reader = EventStore::Open(options, location);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  constexpr int kAppends = 200;
  std::thread writer([&] {
    for (int i = 0; i < kAppends; ++i) {
      ASSERT_TRUE((i % 2 ? a_ : b_)->Append("s", ExpectedRevision::Any(), {Event("T")}).ok());
    }
  });
  // Refreshing while the nodes commit: the log may be read ahead of the head record read just
  // before it, which is no damage; every read sees a gap-free prefix.
  Position seen = 0;
  while (seen < static_cast<Position>(kAppends)) {
    Status s = (*reader)->Refresh();
    ASSERT_TRUE(s.ok()) << s.ToString();
    ReadLogOptions o;
    o.from_position = seen + 1;
    o.max_count = SIZE_MAX;
    auto page = (*reader)->ReadLog(o);
    ASSERT_TRUE(page.ok());
    for (const RecordedEvent& e : page->events) ASSERT_EQ(e.position, ++seen);
  }
  writer.join();
}

// Nodes taking turns on one document keep their temporal states right: each node forgets only
// the streams the other wrote, and the snapshots both write fold every event before them.
TEST(SharedStoreTemporalTest, NodesTakingTurnsOnADocumentWriteTrueSnapshots) {
  ASSERT_NE(testing::TestStoreUrl(), nullptr);
  TempDir dir;
  Options o;
  o.snapshot_interval = 2;
  auto a = OpenOrDie(dir.Sub("data"), o), b = OpenOrDie(dir.Sub("data"), o);
  ASSERT_TRUE(a && b);
  constexpr int kRevisions = 40;
  ASSERT_TRUE(a->Append("doc", ExpectedRevision::NoStream(), {Event("$put", R"({"n":0})")}).ok());
  // Another stream written only by "a" stays cached there across b's turns.
  ASSERT_TRUE(a->Append("own", ExpectedRevision::Any(), {Event("$put", R"({"m":0})")}).ok());
  for (int r = 1; r < kRevisions; ++r) {
    EventStore& node = r % 2 ? *b : *a;
    std::string patch = R"({"n":)" + std::to_string(r) + R"(,"k)" + std::to_string(r) + R"(":)" +
                        std::to_string(r) + "}";
    auto c = node.Append("doc", ExpectedRevision::Exact(r - 1), {Event("$patch", patch)});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    if (r % 3 == 0) {
      ASSERT_TRUE(a->Append("own", ExpectedRevision::Any(), {Event("$patch", R"({"m":1})")}).ok());
    }
  }
  // A third node, with nothing cached, reads what the snapshots say.
  auto reader = OpenOrDie(dir.Sub("data"), o);
  ASSERT_TRUE(reader);
  for (int r = 0; r < kRevisions; ++r) {
    auto state = reader->GetEntity("doc", EntityQuery::AtRevision(r));
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    // The store writes members in key order.
    std::map<std::string, int> members{{"n", r}};
    for (int k = 1; k <= r; ++k) members["k" + std::to_string(k)] = k;
    std::string want;
    for (const auto& [key, value] : members) {
      want += (want.empty() ? "{\"" : ",\"") + key + "\":" + std::to_string(value);
    }
    want += "}";
    EXPECT_EQ(state->state, want) << "revision " << r;
  }
  auto own = reader->GetEntity("own", EntityQuery::Latest());
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(own->state, R"({"m":1})");
}

// Ends every other session of the test's database, as a restart or failover of the server ends
// a node's connections.
void DropAllOtherConnections() {
  PGconn* admin = PQconnectdb(testing::TestStoreUrl());
  ASSERT_EQ(PQstatus(admin), CONNECTION_OK) << PQerrorMessage(admin);
  PGresult* r = PQexec(admin,
                       "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQerrorMessage(admin);
  PQclear(r);
  PQfinish(admin);
}

// A sync on a new connection must never confirm a write made on a connection that was lost:
// after a failover the new server may not have it. Writes of the new connections are
// confirmed by the next sync.
TEST(PostgresEngineTest, ASyncNeverConfirmsWritesOfALostConnection) {
  ASSERT_NE(testing::TestStoreUrl(), nullptr);
  PostgresEngineOptions options;
  options.url = testing::TestStoreUrl();
  options.schema = "engine_lost_connection";
  auto engine = OpenPostgresEngine(options);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  KvEngine& e = **engine;
  auto write = [&](std::string_view key) {
    auto batch = e.NewBatch();
    batch->Put(Family::kMeta, key, "v");
    return e.Write(*batch, /*sync=*/false);
  };
  ASSERT_TRUE(write("before").ok());
  ASSERT_TRUE(e.SyncWal().ok());
  ASSERT_TRUE(write("unconfirmed").ok());
  ASSERT_TRUE(e.Get(Family::kMeta, "before").ok());  // leaves a read connection in the pool
  DropAllOtherConnections();
  // The first write after the loss may find the old connection dead; the next one reconnects.
  Status after = write("after");
  if (!after.ok()) {
    EXPECT_EQ(after.code(), StatusCode::kUnavailable) << after.ToString();
    after = write("after");
  }
  ASSERT_TRUE(after.ok()) << after.ToString();
  Status sync = e.SyncWal();
  EXPECT_EQ(sync.code(), StatusCode::kUnavailable) << sync.ToString();
  // The new connections' own write still needs, and gets, a sync that confirms it.
  ASSERT_TRUE(write("later").ok());
  EXPECT_TRUE(e.SyncWal().ok());
  // The pooled read connection was dropped too: the read is tried again on a new one.
  auto value = e.Get(Family::kMeta, "unconfirmed");
  ASSERT_TRUE(value.ok()) << value.status().ToString();
  EXPECT_EQ(value->value_or(""), "v");
}

// A node whose database connections are all lost goes on by itself: the appends in flight
// fail with unavailable, later ones are acknowledged, and a retry with the same id answers
// with the original position when the first attempt had been stored.
TEST_P(SharedStoreTest, ANodeGoesOnAfterLosingItsConnections) {
  ASSERT_TRUE(a_->Append("s", ExpectedRevision::Any(), {Event("T")}).ok());
  DropAllOtherConnections();
  Uuid id = Uuid::Generate();
  Result<Committed> first = a_->Append("s", ExpectedRevision::Any(), {EventWithId("T", "{}", id)});
  for (int i = 0; i < 3 && !first.ok(); ++i) {
    EXPECT_EQ(first.status().code(), StatusCode::kUnavailable) << first.status().ToString();
    first = a_->Append("s", ExpectedRevision::Any(), {EventWithId("T", "{}", id)});
  }
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto next = a_->Append("s", ExpectedRevision::Any(), {Event("T")});
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->first_position, first->first_position + 1);
  // The other node, whose connections went too, sees every event once.
  ASSERT_TRUE(b_->Refresh().ok() || b_->Refresh().ok());
  ASSERT_TRUE(b_->WaitForPosition(next->last_position, std::chrono::seconds(10)).ok());
  auto events = b_->ReadStream("s", {});
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), next->first_position);
  for (std::size_t i = 0; i < events->size(); ++i) EXPECT_EQ((*events)[i].position, i + 1);
  auto report = b_->Verify({});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->message;
}

INSTANTIATE_TEST_SUITE_P(, SharedStoreTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return param.param ? "ReadReplica" : "OwnDatabase";
                         });

TEST(ReadReplicaTest, ATokenIsHonouredAndTheListenerHearsEveryPositionInOrder) {
  TempDir dir;
  Options options;
  options.postgres_read_replica = testing::TestStoreUrl();
  auto store = OpenOrDie(dir.Sub("data"), options);
  ASSERT_TRUE(store);
  std::mutex mu;
  std::vector<Position> heard;
  std::uint64_t id = store->AddCommitListener([&](Position p) {
    std::lock_guard<std::mutex> l(mu);
    heard.push_back(p);
  });
  constexpr int kAppends = 50;
  Position last = 0;
  for (int i = 0; i < kAppends; ++i) {
    auto c = store->Append("s", ExpectedRevision::Any(), {Event("T")});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    // Acknowledged once durable on the primary; readable once the replica has it.
    last = c->last_position;
    ASSERT_TRUE(store->WaitForPosition(last, std::chrono::seconds(5)).ok());
    auto events = store->ReadStream("s", {});
    ASSERT_TRUE(events.ok());
    ASSERT_EQ(events->size(), static_cast<std::size_t>(i + 1));
  }
  store->RemoveCommitListener(id);
  // Published heads only move forward: each position heard once at most, in order.
  ASSERT_FALSE(heard.empty());
  EXPECT_EQ(heard.back(), last);
  for (std::size_t i = 1; i < heard.size(); ++i) EXPECT_LT(heard[i - 1], heard[i]);
  EXPECT_EQ(store->GetStats().read_replica_lag_positions, std::optional<std::uint64_t>(0));
  auto report = store->Verify({});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->message;
}

TEST(ReadReplicaTest, OnlyAStoreWithoutOneHasNoLagToReport) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("data"));
  ASSERT_TRUE(store);
  EXPECT_FALSE(store->GetStats().read_replica_lag_positions.has_value());
}

TEST(ReadReplicaTest, IsRefusedForADataDirectoryReadOnlyAndANonUrl) {
  TempDir dir;
  Options options;
  options.postgres_read_replica = testing::TestStoreUrl();
  auto on_directory = EventStore::Open(options, dir.Sub("data"));
  ASSERT_FALSE(on_directory.ok());
  EXPECT_EQ(on_directory.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(on_directory.status().message().find("for a store kept in PostgreSQL"),
            std::string::npos)
      << on_directory.status().ToString();

  ASSERT_TRUE(OpenOrDie(dir.Sub("pg")));  // a store to open read-only
  Options read_only = options;
  read_only.read_only = true;
  auto reader = EventStore::Open(read_only, testing::StoreLocation(dir.Sub("pg"), read_only));
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kInvalidArgument);

  Options not_url;
  not_url.postgres_read_replica = "host=127.0.0.1";
  auto bad = EventStore::Open(not_url, testing::StoreLocation(dir.Sub("pg"), not_url));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace timetrail
