// The pipelined write path: the writer writes group N+1 while group N's sync is running, and
// nothing (acknowledgement, published head, checkpoint value) is visible before a sync that
// covers it has completed. The engine is the real RocksDB engine behind a gate that can hold a
// sync or make it fail, so the tests decide exactly when a sync completes.
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "core/event_codec.h"
#include "storage/kv_engine.h"
#include "store/keys.h"
#include "store/write_path.h"
#include "support/store_helpers.h"
#include "support/temp_dir.h"

namespace timetrail {
namespace {

using testing::Event;
using testing::EventWithId;
using testing::TempDir;

// Forwards to the real engine. Records which write positions each completed sync covered, and
// can hold syncs (until Release) or fail the next one.
class GatedEngine final : public KvEngine {
 public:
  explicit GatedEngine(std::unique_ptr<KvEngine> inner) : inner_(std::move(inner)) {}

  Result<std::optional<std::string>> Get(Family f, std::string_view key) const override {
    return inner_->Get(f, key);
  }
  Result<std::vector<std::optional<std::string>>> MultiGet(
      Family f, std::span<const std::string> keys) const override {
    return inner_->MultiGet(f, keys);
  }
  std::unique_ptr<KvIterator> NewIterator(Family f) const override {
    return inner_->NewIterator(f);
  }
  std::unique_ptr<KvWriteBatch> NewBatch() const override { return inner_->NewBatch(); }
  std::uint64_t ApproximateDiskBytes() const override { return inner_->ApproximateDiskBytes(); }
  Status CreateCheckpoint(const std::string& dir) override { return inner_->CreateCheckpoint(dir); }

  Status Write(KvWriteBatch& batch, bool sync) override {
    Status s = inner_->Write(batch, sync);
    if (!s.ok()) return s;
    auto raw = inner_->Get(Family::kMeta, keys::kHeadState);
    std::lock_guard<std::mutex> l(mu_);
    written_position_ = keys::DecodeHeadState(**raw)->last_position;
    if (syncing_) ++writes_during_sync_;
    ++writes_;
    cv_.notify_all();
    return s;
  }

  Status SyncWal() override {
    std::unique_lock<std::mutex> l(mu_);
    Position covers = written_position_;  // everything written before this call
    syncing_ = true;
    ++syncs_started_;
    cv_.notify_all();
    cv_.wait(l, [&] { return !hold_; });
    Status fail = std::exchange(fail_next_, Status::Ok());
    l.unlock();
    Status s = fail.ok() ? inner_->SyncWal() : fail;
    l.lock();
    syncing_ = false;
    if (s.ok()) durable_position_ = std::max(durable_position_, covers);
    cv_.notify_all();
    return s;
  }

  void Hold() {
    std::lock_guard<std::mutex> l(mu_);
    hold_ = true;
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu_);
    hold_ = false;
    cv_.notify_all();
  }
  void FailNextSync(Status s) {
    std::lock_guard<std::mutex> l(mu_);
    fail_next_ = std::move(s);
  }
  void AwaitWrites(int n) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return writes_ >= n; });
  }
  void AwaitSyncsStarted(int n) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return syncs_started_ >= n; });
  }
  Position durable_position() {
    std::lock_guard<std::mutex> l(mu_);
    return durable_position_;
  }
  int writes_during_sync() {
    std::lock_guard<std::mutex> l(mu_);
    return writes_during_sync_;
  }
  KvEngine& inner() { return *inner_; }

 private:
  std::unique_ptr<KvEngine> inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false, syncing_ = false;
  Status fail_next_;
  int writes_ = 0, syncs_started_ = 0, writes_during_sync_ = 0;
  Position written_position_ = 0, durable_position_ = 0;
};

// A write path over a gated engine in a temporary directory, recording what it publishes and
// checking, at every publication, that the head is durable.
struct Fixture {
  TempDir dir;
  GatedEngine* engine = nullptr;
  std::unique_ptr<GatedEngine> owned;
  std::unique_ptr<WritePath> path;
  std::mutex mu;
  std::vector<Position> published;   // GUARDED_BY(mu)
  int published_beyond_durable = 0;  // GUARDED_BY(mu)

