// Bulk loading for the RocksDB engine: write batches are kept in memory and made durable by
// writing them as sorted table files that RocksDB takes in whole (IngestExternalFiles), instead
// of through the write-ahead log and the memtables. For loads that would otherwise spend most
// of their time inserting keys into skip lists (bench/README.md, "import").
//
// Each Flush writes one table file per family holding everything added since the last one and
// ingests them all in one atomic step (one MANIFEST record): after a crash the store holds the
// batches of the flushes that completed, whole, and nothing of the others. Batches are whole
// group commits, so that is a prefix of whole transactions.
#ifndef TIMETRAIL_STORAGE_ROCKSDB_BULK_INGEST_H_
#define TIMETRAIL_STORAGE_ROCKSDB_BULK_INGEST_H_

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace timetrail {

class BulkIngest {
 public:
  // "families": the column families, in the order of the engine's families. "dir": a directory
  // of the data directory's file system for the files being written (cleared here: files left
  // there by a crash were never ingested).
  BulkIngest(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> families, std::string dir);
  BulkIngest(const BulkIngest&) = delete;
  BulkIngest& operator=(const BulkIngest&) = delete;

  // Keeps "batch" for the next Flush; not visible to reads until then. Fails once a flush has
  // failed (nothing more is taken: what was added since the last good flush is lost).
  rocksdb::Status Add(rocksdb::WriteBatch&& batch);
  // Makes everything added before the call durable and visible. Waits for a flush that another
  // thread is running, so that a read made after Flush returns sees every batch added before it.
  rocksdb::Status Flush();
  // Bytes of the batches kept since the last flush.
  std::size_t pending_bytes() const;

 private:
  rocksdb::Status WriteAndIngest(std::vector<rocksdb::WriteBatch>& batches);

  rocksdb::DB* const db_;
  const std::vector<rocksdb::ColumnFamilyHandle*> families_;
  const std::string dir_;
  std::vector<int> family_of_id_;  // column family id -> index in families_ (-1: none)

  // Held for a whole flush; taken before mu_ when both are held.
  std::mutex flush_mu_;
  std::uint64_t files_written_ = 0;  // GUARDED_BY(flush_mu_): names the next files

  mutable std::mutex mu_;
  std::vector<rocksdb::WriteBatch> pending_;  // GUARDED_BY(mu_)
  std::size_t pending_bytes_ = 0;             // GUARDED_BY(mu_)
  rocksdb::Status error_;                     // GUARDED_BY(mu_): sticky, from a failed flush
};

}  // namespace timetrail

#endif  // TIMETRAIL_STORAGE_ROCKSDB_BULK_INGEST_H_
