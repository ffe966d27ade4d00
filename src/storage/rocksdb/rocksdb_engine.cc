// KvEngine on RocksDB: one column family per Family, one WriteBatch per KvWriteBatch.
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "storage/kv_engine.h"
#include "storage/rocksdb/bulk_ingest.h"

namespace timetrail {

std::string_view FamilyName(Family f) {
  switch (f) {
    case Family::kLog:
      return "log";
    case Family::kStreamIndex:
      return "stream_index";
    case Family::kStreamHeads:
      return "stream_heads";
    case Family::kEventIds:
      return "event_ids";
    case Family::kTimeIndex:
      return "time_index";
    case Family::kMeta:
      return "meta";
    case Family::kSnapshots:
      return "snapshots";
    case Family::kIndex:
      return "index";
  }
  return "unknown";
}

Status ReadOnlyError(std::string_view dir) {
  return Status::InvalidArgument("the store in '" + std::string(dir) +
                                 "' was opened read-only: nothing was written (writes need it "
                                 "opened for writing, by the one process that may hold it)");
}

namespace {

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string msg = std::string(what) + ": " + s.ToString();
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsNoSpace()) {
    return Status::IOError(msg + " (the disk is full: free space, then retry)");
  }
  if (s.IsIOError()) return Status::IOError(msg);
  if (s.IsBusy() || s.IsTryAgain()) return Status::Unavailable(msg);
  return Status::Internal(msg);
}

// RocksDB's diagnostic log ("LOG" in the data directory), written with plain stdio. RocksDB's
// own file logger aborts the process (in builds with assertions, as Debian's is) when it writes
// again after a failed write, which a full disk causes; this one drops the line instead.
class StdioLogger final : public rocksdb::Logger {
 public:
  explicit StdioLogger(const std::string& dir)
      : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL) {
    std::string path = dir + "/LOG";
    std::error_code ec;
    // Keep it bounded: start over (keeping one old copy) once it is large.
    if (std::filesystem::exists(path, ec) && std::filesystem::file_size(path, ec) > (16u << 20)) {
      std::filesystem::rename(path, path + ".old", ec);
    }
    file_ = std::fopen(path.c_str(), "a");
  }
  ~StdioLogger() override {
    if (file_ != nullptr) std::fclose(file_);
  }
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    if (file_ == nullptr) return;
    std::lock_guard<std::mutex> l(mu_);
    std::time_t now = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ ", std::gmtime(&now));
    std::fputs(stamp, file_);
    std::vfprintf(file_, format, ap);
    std::fputc('\n', file_);
    std::fflush(file_);
    std::clearerr(file_);  // a full disk loses this line, not the next ones
  }

 private:
  std::mutex mu_;
  std::FILE* file_ = nullptr;
};

// Turns off RocksDB's own recovery from a full disk: it waits until the free space exceeds the
// total size of all memory tables (hundreds of MB), so on a small disk it would never finish,
// and while it runs DB::Resume() is refused. The engine calls Resume() itself on the next write
// or sync instead, which succeeds as soon as the flush it does fits.
class NoAutoRecovery final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

class RocksBatch final : public KvWriteBatch {
 public:
  explicit RocksBatch(const std::vector<rocksdb::ColumnFamilyHandle*>* cfs) : cfs_(cfs) {}
  void Put(Family family, std::string_view key, std::string_view value) override {
    batch_.Put((*cfs_)[static_cast<int>(family)], ToSlice(key), ToSlice(value))
        .PermitUncheckedError();
  }
  void Delete(Family family, std::string_view key) override {
    batch_.Delete((*cfs_)[static_cast<int>(family)], ToSlice(key)).PermitUncheckedError();
  }
  std::size_t ApproximateBytes() const override { return batch_.GetDataSize(); }
  std::size_t Count() const override { return batch_.Count(); }
  rocksdb::WriteBatch* rep() { return &batch_; }

 private:
  const std::vector<rocksdb::ColumnFamilyHandle*>* cfs_;
  rocksdb::WriteBatch batch_;
};

