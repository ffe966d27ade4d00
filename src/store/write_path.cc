#include "store/write_path.h"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include "core/event_codec.h"
#include "core/validation.h"

namespace timetrail {
namespace {

// The prefix of an append's error when it may have been stored: said so, with what to do.
constexpr std::string_view kOutcomeUnknown =
    "not confirmed: the append may or may not be stored; send it again with the same event ids, "
    "and a stored one answers with its original position";

// Past this many cached stream heads the cache is dropped and refilled from the engine, which
// keeps the writer's memory bounded however many streams there are.
constexpr std::size_t kMaxCachedHeads = 200000;

bool IsDocumentType(std::string_view type) {
  return type == kPutType || type == kPatchType || type == kDeleteType;
}

std::string DescribeRevision(const std::optional<keys::StreamHead>& head) {
  return head ? "is at revision " + std::to_string(head->last_revision) : "does not exist";
}

std::uint32_t VarintLength(std::uint64_t v) {
  std::uint32_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// CPU time of the calling thread: what the ordered stage costs, without the time it waits for
// the disk or for the engine.
std::int64_t ThreadCpuMicros() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1000000 + t.tv_nsec / 1000;
}

// Overwrites the 8 bytes at "offset" with "v" as PutFixed64 writes it.
void PatchFixed64(std::string* s, std::size_t offset, std::uint64_t v) {
  char* p = s->data() + offset;
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

}  // namespace

struct WritePath::BatchState {
  std::unique_ptr<KvWriteBatch> batch;
  keys::HeadState head;
  // Heads of the streams this batch has looked at (nullopt: no events), and which it changed.
  std::unordered_map<std::string, std::optional<keys::StreamHead>> heads;
  std::unordered_set<std::string> dirty;
  // Ids of events this batch writes.
  std::unordered_set<std::string> ids;
  // Checkpoints this batch writes, with their values, for conditional checkpoints.
  std::unordered_map<std::string, std::string> checkpoints;
  // The id index entries of the client-chosen ids in this batch, read with one MultiGet before
  // the batch is checked (nullopt: not written). The engine does not change while the batch is
  // built, so they stay right; ids this batch itself writes are caught by "ids" first.
  std::unordered_map<std::string, std::optional<std::string>> stored_ids;
};

WritePath::WritePath(KvEngine* engine, const Options& options, const keys::HeadState& initial,
                     const keys::IdTag& id_tag, PublishFn publish)
    : engine_(engine),
      options_(options),
      id_tag_(id_tag),
      publish_(std::move(publish)),
      head_(initial),
      written_(initial.last_position) {
  sync_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "tt-sync");
    RunSync();
  });
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "tt-writer");  // shows in top, perf and gdb
    Run();
  });
}

WritePath::~WritePath() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();  // the writer hands its last group to the sync thread before it returns
  {
    std::lock_guard<std::mutex> l(sync_mu_);
    writer_done_ = true;
  }
  sync_cv_.notify_all();
  sync_thread_.join();
}

void WritePath::Prepare(const Transaction& tx, Prepared* out) const {
  std::size_t n = 0;
  for (const auto& a : tx.appends) n += a.events.size();
  out->events.reserve(n);
  out->encoded.reserve(n);
  out->revision_offset.reserve(n);
  out->time_offset.reserve(n);
  out->valid_from_given.reserve(n);
  for (const StreamAppend& sa : tx.appends) {
    for (const ProposedEvent& pe : sa.events) {
      RecordedEvent& e = out->events.emplace_back();
      e.stream = sa.stream;
      if (pe.id) e.id = *pe.id;  // else generated from the position, once it is known
      e.type = pe.type;
      e.data = pe.data.empty() ? "null" : pe.data;
      e.metadata = pe.metadata.empty() ? "{}" : pe.metadata;
      if (pe.valid_from) e.valid_from = *pe.valid_from;
      out->valid_from_given.push_back(pe.valid_from.has_value());
      // The order-dependent fields are zero here. Their offsets follow the canonical layout
      // (docs/format/encoding.md): version, position, stream, revision, id, type, recorded_at,
      // valid_from, tx, metadata, data.
      std::string& enc = out->encoded.emplace_back();
      enc.reserve(80 + e.stream.size() + e.type.size() + e.data.size() + e.metadata.size());
      EncodeCanonicalEvent(e, &enc);
      std::uint32_t rev =
          1 + 8 + VarintLength(e.stream.size()) + static_cast<std::uint32_t>(e.stream.size());
      out->revision_offset.push_back(rev);
      out->time_offset.push_back(rev + 8 + 16 + VarintLength(e.type.size()) +
                                 static_cast<std::uint32_t>(e.type.size()));
    }
  }
  out->hook_data.resize(hooks_.size());
  for (std::size_t h = 0; h < hooks_.size(); ++h) {
    out->hook_data[h].reserve(n);
    for (const RecordedEvent& e : out->events)
      out->hook_data[h].push_back(hooks_[h]->PrepareEvent(e));
  }
}

