// The "changes" projection: one row per event, with the entity's state before and after it,
// the members that changed, and who and why (docs/projections.md, "The changes table").
#include <algorithm>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "project/copy_text.h"
#include "project/projection.h"
#include "query/document.h"

namespace timetrail::project {
namespace {

using nlohmann::json;

std::optional<std::string> StringMember(const json& metadata, const char* key) {
  auto it = metadata.find(key);
  if (it == metadata.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// The top-level members whose values differ between two states.
std::vector<std::string> ChangedMembers(const query::Document& before,
                                        const query::Document& after) {
  std::vector<std::string> keys;
  const json empty = json::object();
  const json& b = before.exists && before.state.is_object() ? before.state : empty;
  const json& a = after.exists && after.state.is_object() ? after.state : empty;
  for (const auto& [k, v] : a.items()) {
    auto it = b.find(k);
    if (it == b.end() || *it != v) keys.push_back(k);
  }
  for (const auto& [k, v] : b.items()) {
    if (!a.contains(k)) keys.push_back(k);
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

class ChangesProjection final : public Projection {
 public:
  ChangesProjection(const ProjectionSpec& spec, LogSource& source) : spec_(spec), states_(source) {}

  Status CreateTables(PGconn* conn, const std::string& schema) override {
    const std::string& name = spec_.table_name();
    TT_ASSIGN_OR_RETURN(std::string table, Ident(conn, name));
    TT_ASSIGN_OR_RETURN(std::string by_stream, Ident(conn, name + "_stream"));
    TT_ASSIGN_OR_RETURN(std::string by_row, Ident(conn, name + "_row"));
    TT_ASSIGN_OR_RETURN(std::string by_actor, Ident(conn, name + "_actor"));
    const std::string t = schema + "." + table;
    // The indexes answer the questions the table is for: every change of one row or stream,
    // and everything one actor changed in a time window.
    return Exec(conn,
                "CREATE TABLE IF NOT EXISTS " + t +
                    " (position bigint PRIMARY KEY, stream text NOT NULL,"
                    " revision bigint NOT NULL, tx bigint NOT NULL, event_id uuid NOT NULL,"
                    " type text NOT NULL, operation text NOT NULL, table_name text,"
                    " row_key text, data jsonb, before jsonb, after jsonb,"
                    " changed text[] NOT NULL, actor text, reason text, metadata jsonb NOT NULL,"
                    " recorded_at timestamptz NOT NULL, valid_from timestamptz NOT NULL);"
                    "CREATE INDEX IF NOT EXISTS " +
                    by_stream + " ON " + t +
                    " (stream, position);"
                    "CREATE INDEX IF NOT EXISTS " +
                    by_row + " ON " + t +
                    " (table_name, row_key, position) WHERE table_name IS NOT NULL;"
                    "CREATE INDEX IF NOT EXISTS " +
                    by_actor + " ON " + t + " (actor, recorded_at);",
                "creating the changes table");
  }

  std::vector<std::string> Tables() const override { return {spec_.table_name()}; }

  Status Add(const RecordedEvent& e, std::string_view) override {
    TT_ASSIGN_OR_RETURN(query::Document * state, states_.Before(e));
    const query::Document before = *state;
    Status applied = query::Apply(*state, e.type, e.data);
    if (!applied.ok()) return applied.WithPrefix(EventLabel(e));
    const query::Document& after = *state;
    const json meta = MetadataOf(e);
    std::optional<std::string> table = StringMember(meta, "table");
    std::optional<std::string> operation = StringMember(meta, "operation");
    if (!operation) {
      if (!query::IsDocumentType(e.type)) {
        operation = e.type;
      } else if (!after.exists) {
        operation = "delete";
      } else {
        operation = before.exists ? "update" : "insert";
      }
    }
    std::optional<std::string> row_key;
    if (table) {
      std::size_t slash = e.stream.find('/');
      if (slash != std::string::npos) row_key = e.stream.substr(slash + 1);
    }
    auto state_text = [](const query::Document& d) -> std::optional<std::string> {
      if (!d.exists) return std::nullopt;
      return d.state.dump();
    };
    rows_.Field(std::to_string(e.position));
    rows_.Field(e.stream);
    rows_.Field(std::to_string(e.revision));
    rows_.Field(std::to_string(e.tx));
    rows_.Field(e.id.ToString());
    rows_.Field(e.type);
    rows_.Field(operation);
    rows_.Field(table);
    rows_.Field(row_key);
    rows_.Field(e.data);
    rows_.Field(state_text(before));
    rows_.Field(state_text(after));
    rows_.Field(TextArrayLiteral(ChangedMembers(before, after)));
    rows_.Field(StringMember(meta, "actor"));
    rows_.Field(StringMember(meta, "reason"));
    rows_.Field(e.metadata);
    rows_.Field(FormatTimestamp(e.recorded_at));
    rows_.Field(FormatTimestamp(e.valid_from));
    rows_.EndRow();
    return Status::Ok();
  }

  Status Flush(PGconn* conn, const std::string& schema) override {
    if (rows_.empty()) return Status::Ok();
    TT_ASSIGN_OR_RETURN(std::string table, Ident(conn, spec_.table_name()));
    Status s = CopyIn(conn,
                      schema + "." + table +
                          " (position, stream, revision, tx, event_id, type, operation,"
                          " table_name, row_key, data, before, after, changed, actor, reason,"
                          " metadata, recorded_at, valid_from)",
                      rows_.text(), "writing the changes");
    rows_.Clear();
    return s;
  }

  void Reset() override {
    rows_.Clear();
    states_.Clear();
  }

 private:
  ProjectionSpec spec_;
  CopyRows rows_;
  StateCache states_;
};

}  // namespace

std::unique_ptr<Projection> MakeChangesProjection(const ProjectionSpec& spec, LogSource& source) {
  return std::make_unique<ChangesProjection>(spec, source);
}

}  // namespace timetrail::project
