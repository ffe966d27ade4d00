#include <algorithm>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include <pthread.h>

#include "core/event_codec.h"
#include "core/hex.h"
#include "core/validation.h"
#include "storage/postgres_engine.h"
#include "store/engine_open.h"
#include "store/event_store_impl.h"

namespace timetrail {

Result<std::unique_ptr<EventStore>> EventStore::Open(const Options& options,
                                                     std::string_view path) {
  TT_ASSIGN_OR_RETURN(std::unique_ptr<EventStoreImpl> impl, EventStoreImpl::Open(options, path));
  return std::unique_ptr<EventStore>(std::move(impl));
}

Result<Committed> EventStore::Append(std::string_view stream, ExpectedRevision expected,
                                     std::vector<ProposedEvent> events) {
  Transaction tx;
  tx.appends.push_back(StreamAppend{std::string(stream), expected, std::move(events)});
  return Transact(tx);
}

EventStoreImpl::EventStoreImpl(const Options& options, std::unique_ptr<KvEngine> engine)
    : options_(options), engine_(std::move(engine)) {}

Result<std::unique_ptr<EventStoreImpl>> EventStoreImpl::Open(const Options& options,
                                                             std::string_view path) {
  return OpenWithEnv(options, path, nullptr);
}

namespace {

// Refuses a directory laid out by a newer release, before anything reads or writes it, and
// returns the store's id tag. Upgrades an older layout in place: layout 2 reads layout 1's data
// as it is (its events keep their id index entries), so the upgrade only gives the store an id
// tag and records the new version, in one durable write. A directory without a version record
// is new, or was written before the record existed (layout 1). A store opened read-only is
// not upgraded: it is refused, with what to do.
Result<keys::IdTag> OpenLayout(KvEngine* engine, std::string_view path, bool read_only) {
  TT_ASSIGN_OR_RETURN(std::optional<std::string> raw,
                      engine->Get(Family::kMeta, keys::kFormatVersion));
  int version = 1;
  if (raw) {
    auto [ptr, ec] = std::from_chars(raw->data(), raw->data() + raw->size(), version);
    if (ec != std::errc() || ptr != raw->data() + raw->size() || version < 1) {
      return Status::Corruption("data directory '" + std::string(path) +
                                "': its layout version record is damaged ('" + *raw + "')");
    }
    if (version > keys::kLayoutVersion) {
      return Status::InvalidArgument(
          "data directory '" + std::string(path) + "' has layout version " +
          std::to_string(version) + ", written by a newer timetrail; this one reads up to " +
          std::to_string(keys::kLayoutVersion) + " (nothing was changed; upgrade timetrail)");
    }
  }
  TT_ASSIGN_OR_RETURN(std::optional<std::string> stored_tag,
                      engine->Get(Family::kMeta, keys::kIdTag));
  keys::IdTag tag{};
  if (version == keys::kLayoutVersion && stored_tag) {
    if (stored_tag->size() != tag.size()) {
      return Status::Corruption("data directory '" + std::string(path) +
                                "': its id tag record is damaged");
    }
    std::copy(stored_tag->begin(), stored_tag->end(), tag.begin());
    return tag;
  }
  if (read_only) {
    return Status::InvalidArgument(
        "data directory '" + std::string(path) + "' has layout version " + std::to_string(version) +
        ", which this timetrail upgrades to " + std::to_string(keys::kLayoutVersion) +
        " when it opens the directory for writing; it was opened read-only, so nothing was "
        "changed: open it once with a writer (timetrail serve, or a command that writes), then "
        "read it");
  }
  std::random_device random;
  for (auto& b : tag) b = static_cast<std::uint8_t>(random());
  std::unique_ptr<KvWriteBatch> batch = engine->NewBatch();
  batch->Put(Family::kMeta, keys::kIdTag,
             std::string_view(reinterpret_cast<const char*>(tag.data()), tag.size()));
  batch->Put(Family::kMeta, keys::kFormatVersion, std::to_string(keys::kLayoutVersion));
  TT_RETURN_IF_ERROR(engine->Write(*batch, /*sync=*/true));
  return tag;
}

// The first position whose events all have a type index entry (keys::kTypesSince), where "last"
// is the log's last position and "last_event" its stored value (empty when the log is). A store
// without the record is new or was last written by a release that did not index types: the next
// position appended is the first indexed one, recorded durably before anything is appended, so
// no event at or after it lacks its entry. A record with a last event that lacks its entry means
// that such a release appended after the record was made (events this store cannot tell apart):
// the record moves past them, and activity reads the log for them. A store opened read-only
// writes no record: it answers as if it had, and activity reads the log for every event up to
// "last" that may lack its entry.
Result<Position> OpenTypeIndex(KvEngine* engine, std::string_view path, Position last,
                               std::string_view last_event, bool read_only) {
  TT_ASSIGN_OR_RETURN(std::optional<std::string> raw,
                      engine->Get(Family::kMeta, keys::kTypesSince));
  if (raw) {
    Position since = 0;
    auto [ptr, ec] = std::from_chars(raw->data(), raw->data() + raw->size(), since);
    if (ec != std::errc() || ptr != raw->data() + raw->size() || since == 0) {
      return Status::Corruption("data directory '" + std::string(path) +
                                "': its type index record is damaged ('" + *raw + "')");
    }
    if (since > last) return since;
    TT_ASSIGN_OR_RETURN(StoredEventView e, DecodeStoredEventView(last_event));
    TT_ASSIGN_OR_RETURN(std::optional<std::string> entry,
                        engine->Get(Family::kIndex, temporal::TypeKey(e.type, last)));
    if (entry) return since;
  }
  if (read_only) return last + 1;
  std::unique_ptr<KvWriteBatch> batch = engine->NewBatch();
  batch->Put(Family::kMeta, keys::kTypesSince, std::to_string(last + 1));
  TT_RETURN_IF_ERROR(engine->Write(*batch, /*sync=*/true));
  return last + 1;
}

// The store's head record as "engine" has it (nullopt: none yet).
Result<std::optional<keys::HeadState>> ReadHeadRecord(const KvEngine& engine) {
  TT_ASSIGN_OR_RETURN(std::optional<std::string> raw, engine.Get(Family::kMeta, keys::kHeadState));
  return keys::ParseHeadRecord(raw);
}

// What the store keeps of its head, checked against the log, and where its type index begins.
struct StoredHead {
  keys::HeadState head;
  Position types_since = 1;
};

Result<StoredHead> ReadStoredHead(KvEngine* engine, std::string_view path, bool read_only) {
  StoredHead out;
  TT_ASSIGN_OR_RETURN(std::optional<keys::HeadState> head, ReadHeadRecord(*engine));
  if (head) out.head = *head;
  // The head record and the log are written in one atomic batch, so the log's last key must be
  // the head's position; anything else means the directory was altered behind timetrail's back.
  auto it = engine->NewIterator(Family::kLog);
  it->SeekToLast();
  TT_RETURN_IF_ERROR(it->status());
  Position last_in_log = it->Valid() ? DecodeBigEndian64(it->key().data()) : 0;
  // A reader of a store that other processes write (read-only, so without their lock) may read
  // the log after a commit that came after its read of the head: the log is then ahead.
  const bool moved_on = engine->IsShared() && read_only && last_in_log > out.head.last_position;
  if (last_in_log != out.head.last_position && !moved_on) {
    return Status::Corruption("the log ends at position " + std::to_string(last_in_log) +
                              " but the head record says " +
                              std::to_string(out.head.last_position) + "; run verify");
  }
  TT_ASSIGN_OR_RETURN(out.types_since, OpenTypeIndex(engine, path, last_in_log,
                                                     it->Valid() ? it->value() : "", read_only));
  return out;
}

Status CheckReadReplicaOptions(const Options& options, std::string_view path) {
  if (options.postgres_read_replica.empty()) return Status::Ok();
  if (!IsPostgresUrl(path)) {
    return Status::InvalidArgument(
        "a read replica (postgres_read_replica) is for a store kept in PostgreSQL, not for data "
        "directory '" +
        std::string(path) + "'");
  }
  if (options.read_only) {
    return Status::InvalidArgument(
        "postgres_read_replica and read_only: a store opened read-only reads from the URL it "
        "opens; open the replica's URL itself read-only instead");
  }
  if (!IsPostgresUrl(options.postgres_read_replica)) {
    return Status::InvalidArgument("postgres_read_replica must be a postgresql:// URL");
  }
  return Status::Ok();
}

// How long opening waits for a store created on the primary a moment ago to reach the read
// replica, which replays the primary's WAL asynchronously.
constexpr auto kReplicaOpenWait = std::chrono::seconds(10);

// Opens the read replica of the store whose id tag is "tag", and checks that it holds that
// store: the tag is random per store, so a replica of another database (or of nothing) is
// refused rather than read.
Result<std::unique_ptr<KvEngine>> OpenReadReplica(const Options& options, const keys::IdTag& tag) {
  Options replica_options = options;
  replica_options.read_only = true;
  replica_options.create_if_missing = false;
  const std::string& url = options.postgres_read_replica;
  const std::string where =
      "the read replica, " + DescribePostgresStore(url, options.postgres_schema);
  const std::string_view primary_tag(reinterpret_cast<const char*>(tag.data()), tag.size());
  const auto deadline = std::chrono::steady_clock::now() + kReplicaOpenWait;
  for (;;) {
    Result<std::unique_ptr<KvEngine>> engine = OpenEngine(replica_options, url);
    Result<std::optional<std::string>> replica_tag =
        engine.ok() ? (*engine)->Get(Family::kMeta, keys::kIdTag)
                    : Result<std::optional<std::string>>(engine.status());
    if (replica_tag.ok() && *replica_tag) {
      if (**replica_tag != primary_tag) {
        return Status::InvalidArgument(where +
                                       ", holds another store than the primary (their id tags "
                                       "differ): name a standby of the store's database");
      }
      return engine;
    }
    // kNotFound: the schema is not there (yet); no tag: its records are not.
    if (!replica_tag.ok() && replica_tag.status().code() != StatusCode::kNotFound) {
      return replica_tag.status().WithPrefix("read replica");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::NotFound(
          where + ", has no timetrail store after " +
          std::to_string(std::chrono::seconds(kReplicaOpenWait).count()) +
          " s: name a streaming standby of the store's database (the same schema is read)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

Result<std::unique_ptr<EventStoreImpl>> EventStoreImpl::OpenWithEnv(
    const Options& options, std::string_view path, std::shared_ptr<rocksdb::Env> env) {
  if (options.snapshot_interval == 0) {
    return Status::InvalidArgument("snapshot_interval: must be at least 1");
  }
  TT_RETURN_IF_ERROR(CheckReadReplicaOptions(options, path));
  TT_ASSIGN_OR_RETURN(std::unique_ptr<KvEngine> engine, OpenEngine(options, path, std::move(env)));
  // Nodes sharing the engine may open the store at once: the first to come initializes it
  // (its id tag, type index record) inside the exclusive write, the others find it done, and
  // the head is read with no write half seen.
  const bool shared = engine->IsShared() && !options.read_only;
  if (shared) {
    TT_RETURN_IF_ERROR(engine->BeginExclusiveWrite(Family::kMeta, keys::kFormatVersion).status());
  }
  auto opened = [&]() -> Result<std::pair<keys::IdTag, StoredHead>> {
    TT_ASSIGN_OR_RETURN(keys::IdTag tag, OpenLayout(engine.get(), path, options.read_only));
    // OpenLayout's write, if it made one, ended the exclusive write: begin another.
    if (shared) {
      TT_RETURN_IF_ERROR(engine->BeginExclusiveWrite(Family::kMeta, keys::kFormatVersion).status());
    }
    TT_ASSIGN_OR_RETURN(StoredHead head, ReadStoredHead(engine.get(), path, options.read_only));
    return std::make_pair(tag, head);
  }();
  if (shared) engine->EndExclusiveWrite();
  TT_RETURN_IF_ERROR(opened.status());
  const keys::IdTag id_tag = opened->first;
  const StoredHead stored = opened->second;
  const keys::HeadState& head = stored.head;

  auto store = std::unique_ptr<EventStoreImpl>(new EventStoreImpl(options, std::move(engine)));
  store->dir_ = std::string(path);
  // Reads see what the engine they go to has: with a read replica, what it has replayed; the
  // primary's head is wanted, and published once the replica has it.
  keys::HeadState visible = head;
  if (!options.postgres_read_replica.empty()) {
    TT_ASSIGN_OR_RETURN(store->replica_, OpenReadReplica(options, id_tag));
    TT_ASSIGN_OR_RETURN(std::optional<keys::HeadState> replayed, ReadHeadRecord(*store->replica_));
    visible = replayed.value_or(keys::HeadState{});
  }
  store->head_ = visible;
  store->last_position_.store(visible.last_position, std::memory_order_release);
  store->wanted_.store(std::max(head.last_position, visible.last_position),
                       std::memory_order_release);
  EventStoreImpl* self = store.get();
  store->id_tag_ = id_tag;
  store->types_since_.store(stored.types_since, std::memory_order_release);
  store->write_path_ =
      std::make_unique<WritePath>(store->engine_.get(), options, head, id_tag,
                                  [self](const keys::HeadState& h) { self->OnDurable(h); });
  store->RegisterTemporalIndex();
  if (shared) store->watcher_ = std::thread([self] { self->WatchOtherWriters(); });
  return store;
}

EventStoreImpl::~EventStoreImpl() {
  {
    std::lock_guard<std::mutex> l(mu_);
    closing_ = true;
  }
  published_.notify_all();
  if (watcher_.joinable()) {
    engine_->InterruptWait();
    watcher_.join();
  }
  write_path_.reset();  // commits what is queued
}

void EventStoreImpl::WatchOtherWriters() {
  pthread_setname_np(pthread_self(), "tt-watch");
  // Polled every second too: a notification is lost when the listening connection is.
  constexpr auto kPrimaryPoll = std::chrono::seconds(1);
  // While the read replica is behind what is wanted: the time between two looks at it.
  constexpr auto kReplicaPoll = std::chrono::milliseconds(2);
  auto next_primary_look = std::chrono::steady_clock::now();
  bool replica_answered = true;
  for (;;) {
    bool follow_replica = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (closing_) return;
      // A replica that did not answer is tried again at the next primary look, not in a loop.
      follow_replica = replica_ && replica_answered && KnownPosition() > head_.last_position;
    }
    const auto now = std::chrono::steady_clock::now();
    const auto until_primary_look = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max(next_primary_look - now, std::chrono::steady_clock::duration::zero()));
    const bool told = engine_->WaitForOtherWriters(
        follow_replica ? std::min<std::chrono::milliseconds>(kReplicaPoll, until_primary_look)
                       : until_primary_look);
    {
      std::lock_guard<std::mutex> l(mu_);
      if (closing_) return;
    }
    // With a read replica the watcher also wakes to look at it (WakeWaiter, or its poll):
    // the primary is read only when another node wrote, and every second.
    if (!replica_ || told || std::chrono::steady_clock::now() >= next_primary_look) {
      (void)CatchUpWithStore();  // a database that is away is tried again at the next poll
      next_primary_look = std::chrono::steady_clock::now() + kPrimaryPoll;
    }
    if (replica_) replica_answered = PublishFromReplica().ok();
  }
}

Status EventStoreImpl::CatchUpWithStore() {
  TT_ASSIGN_OR_RETURN(std::optional<keys::HeadState> head, ReadHeadRecord(*engine_));
  if (!head) return Status::Ok();
  // Every position up to the stored head is committed and visible: writers commit one at a
  // time, in position order, and the head record is part of each commit. A head this process
  // wrote (or is writing) its write path publishes.
  if (head->last_position <= std::max(KnownPosition(), write_path_->WrittenPosition())) {
    return Status::Ok();
  }
  // A read replica replays only WAL its primary has flushed: what it shows is durable.
  if (replica_) {
    Want(head->last_position);
    return Status::Ok();
  }
  // Another node's commit may be visible before it is durable (it commits without waiting for
  // the flush, and answers its clients after it): nothing is shown here before it is. The head
  // is read again, on the connection whose durable commit then covers it.
  TT_ASSIGN_OR_RETURN(std::optional<std::string> durable,
                      engine_->GetDurable(Family::kMeta, keys::kHeadState));
  TT_ASSIGN_OR_RETURN(head, keys::ParseHeadRecord(durable));
  if (head && head->last_position > std::max(KnownPosition(), write_path_->WrittenPosition())) {
    Publish(*head);
  }
  return Status::Ok();
}

void EventStoreImpl::OnDurable(const keys::HeadState& head) {
  if (replica_) {
    Want(head.last_position);
  } else {
    Publish(head);
  }
}

void EventStoreImpl::Want(Position p) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (p <= KnownPosition()) return;
    // A watcher already behind polls the replica anyway.
    wake = KnownPosition() <= head_.last_position;
    wanted_.store(p, std::memory_order_release);
  }
  if (wake) engine_->WakeWaiter();
}

Status EventStoreImpl::PublishFromReplica() {
  TT_ASSIGN_OR_RETURN(std::optional<keys::HeadState> head, ReadHeadRecord(*replica_));
  // Every position up to the replica's head is readable there: the head record is part of each
  // commit, which the replica replays whole and in order. A checkpoint's write alone leaves
  // the position as it was: nothing new to publish.
  if (head && head->last_position > LastPosition()) Publish(*head);
  return Status::Ok();
}

Status EventStoreImpl::AwaitReplica() const {
  if (!replica_) return Status::Ok();
  constexpr auto kWait = std::chrono::seconds(1);
  return WaitForPosition(KnownPosition(), kWait).WithPrefix("read replica");
}

void EventStoreImpl::Publish(const keys::HeadState& head) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (head.last_position < head_.last_position) return;
    head_ = head;
    last_position_.store(head.last_position, std::memory_order_release);
    if (head.last_position > KnownPosition()) {
      wanted_.store(head.last_position, std::memory_order_release);
    }
  }
  published_.notify_all();
  std::lock_guard<std::mutex> l(listeners_mu_);
  for (auto& [id, listener] : listeners_) listener(head.last_position);
}

