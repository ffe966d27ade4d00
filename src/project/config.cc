#include "project/config.h"

#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace timetrail::project {
namespace {

using Json = nlohmann::ordered_json;

// PostgreSQL cuts longer identifiers short, which would let two names meet.
constexpr std::size_t kMaxIdentifier = 63;

// Columns every state table has; declared columns may not take their names.
const std::set<std::string> kStateColumns = {"stream",     "id",         "revision", "position",
                                             "updated_at", "valid_from", "state"};

Status Wrong(const std::string& where, const std::string& what) {
  return Status::InvalidArgument(where + ": " + what);
}

Result<std::string> StringMember(const Json& object, const char* key, const std::string& where,
                                 const std::string& fallback) {
  auto it = object.find(key);
  if (it == object.end()) return fallback;
  if (!it->is_string() || it->get<std::string>().empty()) {
    return Wrong(where + "." + key, "must be a non-empty string");
  }
  return it->get<std::string>();
}

Result<std::vector<ColumnSpec>> ParseColumns(const Json& columns, const std::string& where) {
  if (!columns.is_object() || columns.empty()) {
    return Wrong(where,
                 "must be an object naming at least one column, e.g. {\"status\": \"text\"}");
  }
  std::vector<ColumnSpec> out;
  for (const auto& [name, value] : columns.items()) {
    const std::string at = where + "." + name;
    ColumnSpec c;
    c.name = name;
    c.path = "/" + name;
    std::string type;
    if (value.is_string()) {
      type = value.get<std::string>();
    } else if (value.is_object()) {
      TT_ASSIGN_OR_RETURN(type, StringMember(value, "type", at, ""));
      if (type.empty()) return Wrong(at, "needs a \"type\"");
      TT_ASSIGN_OR_RETURN(c.path, StringMember(value, "path", at, c.path));
      for (const auto& [key, unused] : value.items()) {
        if (key != "type" && key != "path") return Wrong(at, "unknown member \"" + key + "\"");
      }
    } else {
      return Wrong(at, "must be a type name or {\"path\": \"/pointer\", \"type\": \"...\"}");
    }
    Result<SqlType> t = ParseSqlType(type);
    if (!t.ok()) return Wrong(at, t.status().message());
    c.type = *t;
    out.push_back(std::move(c));
  }
  return out;
}

Result<ProjectionSpec> ParseProjection(const Json& p, const std::string& where) {
  if (!p.is_object()) return Wrong(where, "must be an object");
  ProjectionSpec spec;
  TT_ASSIGN_OR_RETURN(spec.name, StringMember(p, "name", where, ""));
  if (spec.name.empty()) return Wrong(where, "needs a \"name\"");
  const std::string at = "projection '" + spec.name + "'";
  TT_ASSIGN_OR_RETURN(std::string kind, StringMember(p, "kind", at, "changes"));
  if (kind == "changes") {
    spec.kind = ProjectionKind::kChanges;
  } else if (kind == "state") {
    spec.kind = ProjectionKind::kState;
  } else if (kind == "history") {
    spec.kind = ProjectionKind::kHistory;
  } else {
    return Wrong(at + ".kind", "'" + kind + "' is not one of changes, state, history");
  }
  TT_ASSIGN_OR_RETURN(spec.schema, StringMember(p, "schema", at, spec.schema));
  TT_ASSIGN_OR_RETURN(spec.table, StringMember(p, "table", at, ""));
  if (auto s = p.find("streams"); s != p.end()) {
    if (!s->is_array()) return Wrong(at + ".streams", "must be an array of stream name prefixes");
    for (const Json& prefix : *s) {
      if (!prefix.is_string() || prefix.get<std::string>().empty()) {
        return Wrong(at + ".streams", "each prefix must be a non-empty string");
      }
      spec.streams.push_back(prefix.get<std::string>());
    }
  }
  const char* columns_key = spec.kind == ProjectionKind::kHistory ? "properties" : "columns";
  if (auto c = p.find(columns_key); c != p.end()) {
    if (spec.kind == ProjectionKind::kChanges) {
      return Wrong(at + ".columns", "a changes projection has fixed columns");
    }
    TT_ASSIGN_OR_RETURN(spec.columns, ParseColumns(*c, at + "." + columns_key));
  } else if (spec.kind == ProjectionKind::kHistory) {
    return Wrong(at, "a history projection needs \"properties\", e.g. {\"status\": \"text\"}");
  }
  for (const auto& [key, unused] : p.items()) {
    static const std::set<std::string> kKnown = {"name",    "kind",    "schema",    "table",
                                                 "streams", "columns", "properties"};
    if (!kKnown.contains(key)) return Wrong(at, "unknown member \"" + key + "\"");
  }
  TT_RETURN_IF_ERROR(ValidateProjection(spec));
  return spec;
}

}  // namespace

