#include "capture/row_mapping.h"

#include <nlohmann/json.hpp>

#include "capture/pg.h"
#include "capture/values.h"
#include "timetrail/event.h"

namespace timetrail::capture {

using nlohmann::json;

Result<std::vector<std::size_t>> LoadKeyColumns(PGconn* sql, const RelationMessage& msg) {
  std::vector<std::size_t> keys;
  TT_ASSIGN_OR_RETURN(
      auto rows,
      PgQuery(sql,
              "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
              "AND a.attnum = ANY(i.indkey::int2[]) WHERE i.indrelid = $1::oid AND "
              "i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)",
              {std::to_string(msg.relation_id)}));
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < msg.columns.size(); ++i) {
      if (msg.columns[i].name == r[0].value_or("")) keys.push_back(i);
    }
  }
  if (keys.empty() && msg.replica_identity == 'i') {
    for (std::size_t i = 0; i < msg.columns.size(); ++i) {
      if (msg.columns[i].key) keys.push_back(i);
    }
  }
  return keys;
}

Result<RowDocument> RowDocument::Parse(std::string_view json_text) {
  json parsed = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) {
    return Status::Corruption("a captured row's stored state is not a JSON object: " +
                              std::string(json_text.substr(0, 200)));
  }
  RowDocument doc;
  doc.members_.reserve(parsed.size());
  for (auto it = parsed.begin(); it != parsed.end(); ++it) {
    doc.members_.emplace_back(it.key(), it.value().dump());
  }
  return doc;
}

const std::string* RowDocument::Find(std::string_view name) const {
  for (const auto& [n, v] : members_) {
    if (n == name) return &v;
  }
  return nullptr;
}

std::string RowDocument::ToJson() const {
  std::string out = "{";
  for (const auto& [name, value] : members_) {
    if (out.size() > 1) out.push_back(',');
    AppendJsonString(name, &out);
    out.push_back(':');
    out += value;
  }
  out.push_back('}');
  return out;
}

RowDocument RowFromTuple(const RelationInfo& rel, const Tuple& tuple, const RowDocument* previous) {
  RowDocument row;
  for (std::size_t i = 0; i < tuple.size() && i < rel.msg.columns.size(); ++i) {
    const Column& c = rel.msg.columns[i];
    std::string value;
    switch (tuple[i].kind) {
      case Value::Kind::kNull:
        value = "null";
        break;
      case Value::Kind::kText:
        AppendPgTextAsJson(c.type_oid, tuple[i].bytes, &value);
        break;
      case Value::Kind::kBinary:
        AppendJsonString(tuple[i].bytes, &value);
        break;
      case Value::Kind::kUnchangedToast:
        // Unchanged: the value is whatever the row held before.
        if (const std::string* before = previous ? previous->Find(c.name) : nullptr) {
          value = *before;
        } else {
          continue;
        }
        break;
    }
    row.Append(c.name, std::move(value));  // a relation's column names are distinct
  }
  return row;
}

Result<std::string> RowStream(std::string_view prefix, const RelationInfo& rel, const Tuple& tuple,
                              const RowDocument* fallback_row) {
  std::vector<std::string> key;
  for (std::size_t i : rel.key_columns) {
    const std::string& column = rel.msg.columns[i].name;
    const std::string* known = fallback_row != nullptr ? fallback_row->Find(column) : nullptr;
    if (i < tuple.size() && tuple[i].kind == Value::Kind::kText) {
      key.push_back(tuple[i].bytes);
    } else if (known != nullptr) {
      key.push_back(JsonToPgText(json::parse(*known), ""));
    } else {
      return Status::InvalidArgument("a change to " + rel.name() + " has no value for key column " +
                                     column);
    }
  }
  return RowStreamName(prefix, rel.msg.schema, rel.msg.table, key);
}

DocumentChange UpdateChange(const RelationInfo& rel, const RowDocument* previous,
                            const RowDocument& row) {
  auto is_column = [&](const std::string& name) {
    for (const auto& c : rel.msg.columns) {
      if (c.name == name) return true;
    }
    return false;
  };
  // Usually the state has the row's members in the same order (both built from the relation's
  // columns, and the state below keeps that order): compared pair by pair.
  const auto& now = row.members();
  bool same_shape = previous != nullptr && previous->members().size() == now.size();
  for (std::size_t i = 0; same_shape && i < now.size(); ++i) {
    same_shape = previous->members()[i].first == now[i].first;
  }
  RowDocument patch;
  bool sets_null = false;
  for (std::size_t i = 0; i < now.size(); ++i) {
    const auto& [name, value] = now[i];
    const std::string* known = same_shape ? &previous->members()[i].second
                               : previous ? previous->Find(name)
                                          : nullptr;
    if (known == nullptr || *known != value) {
      patch.Append(name, value);
      sets_null = sets_null || value == "null";
    }
  }
  // The state after the change: the row, then what the row leaves out (unchanged TOAST values
  // the row did not carry) unless its column was dropped, which the patch removes.
  RowDocument new_state = row;
  if (previous != nullptr && !same_shape) {
    for (const auto& [name, value] : previous->members()) {
      if (row.Find(name) != nullptr) continue;
      if (is_column(name)) {
        new_state.Append(name, value);
      } else {
        patch.Append(name, "null");
      }
    }
  }
  if (sets_null) {
    // A column set to NULL, which a merge patch cannot say (null removes the member): the whole
    // row instead.
    std::string data = new_state.ToJson();
    return DocumentChange{kPutType, std::move(data), std::move(new_state)};
  }
  return DocumentChange{kPatchType, patch.ToJson(), std::move(new_state)};
}

}  // namespace timetrail::capture