Status EventStoreImpl::Refresh() {
  if (!options_.read_only) {
    if (!engine_->IsShared()) return Status::Ok();
    TT_RETURN_IF_ERROR(CatchUpWithStore());
    return AwaitReplica();
  }
  std::lock_guard<std::mutex> l(refresh_mu_);
  TT_RETURN_IF_ERROR(engine_->CatchUp());
  TT_ASSIGN_OR_RETURN(StoredHead stored, ReadStoredHead(engine_.get(), dir_, /*read_only=*/true));
  if (stored.head.last_position <= LastPosition()) return Status::Ok();
  types_since_.store(stored.types_since, std::memory_order_release);
  Publish(stored.head);
  return Status::Ok();
}

Result<Committed> EventStoreImpl::Transact(const Transaction& tx) {
  if (options_.read_only) return ReadOnlyError(dir_);
  return write_path_->Commit(tx, std::nullopt);
}

Result<Committed> EventStoreImpl::TransactWithCheckpoint(const Transaction& tx,
                                                         std::string_view name,
                                                         std::string_view value) {
  if (options_.read_only) return ReadOnlyError(dir_);
  if (name.empty()) return Status::InvalidArgument("checkpoint name: must not be empty");
  return write_path_->Commit(tx, std::make_pair(std::string(name), std::string(value)));
}