Result<Committed> WritePath::Commit(
    const Transaction& tx, const std::optional<std::pair<std::string, std::string>>& checkpoint) {
  // Validation and encoding need no shared state, so they run on the caller's thread, in
  // parallel, and the writer thread does only what depends on the order of commits.
  Status valid = ValidateTransaction(tx, options_.limits);
  if (!valid.ok()) {
    counters_.rejected.fetch_add(1, std::memory_order_relaxed);
    return valid;
  }
  Pending p;
  p.tx = &tx;
  p.checkpoint = checkpoint;
  for (const auto& a : tx.appends) {
    for (const auto& e : a.events) p.bytes += e.data.size() + e.metadata.size() + 64;
  }
  Prepare(tx, &p.prepared);
  if (CommitAlone(p)) return p.done.get_future().get();
  return Enqueue(p);
}

Status WritePath::SetCheckpoint(std::string_view name, std::string_view value) {
  Pending p;
  p.checkpoint.emplace(std::string(name), std::string(value));
  p.bytes = name.size() + value.size();
  return Enqueue(p).status();
}

Result<std::optional<std::string>> WritePath::DurableCheckpoint(std::string_view name) const {
  std::lock_guard<std::mutex> l(checkpoint_mu_);
  auto it = unsynced_checkpoints_.find(std::string(name));
  if (it != unsynced_checkpoints_.end()) return it->second.second;
  return engine_->Get(Family::kMeta, keys::Checkpoint(name));
}

Status WritePath::NoteCheckpointWrite(const std::string& name, std::uint64_t seq) {
  std::lock_guard<std::mutex> l(checkpoint_mu_);
  auto it = unsynced_checkpoints_.find(name);
  if (it != unsynced_checkpoints_.end()) {
    it->second.first = seq;
    return Status::Ok();
  }
  // No unsynced group writes "name", so what the engine holds is durable.
  TT_ASSIGN_OR_RETURN(std::optional<std::string> durable,
                      engine_->Get(Family::kMeta, keys::Checkpoint(name)));
  unsynced_checkpoints_.emplace(name, std::make_pair(seq, std::move(durable)));
  return Status::Ok();
}

Result<Committed> WritePath::Enqueue(Pending& p) {
  auto result = p.done.get_future();
  Status refused;
  if (!Push(&p, &refused)) return refused;
  return result.get();
}

bool WritePath::Push(Pending* p, Status* refused) {
  if (broken_.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> l(sync_mu_);
    *refused = broken_status_;
    return false;
  }
  p->enqueued_micros = Now().micros;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) {
      *refused = Status::Unavailable("the store is closing; the append was not written");
      return false;
    }
    queue_.push_back(p);
  }
  cv_.notify_one();
  return true;
}

void WritePath::CommitAsync(Transaction tx,
                            std::optional<std::pair<std::string, std::string>> checkpoint,
                            std::optional<std::string> expected_checkpoint,
                            std::shared_ptr<CommitChain> chain,
                            std::function<void(Result<Committed>)> done) {
  Status valid = ValidateTransaction(tx, options_.limits);
  if (!valid.ok()) counters_.rejected.fetch_add(1, std::memory_order_relaxed);
  if (!valid.ok() && !chain) {
    done(valid);
    return;
  }
  auto p = std::make_unique<Pending>();
  // A chain must learn of the rejection in queue order: the ordered stage answers it.
  if (!valid.ok()) p->rejected = valid;
  p->owned_tx = std::move(tx);
  p->tx = &*p->owned_tx;
  p->checkpoint = std::move(checkpoint);
  p->expected_checkpoint = std::move(expected_checkpoint);
  p->chain = std::move(chain);
  p->callback = std::move(done);
  for (const auto& a : p->tx->appends) {
    for (const auto& e : a.events) p->bytes += e.data.size() + e.metadata.size() + 64;
  }
  if (valid.ok()) Prepare(*p->tx, &p->prepared);
  Status refused;
  if (!Push(p.get(), &refused)) {
    p->callback(valid.ok() ? refused : valid);
    return;
  }
  p.release();  // answered, then deleted, by Answer
}

void WritePath::Answer(Pending* p, Result<Committed> r) {
  if (p->callback) {
    std::function<void(Result<Committed>)> callback = std::move(p->callback);
    delete p;
    callback(std::move(r));
  } else {
    p->done.set_value(std::move(r));
  }
}

void WritePath::Run() {
  for (;;) {
    {
      // Stay at most one group ahead of the disk: while a written group still waits for its
      // sync to start, more appends queue up and go into one larger group later, rather than
      // into many small ones that each cost a write.
      std::unique_lock<std::mutex> l(sync_mu_);
      sync_cv_.wait(l, [&] { return groups_.empty(); });
    }
    std::vector<Pending*> batch;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return (stopping_ || !queue_.empty()) && !ordered_busy_; });
      if (queue_.empty()) return;  // stopping, and nothing left to commit
      if (options_.group_commit_delay_micros > 0 && !stopping_) {
        cv_.wait_for(l, std::chrono::microseconds(options_.group_commit_delay_micros), [&] {
          return stopping_ || queue_.size() >= options_.group_commit_max_transactions;
        });
      }
      std::size_t bytes = 0;
      while (!queue_.empty() && batch.size() < options_.group_commit_max_transactions &&
             (batch.empty() || bytes + queue_.front()->bytes <= options_.group_commit_max_bytes)) {
        bytes += queue_.front()->bytes;
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
      ordered_busy_ = true;
    }
    CommitBatch(batch);
    {
      std::lock_guard<std::mutex> l(mu_);
      ordered_busy_ = false;
    }
  }
}

