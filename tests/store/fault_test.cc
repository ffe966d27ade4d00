// The store on a file system that injects faults (support/fault_fs.h): failing writes, syncs
// and reads, and a simulated power loss that drops everything not synced. Appends that hit a
// fault fail with an I/O error and are never acknowledged; every acknowledged event survives;
// reads fail cleanly and work again once the fault clears.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <iterator>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "store/event_store_impl.h"
#include "support/fault_fs.h"
#include "support/store_helpers.h"
#include "support/temp_dir.h"

namespace timetrail {
namespace {

using testing::Event;
using testing::FaultFs;
using testing::TempDir;

class FaultTest : public ::testing::Test {
 protected:
  std::unique_ptr<EventStoreImpl> Open() {
    auto store = EventStoreImpl::OpenWithEnv(Options(), dir_.path(), env_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  // The "data" of every event in the log, in order; the log must have no gaps.
  static std::vector<std::string> LogData(const EventStore& store) {
    ReadLogOptions o;
    o.max_count = SIZE_MAX;
    auto page = store.ReadLog(o);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    std::vector<std::string> out;
    if (!page.ok()) return out;
    Position expected = 1;
    for (const auto& e : page->events) {
      EXPECT_EQ(e.position, expected++);
      out.push_back(e.data);
    }
    return out;
  }
  static void ExpectVerifies(const EventStore& store) {
    auto report = store.Verify(VerifyOptions());
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_TRUE(report->ok) << report->message;
  }
  static std::string Data(int n) { return "{\"n\":" + std::to_string(n) + "}"; }
  // Lets some writes through, then injects one kind of fault (0: writes, 1: syncs, 2: reads)
  // for a while and returns which; the fault is still on.
  int InjectRandomFault(std::mt19937& rng) {
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 30));
    const int kind = static_cast<int>(rng() % 3);
    if (kind == 0) fs_->FailWrites(true);
    if (kind == 1) fs_->FailSyncs(true);
    if (kind == 2) fs_->FailReads(true);
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 30));
    return kind;
  }

  TempDir dir_;
  std::shared_ptr<FaultFs> fs_ = std::make_shared<FaultFs>();
  std::shared_ptr<rocksdb::Env> env_ = testing::NewFaultEnv(fs_);
};

// Appends 10 events, then "refused_appends" under write faults (all refused), and returns the
// acknowledged ones.
std::vector<std::string> AppendThroughWriteFaults(EventStore& store, FaultFs& fs,
                                                  const std::string& dir,
                                                  const std::string& expected_message,
                                                  int refused_appends) {
  std::vector<std::string> acked;
  for (int i = 0; i < 10; ++i) {
    std::string data = "{\"n\":" + std::to_string(i) + "}";
    EXPECT_TRUE(store.Append("s", ExpectedRevision::Any(), {Event("T", data)}).ok());
    acked.push_back(data);
  }
  fs.FailWrites(true);
  for (int i = 0; i < refused_appends; ++i) {
    auto r = store.Append("s", ExpectedRevision::Any(), {Event("T", "{\"n\":-1}")});
    EXPECT_FALSE(r.ok());
    if (r.ok()) continue;
    EXPECT_EQ(r.status().code(), StatusCode::kIOError) << r.status().ToString();
    EXPECT_NE(r.status().message().find("not written"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(expected_message), std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find(dir), std::string::npos)
        << "the error names the data directory: " << r.status().message();
  }
  EXPECT_GT(fs.injected(), 0u);
  EXPECT_EQ(store.LastPosition(), 10u);
  return acked;
}

TEST_F(FaultTest, WriteFailuresAreRefusedAndTheStoreWritesAgainAfterAReopen) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<std::string> acked =
      AppendThroughWriteFaults(*store, *fs_, dir_.path(), "injected write fault", 5);
  // Nothing refused is visible, and reads go on during the fault.
  EXPECT_EQ(LogData(*store), acked);

  // An I/O error on the log stops the engine's writes even after the fault clears: appends
  // say so, reads go on.
  fs_->FailWrites(false);
  auto r = store->Append("s", ExpectedRevision::Any(), {Event("T", Data(-1))});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIOError);
  EXPECT_NE(r.status().message().find("reopen"), std::string::npos) << r.status().message();
  EXPECT_EQ(LogData(*store), acked);
  store.reset();

  store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(LogData(*store), acked) << "every acknowledged event, none of the refused ones";
  for (int i = 10; i < 20; ++i) {
    ASSERT_TRUE(store->Append("s", ExpectedRevision::Any(), {Event("T", Data(i))}).ok());
    acked.push_back(Data(i));
  }
  EXPECT_EQ(LogData(*store), acked);
  ExpectVerifies(*store);
}