void EventStoreImpl::TransactWithCheckpointAsync(Transaction tx, std::string name,
                                                 std::string value,
                                                 std::optional<std::string> expected_previous,
                                                 std::function<void(Result<Committed>)> done) {
  if (options_.read_only) {
    done(ReadOnlyError(dir_));
    return;
  }
  if (name.empty()) {
    done(Status::InvalidArgument("checkpoint name: must not be empty"));
    return;
  }
  write_path_->CommitAsync(std::move(tx), std::make_pair(std::move(name), std::move(value)),
                           std::move(expected_previous), nullptr, std::move(done));
}

void EventStoreImpl::TransactAsync(Transaction tx, std::function<void(Result<Committed>)> done) {
  if (options_.read_only) {
    done(ReadOnlyError(dir_));
    return;
  }
  write_path_->CommitAsync(std::move(tx), std::nullopt, std::nullopt, nullptr, std::move(done));
}

std::vector<Result<Committed>> EventStoreImpl::TransactMany(std::vector<Transaction> txs,
                                                            bool stop_at_first_failure) {
  if (options_.read_only) {
    return std::vector<Result<Committed>>(txs.size(), Result<Committed>(ReadOnlyError(dir_)));
  }
  struct Answers {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t left = 0;
    std::vector<std::optional<Result<Committed>>> results;
  };
  Answers answers;
  answers.left = txs.size();
  answers.results.resize(txs.size());
  auto chain = stop_at_first_failure ? std::make_shared<CommitChain>() : nullptr;
  for (std::size_t i = 0; i < txs.size(); ++i) {
    write_path_->CommitAsync(std::move(txs[i]), std::nullopt, std::nullopt, chain,
                             [&answers, i](Result<Committed> r) {
                               std::lock_guard<std::mutex> l(answers.mu);
                               answers.results[i] = std::move(r);
                               if (--answers.left == 0) answers.cv.notify_all();
                             });
  }
  std::unique_lock<std::mutex> l(answers.mu);
  answers.cv.wait(l, [&] { return answers.left == 0; });
  std::vector<Result<Committed>> out;
  out.reserve(txs.size());
  for (auto& r : answers.results) out.push_back(std::move(*r));
  return out;
}

