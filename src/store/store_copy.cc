#include "timetrail/copy.h"

#include "store/engine_open.h"

namespace timetrail {
namespace {

// Writes of up to this many bytes go as one batch.
constexpr std::size_t kBatchBytes = 8u << 20;

Status RefuseUnlessEmpty(const KvEngine& engine, std::string_view to) {
  for (int f = 0; f < kFamilyCount; ++f) {
    std::unique_ptr<KvIterator> it = engine.NewIterator(static_cast<Family>(f));
    it->SeekToFirst();
    TT_RETURN_IF_ERROR(it->status());
    if (it->Valid()) {
      return Status::InvalidArgument("'" + std::string(to) +
                                     "' holds a store already; copy into a new data directory "
                                     "or an empty schema");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<CopyStoreReport> CopyStore(std::string_view from, std::string_view to,
                                  const CopyStoreOptions& options) {
  Options from_options = options.from;
  from_options.read_only = true;
  from_options.create_if_missing = false;
  from_options.bulk_load = false;
  Options to_options = options.to;
  to_options.read_only = false;
  to_options.create_if_missing = true;
  if (from == to && from_options.postgres_schema == to_options.postgres_schema) {
    return Status::InvalidArgument("the source and the destination are the same store");
  }
  CopyStoreReport report;
  {
    // The source's head, read through the store, which checks that "from" holds one.
    TT_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> source, EventStore::Open(from_options, from));
    report.head = source->GetIntegrityHead();
  }
  {
    TT_ASSIGN_OR_RETURN(std::unique_ptr<KvEngine> source, OpenEngine(from_options, from));
    TT_ASSIGN_OR_RETURN(std::unique_ptr<KvEngine> target, OpenEngine(to_options, to));
    TT_RETURN_IF_ERROR(RefuseUnlessEmpty(*target, to));
    for (int f = 0; f < kFamilyCount; ++f) {
      const Family family = static_cast<Family>(f);
      std::unique_ptr<KvIterator> it = source->NewIterator(family);
      std::unique_ptr<KvWriteBatch> batch = target->NewBatch();
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        batch->Put(family, it->key(), it->value());
        ++report.keys;
        report.bytes += it->key().size() + it->value().size();
        if (batch->ApproximateBytes() >= kBatchBytes) {
          TT_RETURN_IF_ERROR(target->Write(*batch, /*sync=*/false));
          batch = target->NewBatch();
          if (options.progress) options.progress(report.keys, report.bytes);
        }
      }
      TT_RETURN_IF_ERROR(it->status());
      if (batch->Count() > 0) TT_RETURN_IF_ERROR(target->Write(*batch, /*sync=*/false));
    }
    TT_RETURN_IF_ERROR(target->SyncWal());
    if (options.progress) options.progress(report.keys, report.bytes);
  }
  // The copy must open as a store and its chain must verify up to the source's head.
  Options check = to_options;
  check.create_if_missing = false;
  TT_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> copy, EventStore::Open(check, to));
  TT_ASSIGN_OR_RETURN(report.verify, copy->Verify(VerifyOptions{}));
  if (!report.verify.ok) {
    return Status::Corruption("the copy does not verify: " + report.verify.message);
  }
  const IntegrityHead copied = copy->GetIntegrityHead();
  if (copied.position != report.head.position || copied.hash_hex != report.head.hash_hex) {
    return Status::Corruption("the copy's chain ends at position " +
                              std::to_string(copied.position) + ", not at the source's " +
                              std::to_string(report.head.position) +
                              ": was the source written during the copy?");
  }
  return report;
}

}  // namespace timetrail
