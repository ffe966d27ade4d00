// The write path: validates transactions, checks expected revisions and idempotency, assigns
// positions, times and hashes, and commits many concurrent transactions with one durable write
// (group commit). One writer thread owns all of this state, so no lock guards it.
#ifndef TIMETRAIL_STORE_WRITE_PATH_H_
#define TIMETRAIL_STORE_WRITE_PATH_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "storage/kv_engine.h"
#include "store/keys.h"
#include "timetrail/event.h"
#include "timetrail/options.h"
#include "timetrail/store.h"

namespace timetrail {

// Lets a layer above the store (e.g. temporal indexes) add its own records to the same atomic
// write as the events it indexes. Called on the writer thread for each accepted transaction,
// in position order, before the batch is written.
class IndexHook {
 public:
  virtual ~IndexHook() = default;
  // "events" are the transaction's events, as they will be stored. Returning an error fails
  // this transaction only (nothing of it is written).
  virtual Status OnTransaction(std::span<const RecordedEvent> events, KvWriteBatch& batch) = 0;
  // Called after the batch's write failed, so that any state the hook kept is dropped.
  virtual void OnBatchAborted() {}
};

// Receives each new durable head; called on the writer thread after every successful write.
using PublishFn = std::function<void(const keys::HeadState&)>;

class WritePath {
 public:
  WritePath(KvEngine* engine, const Options& options, const keys::HeadState& initial,
            PublishFn publish);
  WritePath(const WritePath&) = delete;
  WritePath& operator=(const WritePath&) = delete;
  // Commits everything queued, then stops the writer thread.
  ~WritePath();

  // Blocks until "tx" is durable or rejected. With "checkpoint" (name, value), the checkpoint is
  // written in the same atomic write.
  Result<Committed> Commit(const Transaction& tx,
                           const std::optional<std::pair<std::string, std::string>>& checkpoint);

  // Durably sets a checkpoint, ordered with the writes around it.
  Status SetCheckpoint(std::string_view name, std::string_view value);

  // Must be called before the first Commit, from the thread that opened the store.
  void AddIndexHook(IndexHook* hook) { hooks_.push_back(hook); }

  struct Counters {
    std::atomic<std::uint64_t> transactions{0}, events{0}, replays{0}, conflicts{0},
        rejected{0}, group_commits{0}, latency_micros{0};
  };
  const Counters& counters() const { return counters_; }

 private:
  struct Pending {
    const Transaction* tx = nullptr;  // null: a checkpoint-only request
    std::optional<std::pair<std::string, std::string>> checkpoint;
    std::size_t bytes = 0;
    std::int64_t enqueued_micros = 0;
    std::promise<Result<Committed>> done;
  };
  // What the batch being built has changed so far, on top of the stored state.
  struct BatchState;

  Result<Committed> Enqueue(Pending& p);
  void Run();
  void CommitBatch(std::vector<Pending*>& batch);
  // Classifies "tx" against ids already stored: nullopt when all ids are new, the original
  // result when "tx" repeats an earlier one, or an error.
  Result<std::optional<Committed>> CheckIdempotency(const Transaction& tx, BatchState& state,
                                                    bool* defer);
  Result<std::optional<keys::StreamHead>*> LoadHead(const std::string& stream,
                                                   BatchState& state);

  KvEngine* engine_;
  const Options options_;
  PublishFn publish_;
  std::vector<IndexHook*> hooks_;
  Counters counters_;

  // Writer-thread state: the durable head, and a cache of stream heads (only the writer
  // changes heads, so the cache is always right; it is cleared when it grows too large).
  keys::HeadState head_;
  std::unordered_map<std::string, std::optional<keys::StreamHead>> head_cache_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending*> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;       // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace timetrail

#endif  // TIMETRAIL_STORE_WRITE_PATH_H_