  Fixture() {
    auto inner = OpenRocksDbEngine(RocksDbEngineOptions{}, dir.Sub("data"));
    EXPECT_TRUE(inner.ok()) << inner.status().ToString();
    owned = std::make_unique<GatedEngine>(std::move(inner).value());
    engine = owned.get();
    path = std::make_unique<WritePath>(engine, Options{}, keys::HeadState{},
                                       keys::IdTag{1, 2, 3, 4, 5, 6},
                                       [this](const keys::HeadState& h) {
                                         std::lock_guard<std::mutex> l(mu);
                                         if (h.last_position > engine->durable_position()) {
                                           ++published_beyond_durable;
                                         }
                                         published.push_back(h.last_position);
                                       });
  }
  ~Fixture() {
    if (owned) engine->Release();
    path.reset();
  }
  std::vector<Position> Published() {
    std::lock_guard<std::mutex> l(mu);
    return published;
  }
  // Whether the engine holds "p" at all, durable or not.
  bool Stored(Position p) {
    auto raw = engine->inner().Get(Family::kLog, keys::Log(p));
    return raw.ok() && raw->has_value();
  }
};

Transaction Tx(std::string stream, ExpectedRevision expected, std::vector<ProposedEvent> events) {
  Transaction tx;
  tx.appends.push_back(StreamAppend{std::move(stream), expected, std::move(events)});
  return tx;
}

std::future<Result<Committed>> CommitAsync(WritePath& path, const Transaction& tx) {
  return std::async(std::launch::async, [&path, &tx] { return path.Commit(tx, std::nullopt); });
}