TEST_F(FaultTest, NoSpaceFailuresAreRefusedAndAppendsResumeWithoutAReopen) {
  fs_->WritesFailAsNoSpace(true);
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<std::string> acked =
      AppendThroughWriteFaults(*store, *fs_, dir_.path(), "the disk is full", 1);
  EXPECT_EQ(LogData(*store), acked);

  // Only one append meets the full disk here: each later one would first try to resume, whose
  // flush would also meet it (tests/store/disk_full_test.cc covers a real full disk).
  fs_->FailWrites(false);
  // RocksDB recovers from a full disk in the background, checking for free space now and
  // then; appends are refused with the disk-full error until it has.
  int refused = 0;
  for (int i = 10; i < 20;) {
    auto r = store->Append("s", ExpectedRevision::Any(), {Event("T", Data(i))});
    if (!r.ok()) {
      ASSERT_EQ(acked.size(), 10u) << "once resumed, appends go on: " << r.status().ToString();
      ASSERT_NE(r.status().message().find("the disk is full"), std::string::npos)
          << r.status().ToString();
      ASSERT_LT(++refused, 6000) << "appends never resumed: " << r.status().ToString();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    acked.push_back(Data(i++));
  }
  EXPECT_EQ(LogData(*store), acked);
  store.reset();

  store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(LogData(*store), acked);
  ExpectVerifies(*store);
  auto info = store->GetStreamInfo("s");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->last_revision, 19u);
}

TEST_F(FaultTest, FailedSyncsWithConcurrentAppendersAcknowledgeOnlyDurableEvents) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::mutex mu;
  std::set<std::string> acked, failed;
  std::atomic<int> acks{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 60; ++i) {
        std::string data = Data(t * 1000 + i);
        auto r =
            store->Append("s" + std::to_string(t), ExpectedRevision::Any(), {Event("T", data)});
        std::lock_guard<std::mutex> l(mu);
        if (r.ok()) {
          acked.insert(data);
          acks.fetch_add(1);
        } else {
          EXPECT_EQ(r.status().code(), StatusCode::kIOError) << r.status().ToString();
          failed.insert(data);
        }
      }
    });
  }
  while (acks.load() < 40) std::this_thread::yield();
  fs_->FailSyncs(true);
  for (auto& th : threads) th.join();
  ASSERT_FALSE(failed.empty());
  EXPECT_GE(acked.size(), 40u);

  // The store refuses appends with the sync's error and goes on serving what is durable.
  auto r = store->Append("s", ExpectedRevision::Any(), {Event("T", Data(-1))});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIOError);
  EXPECT_NE(r.status().message().find("did not confirm"), std::string::npos)
      << r.status().message();
  std::vector<std::string> visible = LogData(*store);
  EXPECT_EQ(std::set<std::string>(visible.begin(), visible.end()), acked);

  // Power loss while the disk still fails, then a reopen on a healthy disk.
  store.reset();
  fs_->DropUnsyncedData();
  fs_->FailSyncs(false);
  store = Open();
  ASSERT_NE(store, nullptr);
  visible = LogData(*store);
  // Every acknowledged event survives; an append answered with the sync error may or may not
  // (the error says so), nothing else is stored.
  for (const std::string& d : acked) {
    EXPECT_EQ(std::count(visible.begin(), visible.end(), d), 1) << d;
  }
  for (const std::string& d : visible) {
    EXPECT_TRUE(acked.count(d) == 1 || failed.count(d) == 1) << d;
  }
  ExpectVerifies(*store);
  EXPECT_TRUE(store->Append("s", ExpectedRevision::Any(), {Event("T", Data(-2))}).ok());
}