// Idle RocksDB iterators of one family and read mode, for reuse (see RocksDbEngine::Iterator).
struct IteratorPool {
  std::mutex mu;
  std::vector<std::unique_ptr<rocksdb::Iterator>> idle;
  std::uint64_t generation = 0;  // of the table files the idle iterators were made for
};

// Counts changes of the table files (flushes, compactions), so that idle pooled iterators,
// which keep the files they were made for, are dropped rather than keeping deleted files on
// disk. Only an atomic increment: a listener must not call back into the database.
class VersionCounter final : public rocksdb::EventListener {
 public:
  void OnFlushCompleted(rocksdb::DB*, const rocksdb::FlushJobInfo&) override { ++generation; }
  void OnCompactionCompleted(rocksdb::DB*, const rocksdb::CompactionJobInfo&) override {
    ++generation;
  }
  std::atomic<std::uint64_t> generation{0};
};

class RocksIterator final : public KvIterator {
 public:
  // "generation": the table files' generation the iterator was made or refreshed for.
  RocksIterator(rocksdb::Iterator* it, IteratorPool* pool, const VersionCounter* versions,
                std::uint64_t generation)
      : it_(it), pool_(pool), versions_(versions), generation_(generation) {}
  ~RocksIterator() override {
    // Back to the pool, unless the files changed meanwhile (it would keep the old ones).
    if (!it_->status().ok() || versions_->generation.load() != generation_) return;
    std::lock_guard<std::mutex> lock(pool_->mu);
    if (pool_->generation == generation_ && pool_->idle.size() < kMaxIdle) {
      pool_->idle.push_back(std::move(it_));
    }
  }
  // Idle iterators kept per family and mode: about one per concurrent reader.
  static constexpr std::size_t kMaxIdle = 16;
  void Seek(std::string_view key) override { it_->Seek(ToSlice(key)); }
  void SeekForPrev(std::string_view key) override { it_->SeekForPrev(ToSlice(key)); }
  void SeekToFirst() override { it_->SeekToFirst(); }
  void SeekToLast() override { it_->SeekToLast(); }
  bool Valid() const override { return it_->Valid(); }
  void Next() override { it_->Next(); }
  void Prev() override { it_->Prev(); }
  std::string_view key() const override {
    rocksdb::Slice k = it_->key();
    return {k.data(), k.size()};
  }
  std::string_view value() const override {
    rocksdb::Slice v = it_->value();
    return {v.data(), v.size()};
  }
  Status status() const override { return FromRocks(it_->status(), "reading"); }

 private:
  std::unique_ptr<rocksdb::Iterator> it_;
  IteratorPool* pool_;
  const VersionCounter* versions_;
  const std::uint64_t generation_;
};

// The part of a key under which it is appended in order: a stream's keys (stream_index,
// snapshots: the name up to its 0x00 separator; index: the tag, the 32-bit length and the name)
// grow with the revision or position, so the memtable keeps an insert hint per stream and
// starts each insert where the stream's previous one ended instead of at the top of the skip
// list. Only a hint: a key outside the domain is inserted the usual way. The same prefix is the
// prefix extractor of those families: their bloom filters hold it, for seeks within a stream.
// Its name is stored in every table file; changing what it extracts needs a new name (files
// made under another name are read without their prefix filter, so still correctly).
class StreamPrefix final : public rocksdb::SliceTransform {
 public:
  explicit StreamPrefix(bool length_prefixed) : length_prefixed_(length_prefixed) {}
  const char* Name() const override {
    return length_prefixed_ ? "timetrail.IndexStreamPrefix" : "timetrail.StreamPrefix";
  }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), PrefixLength(key));
  }
  bool InDomain(const rocksdb::Slice& key) const override { return PrefixLength(key) > 0; }

 private:
  std::size_t PrefixLength(const rocksdb::Slice& key) const {
    if (!length_prefixed_) {
      const void* zero = std::memchr(key.data(), 0, key.size());
      return zero == nullptr ? 0 : static_cast<const char*>(zero) - key.data() + 1;
    }
    if (key.size() < 5) return 0;
    const auto* b = reinterpret_cast<const unsigned char*>(key.data());
    std::size_t n = 5 + ((std::size_t{b[1]} << 24) | (std::size_t{b[2]} << 16) |
                         (std::size_t{b[3]} << 8) | b[4]);
    return n <= key.size() ? n : 0;
  }
  const bool length_prefixed_;
};