bool Ready(std::future<Result<Committed>>& f) {
  return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

TEST(WritePathTest, TheNextGroupIsWrittenWhileTheSyncRunsAndNothingIsVisibleBeforeIt) {
  Fixture fx;
  fx.engine->Hold();
  Transaction first = Tx("order-1", ExpectedRevision::NoStream(), {Event("Placed")});
  auto a = CommitAsync(*fx.path, first);
  fx.engine->AwaitSyncsStarted(1);
  // Written to the engine, but its sync has not completed: not acknowledged, not published.
  EXPECT_TRUE(fx.Stored(1));
  EXPECT_FALSE(Ready(a));
  EXPECT_TRUE(fx.Published().empty());

  // The writer goes on: the next transaction, which expects the first one's revision, is
  // checked against the unsynced group and written while the first sync is still held.
  Transaction second = Tx("order-1", ExpectedRevision::Exact(0), {Event("Paid")});
  auto b = CommitAsync(*fx.path, second);
  fx.engine->AwaitWrites(2);
  EXPECT_TRUE(fx.Stored(2));
  EXPECT_EQ(fx.engine->writes_during_sync(), 1);
  EXPECT_FALSE(Ready(a));
  EXPECT_FALSE(Ready(b));
  EXPECT_TRUE(fx.Published().empty());

  fx.engine->Release();
  auto ra = a.get();
  auto rb = b.get();
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(ra->last_position, 1u);
  EXPECT_EQ(rb->first_position, 2u);
  EXPECT_EQ(rb->streams[0].first_revision, 1u);
  EXPECT_LE(ra->recorded_at.micros, rb->recorded_at.micros);
  // Both were durable before they were answered, and heads were published in order.
  EXPECT_GE(fx.engine->durable_position(), 2u);
  std::vector<Position> published = fx.Published();
  ASSERT_FALSE(published.empty());
  EXPECT_EQ(published.back(), 2u);
  EXPECT_TRUE(std::is_sorted(published.begin(), published.end()));
  std::lock_guard<std::mutex> l(fx.mu);
  EXPECT_EQ(fx.published_beyond_durable, 0);
}

TEST(WritePathTest, AConflictWithAnUnsyncedGroupIsAnsweredAfterThatGroupIsDurable) {
  Fixture fx;
  fx.engine->Hold();
  Transaction first = Tx("cart-7", ExpectedRevision::NoStream(), {Event("Created")});
  auto a = CommitAsync(*fx.path, first);
  fx.engine->AwaitSyncsStarted(1);
  Transaction again = Tx("cart-7", ExpectedRevision::NoStream(), {Event("Created")});
  auto b = CommitAsync(*fx.path, again);
  // The conflict is decided against the unsynced group, but its answer waits behind it.
  while (fx.path->counters().conflicts.load() == 0) std::this_thread::yield();
  EXPECT_FALSE(Ready(b));
  fx.engine->Release();
  EXPECT_TRUE(a.get().ok());
  auto rb = b.get();
  ASSERT_FALSE(rb.ok());
  EXPECT_EQ(rb.status().code(), StatusCode::kWrongExpectedRevision);
  EXPECT_NE(rb.status().message().find("is at revision 0"), std::string::npos)
      << rb.status().message();
}

TEST(WritePathTest, AnIdempotentRetryOfAnUnsyncedAppendWaitsForItsSync) {
  Fixture fx;
  fx.engine->Hold();
  Uuid id1 = Uuid::Generate(), id2 = Uuid::Generate();
  Transaction tx = Tx("invoice-3", ExpectedRevision::Any(),
                      {EventWithId("Issued", "{}", id1), EventWithId("Sent", "{}", id2)});
  auto a = CommitAsync(*fx.path, tx);
  fx.engine->AwaitSyncsStarted(1);
  auto retry = CommitAsync(*fx.path, tx);
  while (fx.path->counters().replays.load() == 0) std::this_thread::yield();
  // The retry found the events in the engine, but they are not durable: no answer yet.
  EXPECT_FALSE(Ready(retry));
  EXPECT_FALSE(Ready(a));
  fx.engine->Release();
  auto ra = a.get();
  auto rr = retry.get();
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  ASSERT_TRUE(rr.ok()) << rr.status().ToString();
  EXPECT_TRUE(rr->idempotent_replay);
  EXPECT_EQ(rr->tx, ra->tx);
  EXPECT_EQ(rr->first_position, ra->first_position);
  EXPECT_EQ(rr->last_position, ra->last_position);
  EXPECT_GE(fx.engine->durable_position(), ra->last_position);
}

TEST(WritePathTest, ACheckpointIsReadOnlyOnceItsSyncCompletes) {
  Fixture fx;
  ASSERT_TRUE(fx.path->SetCheckpoint("projector", "10").ok());
  fx.engine->Hold();
  std::thread t([&] { EXPECT_TRUE(fx.path->SetCheckpoint("projector", "20").ok()); });
  fx.engine->AwaitSyncsStarted(2);
  // The engine holds the new value already; readers get the durable one.
  auto in_engine = fx.engine->inner().Get(Family::kMeta, keys::Checkpoint("projector"));
  ASSERT_TRUE(in_engine.ok());
  EXPECT_EQ(in_engine->value_or(""), "20");
  auto durable = fx.path->DurableCheckpoint("projector");
  ASSERT_TRUE(durable.ok());
  EXPECT_EQ(durable->value_or(""), "10");
  auto never = fx.path->DurableCheckpoint("other");
  ASSERT_TRUE(never.ok());
  EXPECT_FALSE(never->has_value());
  fx.engine->Release();
  t.join();
  durable = fx.path->DurableCheckpoint("projector");
  ASSERT_TRUE(durable.ok());
  EXPECT_EQ(durable->value_or(""), "20");
}

TEST(WritePathTest, AFailedSyncFailsEveryAppendSinceAndPublishesNothing) {
  Fixture fx;
  Transaction before = Tx("ledger", ExpectedRevision::NoStream(), {Event("Opened")});
  ASSERT_TRUE(fx.path->Commit(before, std::nullopt).ok());
  ASSERT_EQ(fx.Published().back(), 1u);

  fx.engine->Hold();
  fx.engine->FailNextSync(Status::IOError("injected: fdatasync failed"));
  Transaction first = Tx("ledger", ExpectedRevision::Exact(0), {Event("Debited")});
  auto a = CommitAsync(*fx.path, first);
  fx.engine->AwaitSyncsStarted(2);
  Transaction second = Tx("ledger", ExpectedRevision::Exact(1), {Event("Credited")});
  auto b = CommitAsync(*fx.path, second);
  fx.engine->AwaitWrites(3);
  fx.engine->Release();

  for (auto* f : {&a, &b}) {
    auto r = f->get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kIOError);
    EXPECT_NE(r.status().message().find("injected: fdatasync failed"), std::string::npos);
    EXPECT_NE(r.status().message().find("reopen"), std::string::npos) << r.status().message();
  }
  // Nothing after the last good sync was published, and the store accepts no more appends.
  EXPECT_EQ(fx.Published().back(), 1u);
  Transaction later = Tx("other", ExpectedRevision::Any(), {Event("Noted")});
  auto r = fx.path->Commit(later, std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIOError);
  EXPECT_EQ(fx.Published().back(), 1u);

  // Reopened, the store holds the acknowledged event and the unacknowledged ones only whole.
  fx.path.reset();
  fx.owned.reset();
  auto store = testing::OpenOrDie(fx.dir.Sub("data"));
  ASSERT_NE(store, nullptr);
  ReadStreamOptions all;
  auto events = store->ReadStream("ledger", all);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_GE(events->size(), 1u);
  EXPECT_EQ((*events)[0].type, "Opened");
  for (std::size_t i = 0; i < events->size(); ++i) EXPECT_EQ((*events)[i].revision, i);
  auto report = store->Verify(VerifyOptions{});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->message;
}

