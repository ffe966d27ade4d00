// A RocksDB file system for tests that injects I/O faults: failing writes, syncs and reads, and
// a simulated power loss that drops every byte not yet synced. Wraps the real (POSIX) file
// system, so the files are real files in the test's temporary directory.
#ifndef TIMETRAIL_TESTS_SUPPORT_FAULT_FS_H_
#define TIMETRAIL_TESTS_SUPPORT_FAULT_FS_H_

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace timetrail::testing {

class FaultFs final : public rocksdb::FileSystemWrapper {
 public:
  FaultFs();
  static const char* kClassName() { return "TimetrailFaultFs"; }
  const char* Name() const override { return kClassName(); }

  // Switches; each may be flipped at any time from any thread.
  void FailWrites(bool on) { fail_writes_.store(on); }  // Append, PositionedAppend, new files
  // With FailWrites: fail them as a full disk does (ENOSPC) rather than as a broken one (EIO).
  void WritesFailAsNoSpace(bool on) { no_space_.store(on); }
  void FailSyncs(bool on) { fail_syncs_.store(on); }    // Sync, Fsync, RangeSync, directories
  void FailReads(bool on) { fail_reads_.store(on); }    // random-access and sequential reads

  // Simulates a power loss: truncates every file written through this file system to the
  // size it had at its last successful sync (0 if never synced). REQUIRES: no store is open.
  void DropUnsyncedData();

  // Faults injected so far (to check that a test really exercised one).
  std::uint64_t injected() const { return injected_.load(); }

  // Used by the file wrappers.
  rocksdb::IOStatus MaybeFail(const std::atomic<bool>& which, const char* what);
  void NoteWritten(const std::string& name, std::uint64_t size);
  void NoteSynced(const std::string& name, std::uint64_t size);
  const std::atomic<bool>& fail_writes() const { return fail_writes_; }
  const std::atomic<bool>& fail_syncs() const { return fail_syncs_; }
  const std::atomic<bool>& fail_reads() const { return fail_reads_; }

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname,
                                       const rocksdb::FileOptions& opts,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& opts,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomAccessFile(const std::string& fname,
                                        const rocksdb::FileOptions& opts,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* result,
                                        rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewSequentialFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                      std::unique_ptr<rocksdb::FSSequentialFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& opts,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& target,
                               const rocksdb::IOOptions& opts,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& opts,
                               rocksdb::IODebugContext* dbg) override;

 private:
  struct FileState {
    std::uint64_t size = 0;    // bytes written
    std::uint64_t synced = 0;  // bytes known durable
  };
  std::atomic<bool> fail_writes_{false}, fail_syncs_{false}, fail_reads_{false};
  std::atomic<bool> no_space_{false};
  std::atomic<std::uint64_t> injected_{0};
  std::mutex mu_;
  std::map<std::string, FileState> files_;  // GUARDED_BY(mu_)
};

// An Env whose file system is "fs", for EventStoreImpl::OpenWithEnv.
std::shared_ptr<rocksdb::Env> NewFaultEnv(const std::shared_ptr<FaultFs>& fs);

}  // namespace timetrail::testing

#endif  // TIMETRAIL_TESTS_SUPPORT_FAULT_FS_H_
