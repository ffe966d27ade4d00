#include "support/fault_fs.h"

#include <unistd.h>

#include <algorithm>

namespace timetrail::testing {
namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

// Counts what was appended and what was synced, and fails on request.
class FaultWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultWritableFile(std::unique_ptr<rocksdb::FSWritableFile> target, FaultFs* fs,
                    std::string name, std::uint64_t size)
      : FSWritableFileOwnerWrapper(std::move(target)),
        fs_(fs),
        name_(std::move(name)),
        size_(size) {}

  IOStatus Append(const Slice& data, const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = fs_->MaybeFail(fs_->fail_writes(), "write");
    if (s.ok()) s = target()->Append(data, o, dbg);
    if (s.ok()) Grew(data.size());
    return s;
  }
  IOStatus Append(const Slice& data, const IOOptions& o,
                  const rocksdb::DataVerificationInfo& info, IODebugContext* dbg) override {
    IOStatus s = fs_->MaybeFail(fs_->fail_writes(), "write");
    if (s.ok()) s = target()->Append(data, o, info, dbg);
    if (s.ok()) Grew(data.size());
    return s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            IODebugContext* dbg) override {
    IOStatus s = fs_->MaybeFail(fs_->fail_writes(), "write");
    if (s.ok()) s = target()->PositionedAppend(data, offset, o, dbg);
    if (s.ok()) {
      size_ = std::max<std::uint64_t>(size_.load(), offset + data.size());
      fs_->NoteWritten(name_, size_.load());
    }
    return s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            const rocksdb::DataVerificationInfo& info,
                            IODebugContext* dbg) override {
    IOStatus s = fs_->MaybeFail(fs_->fail_writes(), "write");
    if (s.ok()) s = target()->PositionedAppend(data, offset, o, info, dbg);
    if (s.ok()) {
      size_ = std::max<std::uint64_t>(size_.load(), offset + data.size());
      fs_->NoteWritten(name_, size_.load());
    }
    return s;
  }
  IOStatus Truncate(uint64_t size, const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = target()->Truncate(size, o, dbg);
    if (s.ok()) {
      size_ = size;
      fs_->NoteWritten(name_, size);
    }
    return s;
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* dbg) override {
    return SyncWith([&] { return target()->Sync(o, dbg); });
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    return SyncWith([&] { return target()->Fsync(o, dbg); });
  }
  IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const IOOptions& o,
                     IODebugContext* dbg) override {
    // A range sync is only a hint to start writeback; it does not make anything durable.
    IOStatus s = fs_->MaybeFail(fs_->fail_syncs(), "range sync");
    if (!s.ok()) return s;
    return target()->RangeSync(offset, nbytes, o, dbg);
  }
  IOStatus Close(const IOOptions& o, IODebugContext* dbg) override {
    // Closing does not sync: what was not synced stays droppable.
    return target()->Close(o, dbg);
  }

 private:
  void Grew(std::size_t n) {
    fs_->NoteWritten(name_, size_ += n);
  }
  template <typename F>
  IOStatus SyncWith(F sync) {
    // Only what was appended before the sync started is durable after it: another thread may
    // append while this one syncs (the store syncs one group while it writes the next).
    std::uint64_t covered = size_.load();
    IOStatus s = fs_->MaybeFail(fs_->fail_syncs(), "sync");
    if (s.ok()) s = sync();
    if (s.ok()) fs_->NoteSynced(name_, covered);
    return s;
  }

  FaultFs* fs_;
  std::string name_;
  std::atomic<std::uint64_t> size_;
};

