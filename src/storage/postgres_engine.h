// The PostgreSQL engine: the store's families as tables of one schema in a PostgreSQL
// database (src/storage/postgres/postgres_engine.cc says how it maps the KvEngine interface).
#ifndef TIMETRAIL_STORAGE_POSTGRES_ENGINE_H_
#define TIMETRAIL_STORAGE_POSTGRES_ENGINE_H_

#include <memory>
#include <string>
#include <string_view>

#include "storage/kv_engine.h"

namespace timetrail {

// Intentionally copyable.
struct PostgresEngineOptions {
  // A libpq connection URL, e.g. "postgresql://timetrail@db.internal/shop".
  std::string url;
  // The schema that holds the store's tables; the role must own it or be allowed to create it.
  std::string schema = "timetrail_store";
  // Create the schema and its tables when missing.
  bool create_if_missing = true;
  // Read only: takes no writer's lock, creates nothing, and refuses writes.
  bool read_only = false;
  // Connections for reads, opened as needed; a read waits for a free one beyond that.
  int max_read_connections = 8;
};

// Whether a store location names a PostgreSQL database rather than a data directory.
bool IsPostgresUrl(std::string_view location);

// "PostgreSQL store 'SCHEMA' at URL" with any password in the URL left out, for messages.
std::string DescribePostgresStore(std::string_view url, std::string_view schema);

Result<std::unique_ptr<KvEngine>> OpenPostgresEngine(const PostgresEngineOptions& options);

}  // namespace timetrail

#endif  // TIMETRAIL_STORAGE_POSTGRES_ENGINE_H_
