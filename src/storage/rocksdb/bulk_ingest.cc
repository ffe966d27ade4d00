#include "storage/rocksdb/bulk_ingest.h"

#include <rocksdb/sst_file_writer.h>

#include <algorithm>
#include <filesystem>
#include <utility>

namespace timetrail {

namespace {

// One record of a kept batch; key and value point into the batch.
struct Record {
  rocksdb::Slice key;
  rocksdb::Slice value;
  std::size_t order = 0;  // position among all records of the flush: the last one wins
  bool deleted = false;
};

// Sorts the records of write batches by family. Only puts and deletes: the engine writes
// nothing else (other kinds fail the flush, through the Handler's defaults).
class Collector final : public rocksdb::WriteBatch::Handler {
 public:
  // "family_of_id": the family index of each column family id (-1: not one of them).
  Collector(const std::vector<int>& family_of_id, std::vector<std::vector<Record>>* records)
      : family_of_id_(family_of_id), records_(records) {}
  rocksdb::Status PutCF(std::uint32_t id, const rocksdb::Slice& key,
                        const rocksdb::Slice& value) override {
    return Take(id, key, value, false);
  }
  rocksdb::Status DeleteCF(std::uint32_t id, const rocksdb::Slice& key) override {
    return Take(id, key, rocksdb::Slice(), true);
  }

 private:
  rocksdb::Status Take(std::uint32_t id, const rocksdb::Slice& key, const rocksdb::Slice& value,
                       bool deleted) {
    if (id >= family_of_id_.size() || family_of_id_[id] < 0) {
      return rocksdb::Status::InvalidArgument("a write batch names an unknown column family");
    }
    (*records_)[static_cast<std::size_t>(family_of_id_[id])].push_back(
        {key, value, next_++, deleted});
    return rocksdb::Status::OK();
  }

  const std::vector<int>& family_of_id_;
  std::vector<std::vector<Record>>* records_;
  std::size_t next_ = 0;
};

}  // namespace

BulkIngest::BulkIngest(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> families,
                       std::string dir)
    : db_(db), families_(std::move(families)), dir_(std::move(dir)) {
  for (std::size_t f = 0; f < families_.size(); ++f) {
    const std::uint32_t id = families_[f]->GetID();
    if (id >= family_of_id_.size()) family_of_id_.resize(id + 1, -1);
    family_of_id_[id] = static_cast<int>(f);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

rocksdb::Status BulkIngest::Add(rocksdb::WriteBatch&& batch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!error_.ok()) return error_;
  pending_bytes_ += batch.GetDataSize();
  pending_.push_back(std::move(batch));
  return rocksdb::Status::OK();
}

std::size_t BulkIngest::pending_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_bytes_;
}

rocksdb::Status BulkIngest::Flush() {
  std::lock_guard<std::mutex> flushing(flush_mu_);
  std::vector<rocksdb::WriteBatch> batches;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_.ok()) return error_;
    batches.swap(pending_);
    pending_bytes_ = 0;
  }
  if (batches.empty()) return rocksdb::Status::OK();
  rocksdb::Status s = WriteAndIngest(batches);
  if (!s.ok()) {
    // What was added meanwhile follows batches that are now lost: it must not be made durable
    // without them.
    std::lock_guard<std::mutex> lock(mu_);
    error_ = s;
    pending_.clear();
    pending_bytes_ = 0;
  }
  return s;
}

rocksdb::Status BulkIngest::WriteAndIngest(std::vector<rocksdb::WriteBatch>& batches) {
  std::vector<std::vector<Record>> records(families_.size());
  Collector collector(family_of_id_, &records);
  for (rocksdb::WriteBatch& batch : batches) {
    rocksdb::Status s = batch.Iterate(&collector);
    if (!s.ok()) return s;
  }
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return rocksdb::Status::IOError("creating '" + dir_ + "': " + ec.message());

  std::vector<rocksdb::IngestExternalFileArg> args;
  std::vector<std::string> written;
  auto remove_written = [&written] {
    std::error_code ignored;
    for (const std::string& path : written) std::filesystem::remove(path, ignored);
  };
  const rocksdb::EnvOptions env_options(db_->GetDBOptions());
  for (std::size_t f = 0; f < families_.size(); ++f) {
    std::vector<Record>& family = records[f];
    if (family.empty()) continue;
    // By key, and for one key in the order written, so that the last write is the one kept.
    // The log's and the time index's keys arrive in order already.
    auto before = [](const Record& a, const Record& b) {
      int c = a.key.compare(b.key);
      return c < 0 || (c == 0 && a.order < b.order);
    };
    if (!std::is_sorted(family.begin(), family.end(), before)) {
      std::sort(family.begin(), family.end(), before);
    }
    // The family's own options, so that the file has its table format, filters and prefix
    // extractor, as a flush would write it. Its compression too (LZ4), not the bottom level's
    // (ZSTD), which SstFileWriter would pick: ZSTD made the sync thread's work a fifth slower
    // for a tenth less disk (bench/README.md, "import"), and files that land above the bottom
    // level are compressed with ZSTD when compactions move them down. Its pages stay in the
    // page cache: the write path reads recent keys back.
    rocksdb::Options family_options = db_->GetOptions(families_[f]);
    family_options.bottommost_compression = rocksdb::kDisableCompressionOption;
    rocksdb::SstFileWriter writer(env_options, family_options, families_[f],
                                  /*invalidate_page_cache=*/false);
    std::string path = dir_ + "/" + std::to_string(++files_written_) + ".sst";
    rocksdb::Status s = writer.Open(path);
    if (s.ok()) written.push_back(path);
    for (std::size_t i = 0; s.ok() && i < family.size(); ++i) {
      if (i + 1 < family.size() && family[i + 1].key == family[i].key) continue;
      s = family[i].deleted ? writer.Delete(family[i].key)
                            : writer.Put(family[i].key, family[i].value);
    }
    // Finish syncs the file.
    if (s.ok()) s = writer.Finish();
    if (!s.ok()) {
      remove_written();
      return s;
    }
    rocksdb::IngestExternalFileArg arg;
    arg.column_family = families_[f];
    arg.external_files = {path};
    // Linked into the database rather than copied; the new format that needs no sequence
    // number written into the file.
    arg.options.move_files = true;
    arg.options.write_global_seqno = false;
    args.push_back(std::move(arg));
  }
  if (args.empty()) return rocksdb::Status::OK();
  rocksdb::Status s = db_->IngestExternalFiles(args);
  // Moved files are gone from here on success; on failure nothing was ingested.
  remove_written();
  return s;
}

}  // namespace timetrail