bool ProjectionSpec::Matches(std::string_view stream, std::string_view* id) const {
  if (streams.empty()) {
    if (stream.starts_with('$')) return false;
    *id = stream;
    return true;
  }
  for (const std::string& prefix : streams) {
    if (stream.starts_with(prefix)) {
      *id = stream.substr(prefix.size());
      return true;
    }
  }
  return false;
}

Status ValidateProjection(const ProjectionSpec& spec) {
  const std::string at = "projection '" + spec.name + "'";
  if (spec.name.size() > kMaxIdentifier) {
    return Wrong(at, "the name is longer than 63 bytes, the longest a PostgreSQL name may be");
  }
  if (spec.schema.size() > kMaxIdentifier || spec.table_name().size() > kMaxIdentifier) {
    return Wrong(at, "the schema or table name is longer than 63 bytes");
  }
  for (std::size_t i = 0; i < spec.streams.size(); ++i) {
    for (std::size_t j = 0; j < spec.streams.size(); ++j) {
      if (i != j && spec.streams[i].starts_with(spec.streams[j])) {
        return Wrong(at + ".streams", "the prefix '" + spec.streams[i] + "' is inside '" +
                                          spec.streams[j] + "', so a stream would match both");
      }
    }
  }
  std::set<std::string> seen;
  for (const ColumnSpec& c : spec.columns) {
    if (!seen.insert(c.name).second) return Wrong(at, "column '" + c.name + "' is named twice");
    if (spec.kind == ProjectionKind::kState && kStateColumns.contains(c.name)) {
      return Wrong(at + ".columns." + c.name,
                   "every state table has this column already; choose another name");
    }
    if (spec.kind == ProjectionKind::kHistory &&
        spec.table_name().size() + 1 + c.name.size() > kMaxIdentifier) {
      return Wrong(at + ".properties." + c.name,
                   "the table " + spec.table_name() + "_" + c.name +
                       " would be longer than 63 bytes; choose a shorter \"table\"");
    }
    if (c.path.empty() || c.path[0] != '/') {
      return Wrong(at + ".columns." + c.name, "the path must be a JSON pointer such as /status");
    }
  }
  return Status::Ok();
}

Result<ProjectorConfig> ParseProjectorConfig(std::string_view text) {
  Json root = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return Status::InvalidArgument("the configuration is not valid JSON");
  if (!root.is_object()) return Status::InvalidArgument("the configuration must be a JSON object");
  ProjectorConfig config;
  TT_ASSIGN_OR_RETURN(config.target, StringMember(root, "target", "configuration", ""));
  if (auto b = root.find("batch"); b != root.end()) {
    if (!b->is_number_unsigned() || b->get<std::uint64_t>() == 0 ||
        b->get<std::uint64_t>() > 1000000) {
      return Wrong("batch", "must be a whole number from 1 to 1000000 (events per transaction)");
    }
    config.batch_events = b->get<std::size_t>();
  }
  auto list = root.find("projections");
  if (list == root.end() || !list->is_array() || list->empty()) {
    return Status::InvalidArgument(
        "the configuration needs \"projections\": a non-empty array of projections");
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < list->size(); ++i) {
    TT_ASSIGN_OR_RETURN(ProjectionSpec spec,
                        ParseProjection((*list)[i], "projections[" + std::to_string(i) + "]"));
    if (!names.insert(spec.name).second) {
      return Status::InvalidArgument("projection '" + spec.name + "' is named twice");
    }
    config.projections.push_back(std::move(spec));
  }
  for (const auto& [key, unused] : root.items()) {
    if (key != "target" && key != "batch" && key != "projections") {
      return Wrong("configuration", "unknown member \"" + key + "\"");
    }
  }
  return config;
}

Result<ProjectorConfig> LoadProjectorConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read the projection configuration '" + path + "'");
  std::stringstream text;
  text << in.rdbuf();
  Result<ProjectorConfig> config = ParseProjectorConfig(text.str());
  if (!config.ok()) return config.status().WithPrefix(path);
  return config;
}

const char* KindName(ProjectionKind kind) {
  switch (kind) {
    case ProjectionKind::kChanges:
      return "changes";
    case ProjectionKind::kState:
      return "state";
    case ProjectionKind::kHistory:
      return "history";
  }
  return "changes";
}

}  // namespace timetrail::project
