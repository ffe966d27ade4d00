// The storage engine a store location names: a PostgreSQL database (postgresql://...) or a
// data directory (the embedded RocksDB default). EventStore::Open and CopyStore open engines
// through it, so the two kinds of location mean the same everywhere.
#ifndef TIMETRAIL_STORE_ENGINE_OPEN_H_
#define TIMETRAIL_STORE_ENGINE_OPEN_H_

#include <memory>
#include <string_view>

#include "storage/kv_engine.h"
#include "timetrail/options.h"

namespace timetrail {

// Opens the engine at "location" with the store "options" (create_if_missing, read_only,
// bulk_load, block cache, PostgreSQL schema and connections). "env" is for tests of the
// embedded engine (fault injection); null: the default.
Result<std::unique_ptr<KvEngine>> OpenEngine(const Options& options, std::string_view location,
                                             std::shared_ptr<rocksdb::Env> env = nullptr);

}  // namespace timetrail

#endif  // TIMETRAIL_STORE_ENGINE_OPEN_H_
