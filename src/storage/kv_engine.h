// The storage engine interface: an ordered key-value store with a few named families (key
// spaces), atomic multi-family batches and durable (fsync'd) writes. Everything above it (the
// write path, reads, temporal queries) is written against this interface only, so another
// engine (e.g. PostgreSQL for shared deployments) can be added without touching them.
// The key layout the store keeps in these families is in docs/format/key-layout.md.
#ifndef TIMETRAIL_STORAGE_KV_ENGINE_H_
#define TIMETRAIL_STORAGE_KV_ENGINE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "timetrail/status.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace timetrail {

// The key spaces. Each is ordered bytewise by key.
enum class Family : std::uint8_t {
  kLog = 0,      // position -> stored event
  kStreamIndex,  // stream, revision -> position
  kStreamHeads,  // stream -> last revision, last position, flags
  kEventIds,     // event id -> position
  kTimeIndex,    // recorded_at -> last position with that time
  kMeta,         // store state and checkpoints
  kSnapshots,    // stream, revision -> folded document state (temporal queries)
  kIndex,        // secondary indexes of the query layer (e.g. activity by actor)
};
inline constexpr int kFamilyCount = 8;
std::string_view FamilyName(Family f);

// A set of writes applied atomically by KvEngine::Write. Not thread-safe.
class KvWriteBatch {
 public:
  virtual ~KvWriteBatch() = default;
  virtual void Put(Family family, std::string_view key, std::string_view value) = 0;
  virtual void Delete(Family family, std::string_view key) = 0;
  virtual std::size_t ApproximateBytes() const = 0;
  virtual std::size_t Count() const = 0;
};

// A cursor over one family. Not thread-safe; use one per thread.
class KvIterator {
 public:
  virtual ~KvIterator() = default;
  virtual void Seek(std::string_view key) = 0;         // first key >= key
  virtual void SeekForPrev(std::string_view key) = 0;  // last key <= key
  virtual void SeekToFirst() = 0;
  virtual void SeekToLast() = 0;
  virtual bool Valid() const = 0;
  // REQUIRES: Valid().
  virtual void Next() = 0;
  virtual void Prev() = 0;
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  // A read error, if one stopped the iteration (Valid() is then false).
  virtual Status status() const = 0;
};

// Thread-safe: reads from any thread; writes are serialized by the caller (the write path).
class KvEngine {
 public:
  virtual ~KvEngine() = default;
  virtual Result<std::optional<std::string>> Get(Family family, std::string_view key) const = 0;
  // Get for many keys at once, answered in the order of "keys": cheaper than one Get per key
  // when they share table blocks (e.g. nearby positions of the log), because the engine reads
  // each block once for all of them.
  virtual Result<std::vector<std::optional<std::string>>> MultiGet(
      Family family, std::span<const std::string> keys) const = 0;
  virtual std::unique_ptr<KvIterator> NewIterator(Family family) const = 0;
  // For kStreamIndex, kSnapshots and kIndex: an iterator for the keys of one stream (kIndex:
  // one tag and name), the stream of the key each Seek/SeekForPrev targets. It may stop (become
  // invalid) at the stream's first or last key instead of moving on to the next stream, and the
  // engine may use that to skip table files without the stream (prefix bloom filters). Callers
  // check that the keys they read start with the stream's prefix, as with NewIterator.
  virtual std::unique_ptr<KvIterator> NewStreamIterator(Family family) const {
    return NewIterator(family);
  }
  virtual std::unique_ptr<KvWriteBatch> NewBatch() const = 0;
  // Applies "batch" atomically. With "sync", returns only once it is durable on disk. Without
  // it, the batch is visible to reads at once and handed to the operating system, but a power
  // loss may drop it (a process crash does not); SyncWal() makes it durable.
  virtual Status Write(KvWriteBatch& batch, bool sync) = 0;
  // Makes every batch whose Write returned before this call durable on disk. Thread-safe, and
  // may be called while another thread writes (the write path syncs from its own thread); an
  // engine may serialize the two, as the RocksDB engine does. A batch is never made durable in part
  // (after a crash it is there whole or not at all), and never without the batches written before
  // it. A shared engine (IsShared) also makes durable what BeginExclusiveWrite read since.
  // A shared engine fails with Unavailable when it lost the server its writes went to (the
  // database restarted, or failed over to a standby): what was written since the last SyncWal
  // that succeeded may or may not be stored, and no later SyncWal confirms it. The engine goes
  // on with the server it reaches at the next write; BeginExclusiveWrite then reads the head as
  // that server has it. Any other error means the engine cannot go on.
  virtual Status SyncWal() = 0;
  // Bytes of live data files, approximately.
  virtual std::uint64_t ApproximateDiskBytes() const = 0;
  // Waits until the engine has no flush or compaction running or pending for what was written
  // before the call (writes made meanwhile may start new work). For measurements that must not
  // compete with background work; never needed for correctness.
  virtual Status WaitForBackgroundWork() const { return Status::Ok(); }
  // Writes a consistent copy of the engine's data, as of one moment, into the new directory
  // "dir" (on the same file system, files are hard links) while writes go on.
  virtual Status CreateCheckpoint(const std::string& dir) = 0;
  // For an engine opened read-only (RocksDbEngineOptions::read_only): makes visible what the
  // process writing the directory has written since the engine opened (or last caught up).
  // Otherwise does nothing.
  virtual Status CatchUp() { return Status::Ok(); }