bool WritePath::CommitAlone(Pending& p) {
  {
    std::lock_guard<std::mutex> l(mu_);
    // A group commit delay asks to wait for more appends to share the fsync: then queue.
    if (ordered_busy_ || stopping_ || !queue_.empty() || options_.group_commit_delay_micros > 0) {
      return false;
    }
    std::lock_guard<std::mutex> s(sync_mu_);
    if (sync_busy_ || !groups_.empty()) return false;
    // Nothing is queued, being ordered or being synced: this thread takes both the ordered and
    // the sync stage for its own transaction, and does what the writer and sync threads would.
    ordered_busy_ = true;
    sync_busy_ = true;
  }
  p.enqueued_micros = Now().micros;
  std::vector<Pending*> batch{&p};
  std::vector<Pending*> deferred;
  std::deque<Group> groups;
  groups.push_back(BuildGroup(batch, &deferred));
  {
    // Written: the writer may order and write the next group while this thread syncs. The sync
    // thread waits for sync_busy_, so this group is published before any later one.
    std::lock_guard<std::mutex> l(mu_);
    ordered_busy_ = false;
  }
  cv_.notify_all();
  SyncAndDeliver(groups);
  {
    std::lock_guard<std::mutex> l(sync_mu_);
    sync_busy_ = false;
  }
  sync_cv_.notify_all();
  // Never deferred (a transaction alone cannot wait for its own ids), but if it were, the caller
  // queues it for the writer.
  return deferred.empty();
}

void WritePath::RunSync() {
  for (;;) {
    std::deque<Group> groups;
    {
      std::unique_lock<std::mutex> l(sync_mu_);
      sync_cv_.wait(l, [&] { return (writer_done_ || !groups_.empty()) && !sync_busy_; });
      if (groups_.empty()) return;  // the writer has stopped and everything is answered
      groups.swap(groups_);
      sync_busy_ = true;
    }
    sync_cv_.notify_all();  // the writer may write the next group now
    SyncAndDeliver(groups);
    {
      std::lock_guard<std::mutex> l(sync_mu_);
      sync_busy_ = false;
    }
  }
}

void WritePath::SyncAndDeliver(std::deque<Group>& groups) {
  // Every group here was written before this call, so one sync covers them all.
  bool wrote = std::any_of(groups.begin(), groups.end(), [](const Group& g) { return g.wrote; });
  // A group that built on other nodes' writes and wrote nothing itself (replays, conflicts)
  // is answered once they are durable too: the engine's sync covers what the exclusive write
  // read.
  const bool followed =
      std::any_of(groups.begin(), groups.end(), [](const Group& g) { return g.followed; });
  if (((wrote && options_.sync) || followed) && !broken_.load(std::memory_order_acquire)) {
    Status s = engine_->SyncWal();
    if (!s.ok() && engine_->IsShared() && s.code() == StatusCode::kUnavailable) {
      // The database went away (restarted, or failed over): these groups' outcome is
      // unknown, but the engine goes on with the server it reaches next, and the next group
      // starts from the head as stored there (CatchUpWithOtherWriters).
      // Positions these groups took may go to other events: the store's watcher may publish
      // whatever other nodes write there (it makes their writes durable before it does).
      written_.store(delivered_.load(std::memory_order_acquire), std::memory_order_release);
      for (Group& g : groups) {
        g.lost = true;
        for (Result<Committed>& r : g.results) {
          r = s.WithPrefix(kOutcomeUnknown);
        }
      }
    } else if (!s.ok()) {
      Break(Status::IOError(
          "the disk did not confirm a write (" + s.message() +
          "); appends since the last confirmed one may or may not be stored, so the store "
          "accepts no more: reopen it and read the streams to see what was stored"));
    }
  }
  if (wrote && !broken_.load(std::memory_order_acquire) && !groups.front().lost) {
    counters_.group_commits.fetch_add(1, std::memory_order_relaxed);
  }
  for (Group& g : groups) Deliver(g);
}