TEST(WritePathTest, ConcurrentWritersNeverSeeAHeadBeforeItIsDurable) {
  Fixture fx;
  constexpr int kThreads = 8, kPerThread = 60;
  std::atomic<int> acked_beyond_durable{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < kPerThread; ++i) {
        std::vector<ProposedEvent> events;
        for (int k = 0, n = 1 + static_cast<int>(rng() % 5); k < n; ++k) {
          events.push_back(Event("Step", R"({"i":)" + std::to_string(i) + "}"));
        }
        Transaction tx = Tx("s-" + std::to_string(t), ExpectedRevision::Any(), std::move(events));
        auto r = fx.path->Commit(tx, std::nullopt);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        if (r->last_position > fx.engine->durable_position()) acked_beyond_durable++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(acked_beyond_durable.load(), 0);
  std::vector<Position> published = fx.Published();
  ASSERT_FALSE(published.empty());
  EXPECT_TRUE(std::is_sorted(published.begin(), published.end()));
  std::lock_guard<std::mutex> l(fx.mu);
  EXPECT_EQ(fx.published_beyond_durable, 0);
  // One sync covers every group written before it started: never more syncs than groups.
  EXPECT_LE(fx.path->counters().group_commits.load(), published.size());
}

// The writer fills the order-dependent fields into encodings the callers prepared; what it
// stores must be exactly the canonical encoding of the event it reports, for stream names and
// types whose length prefixes take one or two bytes.
TEST(WritePathTest, StoredEventsAreTheCanonicalEncodingOfWhatWasCommitted) {
  TempDir dir;
  auto store = testing::OpenOrDie(dir.Sub("data"));
  ASSERT_NE(store, nullptr);
  std::vector<std::string> streams = {"s", std::string(127, 'a'), std::string(128, 'b'),
                                      std::string(512, 'c')};
  std::vector<std::string> types = {"T", std::string(127, 'x'), std::string(200, 'y')};
  Timestamp valid{1'600'000'000'000'000};
  for (const std::string& stream : streams) {
    std::vector<ProposedEvent> events;
    for (const std::string& type : types) events.push_back(Event(type, R"({"a":1})"));
    events.back().valid_from = valid;
    auto c = store->Append(stream, ExpectedRevision::Any(), events);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auto read = store->ReadStream(stream, ReadStreamOptions{});
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    ASSERT_EQ(read->size(), types.size());
    for (std::size_t i = 0; i < read->size(); ++i) {
      const RecordedEvent& e = (*read)[i];
      EXPECT_EQ(e.stream, stream);
      EXPECT_EQ(e.type, types[i]);
      EXPECT_EQ(e.revision, i);
      EXPECT_EQ(e.position, c->first_position + i);
      EXPECT_EQ(e.tx, c->tx);
      EXPECT_EQ(e.recorded_at, c->recorded_at);
      EXPECT_EQ(e.valid_from, i + 1 == types.size() ? valid : c->recorded_at);
      std::string canonical;
      EncodeCanonicalEvent(e, &canonical);
      Hash previous{};
      if (e.position > 1) previous = store->GetEventAt(e.position - 1)->hash;
      EXPECT_EQ(ChainHash(previous, canonical), e.hash) << "position " << e.position;
    }
  }
  auto report = store->Verify(VerifyOptions{});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->message;
}

}  // namespace
}  // namespace timetrail
