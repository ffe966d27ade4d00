#include "store/engine_open.h"

#include "storage/postgres_engine.h"

namespace timetrail {

Result<std::unique_ptr<KvEngine>> OpenEngine(const Options& options, std::string_view location,
                                             std::shared_ptr<rocksdb::Env> env) {
  if (options.read_only && options.bulk_load) {
    return Status::InvalidArgument("read_only and bulk_load: a bulk load writes; choose one");
  }
  if (IsPostgresUrl(location)) {
    // bulk_load changes how the embedded engine writes; a PostgreSQL store writes each group
    // commit as one transaction either way.
    PostgresEngineOptions pg;
    pg.url = std::string(location);
    pg.schema = options.postgres_schema;
    pg.create_if_missing = options.create_if_missing && !options.read_only;
    pg.read_only = options.read_only;
    pg.max_read_connections = options.postgres_read_connections;
    return OpenPostgresEngine(pg);
  }
  RocksDbEngineOptions engine_options;
  engine_options.env = std::move(env);
  engine_options.create_if_missing = options.create_if_missing;
  engine_options.block_cache_bytes = options.block_cache_bytes;
  engine_options.bulk_load = options.bulk_load;
  engine_options.read_only = options.read_only;
  return OpenRocksDbEngine(engine_options, location);
}

}  // namespace timetrail