void WritePath::Deliver(Group& group) {
  if (broken_.load(std::memory_order_acquire)) {
    // Results decided on top of groups that may be lost (replays, conflicts) are not reliable
    // either: everything fails with the sync's error. Nothing is published.
    Status broken;
    {
      std::lock_guard<std::mutex> l(sync_mu_);
      broken = broken_status_;
    }
    for (Pending* p : group.members) Answer(p, broken);
    return;
  }
  if (group.wrote && !group.lost) {
    counters_.events.fetch_add(group.events, std::memory_order_relaxed);
    delivered_.store(group.head.last_position, std::memory_order_release);
    publish_(group.head);
  }
  {
    // Every group that wrote these checkpoints is durable (or its write failed and changed
    // nothing), so the engine's values are the durable ones again.
    std::lock_guard<std::mutex> l(checkpoint_mu_);
    for (auto it = unsynced_checkpoints_.begin(); it != unsynced_checkpoints_.end();) {
      it = it->second.first <= group.seq ? unsynced_checkpoints_.erase(it) : std::next(it);
    }
  }
  std::int64_t now = Now().micros;
  for (std::size_t i = 0; i < group.members.size(); ++i) {
    Pending* p = group.members[i];
    Result<Committed>& r = group.results[i];
    if (r.ok() && p->tx != nullptr && !r.value().idempotent_replay) {
      counters_.transactions.fetch_add(1, std::memory_order_relaxed);
      counters_.latency_micros.fetch_add(static_cast<std::uint64_t>(now - p->enqueued_micros),
                                         std::memory_order_relaxed);
    }
    Answer(p, std::move(r));
  }
}

Result<std::optional<keys::StreamHead>*> WritePath::LoadHead(const std::string& stream,
                                                             BatchState& state) {
  auto it = state.heads.find(stream);
  if (it != state.heads.end()) return &it->second;
  auto cached = head_cache_.find(stream);
  if (cached != head_cache_.end())
    return &state.heads.emplace(stream, cached->second).first->second;
  TT_ASSIGN_OR_RETURN(std::optional<std::string> raw, engine_->Get(Family::kStreamHeads, stream));
  std::optional<keys::StreamHead> head;
  if (raw) {
    head = keys::DecodeStreamHead(*raw);
    if (!head) return Status::Corruption("the head record of stream '" + stream + "' is damaged");
  }
  return &state.heads.emplace(stream, head).first->second;
}

