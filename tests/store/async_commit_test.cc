// TransactWithCheckpointAsync: transactions queued from one thread are stored in queue order and
// share fsyncs; a chain of conditional checkpoints stops at the first transaction that fails, so
// nothing after a gap is ever stored (what the capture relies on for exactly-once).
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <vector>

#include "support/store_helpers.h"
#include "support/temp_dir.h"

namespace timetrail {
namespace {

using testing::Event;
using testing::TempDir;

// Collects the answers of asynchronous transactions, by their index.
class Answers {
 public:
  std::function<void(Result<Committed>)> For(std::size_t i) {
    return [this, i](Result<Committed> r) {
      std::lock_guard<std::mutex> l(mu_);
      results_.emplace(i, std::move(r));
      cv_.notify_all();
    };
  }
  const Result<Committed>& Wait(std::size_t i) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return results_.count(i) > 0; });
    return results_.at(i);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::size_t, Result<Committed>> results_;
};

Transaction OneEvent(const std::string& stream, ExpectedRevision expected = ExpectedRevision::Any()) {
  Transaction tx;
  tx.appends.push_back(StreamAppend{stream, expected, {Event("note", "{\"n\":1}")}});
  return tx;
}

TEST(AsyncCommitTest, QueuedTransactionsAreStoredInOrderAndShareFsyncs) {
  TempDir dir;
  auto store = testing::OpenOrDie(dir.Sub("store"));
  ASSERT_TRUE(store->SetCheckpoint("chain", "0").ok());
  std::uint64_t syncs_before = store->GetStats().group_commits;
  constexpr std::size_t kCount = 300;
  Answers answers;
  for (std::size_t i = 1; i <= kCount; ++i) {
    store->TransactWithCheckpointAsync(OneEvent("s-" + std::to_string(i % 7)), "chain",
                                       std::to_string(i), std::to_string(i - 1), answers.For(i));
  }
  Position last = 0;
  for (std::size_t i = 1; i <= kCount; ++i) {
    const Result<Committed>& r = answers.Wait(i);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    EXPECT_GT(r->first_position, last) << "transaction " << i << " was stored out of order";
    last = r->last_position;
  }
  EXPECT_EQ(store->LastPosition(), kCount);
  EXPECT_EQ(**store->GetCheckpoint("chain"), std::to_string(kCount));
  // Queued together, they did not each wait for a disk write of their own.
  EXPECT_LT(store->GetStats().group_commits - syncs_before, kCount);
}

TEST(AsyncCommitTest, AChainStopsAtItsFirstFailureAndNothingAfterItIsStored) {
  TempDir dir;
  auto store = testing::OpenOrDie(dir.Sub("store"));
  ASSERT_TRUE(store->SetCheckpoint("chain", "0").ok());
  Answers answers;
  // 1 is stored; 2 is rejected when checked (a wrong expected revision); 3 and 4, which follow
  // it in the chain, must not be stored although nothing is wrong with them.
  store->TransactWithCheckpointAsync(OneEvent("a"), "chain", "1", "0", answers.For(1));
  store->TransactWithCheckpointAsync(OneEvent("b", ExpectedRevision::Exact(5)), "chain", "2", "1",
                                     answers.For(2));
  store->TransactWithCheckpointAsync(OneEvent("c"), "chain", "3", "2", answers.For(3));
  store->TransactWithCheckpointAsync(OneEvent("d"), "chain", "4", "3", answers.For(4));
  // 5 is rejected before it is queued (an empty stream name); 6 follows it.
  store->TransactWithCheckpointAsync(OneEvent(""), "chain", "5", "4", answers.For(5));
  store->TransactWithCheckpointAsync(OneEvent("f"), "chain", "6", "5", answers.For(6));
  // 7 names the value that is really stored: a new chain from there is accepted.
  store->TransactWithCheckpointAsync(OneEvent("g"), "chain", "7", "1", answers.For(7));

  EXPECT_TRUE(answers.Wait(1).ok());
  EXPECT_EQ(answers.Wait(2).status().code(), StatusCode::kWrongExpectedRevision);
  for (std::size_t i : {3u, 4u, 6u}) {
    const Result<Committed>& r = answers.Wait(i);
    ASSERT_FALSE(r.ok()) << i;
    EXPECT_EQ(r.status().code(), StatusCode::kWrongExpectedRevision) << i;
    EXPECT_NE(r.status().message().find("checkpoint 'chain'"), std::string::npos)
        << r.status().message();
  }
  EXPECT_EQ(answers.Wait(5).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(answers.Wait(7).ok()) << answers.Wait(7).status().ToString();
  for (const char* stream : {"b", "c", "d", "f"}) {
    EXPECT_FALSE(store->GetStreamInfo(stream)->exists) << stream;
  }
  EXPECT_TRUE(store->GetStreamInfo("g")->exists);
  EXPECT_EQ(store->LastPosition(), 2u);
  EXPECT_EQ(**store->GetCheckpoint("chain"), "7");
}

}  // namespace
}  // namespace timetrail
