// Copying a whole store between locations: a data directory (RocksDB) and a PostgreSQL
// database, either way, or between two of one kind. Every key of every family goes across as
// it is, so the copy has the same positions, revisions, times, event ids, hash chain, tokens,
// consumers and checkpoints; the copy is then verified by its chain.
//
//   timetrail::CopyStoreOptions o;
//   o.to.postgres_schema = "shop_events";
//   auto report = timetrail::CopyStore("./timetrail-data", "postgresql://tt@db/shop", o);
//   // report->head.hash_hex is the source's chain head; report->verify.ok is true.
#ifndef TIMETRAIL_COPY_H_
#define TIMETRAIL_COPY_H_

#include <cstdint>
#include <functional>
#include <string_view>

#include "timetrail/options.h"
#include "timetrail/store.h"

namespace timetrail {

// Intentionally copyable.
struct CopyStoreOptions {
  Options from;  // read_only is set: the source is only read
  Options to;    // create_if_missing is set
  // Called every few thousand keys with (keys copied, bytes copied).
  std::function<void(std::uint64_t, std::uint64_t)> progress;
};

// Intentionally copyable.
struct CopyStoreReport {
  std::uint64_t keys = 0;
  std::uint64_t bytes = 0;
  IntegrityHead head;   // the source's chain head, which the copy's chain reached
  VerifyReport verify;  // of the copy, over its whole chain
};

// Copies the store at "from" into "to", which must hold no store yet. The source must not be
// written meanwhile: stop the server that writes it (a data directory is read as of the
// moment the copy opens it; a PostgreSQL store is read table by table). kInvalidArgument when
// "to" holds a store or data, kNotFound when "from" holds none, kCorruption when the copy's
// chain does not verify or does not end at the source's head.
Result<CopyStoreReport> CopyStore(std::string_view from, std::string_view to,
                                  const CopyStoreOptions& options);

}  // namespace timetrail

#endif  // TIMETRAIL_COPY_H_