TEST_F(FaultTest, FailedReadsReturnAnErrorAndSucceedOnceTheFaultClears) {
  std::vector<std::string> written;
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(
          store->Append("s" + std::to_string(i % 5), ExpectedRevision::Any(), {Event("T", Data(i))})
              .ok());
      written.push_back(Data(i));
    }
  }
  // Reopening moves the log into table files (recovery flushes it) and starts with a cold
  // cache, so the reads below go to the disk.
  fs_->FailReads(true);
  auto failed_open = EventStoreImpl::OpenWithEnv(Options(), dir_.path(), env_);
  ASSERT_FALSE(failed_open.ok());
  EXPECT_NE(failed_open.status().message().find("injected"), std::string::npos)
      << failed_open.status().ToString();
  fs_->FailReads(false);

  auto store = Open();
  ASSERT_NE(store, nullptr);
  fs_->FailReads(true);
  std::uint64_t before = fs_->injected();
  ReadLogOptions o;
  o.max_count = SIZE_MAX;
  auto page = store->ReadLog(o);
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), StatusCode::kIOError) << page.status().ToString();
  EXPECT_NE(page.status().message().find("injected read fault"), std::string::npos)
      << page.status().message();
  auto stream = store->ReadStream("s3", ReadStreamOptions());
  EXPECT_FALSE(stream.ok());
  auto event = store->GetEventAt(150);
  EXPECT_FALSE(event.ok());
  EXPECT_GT(fs_->injected(), before);

  fs_->FailReads(false);
  EXPECT_EQ(LogData(*store), written);
  auto s3 = store->ReadStream("s3", ReadStreamOptions());
  ASSERT_TRUE(s3.ok()) << s3.status().ToString();
  EXPECT_EQ(s3->size(), 40u);
  ExpectVerifies(*store);
}

TEST_F(FaultTest, RandomFaultsAndPowerLossKeepExactlyTheAcknowledgedEvents) {
  std::mt19937 rng(20261123);
  std::set<std::string> acked;
  // Appends answered with an error that says their outcome is unknown ("may or may not be
  // stored"): a batch written before a fault whose sync then failed may already be in a table
  // file that a background flush made durable.
  std::set<std::string> unknown;
  int next = 0;
  for (int round = 0; round < 12; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto store = Open();
    ASSERT_NE(store, nullptr);
    std::mutex mu;
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    std::atomic<int> counter{next};
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        while (!stop.load()) {
          std::string data = Data(counter.fetch_add(1));
          auto r = store->Append("r" + std::to_string(t), ExpectedRevision::Any(),
                                 {Event("T", data), Event("U", data)});
          std::lock_guard<std::mutex> l(mu);
          if (r.ok()) {
            acked.insert(data);
          } else if (r.status().message().find("may or may not be stored") != std::string::npos) {
            unknown.insert(data);
          }
        }
      });
    }
    const int kind = InjectRandomFault(rng);
    if (kind == 0 || kind == 2) {
      // A write or read fault clears while the store runs; appends resume.
      fs_->FailWrites(false);
      fs_->FailReads(false);
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 30));
    }
    stop.store(true);
    for (auto& th : threads) th.join();
    next = counter.load();
    store.reset();
    // Power loss: the disk keeps only what was synced.
    fs_->DropUnsyncedData();
    fs_->FailSyncs(false);

    store = Open();
    ASSERT_NE(store, nullptr);
    std::vector<std::string> log = LogData(*store);
    std::set<std::string> stored;
    for (std::size_t i = 0; i + 1 < log.size() + 1; i += 2) {
      ASSERT_LT(i + 1, log.size());
      EXPECT_EQ(log[i], log[i + 1]) << "a transaction is stored whole or not at all";
      stored.insert(log[i]);
    }
    std::vector<std::string> lost, extra;
    std::set_difference(acked.begin(), acked.end(), stored.begin(), stored.end(),
                        std::back_inserter(lost));
    std::set_difference(stored.begin(), stored.end(), acked.begin(), acked.end(),
                        std::back_inserter(extra));
    EXPECT_TRUE(lost.empty()) << "acknowledged but lost: " << lost.size() << " first "
                              << lost.front() << " (fault kind " << kind << ")";
    // Only an append whose error said its outcome is unknown may be stored without having
    // been acknowledged; one refused outright ("not written") never is.
    std::vector<std::string> refused_but_stored;
    std::set_difference(extra.begin(), extra.end(), unknown.begin(), unknown.end(),
                        std::back_inserter(refused_but_stored));
    EXPECT_TRUE(refused_but_stored.empty())
        << "stored although refused: " << refused_but_stored.size() << " first "
        << refused_but_stored.front() << " (fault kind " << kind << ")";
    acked = stored;  // keep later rounds independent of this one
    unknown.clear();
    ExpectVerifies(*store);
  }
  EXPECT_GT(fs_->injected(), 0u);
}