Status EventStoreImpl::SetCheckpoint(std::string_view name, std::string_view value) {
  if (options_.read_only) return ReadOnlyError(dir_);
  if (name.empty()) return Status::InvalidArgument("checkpoint name: must not be empty");
  return write_path_->SetCheckpoint(name, value);
}

Result<std::optional<std::string>> EventStoreImpl::GetCheckpoint(std::string_view name) const {
  // Not the engine directly: it also holds values of groups whose sync is still running.
  return write_path_->DurableCheckpoint(name);
}

Result<RecordedEvent> EventStoreImpl::LoadEvent(Position p) const {
  TT_ASSIGN_OR_RETURN(std::optional<std::string> raw, engine().Get(Family::kLog, keys::Log(p)));
  if (!raw) return Status::Corruption("position " + std::to_string(p) + " is missing from the log");
  auto e = DecodeStoredEvent(*raw);
  if (!e.ok()) return e.status().WithPrefix("position " + std::to_string(p));
  return e;
}

Result<std::optional<Position>> EventStoreImpl::FindRevision(std::string_view stream,
                                                             Revision r) const {
  TT_ASSIGN_OR_RETURN(std::optional<std::string> raw,
                      engine().Get(Family::kStreamIndex, keys::StreamIndex(stream, r)));
  if (!raw) return std::optional<Position>();
  auto p = keys::DecodePosition(*raw);
  if (!p) return Status::Corruption("stream index entry is damaged");
  if (*p > LastPosition()) return std::optional<Position>();
  return std::optional<Position>(*p);
}