Status WritePath::CatchUpWithOtherWriters(bool* moved) {
  TT_ASSIGN_OR_RETURN(std::optional<std::string> raw,
                      engine_->BeginExclusiveWrite(Family::kMeta, keys::kHeadState));
  Result<std::optional<keys::HeadState>> parsed = keys::ParseHeadRecord(raw);
  if (!parsed.ok()) {
    engine_->EndExclusiveWrite();
    return parsed.status();
  }
  const keys::HeadState stored = parsed->value_or(keys::HeadState{});
  // Every write changes the record (position, tx, time or chain), except a checkpoint's alone,
  // which changes no stream either.
  if (keys::EncodeHeadState(stored) == keys::EncodeHeadState(head_)) return Status::Ok();
  if (stored.last_position < delivered_.load(std::memory_order_acquire)) {
    // Positions this process confirmed are gone: the database failed over to a server that
    // did not have them (an asynchronous standby). Going on would give them to other events.
    engine_->EndExclusiveWrite();
    Status lost = Status::Corruption(
        "the store's head is at position " + std::to_string(stored.last_position) +
        ", behind position " + std::to_string(delivered_.load()) +
        " that this node confirmed: the database lost acknowledged appends (a failover to a "
        "standby that was not synchronous?); this node accepts no more appends: find what is "
        "missing with timetrail verify, and restore it before restarting the node");
    Break(lost);
    return lost;
  }
  *moved = true;
  groups_since_other_writer_ = 0;
  // Writes of this process the store does not have (lost with a server that went away, never
  // confirmed) are not being written any more.
  if (stored.last_position < written_.load(std::memory_order_acquire)) {
    written_.store(stored.last_position, std::memory_order_release);
  }
  head_ = stored;
  head_cache_.clear();
  for (IndexHook* hook : hooks_) hook->OnOtherWriters();
  counters_.catch_ups.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Status WritePath::PrefetchHeads(const std::vector<Pending*>& batch, BatchState& st) {
  std::vector<std::string> streams;
  std::unordered_set<std::string_view> seen;
  for (const Pending* p : batch) {
    if (p->tx == nullptr || p->rejected) continue;
    for (const StreamAppend& sa : p->tx->appends) {
      if (!head_cache_.contains(sa.stream) && seen.insert(sa.stream).second) {
        streams.push_back(sa.stream);
      }
    }
  }
  if (streams.size() < 2) return Status::Ok();  // one Get is as cheap
  TT_ASSIGN_OR_RETURN(std::vector<std::optional<std::string>> values,
                      engine_->MultiGet(Family::kStreamHeads, streams));
  for (std::size_t i = 0; i < streams.size(); ++i) {
    std::optional<keys::StreamHead> head;
    if (values[i]) {
      head = keys::DecodeStreamHead(*values[i]);
      if (!head) return Status::Corruption("the head record of '" + streams[i] + "' is damaged");
    }
    // Nothing of this batch has changed these heads yet: they are where LoadHead starts.
    st.heads.emplace(std::move(streams[i]), head);
  }
  return Status::Ok();
}

Status WritePath::PrefetchIds(const std::vector<Pending*>& batch, BatchState& st) {
  std::vector<std::string> keys;
  for (const Pending* p : batch) {
    if (p->tx == nullptr || p->rejected) continue;
    for (const StreamAppend& sa : p->tx->appends) {
      for (const ProposedEvent& e : sa.events) {
        if (e.id && !keys::PositionOfGeneratedId(id_tag_, *e.id))
          keys.push_back(keys::EventId(*e.id));
      }
    }
  }
  if (keys.size() < 2) return Status::Ok();  // one Get is as cheap
  TT_ASSIGN_OR_RETURN(std::vector<std::optional<std::string>> values,
                      engine_->MultiGet(Family::kEventIds, keys));
  for (std::size_t i = 0; i < keys.size(); ++i) {
    st.stored_ids.emplace(std::move(keys[i]), std::move(values[i]));
  }
  return Status::Ok();
}

Result<std::optional<Position>> WritePath::FindWrittenId(const Uuid& id, const BatchState& st) {
  if (std::optional<Position> p = keys::PositionOfGeneratedId(id_tag_, id)) {
    // The form of an id this store generates: it was written if the event at that position
    // has it. Any other such id is refused, or the event later written at that position would
    // share it.
    if (*p != 0 && *p <= head_.last_position) {
      TT_ASSIGN_OR_RETURN(std::optional<std::string> raw,
                          engine_->Get(Family::kLog, keys::Log(*p)));
      if (raw) {
        TT_ASSIGN_OR_RETURN(RecordedEvent stored, DecodeStoredEvent(*raw));
        if (stored.id == id) return p;
      }
    }
    return Status::InvalidArgument("event id " + id.ToString() +
                                   " has the form of the ids this store generates, but no "
                                   "event has it; choose another id (e.g. a random UUID) or none");
  }
  const std::string key = keys::EventId(id);
  std::optional<std::string> raw;
  if (auto it = st.stored_ids.find(key); it != st.stored_ids.end()) {
    raw = it->second;
  } else {
    TT_ASSIGN_OR_RETURN(raw, engine_->Get(Family::kEventIds, key));
  }
  if (!raw) return std::optional<Position>();
  auto pos = keys::DecodePosition(*raw);
  if (!pos) return Status::Corruption("event id index entry of " + id.ToString() + " is damaged");
  return pos;
}

Result<std::optional<Committed>> WritePath::CheckIdempotency(const Transaction& tx,
                                                             BatchState& state, bool* defer) {
  std::size_t total = 0, found = 0;
  // Positions of the already-written events, per append, when found.
  std::vector<std::vector<Position>> positions(tx.appends.size());
  for (std::size_t a = 0; a < tx.appends.size(); ++a) {
    for (const ProposedEvent& e : tx.appends[a].events) {
      ++total;
      if (!e.id) continue;
      std::string key = keys::EventId(*e.id);
      if (state.ids.count(key)) {
        // The same ids are being written by this very batch: decide once that one is durable.
        *defer = true;
        return std::optional<Committed>();
      }
      TT_ASSIGN_OR_RETURN(std::optional<Position> pos, FindWrittenId(*e.id, state));
      if (!pos) continue;
      ++found;
      positions[a].push_back(*pos);
    }
  }
  if (found == 0) return std::optional<Committed>();

  auto partial = [&](std::string why) {
    return Status::DuplicateEvent(
        std::to_string(found) + " of the " + std::to_string(total) +
        " events were already written (" + why +
        "); a retry must resend exactly the original events, and new events need new ids");
  };
  if (found != total) return partial("the others are new");

  Committed c;
  c.idempotent_replay = true;
  c.first_position = UINT64_MAX;
  for (std::size_t a = 0; a < tx.appends.size(); ++a) {
    const StreamAppend& sa = tx.appends[a];
    StreamResult r;
    r.stream = sa.stream;
    for (std::size_t i = 0; i < positions[a].size(); ++i) {
      TT_ASSIGN_OR_RETURN(std::optional<std::string> raw,
                          engine_->Get(Family::kLog, keys::Log(positions[a][i])));
      if (!raw) return Status::Corruption("event id index points at a missing position");
      TT_ASSIGN_OR_RETURN(RecordedEvent stored, DecodeStoredEvent(*raw));
      if (stored.stream != sa.stream) {
        return partial("event " + stored.id.ToString() + " belongs to stream '" + stored.stream +
                       "'");
      }
      if (i == 0) {
        r.first_revision = stored.revision;
        r.first_position = stored.position;
        if (a == 0) {
          c.tx = stored.tx;
          c.recorded_at = stored.recorded_at;
        }
      } else if (stored.revision != r.first_revision + i) {
        return partial("they are not in the original order");
      }
      if (stored.tx != c.tx) return partial("they were written by different transactions");
      r.last_revision = stored.revision;
      r.last_position = stored.position;
      c.first_position = std::min(c.first_position, stored.position);
      c.last_position = std::max(c.last_position, stored.position);
    }
    c.streams.push_back(std::move(r));
  }
  return std::optional<Committed>(std::move(c));
}

void WritePath::CommitBatch(std::vector<Pending*>& batch) {
  std::vector<Pending*> deferred;
  HandToSync(BuildGroup(batch, &deferred));
  if (!deferred.empty()) {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = deferred.rbegin(); it != deferred.rend(); ++it) queue_.push_front(*it);
  }
}