// A bulk load (Options::bulk_load, as `timetrail import` loads) under the same faults: each
// batch goes in whole with stop_at_first_failure, as an import commits, and stops at the first
// failure. After a power loss the log holds a prefix of what was attempted, with every
// acknowledged transaction in it.
TEST_F(FaultTest, BulkLoadsUnderFaultsAndPowerLossKeepAPrefixWithEveryAcknowledgedEvent) {
  std::mt19937 rng(20261205);
  std::vector<std::string> stored_before;  // the log after the previous round
  int next = 0;
  for (int round = 0; round < 10; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    Options o;
    o.bulk_load = true;
    auto opened = EventStoreImpl::OpenWithEnv(o, dir_.path(), env_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    std::unique_ptr<EventStoreImpl> store = std::move(opened).value();
    const int first = next;
    std::atomic<int> acked_until{first};  // every event before it was acknowledged
    std::atomic<bool> stop{false};
    std::thread loader([&] {
      std::mt19937 sizes(static_cast<std::uint32_t>(round));
      while (!stop.load()) {
        std::vector<Transaction> batch(1 + sizes() % 200);
        for (Transaction& tx : batch) {
          tx.appends.push_back({"bulk", ExpectedRevision::Any(), {Event("T", Data(next++))}});
        }
        const int end = next;
        bool all_ok = true;
        for (const Result<Committed>& r : store->TransactMany(std::move(batch), true)) {
          all_ok = all_ok && r.ok();
        }
        if (!all_ok) return;  // as an import does
        acked_until.store(end);
      }
    });
    const int kind = InjectRandomFault(rng);
    stop.store(true);
    loader.join();
    store.reset();
    fs_->DropUnsyncedData();
    fs_->FailWrites(false);
    fs_->FailSyncs(false);
    fs_->FailReads(false);

    opened = EventStoreImpl::OpenWithEnv(Options(), dir_.path(), env_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store = std::move(opened).value();
    std::vector<std::string> log = LogData(*store);
    ASSERT_GE(log.size(), stored_before.size());
    ASSERT_TRUE(std::equal(stored_before.begin(), stored_before.end(), log.begin()))
        << "an earlier round's events changed";
    // This round's events: first, first + 1, ... without a gap, at least up to the last
    // acknowledged one.
    const std::size_t added = log.size() - stored_before.size();
    for (std::size_t i = 0; i < added; ++i) {
      ASSERT_EQ(log[stored_before.size() + i], Data(first + static_cast<int>(i)))
          << "not a prefix of the attempted events (fault kind " << kind << ")";
    }
    EXPECT_GE(first + static_cast<int>(added), acked_until.load())
        << "acknowledged but lost (fault kind " << kind << ")";
    ExpectVerifies(*store);
    stored_before = std::move(log);
    next = first + static_cast<int>(added);  // numbering goes on from what is stored
  }
  EXPECT_GT(fs_->injected(), 0u);
}

}  // namespace
}  // namespace timetrail