Result<std::vector<RecordedEvent>> EventStoreImpl::ReadStream(
    std::string_view stream, const ReadStreamOptions& options) const {
  TT_RETURN_IF_ERROR(ValidateStreamName(stream, options_.limits));
  const Position visible = LastPosition();
  const std::string prefix = keys::StreamIndexPrefix(stream);
  auto it = engine().NewIterator(Family::kStreamIndex);
  bool forward = options.direction == Direction::kForward;
  if (forward) {
    it->Seek(keys::StreamIndex(stream, options.from_revision.value_or(0)));
  } else {
    it->SeekForPrev(keys::StreamIndex(stream, options.from_revision.value_or(UINT64_MAX)));
  }
  // Positions are gathered a chunk at a time and read together (temporal::ReadEvents): a
  // stream written in a burst lies in adjacent log keys, read with one iterator.
  constexpr std::size_t kChunk = 256;
  std::vector<RecordedEvent> events;
  std::vector<Position> chunk;
  bool any = false;
  auto read_chunk = [&]() -> Status {
    auto read = temporal::ReadEvents(engine(), chunk);
    if (!read.ok()) return read.status();
    for (RecordedEvent& e : *read) events.push_back(std::move(e));
    chunk.clear();
    return Status::Ok();
  };
  while (it->Valid() && it->key().starts_with(prefix) &&
         events.size() + chunk.size() < options.max_count) {
    auto p = keys::DecodePosition(it->value());
    if (!p)
      return Status::Corruption("stream index entry of '" + std::string(stream) + "' is damaged");
    if (*p <= visible) {
      any = true;
      chunk.push_back(*p);
      if (chunk.size() == kChunk) TT_RETURN_IF_ERROR(read_chunk());
    } else if (forward) {
      break;  // later revisions are not visible either
    }
    forward ? it->Next() : it->Prev();
  }
  TT_RETURN_IF_ERROR(read_chunk());
  TT_RETURN_IF_ERROR(it->status());
  if (!any) {
    // Distinguish "no such stream" from "nothing at or after that revision".
    TT_ASSIGN_OR_RETURN(StreamInfo info, GetStreamInfo(stream));
    if (!info.exists) {
      return Status::NotFound("stream '" + std::string(stream) + "' has no events");
    }
  }
  return events;
}