WritePath::Group WritePath::BuildGroup(std::vector<Pending*>& batch,
                                       std::vector<Pending*>* deferred_out) {
  const std::int64_t started = ThreadCpuMicros();
  Group group;
  group.seq = next_seq_++;
  ++groups_since_other_writer_;
  if (broken_.load(std::memory_order_acquire)) {
    // A sync failed: nothing more is written. The sync stage answers with its error. An
    // exclusive write the last group began (ChainExclusiveWrite) lets other nodes go on.
    engine_->EndExclusiveWrite();
    group.members = std::move(batch);
    group.results.assign(group.members.size(),
                         Status::IOError("not written: an earlier sync failed"));
    return group;
  }

  // Several nodes may write the store: the ordered stage runs inside the store's exclusive
  // write, from the head as stored then.
  const bool shared = engine_->IsShared();
  if (shared) {
    Status s = CatchUpWithOtherWriters(&group.followed);
    if (!s.ok()) {
      group.members = std::move(batch);
      for (Pending* p : group.members) {
        if (p->chain) p->chain->failed = true;
        group.results.push_back(s.WithPrefix("the append was not written"));
      }
      return group;
    }
  }

  BatchState st;
  st.batch = engine_->NewBatch();
  st.head = head_;
  // One time for the whole group: its transactions share recorded_at (it never decreases with
  // the position), so one time index entry serves the group.
  const Timestamp now = std::max(Now(), st.head.last_recorded_at);
  // A failed prefetch leaves each lookup to read (and report) on its own.
  if (!PrefetchIds(batch, st).ok()) st.stored_ids.clear();
  if (shared && !PrefetchHeads(batch, st).ok()) st.heads.clear();
  std::vector<std::optional<Result<Committed>>> results(batch.size());
  std::vector<std::size_t> written;  // indexes into batch whose records are in st.batch
  std::vector<Pending*> deferred;
  std::uint64_t events_written = 0;
  Status batch_error;
  auto answer = [&](std::size_t i, Result<Committed> r) {
    if (!r.ok() && batch[i]->chain) batch[i]->chain->failed = true;
    results[i] = std::move(r);
  };

  // Stages 1 and 2, per transaction in queue order.
  std::vector<std::optional<keys::StreamHead>*> heads;
  for (std::size_t i = 0; i < batch.size() && batch_error.ok(); ++i) {
    Pending* p = batch[i];
    if (p->rejected) {
      answer(i, *p->rejected);
      continue;
    }
    if (p->chain && p->chain->failed) {
      results[i] = Status::Unavailable(
          "not written: an earlier transaction of the same batch failed, and the batch stops at "
          "the first failure; fix that one and send the batch again from it");
      continue;
    }
    heads.clear();
    Result<Committed> decided = Committed{};
    switch (CheckExpectations(p, group.seq, st, &heads, &decided, &batch_error)) {
      case Verdict::kDefer:
        deferred.push_back(p);
        continue;
      case Verdict::kAnswered:
        answer(i, std::move(decided));
        continue;
      case Verdict::kAccept:
        break;
    }
    if (!batch_error.ok()) break;
    if (p->tx == nullptr) {  // a checkpoint alone
      results[i] = Committed{};
      written.push_back(i);
      continue;
    }
    Result<Committed> c = AssignAndEncode(p, heads, now, st);
    if (!c.ok()) {
      batch_error = c.status();
      break;
    }
    events_written += p->prepared.events.size();
    results[i] = std::move(c);
    written.push_back(i);
  }

  // Stage 3: write the group, or fail every transaction in it.
  bool outcome_unknown = false;
  if (!written.empty() && batch_error.ok()) {
    batch_error = WriteGroup(st, now);
    // A shared engine's write that failed in its commit (the database went away) may have
    // been stored; the embedded engine's failed write changed nothing.
    outcome_unknown = !batch_error.ok() && engine_->IsShared();
  }
  if (!batch_error.ok()) {
    for (IndexHook* hook : hooks_) hook->OnBatchAborted();
    for (std::size_t i : written) {
      answer(i, batch_error.WithPrefix(outcome_unknown ? kOutcomeUnknown
                                                       : "the append was not written"));
    }
    // Transactions after the failing one were never looked at: fail them too.
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (!results[i] && std::find(deferred.begin(), deferred.end(), batch[i]) == deferred.end()) {
        answer(i, batch_error.WithPrefix("the append was not written"));
      }
    }
  } else if (!written.empty()) {
    head_ = st.head;
    if (head_cache_.size() + st.dirty.size() > kMaxCachedHeads) head_cache_.clear();
    for (const std::string& stream : st.dirty) head_cache_[stream] = st.heads[stream];
    group.wrote = true;
    group.head = st.head;
    group.events = events_written;
  }

  // A group that wrote nothing gives the exclusive write back (Write ended it otherwise).
  if (shared) engine_->EndExclusiveWrite();

  // Stage 4: the sync thread answers once the group is durable.
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!results[i]) continue;  // deferred
    group.members.push_back(batch[i]);
    group.results.push_back(std::move(*results[i]));
  }
  counters_.ordered_micros.fetch_add(static_cast<std::uint64_t>(ThreadCpuMicros() - started),
                                     std::memory_order_relaxed);
  *deferred_out = std::move(deferred);
  return group;
}

