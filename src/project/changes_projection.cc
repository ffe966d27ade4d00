// The "changes" projection: one row per event, with the entity's state before and after it,
// the members that changed, and who and why (docs/projections.md, "The changes table").
#include <algorithm>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "json/object_scan.h"
#include "project/copy_text.h"
#include "project/projection.h"
#include "query/document.h"

namespace timetrail::project {
namespace {

// The members of an event's metadata that the table has columns for.
struct Metadata {
  std::optional<std::string> actor, reason, table, operation;
};

// Reads them without building a tree of the metadata: most events carry a few small members.
Metadata ScanMetadata(std::string_view text) {
  Metadata m;
  json::ScanObjectMembers(text, [&m](const json::ScannedMember& member) {
    std::optional<std::string>* slot = nullptr;
    if (member.key_escaped) return true;  // none of the four names needs an escape
    if (member.raw_key == "actor") slot = &m.actor;
    if (member.raw_key == "reason") slot = &m.reason;
    if (member.raw_key == "table") slot = &m.table;
    if (member.raw_key == "operation") slot = &m.operation;
    if (slot == nullptr || member.value.empty() || member.value[0] != '"') return true;
    if (member.value.find('\\') == std::string_view::npos) {
      *slot = std::string(member.value.substr(1, member.value.size() - 2));
    } else {
      *slot = nlohmann::json::parse(member.value).get<std::string>();
    }
    return true;
  });
  return m;
}

// The top-level members whose values differ between two states.
std::vector<std::string> ChangedMembers(const query::Document& before,
                                        const query::Document& after) {
  std::vector<std::string> keys;
  const nlohmann::json empty = nlohmann::json::object();
  const nlohmann::json& b = before.exists && before.state.is_object() ? before.state : empty;
  const nlohmann::json& a = after.exists && after.state.is_object() ? after.state : empty;
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
    const std::string table = QuoteIdent(name);
    const std::string by_stream = QuoteIdent(name + "_stream");
    const std::string by_row = QuoteIdent(name + "_row");
    const std::string by_actor = QuoteIdent(name + "_actor");
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
    TT_ASSIGN_OR_RETURN(StateCache::Entry * entry, states_.Before(e));
    query::Document& state = entry->doc;
    const bool existed = state.exists;
    if (existed && !entry->text) entry->text = state.state.dump();
    // The state before is the cached text, so the document itself is never copied: a $put or
    // $delete moves the old one out, and a $patch keeps only the members it names.
    std::optional<std::string> before_text = std::exchange(entry->text, std::nullopt);
    if (!existed) before_text.reset();
    std::vector<std::string> changed;
    if (e.type == "$patch") {
      std::vector<std::pair<std::string, std::optional<nlohmann::json>>> named;
      json::ScanObjectMembers(e.data, [&](const json::ScannedMember& m) {
        std::string key =
            m.key_escaped
                ? nlohmann::json::parse("\"" + std::string(m.raw_key) + "\"").get<std::string>()
                : std::string(m.raw_key);
        std::optional<nlohmann::json> was;
        if (existed && state.state.is_object()) {
          auto it = state.state.find(key);
          if (it != state.state.end()) was = *it;
        }
        named.emplace_back(std::move(key), std::move(was));
        return true;
      });
      Status applied = query::Apply(state, e.type, e.data);
      if (!applied.ok()) return applied.WithPrefix(EventLabel(e));
      for (auto& [key, was] : named) {
        std::optional<nlohmann::json> now;
        if (state.exists && state.state.is_object()) {
          auto it = state.state.find(key);
          if (it != state.state.end()) now = *it;
        }
        if (was != now) changed.push_back(std::move(key));
      }
      std::sort(changed.begin(), changed.end());
      changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    } else if (query::IsDocumentType(e.type)) {
      query::Document before = std::move(state);
      state = query::Document{};
      Status applied = query::Apply(state, e.type, e.data);
      if (!applied.ok()) return applied.WithPrefix(EventLabel(e));
      changed = ChangedMembers(before, state);
    } else {
      entry->text = before_text;  // not a document event: the state stays as it was
    }
    std::optional<std::string> after_text = entry->text;
    if (state.exists && !after_text) {
      after_text = state.state.dump();
      entry->text = after_text;
    }
    if (!state.exists) entry->text.reset();
    const Metadata meta = ScanMetadata(e.metadata);
    std::optional<std::string> operation = meta.operation;
    if (!operation) {
      if (!query::IsDocumentType(e.type)) {
        operation = e.type;
      } else if (!state.exists) {
        operation = "delete";
      } else {
        operation = existed ? "update" : "insert";
      }
    }
    std::optional<std::string> row_key;
    if (meta.table) {
      std::size_t slash = e.stream.find('/');
      if (slash != std::string::npos) row_key = e.stream.substr(slash + 1);
    }
    rows_.Field(std::to_string(e.position));
    rows_.Field(e.stream);
    rows_.Field(std::to_string(e.revision));
    rows_.Field(std::to_string(e.tx));
    rows_.Field(e.id.ToString());
    rows_.Field(e.type);
    rows_.Field(operation);
    rows_.Field(meta.table);
    rows_.Field(row_key);
    rows_.Field(e.data);
    rows_.Field(before_text);
    rows_.Field(after_text);
    rows_.Field(TextArrayLiteral(changed));
    rows_.Field(meta.actor);
    rows_.Field(meta.reason);
    rows_.Field(e.metadata);
    rows_.Field(FormatTimestamp(e.recorded_at));
    rows_.Field(FormatTimestamp(e.valid_from));
    rows_.EndRow();
    return Status::Ok();
  }

  Result<BatchWrite> Render(const std::string& schema) override {
    BatchWrite batch;
    if (rows_.empty()) return batch;
    batch.Copy(schema + "." + QuoteIdent(spec_.table_name()) +
                   " (position, stream, revision, tx, event_id, type, operation,"
                   " table_name, row_key, data, before, after, changed, actor, reason,"
                   " metadata, recorded_at, valid_from)",
               rows_.text(), "writing the changes");
    rows_.Clear();
    return batch;
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