Result<LogPage> EventStoreImpl::ReadLog(const ReadLogOptions& options) const {
  LogPage page;
  page.head_position = LastPosition();
  Position from = std::max<Position>(options.from_position, 1);
  page.next_position = from;
  if (from > page.head_position || options.max_count == 0) return page;
  auto it = engine().NewIterator(Family::kLog);
  std::size_t scanned = 0;
  for (it->Seek(keys::Log(from)); it->Valid(); it->Next()) {
    Position p = DecodeBigEndian64(it->key().data());
    if (p > page.head_position) break;
    if (options.max_scan && scanned >= options.max_scan) break;
    ++scanned;
    // Decoded in place: only the events the filter takes are copied out.
    auto e = DecodeStoredEventView(it->value());
    if (!e.ok()) return e.status().WithPrefix("position " + std::to_string(p));
    page.next_position = p + 1;
    if (!options.filter.Matches(e->stream, e->type)) continue;
    page.events.push_back(e->ToEvent());
    if (page.events.size() >= options.max_count) break;
  }
  TT_RETURN_IF_ERROR(it->status());
  return page;
}

Result<RecordedEvent> EventStoreImpl::GetEvent(const Uuid& id) const {
  const Status not_found = Status::NotFound("no event has id " + id.ToString());
  // An id this store generated names its position; any other id is in the id index.
  std::optional<Position> p = keys::PositionOfGeneratedId(id_tag_, id);
  if (!p) {
    TT_ASSIGN_OR_RETURN(std::optional<std::string> raw,
                        engine().Get(Family::kEventIds, keys::EventId(id)));
    if (raw) p = keys::DecodePosition(*raw);
  }
  if (!p || *p == 0 || *p > LastPosition()) return not_found;
  TT_ASSIGN_OR_RETURN(RecordedEvent e, LoadEvent(*p));
  if (e.id != id) return not_found;  // an id of the generated form that names another event
  return e;
}