WritePath::Verdict WritePath::CheckExpectations(
    Pending* p, std::uint64_t group_seq, BatchState& st,
    std::vector<std::optional<keys::StreamHead>*>* heads, Result<Committed>* result,
    Status* batch_error) {
  if (p->tx == nullptr) {
    *batch_error = NoteCheckpointWrite(p->checkpoint->first, group_seq);
    if (batch_error->ok()) {
      st.batch->Put(Family::kMeta, keys::Checkpoint(p->checkpoint->first), p->checkpoint->second);
      st.checkpoints[p->checkpoint->first] = p->checkpoint->second;
    }
    return Verdict::kAccept;
  }
  const Transaction& tx = *p->tx;

  bool defer = false;
  auto replay = CheckIdempotency(tx, st, &defer);
  if (!replay.ok()) {
    counters_.rejected.fetch_add(1, std::memory_order_relaxed);
    *result = replay.status();
    return Verdict::kAnswered;
  }
  if (defer) return Verdict::kDefer;
  if (replay->has_value()) {
    // The original may be in a group that is not durable yet; the answer waits in this group,
    // which is delivered after it.
    counters_.replays.fetch_add(1, std::memory_order_relaxed);
    *result = std::move(**replay);
    return Verdict::kAnswered;
  }

  // Every expectation must hold before anything of the transaction is applied. Heads include
  // groups written but not yet durable: a transaction builds on everything before it.
  if (p->expected_checkpoint) {
    // The value left by everything before this transaction: this batch's, else the engine's,
    // which holds groups written but not yet synced and never a failed group's.
    const std::string& name = p->checkpoint->first;
    std::optional<std::string> current;
    if (auto it = st.checkpoints.find(name); it != st.checkpoints.end()) {
      current = it->second;
    } else {
      auto stored = engine_->Get(Family::kMeta, keys::Checkpoint(name));
      if (!stored.ok()) {
        *result = stored.status();
        return Verdict::kAnswered;
      }
      current = std::move(*stored);
    }
    if (current != p->expected_checkpoint) {
      counters_.conflicts.fetch_add(1, std::memory_order_relaxed);
      *result = Status::WrongExpectedRevision(
          "checkpoint '" + name +
              "' is not at the value this transaction follows (an earlier "
              "transaction of the chain was not stored); nothing of it was written",
          ConflictDetail{});  // no stream is at fault
      return Verdict::kAnswered;
    }
  }
  for (const StreamAppend& sa : tx.appends) {
    auto head = LoadHead(sa.stream, st);
    if (!head.ok()) {
      *result = head.status();
      return Verdict::kAnswered;
    }
    std::optional<keys::StreamHead>& h = **head;
    std::optional<Revision> actual;
    if (h) actual = h->last_revision;
    if (!sa.expected.Matches(actual)) {
      counters_.conflicts.fetch_add(1, std::memory_order_relaxed);
      *result = Status::WrongExpectedRevision(
          "stream '" + sa.stream + "' " + DescribeRevision(h) + ", but the append expected " +
              sa.expected.ToString() + "; read the stream again and retry",
          ConflictDetail{sa.stream, actual});
      return Verdict::kAnswered;
    }
    heads->push_back(*head);
  }
  if (p->checkpoint) {
    *batch_error = NoteCheckpointWrite(p->checkpoint->first, group_seq);
  }
  return Verdict::kAccept;
}