// What a read gets when the bulk load could not make the writes before it visible.
class FailedIterator final : public KvIterator {
 public:
  explicit FailedIterator(Status status) : status_(std::move(status)) {}
  void Seek(std::string_view) override {}
  void SeekForPrev(std::string_view) override {}
  void SeekToFirst() override {}
  void SeekToLast() override {}
  bool Valid() const override { return false; }
  void Next() override {}
  void Prev() override {}
  std::string_view key() const override { return {}; }
  std::string_view value() const override { return {}; }
  Status status() const override { return status_; }

 private:
  Status status_;
};

// The private directory of a read-only (secondary) instance: a new temporary directory,
// "timetrail-reader-<pid>-XXXXXX", removed with everything in it when the engine closes. Those
// left by readers that were killed (their process no longer exists) are removed when the next
// one is made.
class SecondaryDir {
 public:
  static Result<std::unique_ptr<SecondaryDir>> Make() {
    std::error_code ec;
    std::filesystem::path base = std::filesystem::temp_directory_path(ec);
    if (ec) base = "/tmp";
    RemoveLeftovers(base);
    std::string path =
        (base / ("timetrail-reader-" + std::to_string(::getpid()) + "-XXXXXX")).string();
    if (::mkdtemp(path.data()) == nullptr) {
      return Status::IOError("cannot create a temporary directory to open a store read-only ('" +
                             path + "'): " + std::strerror(errno));
    }
    return std::unique_ptr<SecondaryDir>(new SecondaryDir(std::move(path)));
  }
  SecondaryDir(const SecondaryDir&) = delete;
  SecondaryDir& operator=(const SecondaryDir&) = delete;
  ~SecondaryDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  explicit SecondaryDir(std::string path) : path_(std::move(path)) {}

  static void RemoveLeftovers(const std::filesystem::path& base) {
    constexpr std::string_view kPrefix = "timetrail-reader-";
    std::error_code ec;
    for (std::filesystem::directory_iterator it(base, ec), end; !ec && it != end;
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!name.starts_with(kPrefix)) continue;
      const char* digits = name.c_str() + kPrefix.size();
      char* after = nullptr;
      long pid = std::strtol(digits, &after, 10);
      if (after == digits || *after != '-' || pid <= 0) continue;
      // Gone: no such process. (EPERM: it exists, as another user's; leave it.)
      if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
        std::error_code ignored;
        std::filesystem::remove_all(it->path(), ignored);
      }
    }
  }
  std::string path_;
};

// Opens "dir" as a RocksDB secondary instance with every family of "descriptors", keeping the
// instance's own files in "secondary_dir". Takes no lock and writes nothing into "dir".
Status OpenSecondary(rocksdb::Options db_options, const std::string& dir,
                     const std::string& secondary_dir,
                     const std::vector<rocksdb::ColumnFamilyDescriptor>& descriptors,
                     std::vector<rocksdb::ColumnFamilyHandle*>* handles, rocksdb::DB** db) {
  db_options.max_open_files = -1;  // required of a secondary instance
  db_options.create_if_missing = false;
  db_options.create_missing_column_families = false;
  // A family that a writer of this release would create is missing: only a writer can add it.
  std::vector<std::string> names;
  TT_RETURN_IF_ERROR(FromRocks(rocksdb::DB::ListColumnFamilies(db_options, dir, &names),
                               "opening '" + dir + "' read-only"));
  for (const rocksdb::ColumnFamilyDescriptor& d : descriptors) {
    if (std::find(names.begin(), names.end(), d.name) == names.end()) {
      return Status::InvalidArgument(
          "data directory '" + dir + "' has no '" + d.name +
          "' key space yet: this release adds it when it opens the directory for writing, "
          "which a read-only open cannot do; open it once with a writer (timetrail serve, or a "
          "command that writes), then read it");
    }
  }
  // The writer may delete a write-ahead log file (after a flush) while the instance lists and
  // opens them: such a failure is retried.
  rocksdb::Status s;
  for (int attempt = 0; attempt < 3; ++attempt) {
    handles->clear();
    s = rocksdb::DB::OpenAsSecondary(db_options, dir, secondary_dir, descriptors, handles, db);
    if (s.ok() || !(s.IsIOError() || s.IsPathNotFound())) break;
  }
  return FromRocks(s, "opening '" + dir + "' read-only");
}