Result<RecordedEvent> EventStoreImpl::GetEventAt(Position position) const {
  if (position == 0 || position > LastPosition()) {
    return Status::NotFound("position " + std::to_string(position) +
                            " is not in the log (the "
                            "last position is " +
                            std::to_string(LastPosition()) + ")");
  }
  return LoadEvent(position);
}

Result<Position> EventStoreImpl::PositionAt(Timestamp t) const {
  const Position visible = LastPosition();
  auto it = engine().NewIterator(Family::kTimeIndex);
  for (it->SeekForPrev(keys::Time(t)); it->Valid(); it->Prev()) {
    auto p = keys::DecodePosition(it->value());
    if (!p) return Status::Corruption("time index entry is damaged");
    if (*p <= visible) return *p;
  }
  TT_RETURN_IF_ERROR(it->status());
  return Position{0};
}

Result<StreamInfo> EventStoreImpl::GetStreamInfo(std::string_view stream) const {
  TT_RETURN_IF_ERROR(ValidateStreamName(stream, options_.limits));
  StreamInfo info;
  TT_ASSIGN_OR_RETURN(std::optional<std::string> raw, engine().Get(Family::kStreamHeads, stream));
  if (!raw) return info;
  auto head = keys::DecodeStreamHead(*raw);
  if (!head)
    return Status::Corruption("the head record of stream '" + std::string(stream) + "' is damaged");
  if (head->last_position <= LastPosition()) {
    info.exists = true;
    info.last_revision = head->last_revision;
    info.last_position = head->last_position;
    info.deleted = head->deleted;
    return info;
  }
  // The head is from a write that is being published right now: answer from the visible part.
  ReadStreamOptions back;
  back.direction = Direction::kBackward;
  back.max_count = UINT64_MAX;
  auto events = ReadStream(stream, back);
  if (!events.ok()) {
    if (events.status().code() == StatusCode::kNotFound) return info;
    return events.status();
  }
  for (const RecordedEvent& e : *events) {
    if (!info.exists) {
      info.exists = true;
      info.last_revision = e.revision;
      info.last_position = e.position;
    }
    if (e.type == kPutType || e.type == kPatchType || e.type == kDeleteType) {
      info.deleted = e.type == kDeleteType;
      break;
    }
  }
  return info;
}

Status EventStoreImpl::WaitForPosition(Position position, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> l(mu_);
  bool reached = published_.wait_for(l, timeout, [&] {
    return closing_ || last_position_.load(std::memory_order_acquire) >= position;
  });
  if (last_position_.load(std::memory_order_acquire) >= position) return Status::Ok();
  if (closing_) return Status::Unavailable("the store is closing");
  (void)reached;
  return Status::Timeout("position " + std::to_string(position) + " was not reached within " +
                         std::to_string(timeout.count()) + " ms (the last position is " +
                         std::to_string(LastPosition()) + ")");
}