Result<Committed> WritePath::AssignAndEncode(
    Pending* p, std::span<std::optional<keys::StreamHead>* const> heads, Timestamp now,
    BatchState& st) {
  const Transaction& tx = *p->tx;
  Committed c;
  c.tx = ++st.head.last_tx;
  c.recorded_at = now;
  c.first_position = st.head.last_position + 1;
  Prepared& prep = p->prepared;
  std::string pos_value;
  std::size_t k = 0;  // index into prep.events
  for (std::size_t a = 0; a < tx.appends.size(); ++a) {
    const StreamAppend& sa = tx.appends[a];
    std::optional<keys::StreamHead>& h = *heads[a];
    StreamResult r;
    r.stream = sa.stream;
    r.first_revision = h ? h->last_revision + 1 : 0;
    r.first_position = st.head.last_position + 1;
    keys::StreamHead next = h.value_or(keys::StreamHead{});
    const StreamBefore before{next.max_valid_from_known, next.max_valid_from};
    for (std::size_t j = 0; j < sa.events.size(); ++j, ++k) {
      RecordedEvent& e = prep.events[k];
      std::string& canonical = prep.encoded[k];
      e.revision = r.first_revision + j;
      e.position = ++st.head.last_position;
      e.recorded_at = now;
      if (!prep.valid_from_given[k]) e.valid_from = now;
      e.tx = c.tx;
      const std::size_t t = prep.time_offset[k];
      PatchFixed64(&canonical, 1, e.position);
      PatchFixed64(&canonical, prep.revision_offset[k], e.revision);
      if (!sa.events[j].id) {
        e.id = keys::GeneratedId(id_tag_, e.position);
        std::copy(e.id.bytes.begin(), e.id.bytes.end(),
                  canonical.begin() + prep.revision_offset[k] + 8);
      }
      PatchFixed64(&canonical, t, static_cast<std::uint64_t>(e.recorded_at.micros));
      PatchFixed64(&canonical, t + 8, static_cast<std::uint64_t>(e.valid_from.micros));
      PatchFixed64(&canonical, t + 16, e.tx);
      e.hash = ChainHash(st.head.hash, canonical);
      st.head.hash = e.hash;
      canonical.append(reinterpret_cast<const char*>(e.hash.data()), e.hash.size());

      pos_value = keys::EncodePosition(e.position);
      st.batch->Put(Family::kLog, keys::Log(e.position), canonical);
      st.batch->Put(Family::kStreamIndex, keys::StreamIndex(e.stream, e.revision), pos_value);
      if (sa.events[j].id) {
        // Only ids the caller chose need the id index (and can repeat); a generated one names
        // its position.
        std::string id_key = keys::EventId(e.id);
        st.batch->Put(Family::kEventIds, id_key, pos_value);
        st.ids.insert(std::move(id_key));
      }

      prep.before.push_back(before);
      next.last_revision = e.revision;
      next.last_position = e.position;
      if (IsDocumentType(e.type)) {
        next.deleted = e.type == kDeleteType;
        if (!next.max_valid_from || e.valid_from > *next.max_valid_from) {
          next.max_valid_from = e.valid_from;
        }
      }
    }
    h = next;
    st.dirty.insert(sa.stream);
    r.last_revision = next.last_revision;
    r.last_position = st.head.last_position;
    c.streams.push_back(std::move(r));
  }
  c.last_position = st.head.last_position;
  st.head.last_recorded_at = now;
  if (p->checkpoint) {
    st.batch->Put(Family::kMeta, keys::Checkpoint(p->checkpoint->first), p->checkpoint->second);
    st.checkpoints[p->checkpoint->first] = p->checkpoint->second;
  }
  for (std::size_t h = 0; h < hooks_.size(); ++h) {
    Status s = hooks_[h]->OnTransaction(prep.events, prep.encoded, prep.hook_data[h], prep.before,
                                        *st.batch);
    // A hook's records may already be in the batch, so the whole batch is abandoned.
    if (!s.ok()) return s.WithPrefix("indexing the transaction failed");
  }
  return c;
}

Status WritePath::WriteGroup(BatchState& st, Timestamp now) {
  for (const std::string& stream : st.dirty) {
    st.batch->Put(Family::kStreamHeads, stream, keys::EncodeStreamHead(*st.heads[stream]));
  }
  if (st.head.last_position != head_.last_position) {  // not for checkpoints alone
    st.batch->Put(Family::kTimeIndex, keys::Time(now), keys::EncodePosition(st.head.last_position));
  }
  st.batch->Put(Family::kMeta, keys::kHeadState, keys::EncodeHeadState(st.head));
  // Not synced here: the sync thread makes it durable while this thread goes on with the next
  // group. Readers do not see it before then (reads stop at the published head).
  // Other nodes sharing the engine may read it before it is durable: they make it durable
  // before they show it (EventStoreImpl::CatchUpWithStore, and "followed" below).
  const Position before = written_.exchange(st.head.last_position, std::memory_order_acq_rel);
  if (engine_->IsShared() && groups_since_other_writer_ >= kGroupsAloneBeforeChaining) {
    // More appends wait: the next group's exclusive write begins in this write's round trip.
    // Only while no other node writes: the lock is then held until the next group, and other
    // nodes' appends would wait for it (measured: two nodes wrote 15% less).
    std::lock_guard<std::mutex> l(mu_);
    if (!queue_.empty()) engine_->ChainExclusiveWrite(Family::kMeta, keys::kHeadState);
  }
  Status s = engine_->Write(*st.batch, /*sync=*/false);
  // Not written, or not known to be: if it was, the store learns of it as of another's write.
  if (!s.ok()) written_.store(before, std::memory_order_release);
  return s;
}

void WritePath::Break(Status why) {
  std::lock_guard<std::mutex> l(sync_mu_);
  broken_status_ = std::move(why);
  broken_.store(true, std::memory_order_release);
}

void WritePath::HandToSync(Group group) {
  {
    std::lock_guard<std::mutex> l(sync_mu_);
    groups_.push_back(std::move(group));
  }
  sync_cv_.notify_all();
}

}  // namespace timetrail