  // For an engine that several processes may write at once (PostgreSQL: several nodes serving
  // one store). An engine only one process writes (the embedded one) keeps these defaults.
  //
  // Whether other processes may write to this engine's data while this one does.
  virtual bool IsShared() const { return false; }
  // Starts a write that excludes every other process's write until it ends: the next Write
  // commits in it, or EndExclusiveWrite abandons it. Returns the value of "key" in "family" as
  // it is once every write of any process that ended before is visible; reads made meanwhile
  // (on any thread) see those writes too. Not thread-safe: the caller serializes writes.
  virtual Result<std::optional<std::string>> BeginExclusiveWrite(Family family,
                                                                 std::string_view key) {
    return Get(family, key);
  }
  // Ends a write begun by BeginExclusiveWrite without writing (nothing, if Write ended it).
  virtual void EndExclusiveWrite() {}
  // For a caller with more to write at once: the next Write, once committed, begins the next
  // exclusive write itself, in the same round trip, and the BeginExclusiveWrite(family, key)
  // that follows answers with what it read then. Not thread-safe, as Write.
  virtual void ChainExclusiveWrite(Family /*family*/, std::string_view /*key*/) {}
  // Reads "key" in "family" and returns once every write of any process that the read saw is
  // durable (another process's write may be visible before it is, as this one's is after Write
  // without "sync"). Thread-safe.
  virtual Result<std::optional<std::string>> GetDurable(Family family, std::string_view key) {
    TT_ASSIGN_OR_RETURN(std::optional<std::string> value, Get(family, key));
    TT_RETURN_IF_ERROR(SyncWal());
    return value;
  }
  // Blocks until another process says it has written, "timeout" passes, or InterruptWait is
  // called. True when told. Thread-safe against InterruptWait only.
  virtual bool WaitForOtherWriters(std::chrono::milliseconds /*timeout*/) { return false; }
  // Makes a WaitForOtherWriters in progress, and every later one, return at once.
  virtual void InterruptWait() {}
  // Makes the WaitForOtherWriters in progress, or else the next one, return at once (false),
  // once: for a waiting thread that has other work too (the store's watcher, following a read
  // replica). Thread-safe.
  virtual void WakeWaiter() {}
};

// The error of every write to an engine or store that was opened read-only, in directory "dir".
Status ReadOnlyError(std::string_view dir);

// Options of the embedded RocksDB engine. Intentionally copyable.
struct RocksDbEngineOptions {
  bool create_if_missing = true;
  std::size_t block_cache_bytes = 64u << 20;
  // For loading a large history into a store nothing else uses meanwhile: writes are kept in
  // memory and made durable, at each SyncWal (or Write with "sync"), by writing them as sorted
  // table files that RocksDB takes in whole, in one atomic step, instead of through its
  // write-ahead log and memtables. Reads first make every earlier write durable and visible,
  // so they see what was written. After a crash the store holds the batches of the syncs that
  // completed, whole. Fast when syncs are rare (big batches); slow when reads or syncs
  // follow every small write.
  bool bulk_load = false;
  // Opens the directory for reading only, as a RocksDB secondary instance: it takes no lock, so
  // another process may hold the directory and write meanwhile, and it writes nothing into the
  // directory (RocksDB's own files for the instance go into a private temporary directory,
  // removed on close). It sees what the writer had written to its table files and write-ahead
  // log when it opened, and more after each CatchUp(). Write, SyncWal and CreateCheckpoint fail
  // with ReadOnlyError. The directory must hold a store (create_if_missing and bulk_load do
  // not apply).
  bool read_only = false;
  // For tests only: the RocksDB Env (and so the file system) the engine uses instead of the
  // default one, e.g. one that injects I/O faults. Must outlive the engine. Null: the default.
  std::shared_ptr<rocksdb::Env> env;
};

// Opens the embedded default engine in directory "path".
Result<std::unique_ptr<KvEngine>> OpenRocksDbEngine(const RocksDbEngineOptions& options,
                                                    std::string_view path);

}  // namespace timetrail

#endif  // TIMETRAIL_STORAGE_KV_ENGINE_H_
