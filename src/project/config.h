// What a projection keeps in the target database, read from a small JSON file
// (docs/projections.md, "The configuration file"):
//
//   {"target": "postgresql://app@db/shop",
//    "projections": [
//      {"name": "changes", "kind": "changes"},
//      {"name": "orders", "kind": "state", "streams": ["order-"],
//       "columns": {"status": "text", "total": "numeric",
//                   "customer": {"path": "/customer/id", "type": "bigint"}}},
//      {"name": "order_history", "kind": "history", "streams": ["order-"],
//       "properties": {"status": "text", "total": "numeric"}}]}
#ifndef TIMETRAIL_PROJECT_CONFIG_H_
#define TIMETRAIL_PROJECT_CONFIG_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "project/sql_types.h"
#include "timetrail/status.h"

namespace timetrail::project {

enum class ProjectionKind {
  kChanges,  // one row per event
  kState,    // one row per stream: its current state
  kHistory,  // one table per tracked property: its values over time
};

// A value of the state, and the column it goes to. Intentionally copyable.
struct ColumnSpec {
  std::string name;  // the column (or, for history, the property's table suffix)
  std::string path;  // RFC 6901 pointer into the state, e.g. "/customer/id"
  SqlType type = SqlType::kText;
};

// Intentionally copyable.
struct ProjectionSpec {
  std::string name;  // the checkpoint's key; the table's name unless "table" is set
  ProjectionKind kind = ProjectionKind::kChanges;
  // Streams whose names start with one of these; empty: every stream but the system streams
  // (those starting with '$'), which are projected only when a prefix names them.
  std::vector<std::string> streams;
  std::string schema = "timetrail";
  std::string table;  // empty: "name"
  // state: typed columns (empty: the whole state as one jsonb column); history: the properties.
  std::vector<ColumnSpec> columns;

  const std::string& table_name() const { return table.empty() ? name : table; }
  // Whether the projection takes events of "stream"; sets "*id" to the stream's name without
  // the prefix that matched (the whole name when no prefix is set).
  bool Matches(std::string_view stream, std::string_view* id) const;
};

// Intentionally copyable.
struct ProjectorConfig {
  std::string target;  // libpq URL; the command line's target wins
  std::size_t batch_events = 5000;
  std::vector<ProjectionSpec> projections;
};

// Parses the JSON text of a configuration file. kInvalidArgument names the member that is
// wrong and why.
Result<ProjectorConfig> ParseProjectorConfig(std::string_view text);
// Reads and parses the file at "path"; kNotFound when it cannot be read.
Result<ProjectorConfig> LoadProjectorConfig(const std::string& path);

// Checks one projection's names and columns (ParseProjectorConfig does it for each).
Status ValidateProjection(const ProjectionSpec& spec);

const char* KindName(ProjectionKind kind);

}  // namespace timetrail::project

#endif  // TIMETRAIL_PROJECT_CONFIG_H_