std::uint64_t EventStoreImpl::AddCommitListener(std::function<void(Position)> listener) {
  std::lock_guard<std::mutex> l(listeners_mu_);
  std::uint64_t id = next_listener_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void EventStoreImpl::RemoveCommitListener(std::uint64_t id) {
  std::lock_guard<std::mutex> l(listeners_mu_);
  listeners_.erase(id);
}

IntegrityHead EventStoreImpl::GetIntegrityHead() const {
  std::lock_guard<std::mutex> l(mu_);
  return IntegrityHead{head_.last_position, HexEncode(head_.hash.data(), head_.hash.size())};
}

Result<VerifyReport> EventStoreImpl::Backup(std::string_view dir) {
  // A backup is a checkpoint, which first flushes the storage engine's memory tables into the
  // data directory.
  if (options_.read_only) {
    return ReadOnlyError(dir_).WithPrefix(
        "backup (it needs the store opened for writing, or the server that holds it)");
  }
  std::filesystem::path to(dir);
  if (dir.empty() || !to.is_absolute()) {
    return Status::InvalidArgument("backup directory '" + std::string(dir) +
                                   "' must be an absolute path");
  }
  std::error_code ec;
  if (std::filesystem::exists(to, ec) || ec) {
    return Status::InvalidArgument("backup directory '" + std::string(dir) +
                                   "' already exists; name a new directory");
  }
  TT_RETURN_IF_ERROR(engine_->CreateCheckpoint(to.string()));
  // A backup that exists is a backup that opens and verifies.
  Options options = options_;
  options.create_if_missing = false;
  Result<VerifyReport> report = [&]() -> Result<VerifyReport> {
    TT_ASSIGN_OR_RETURN(std::unique_ptr<EventStoreImpl> copy, Open(options, to.string()));
    return copy->Verify(VerifyOptions{});
  }();
  if (!report.ok() || !report->ok) {
    std::filesystem::remove_all(to, ec);
    if (!report.ok()) return report.status().WithPrefix("the backup does not open");
    return Status::Corruption("the backup's integrity chain does not verify (" + report->message +
                              "); it was removed");
  }
  return report;
}

Result<VerifyReport> EventStoreImpl::Verify(const VerifyOptions& options) const {
  VerifyReport report;
  keys::HeadState head;
  {
    std::lock_guard<std::mutex> l(mu_);
    head = head_;
  }
  const Position from = std::max<Position>(options.from_position, 1);
  const Position to = options.to_position == 0 ? head.last_position
                                               : std::min(options.to_position, head.last_position);
  Hash previous{};
  if (from > 1) {
    auto before = LoadEvent(from - 1);
    if (!before.ok()) {
      report.ok = false;
      report.first_bad_position = from - 1;
      report.message = before.status().message();
      return report;
    }
    previous = before->hash;
  }
  auto fail = [&](Position p, std::string message) {
    report.ok = false;
    report.first_bad_position = p;
    report.message = std::move(message);
    return report;
  };
  Position expected = from;
  auto it = engine().NewIterator(Family::kLog);
  for (it->Seek(keys::Log(from)); it->Valid() && expected <= to; it->Next()) {
    if (it->key().size() != 8) return fail(expected, "a log key has the wrong length");
    Position p = DecodeBigEndian64(it->key().data());
    if (p != expected) {
      return fail(expected, "position " + std::to_string(expected) + " is missing from the log");
    }
    std::string_view stored = it->value();
    auto e = DecodeStoredEvent(stored);
    if (!e.ok()) return fail(p, "the event at position " + std::to_string(p) + " does not decode");
    if (e->position != p) {
      return fail(p, "the event stored at position " + std::to_string(p) + " says position " +
                         std::to_string(e->position));
    }
    Hash h = ChainHash(previous, CanonicalPart(stored));
    if (h != e->hash) {
      return fail(p, "the event at position " + std::to_string(p) +
                         " does not match its integrity chain hash: it was changed after it "
                         "was written");
    }
    previous = h;
    ++report.events_checked;
    report.last_checked = p;
    if (options.progress && report.events_checked % 10000 == 0) {
      options.progress(report.events_checked, to);
    }
    ++expected;
  }
  if (!it->status().ok()) {
    return fail(expected, "reading the log failed at position " + std::to_string(expected) + ": " +
                              it->status().message());
  }
  if (expected <= to) {
    return fail(expected, "position " + std::to_string(expected) + " is missing from the log");
  }
  if (to == head.last_position && to > 0 && previous != head.hash) {
    return fail(to, "the recomputed chain does not end in the stored head hash");
  }
  report.head = IntegrityHead{to, HexEncode(previous.data(), previous.size())};
  if (options.progress) options.progress(report.events_checked, to);
  return report;
}

StoreStats EventStoreImpl::GetStats() const {
  const auto& c = write_path_->counters();
  StoreStats s;
  s.transactions_committed = c.transactions.load(std::memory_order_relaxed);
  s.events_committed = c.events.load(std::memory_order_relaxed);
  s.idempotent_replays = c.replays.load(std::memory_order_relaxed);
  s.conflicts = c.conflicts.load(std::memory_order_relaxed);
  s.rejected = c.rejected.load(std::memory_order_relaxed);
  s.group_commits = c.group_commits.load(std::memory_order_relaxed);
  s.commit_latency_micros_total = c.latency_micros.load(std::memory_order_relaxed);
  s.ordered_stage_micros = c.ordered_micros.load(std::memory_order_relaxed);
  s.disk_bytes = engine_->ApproximateDiskBytes();  // the primary's: the store's own size
  if (replica_) {
    const Position visible = LastPosition();
    const Position known = KnownPosition();
    s.read_replica_lag_positions = known > visible ? known - visible : 0;
  }
  return s;
}

}  // namespace timetrail