class FaultRandomAccessFile final : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  FaultRandomAccessFile(std::unique_ptr<rocksdb::FSRandomAccessFile> target, FaultFs* fs)
      : FSRandomAccessFileOwnerWrapper(std::move(target)), fs_(fs) {}
  IOStatus Read(uint64_t offset, size_t n, const IOOptions& o, Slice* result, char* scratch,
                IODebugContext* dbg) const override {
    IOStatus s = fs_->MaybeFail(fs_->fail_reads(), "read");
    if (!s.ok()) return s;
    return target()->Read(offset, n, o, result, scratch, dbg);
  }
  IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs, const IOOptions& o,
                     IODebugContext* dbg) override {
    IOStatus s = fs_->MaybeFail(fs_->fail_reads(), "read");
    if (!s.ok()) {
      for (size_t i = 0; i < num_reqs; ++i) reqs[i].status = s;
      return s;
    }
    return target()->MultiRead(reqs, num_reqs, o, dbg);
  }

 private:
  FaultFs* fs_;
};

class FaultSequentialFile final : public rocksdb::FSSequentialFileOwnerWrapper {
 public:
  FaultSequentialFile(std::unique_ptr<rocksdb::FSSequentialFile> target, FaultFs* fs)
      : FSSequentialFileOwnerWrapper(std::move(target)), fs_(fs) {}
  IOStatus Read(size_t n, const IOOptions& o, Slice* result, char* scratch,
                IODebugContext* dbg) override {
    IOStatus s = fs_->MaybeFail(fs_->fail_reads(), "read");
    if (!s.ok()) return s;
    return target()->Read(n, o, result, scratch, dbg);
  }
  IOStatus PositionedRead(uint64_t offset, size_t n, const IOOptions& o, Slice* result,
                          char* scratch, IODebugContext* dbg) override {
    IOStatus s = fs_->MaybeFail(fs_->fail_reads(), "read");
    if (!s.ok()) return s;
    return target()->PositionedRead(offset, n, o, result, scratch, dbg);
  }

 private:
  FaultFs* fs_;
};

class FaultDirectory final : public rocksdb::FSDirectoryWrapper {
 public:
  FaultDirectory(std::unique_ptr<rocksdb::FSDirectory> target, FaultFs* fs)
      : FSDirectoryWrapper(std::move(target)), fs_(fs) {}
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    IOStatus s = fs_->MaybeFail(fs_->fail_syncs(), "directory sync");
    if (!s.ok()) return s;
    return FSDirectoryWrapper::Fsync(o, dbg);
  }
  IOStatus FsyncWithDirOptions(const IOOptions& o, IODebugContext* dbg,
                               const rocksdb::DirFsyncOptions& d) override {
    IOStatus s = fs_->MaybeFail(fs_->fail_syncs(), "directory sync");
    if (!s.ok()) return s;
    return FSDirectoryWrapper::FsyncWithDirOptions(o, dbg, d);
  }

 private:
  FaultFs* fs_;
};

}  // namespace

FaultFs::FaultFs() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}

IOStatus FaultFs::MaybeFail(const std::atomic<bool>& which, const char* what) {
  if (!which.load()) return IOStatus::OK();
  injected_.fetch_add(1);
  if (&which == &fail_writes_ && no_space_.load()) {
    return IOStatus::NoSpace(std::string("injected ") + what + " fault: no space left on device");
  }
  return IOStatus::IOError(std::string("injected ") + what + " fault");
}

void FaultFs::NoteWritten(const std::string& name, std::uint64_t size) {
  std::lock_guard<std::mutex> l(mu_);
  files_[name].size = size;
}

void FaultFs::NoteSynced(const std::string& name, std::uint64_t size) {
  std::lock_guard<std::mutex> l(mu_);
  FileState& f = files_[name];
  f.synced = std::max(f.synced, std::min(size, f.size));
}

IOStatus FaultFs::NewWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                  std::unique_ptr<rocksdb::FSWritableFile>* result,
                                  IODebugContext* dbg) {
  IOStatus s = MaybeFail(fail_writes_, "file creation");
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  s = target()->NewWritableFile(fname, opts, &file, dbg);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> l(mu_);
    files_[fname] = FileState{};
  }
  *result = std::make_unique<FaultWritableFile>(std::move(file), this, fname, 0);
  return s;
}

