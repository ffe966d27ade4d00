// The "state" projection: one row per stream with its current state, as one jsonb column or as
// typed columns from a declared mapping (docs/projections.md, "Current state").
#include <map>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "project/copy_text.h"
#include "project/projection.h"
#include "query/document.h"

namespace timetrail::project {
namespace {

using nlohmann::json;

class StateProjection final : public Projection {
 public:
  StateProjection(const ProjectionSpec& spec, LogSource& source) : spec_(spec), states_(source) {
    for (const ColumnSpec& c : spec_.columns) {
      // ValidateProjection checked the paths.
      pointers_.push_back(*query::ParsePointer(c.path));
    }
  }

  Status CreateTables(PGconn* conn, const std::string& schema) override {
    const std::string table = QuoteIdent(spec_.table_name());
    const std::string by_id = QuoteIdent(spec_.table_name() + "_id");
    std::string columns;
    if (spec_.columns.empty()) {
      columns = ", state jsonb NOT NULL";
    } else {
      for (const ColumnSpec& c : spec_.columns) {
        const std::string name = QuoteIdent(c.name);
        columns += ", " + name + " " + SqlTypeName(c.type);
      }
    }
    const std::string t = schema + "." + table;
    return Exec(conn,
                "CREATE TABLE IF NOT EXISTS " + t +
                    " (stream text PRIMARY KEY, id text NOT NULL, revision bigint NOT NULL,"
                    " position bigint NOT NULL, updated_at timestamptz NOT NULL,"
                    " valid_from timestamptz NOT NULL" +
                    columns +
                    ");"
                    "CREATE INDEX IF NOT EXISTS " +
                    by_id + " ON " + t + " (id);",
                "creating the state table");
  }

  std::vector<std::string> Tables() const override { return {spec_.table_name()}; }

  Status Add(const RecordedEvent& e, std::string_view id) override {
    TT_ASSIGN_OR_RETURN(StateCache::Entry * entry, states_.Before(e));
    query::Document* doc = &entry->doc;
    entry->text.reset();
    Status applied = query::Apply(*doc, e.type, e.data);
    if (!applied.ok()) return applied.WithPrefix(EventLabel(e));
    Pending& p = pending_[e.stream];
    p.exists = doc->exists;
    if (!doc->exists) return Status::Ok();
    // The row is built now, not at Flush, so that a value the mapping does not fit is blamed
    // on the event that brought it.
    CopyRows row;
    row.Field(e.stream);
    row.Field(id);
    row.Field(std::to_string(e.revision));
    row.Field(std::to_string(e.position));
    row.Field(FormatTimestamp(e.recorded_at));
    row.Field(FormatTimestamp(e.valid_from));
    if (spec_.columns.empty()) {
      row.Field(doc->state.dump());
    } else {
      for (std::size_t i = 0; i < spec_.columns.size(); ++i) {
        std::optional<json> v = query::ValueAtPointer(doc->state, pointers_[i]);
        if (!v) {
          row.Null();
          continue;
        }
        Result<std::optional<std::string>> text = ToSqlText(*v, spec_.columns[i].type);
        if (!text.ok()) {
          return Status::InvalidArgument(EventLabel(e) + ": column '" + spec_.columns[i].name +
                                         "' (" + spec_.columns[i].path +
                                         "): " + text.status().message());
        }
        row.Field(*text);
      }
    }
    row.EndRow();
    p.row = row.text();
    return Status::Ok();
  }

  Result<BatchWrite> Render(const std::string& schema) override {
    BatchWrite batch;
    if (pending_.empty()) return batch;
    const std::string t = schema + "." + QuoteIdent(spec_.table_name());
    std::vector<std::string> streams;
    std::string rows;
    for (const auto& [stream, p] : pending_) {
      streams.push_back(stream);
      if (p.exists) rows += p.row;
    }
    pending_.clear();
    // Every touched stream's row goes, and those that still exist come back with their new
    // state: one statement and one COPY, whatever mix of inserts, updates and deletes.
    batch.Sql("DELETE FROM " + t + " WHERE stream = ANY($1)", {TextArrayLiteral(streams)},
              "replacing the states");
    if (rows.empty()) return batch;
    std::string columns = "stream, id, revision, position, updated_at, valid_from";
    if (spec_.columns.empty()) {
      columns += ", state";
    } else {
      for (const ColumnSpec& c : spec_.columns) {
        columns += ", " + QuoteIdent(c.name);
      }
    }
    batch.Copy(t + " (" + columns + ")", std::move(rows), "writing the states");
    return batch;
  }

  void Reset() override {
    pending_.clear();
    states_.Clear();
  }

 private:
  struct Pending {
    bool exists = false;
    std::string row;  // COPY text, when it exists
  };

  ProjectionSpec spec_;
  std::vector<json::json_pointer> pointers_;
  std::map<std::string, Pending> pending_;
  StateCache states_;
};

}  // namespace

std::unique_ptr<Projection> MakeStateProjection(const ProjectionSpec& spec, LogSource& source) {
  return std::make_unique<StateProjection>(spec, source);
}

}  // namespace timetrail::project