class RocksDbEngine final : public KvEngine {
 public:
  ~RocksDbEngine() override {
    for (auto& pool : pools_) pool.idle.clear();  // iterators go before the database
    for (auto* cf : cfs_) db_->DestroyColumnFamilyHandle(cf).PermitUncheckedError();
    db_->DestroyColumnFamilyHandle(default_cf_).PermitUncheckedError();
    db_->Close().PermitUncheckedError();
  }

  static Result<std::unique_ptr<KvEngine>> Open(const RocksDbEngineOptions& options,
                                                std::string_view path) {
    std::string dir(path);
    std::error_code ec;
    bool exists = std::filesystem::exists(std::filesystem::path(dir) / "CURRENT", ec);
    if (!exists && options.read_only) {
      return Status::NotFound("no timetrail store in '" + dir + "' (opened read-only)");
    }
    if (!exists && !options.create_if_missing) {
      return Status::NotFound("no timetrail store in '" + dir + "' (create_if_missing is off)");
    }
    if (!exists) {
      std::filesystem::create_directories(dir, ec);
      if (ec) return Status::IOError("cannot create data directory '" + dir + "': " + ec.message());
    }
    // Read-only: RocksDB's files of the secondary instance (its diagnostic log among them) go
    // into a directory of its own, so that nothing is written into the data directory.
    std::unique_ptr<SecondaryDir> secondary;
    if (options.read_only) {
      TT_ASSIGN_OR_RETURN(secondary, SecondaryDir::Make());
    }

    rocksdb::Options db_options;
    if (options.env) db_options.env = options.env.get();
    db_options.info_log = std::make_shared<StdioLogger>(secondary ? secondary->path() : dir);
    db_options.listeners.push_back(std::make_shared<NoAutoRecovery>());
    auto versions = std::make_shared<VersionCounter>();
    db_options.listeners.push_back(versions);

    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    db_options.max_background_jobs = 2;
    db_options.bytes_per_sync = 1 << 20;
    // Events are written once and never updated, so the write path is sequential; a larger
    // memtable means fewer, larger flushes.
    db_options.write_buffer_size = 64 << 20;
    db_options.max_total_wal_size = 256 << 20;

    auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (int i = 0; i < kFamilyCount; ++i) {
      rocksdb::ColumnFamilyOptions cf;
      rocksdb::BlockBasedTableOptions table;
      table.block_cache = cache;
      auto family = static_cast<Family>(i);
      // Point lookups (heads, ids) profit from bloom filters; range scans (log) do not.
      if (family == Family::kStreamHeads || family == Family::kEventIds) {
        table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
        cf.optimize_filters_for_hits = false;
      }
      // The per-stream families are read by seeks within one stream (NewStreamIterator): a
      // bloom filter on the stream prefix lets a seek skip a table file without the stream
      // after an in-memory check, and its whole-key entries serve point lookups (revision ->
      // position). Index and filter blocks stay on the table readers' heap while a file is
      // open (cache_index_and_filter_blocks off; every file stays open), so they are never
      // read again; pinning them in the block cache, or partitioning them, measured no better
      // (bench/README.md, "As-of at any store size").
      if (family == Family::kStreamIndex || family == Family::kSnapshots ||
          family == Family::kIndex) {
        table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
        cf.prefix_extractor = std::make_shared<StreamPrefix>(family == Family::kIndex);
      }
      cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
      // Log and time keys only grow, so each insert lands right after the previous one; the
      // hint lets the memtable start its search there instead of at the top of the skip list.
      if (family == Family::kLog || family == Family::kTimeIndex) {
        cf.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(4));
      } else if (family == Family::kStreamIndex || family == Family::kSnapshots) {
        cf.memtable_insert_with_hint_prefix_extractor = std::make_shared<StreamPrefix>(false);
      } else if (family == Family::kIndex) {
        cf.memtable_insert_with_hint_prefix_extractor = std::make_shared<StreamPrefix>(true);
      }
      cf.compression = rocksdb::kLZ4Compression;
      cf.bottommost_compression = rocksdb::kZSTD;
      cf.write_buffer_size = family == Family::kLog ? (64 << 20) : (16 << 20);
      if (options.bulk_load) {
        // Each ingestion adds a level-0 file to the families whose keys spread over streams,
        // and merging level 0 into level 1 rewrites the whole of level 1: merging 16 at a time
        // instead of 4 cut a bulk import's CPU by a fifth (bench/README.md, "import"). Reads
        // look at each level-0 file's bloom filter, so not more. Ingestion is not slowed or
        // stopped while compactions catch up (at 96 files it stopped for 100 s in a load to
        // 10^7 events): level 0 may grow meanwhile, and is merged down after the load.
        cf.level0_file_num_compaction_trigger = 16;
        cf.level0_slowdown_writes_trigger = 1 << 30;
        cf.level0_stop_writes_trigger = 1 << 30;
        cf.soft_pending_compaction_bytes_limit = 0;
        cf.hard_pending_compaction_bytes_limit = 0;
      }
      descriptors.emplace_back(std::string(FamilyName(family)), cf);
    }
    // RocksDB requires the default family to be listed; timetrail keeps nothing in it.
    descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());

    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    if (secondary) {
      TT_RETURN_IF_ERROR(
          OpenSecondary(db_options, dir, secondary->path(), descriptors, &handles, &db));
      auto engine = std::unique_ptr<RocksDbEngine>(new RocksDbEngine());
      engine->env_ = options.env;
      engine->dir_ = dir;
      engine->read_only_ = true;
      engine->db_.reset(db);
      engine->default_cf_ = handles.back();
      handles.pop_back();
      engine->cfs_ = std::move(handles);
      engine->versions_ = std::move(versions);
      engine->secondary_ = std::move(secondary);
      TT_RETURN_IF_ERROR(engine->CatchUp());
      return std::unique_ptr<KvEngine>(std::move(engine));
    }
    rocksdb::Status s = rocksdb::DB::Open(db_options, dir, descriptors, &handles, &db);
    if (!s.ok()) {
      if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
        return Status::Unavailable("data directory '" + dir +
                                   "' is in use by another timetrail process (" + s.ToString() +
                                   "); stop it or use its server with --server");
      }
      return FromRocks(s, "opening '" + dir + "'");
    }
    auto engine = std::unique_ptr<RocksDbEngine>(new RocksDbEngine());
    engine->env_ = options.env;
    engine->dir_ = dir;
    engine->db_.reset(db);
    engine->default_cf_ = handles.back();
    handles.pop_back();
    engine->cfs_ = std::move(handles);
    engine->versions_ = std::move(versions);
    // Files a bulk load was writing when the process stopped were never ingested: cleared.
    const std::string bulk_dir = dir + "/bulk-ingest";
    std::filesystem::remove_all(bulk_dir, ec);
    if (options.bulk_load) {
      engine->bulk_ = std::make_unique<BulkIngest>(engine->db_.get(), engine->cfs_, bulk_dir);
    }
    return std::unique_ptr<KvEngine>(std::move(engine));
  }

  Result<std::optional<std::string>> Get(Family family, std::string_view key) const override {
    TT_RETURN_IF_ERROR(ShowBulkWrites());
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(family), ToSlice(key), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocks(s, "reading " + std::string(FamilyName(family)));
    return std::optional<std::string>(std::move(value));
  }

  Result<std::vector<std::optional<std::string>>> MultiGet(
      Family family, std::span<const std::string> keys) const override {
    TT_RETURN_IF_ERROR(ShowBulkWrites());
    std::vector<rocksdb::Slice> slices;
    slices.reserve(keys.size());
    for (const std::string& k : keys) slices.emplace_back(k);
    std::vector<rocksdb::PinnableSlice> values(keys.size());
    std::vector<rocksdb::Status> statuses(keys.size());
    db_->MultiGet(rocksdb::ReadOptions(), cf(family), keys.size(), slices.data(), values.data(),
                  statuses.data());
    std::vector<std::optional<std::string>> out(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (statuses[i].IsNotFound()) continue;
      if (!statuses[i].ok())
        return FromRocks(statuses[i], "reading " + std::string(FamilyName(family)));
      out[i] = values[i].ToString();
    }
    return out;
  }

  std::unique_ptr<KvIterator> NewIterator(Family family) const override {
    return Iterator(family, /*within_stream=*/false);
  }

  std::unique_ptr<KvIterator> NewStreamIterator(Family family) const override {
    return Iterator(family, /*within_stream=*/true);
  }

  std::unique_ptr<KvWriteBatch> NewBatch() const override {
    return std::make_unique<RocksBatch>(&cfs_);
  }

  Status Write(KvWriteBatch& batch, bool sync) override {
    if (read_only_) return ReadOnlyError(dir_);
    if (bulk_ != nullptr) return WriteBulk(batch, sync);
    // After a failed write RocksDB refuses every write (its "background error") until
    // DB::Resume(), which flushes the memory tables to new files and starts a new log. So a
    // write first tries to resume: after a full disk, appends go on once space is freed,
    // without a restart. A write that failed was not applied, so resuming cannot make a
    // refused append appear (an earlier batch whose sync then failed may: its appends were
    // answered "may or may not be stored"). Other write errors (e.g. EIO) RocksDB treats as fatal:
    // Resume() refuses, and the store must be reopened.
    std::lock_guard<std::mutex> wal(wal_mu_);
    if (needs_resume_.load()) {
      rocksdb::Status r = db_->Resume();
      if (r.ok()) {
        needs_resume_.store(false);
      } else if (last_error_no_space_ || r.IsBusy() || r.IsNoSpace()) {
        // Still full (or RocksDB still recovering): refuse without writing. Writing now would
        // reach a log writer that has already failed, which RocksDB treats as a bug (debug
        // builds, such as Debian's, abort).
        return Annotate(
            FromRocks(r.IsNoSpace() ? r : rocksdb::Status::NoSpace(r.ToString()), "writing"));
      } else {
        return Annotate(Status::IOError(
            "the storage engine stopped writing after a failed write (" + r.ToString() +
            "); reads go on, but appends need the store reopened (restart the server) once "
            "the disk is healthy"));
      }
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    rocksdb::Status s = db_->Write(wo, static_cast<RocksBatch&>(batch).rep());
    if (!s.ok()) {
      last_error_no_space_ = s.IsNoSpace();
      needs_resume_.store(true);
    }
    return Annotate(FromRocks(s, "writing"));
  }

  Status SyncWal() override {
    // Write(sync=false) has already handed the WAL records to the operating system (no
    // manual_wal_flush), so this is one fdatasync of the WAL files. It does not run beside a
    // Write (wal_mu_), although RocksDB would allow it: see wal_mu_. The WAL is sequential and each
    // batch is one checksummed record, so a crash keeps a prefix of whole batches.
    if (read_only_) return ReadOnlyError(dir_);
    if (bulk_ != nullptr) return Annotate(FromRocks(bulk_->Flush(), "ingesting bulk writes"));
    std::lock_guard<std::mutex> wal(wal_mu_);
    if (needs_resume_.load()) {
      // A write failed since the last sync: RocksDB must not sync the log file that failed
      // (its writer refuses, and debug builds abort). Resume() flushes the memory tables to
      // synced table files instead, which makes every batch written before it durable; if it
      // cannot, the sync fails and the write path acknowledges nothing more.
      rocksdb::Status r = db_->Resume();
      if (!r.ok()) {
        return Annotate(FromRocks(r, "syncing after a failed write"));
      }
      needs_resume_.store(false);
      return Status::Ok();
    }
    return Annotate(FromRocks(db_->SyncWAL(), "syncing the write-ahead log"));
  }

  std::uint64_t ApproximateDiskBytes() const override {
    std::uint64_t total = 0;
    for (auto* h : cfs_) {
      std::uint64_t v = 0;
      if (db_->GetIntProperty(h, rocksdb::DB::Properties::kLiveSstFilesSize, &v)) total += v;
    }
    std::uint64_t wal = 0;
    if (db_->GetIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &wal)) {
      // Data still only in memtables is in the WAL on disk; count it so a fresh store is not 0.
      total += wal;
    }
    return total;
  }

  Status CreateCheckpoint(const std::string& dir) override {
    // A checkpoint first flushes the memory tables into the data directory.
    if (read_only_) return ReadOnlyError(dir_);
    TT_RETURN_IF_ERROR(ShowBulkWrites());
    rocksdb::Checkpoint* raw = nullptr;
    TT_RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpointing"));
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    // log_size_for_flush 0: flush the memtables first, so the copy is whole SST files and
    // needs no write-ahead log replay to open.
    return Annotate(FromRocks(checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0),
                              "writing a checkpoint to '" + dir + "'"));
  }

  Status CatchUp() override {
    if (!read_only_) return Status::Ok();
    std::lock_guard<std::mutex> lock(catch_up_mu_);
    // Retried like the open (OpenSecondary): the writer may delete a log file meanwhile.
    rocksdb::Status s;
    for (int attempt = 0; attempt < 3; ++attempt) {
      s = db_->TryCatchUpWithPrimary();
      if (s.ok() || !(s.IsIOError() || s.IsPathNotFound())) break;
    }
    TT_RETURN_IF_ERROR(Annotate(FromRocks(s, "catching up with the writer of '" + dir_ + "'")));
    // The secondary's files and memory tables may have changed: idle pooled iterators are
    // dropped (the next read makes new ones), as after a flush or compaction of a primary.
    versions_->generation.fetch_add(1);
    return Status::Ok();
  }

  Status WaitForBackgroundWork() const override {
    // RocksDB 7.8 has no WaitForCompact: poll the properties that say whether a flush or a
    // compaction is running or queued, in every family, until all are zero.
    static constexpr std::string_view kBusy[] = {
        "rocksdb.mem-table-flush-pending", "rocksdb.compaction-pending",
        "rocksdb.num-running-flushes", "rocksdb.num-running-compactions"};
    for (;;) {
      bool busy = false;
      for (auto* h : cfs_) {
        for (std::string_view property : kBusy) {
          std::uint64_t v = 0;
          if (db_->GetIntProperty(h, rocksdb::Slice(property.data(), property.size()), &v) &&
              v != 0) {
            busy = true;
          }
        }
      }
      if (!busy) {
        // Idle pooled iterators would keep the compacted files on disk until the next read.
        for (auto& pool : pools_) {
          std::lock_guard<std::mutex> lock(pool.mu);
          pool.idle.clear();
        }
        return Status::Ok();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

 private:
  RocksDbEngine() = default;
  rocksdb::ColumnFamilyHandle* cf(Family f) const { return cfs_[static_cast<int>(f)]; }

  // An iterator taken from the family's pool and refreshed, or a new one. A query makes a few
  // iterators, each only for a seek or two; making one allocates and sets up an iterator for
  // every table file it may read, and under glibc's allocator the memory freed by the last one
  // is often handed back to the kernel and faulted in again (zeroed pages) by the next. A
  // refreshed iterator reads the latest data like a new one, and costs nothing when no flush or
  // compaction happened since it was made (RocksDB rebuilds it otherwise). Idle iterators made
  // before a flush or compaction are dropped by the next read (or WaitForBackgroundWork), so
  // only a store that is not read at all keeps the replaced files a while longer.
  std::unique_ptr<KvIterator> Iterator(Family family, bool within_stream) const {
    if (Status s = ShowBulkWrites(); !s.ok()) return std::make_unique<FailedIterator>(s);
    rocksdb::ReadOptions ro;
    // Families with a stream prefix extractor: plain iterators see every key in order; stream
    // iterators stay within the stream of the key they are positioned on, and skip table files
    // whose prefix filter says the stream has no keys there.
    ro.total_order_seek = !within_stream;
    ro.prefix_same_as_start = within_stream;
    IteratorPool& pool = pools_[static_cast<int>(family) * 2 + (within_stream ? 1 : 0)];
    const std::uint64_t generation = versions_->generation.load();
    std::uint64_t seen = pools_generation_.load();
    if (seen != generation && pools_generation_.compare_exchange_strong(seen, generation)) {
      // Idle iterators made before a flush or compaction keep its input files on disk and its
      // flushed memtable in memory: drop them in every pool, also in pools seldom used.
      for (auto& other : pools_) {
        std::lock_guard<std::mutex> lock(other.mu);
        if (other.generation != generation) other.idle.clear();
      }
    }
    std::unique_ptr<rocksdb::Iterator> it;
    {
      std::lock_guard<std::mutex> lock(pool.mu);
      if (pool.generation != generation) {
        pool.idle.clear();
        pool.generation = generation;
      }
      if (!pool.idle.empty()) {
        it = std::move(pool.idle.back());
        pool.idle.pop_back();
      }
    }
    if (it != nullptr && !it->Refresh().ok()) it.reset();
    if (it == nullptr) it.reset(db_->NewIterator(ro, cf(family)));
    return std::make_unique<RocksIterator>(it.release(), &pool, versions_.get(), generation);
  }

  // Bulk load: a batch is kept for the next ingestion, which a sync (the write path's, after
  // every group commit) or a read starts. Memory stays bounded when no sync comes.
  Status WriteBulk(KvWriteBatch& batch, bool sync) {
    static constexpr std::size_t kMaxPendingBytes = 256u << 20;
    TT_RETURN_IF_ERROR(Annotate(
        FromRocks(bulk_->Add(std::move(*static_cast<RocksBatch&>(batch).rep())), "writing")));
    if (!sync && bulk_->pending_bytes() < kMaxPendingBytes) return Status::Ok();
    return Annotate(FromRocks(bulk_->Flush(), "ingesting bulk writes"));
  }

  // In a bulk load, ingests what was written so far, so that a read sees every write made
  // before it (the write path reads its own writes, e.g. stream heads and index entries).
  Status ShowBulkWrites() const {
    if (bulk_ == nullptr) return Status::Ok();
    return Annotate(FromRocks(bulk_->Flush(), "ingesting bulk writes"));
  }

  // Names the data directory in I/O errors, so that the operator knows which disk to look at.
  Status Annotate(Status s) const {
    if (s.ok() || s.code() != StatusCode::kIOError) return s;
    return Status::IOError(s.message() + " [data directory '" + dir_ + "']");
  }

  std::shared_ptr<rocksdb::Env> env_;  // declared before db_: outlives it
  // Read-only: the secondary instance's own directory, removed after db_ is closed.
  std::unique_ptr<SecondaryDir> secondary_;  // declared before db_: outlives it
  std::string dir_;
  bool read_only_ = false;
  // Serializes CatchUp calls.
  std::mutex catch_up_mu_;
  // Serializes Write and SyncWal. RocksDB lets SyncWAL run beside a write, but when that write
  // fails, the log file is marked failed, and a SyncWAL that reaches it before needs_resume_
  // is set trips an assertion in RocksDB (Debian's build aborts the process: seen in
  // fault_test under load, a WAL write failing while the sync thread started a sync). A disk
  // error must refuse appends, not end the server, so the pipelining of a group's write with
  // the previous group's fsync is given up.
  std::mutex wal_mu_;
  // Set when a write failed; the next write or sync calls DB::Resume() first.
  std::atomic<bool> needs_resume_{false};
  // The last failed write found the disk full. Only the writing thread touches it (Write
  // calls are serialized by the caller).
  bool last_error_no_space_ = false;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;
  rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;
  std::shared_ptr<VersionCounter> versions_;
  // Set in a bulk load (RocksDbEngineOptions::bulk_load): writes go through it, not the WAL.
  std::unique_ptr<BulkIngest> bulk_;
  // Idle iterators: plain and stream iterators of each family.
  mutable IteratorPool pools_[kFamilyCount * 2];
  // The generation of the table files for which every pool was last cleared.
  mutable std::atomic<std::uint64_t> pools_generation_{0};
};

}  // namespace

Result<std::unique_ptr<KvEngine>> OpenRocksDbEngine(const RocksDbEngineOptions& options,
                                                    std::string_view path) {
  return RocksDbEngine::Open(options, path);
}

}  // namespace timetrail