IOStatus FaultFs::ReopenWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                     std::unique_ptr<rocksdb::FSWritableFile>* result,
                                     IODebugContext* dbg) {
  IOStatus s = MaybeFail(fail_writes_, "file reopen");
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  s = target()->ReopenWritableFile(fname, opts, &file, dbg);
  if (!s.ok()) return s;
  std::uint64_t size = 0;
  target()->GetFileSize(fname, IOOptions(), &size, dbg).PermitUncheckedError();
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = files_.find(fname);
    // A file this file system did not write is taken as durable as it is.
    if (it == files_.end()) files_[fname] = FileState{size, size};
  }
  *result = std::make_unique<FaultWritableFile>(std::move(file), this, fname, size);
  return s;
}

IOStatus FaultFs::ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                    const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    IODebugContext* dbg) {
  // Reusing keeps nothing of the old file's contents; treat it as a new file.
  IOStatus s = RenameFile(old_fname, fname, IOOptions(), dbg);
  if (!s.ok()) return s;
  return NewWritableFile(fname, opts, result, dbg);
}

IOStatus FaultFs::NewRandomAccessFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                      std::unique_ptr<rocksdb::FSRandomAccessFile>* result,
                                      IODebugContext* dbg) {
  IOStatus s = MaybeFail(fail_reads_, "open for reading");
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::FSRandomAccessFile> file;
  s = target()->NewRandomAccessFile(fname, opts, &file, dbg);
  if (!s.ok()) return s;
  *result = std::make_unique<FaultRandomAccessFile>(std::move(file), this);
  return s;
}

IOStatus FaultFs::NewSequentialFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSSequentialFile>* result,
                                    IODebugContext* dbg) {
  IOStatus s = MaybeFail(fail_reads_, "open for reading");
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::FSSequentialFile> file;
  s = target()->NewSequentialFile(fname, opts, &file, dbg);
  if (!s.ok()) return s;
  *result = std::make_unique<FaultSequentialFile>(std::move(file), this);
  return s;
}

IOStatus FaultFs::NewDirectory(const std::string& name, const IOOptions& opts,
                               std::unique_ptr<rocksdb::FSDirectory>* result,
                               IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSDirectory> dir;
  IOStatus s = target()->NewDirectory(name, opts, &dir, dbg);
  if (!s.ok()) return s;
  *result = std::make_unique<FaultDirectory>(std::move(dir), this);
  return s;
}

IOStatus FaultFs::RenameFile(const std::string& src, const std::string& target_name,
                             const IOOptions& opts, IODebugContext* dbg) {
  IOStatus s = target()->RenameFile(src, target_name, opts, dbg);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  auto it = files_.find(src);
  if (it != files_.end()) {
    files_[target_name] = it->second;
    files_.erase(src);
  } else {
    files_.erase(target_name);
  }
  return s;
}

IOStatus FaultFs::DeleteFile(const std::string& fname, const IOOptions& opts,
                             IODebugContext* dbg) {
  IOStatus s = target()->DeleteFile(fname, opts, dbg);
  if (s.ok()) {
    std::lock_guard<std::mutex> l(mu_);
    files_.erase(fname);
  }
  return s;
}

void FaultFs::DropUnsyncedData() {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [name, f] : files_) {
    if (f.synced < f.size) {
      // A real file on disk: cut it back to what a power loss would have kept.
      if (::truncate(name.c_str(), static_cast<off_t>(f.synced)) == 0) f.size = f.synced;
    }
  }
}

std::shared_ptr<rocksdb::Env> NewFaultEnv(const std::shared_ptr<FaultFs>& fs) {
  return std::shared_ptr<rocksdb::Env>(rocksdb::NewCompositeEnv(fs));
}

}  // namespace timetrail::testing
