#include "capture/row_mapping.h"

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

Result<std::string> RowStream(std::string_view prefix, const RelationInfo& rel, const Tuple& tuple,
                              const json* fallback_row) {
  std::vector<std::string> key;
  for (std::size_t i : rel.key_columns) {
    if (i < tuple.size() && tuple[i].kind == Value::Kind::kText) {
      key.push_back(tuple[i].bytes);
    } else if (fallback_row != nullptr && fallback_row->contains(rel.msg.columns[i].name)) {
      key.push_back(JsonToPgText((*fallback_row)[rel.msg.columns[i].name], ""));
    } else {
      return Status::InvalidArgument("a change to " + rel.name() + " has no value for key column " +
                                     rel.msg.columns[i].name);
    }
  }
  return RowStreamName(prefix, rel.msg.schema, rel.msg.table, key);
}

json RowJson(const RelationInfo& rel, const Tuple& tuple, const json* previous) {
  json row = json::object();
  for (std::size_t i = 0; i < tuple.size() && i < rel.msg.columns.size(); ++i) {
    const Column& c = rel.msg.columns[i];
    switch (tuple[i].kind) {
      case Value::Kind::kNull:
        row[c.name] = nullptr;
        break;
      case Value::Kind::kText:
        row[c.name] = PgTextToJson(c.type_oid, tuple[i].bytes);
        break;
      case Value::Kind::kBinary:
        row[c.name] = tuple[i].bytes;
        break;
      case Value::Kind::kUnchangedToast:
        // Unchanged: the value is whatever the row held before.
        if (previous != nullptr && previous->is_object() && previous->contains(c.name)) {
          row[c.name] = (*previous)[c.name];
        }
        break;
    }
  }
  return row;
}

DocumentChange UpdateChange(const RelationInfo& rel, const std::optional<json>& previous,
                            const json& row) {
  json patch = json::object();
  const json state = previous ? *previous : json::object();
  for (auto it = row.begin(); it != row.end(); ++it) {
    auto known = state.find(it.key());
    if (known == state.end() || *known != it.value()) patch[it.key()] = it.value();
  }
  // Columns the row had that the table no longer has (dropped): removed from the document.
  if (previous) {
    for (auto it = previous->begin(); it != previous->end(); ++it) {
      bool present = false;
      for (const auto& c : rel.msg.columns) present = present || c.name == it.key();
      if (!present) patch[it.key()] = nullptr;
    }
  }
  json new_state = state;
  new_state.merge_patch(patch);
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it.value().is_null() && row.contains(it.key())) {
      // Set to NULL: written with the whole row instead of a patch.
      json full = std::move(new_state);
      for (auto r = row.begin(); r != row.end(); ++r) full[r.key()] = r.value();
      return DocumentChange{kPutType, full, full};
    }
  }
  return DocumentChange{kPatchType, std::move(patch), std::move(new_state)};
}

}  // namespace timetrail::capture
