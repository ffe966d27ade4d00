#include "fold_check.h"

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "capture/pg.h"
#include "query/document.h"
#include "timetrail/time.h"

namespace timetrail::testing {
namespace {

using nlohmann::json;

// The matched events of the whole log, by stream.
struct LogView {
  std::map<std::string, std::vector<RecordedEvent>> streams;
  std::vector<const RecordedEvent*> in_order;
  Position head = 0;
};

LogView ReadAll(EventStore& store, const project::ProjectionSpec& spec) {
  LogView v;
  std::vector<RecordedEvent> all;
  ReadLogOptions o;
  o.max_count = 1000;
  while (true) {
    Result<LogPage> page = store.ReadLog(o);
    if (!page.ok() || page->events.empty()) break;
    v.head = page->head_position;
    o.from_position = page->events.back().position + 1;
    for (RecordedEvent& e : page->events) {
      std::string_view id;
      if (spec.Matches(e.stream, &id)) v.streams[e.stream].push_back(std::move(e));
    }
  }
  for (const auto& [s, events] : v.streams) {
    for (const RecordedEvent& e : events) v.in_order.push_back(&e);
  }
  std::sort(
      v.in_order.begin(), v.in_order.end(),
      [](const RecordedEvent* a, const RecordedEvent* b) { return a->position < b->position; });
  return v;
}

// Whether two JSON values are the same, numbers compared as numbers (the target's numeric
// type may write 5000 as 5000 or 5000.0).
bool SameJson(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

std::string Quoted(PGconn* c, const std::string& name) { return *capture::PgQuoteIdent(c, name); }

void CompareChanges(PGconn* c, const std::string& table, const LogView& log, EventStore& store,
                    std::vector<std::string>& out) {
  auto rows = capture::PgQuery(c, "SELECT position, stream, revision, actor, after::text FROM " +
                                      table + " ORDER BY position");
  if (!rows.ok()) return out.push_back(rows.status().ToString());
  if (rows->size() != log.in_order.size()) {
    out.push_back("changes: " + std::to_string(rows->size()) + " rows for " +
                  std::to_string(log.in_order.size()) + " events");
    return;
  }
  for (std::size_t i = 0; i < rows->size(); ++i) {
    const auto& r = (*rows)[i];
    const RecordedEvent& e = *log.in_order[i];
    if (std::stoull(*r[0]) != e.position || *r[1] != e.stream) {
      out.push_back("changes: row " + std::to_string(i) + " is position " + *r[0] +
                    ", the event is " + std::to_string(e.position));
      return;
    }
    Result<EntityState> s = store.GetEntity(e.stream, EntityQuery::AtRevision(e.revision));
    const json want = s->exists ? json::parse(s->state) : json();
    const json got = r[4] ? json::parse(*r[4]) : json();
    if (!SameJson(want, got) && want != got) {
      out.push_back("changes: position " + *r[0] + ": after is " + got.dump() +
                    ", the store says " + want.dump());
    }
    const json meta = json::parse(e.metadata, nullptr, false);
    const std::optional<std::string> actor =
        meta.is_object() && meta.contains("actor") && meta["actor"].is_string()
            ? std::optional<std::string>(meta["actor"].get<std::string>())
            : std::nullopt;
    if (actor != r[3]) out.push_back("changes: position " + *r[0] + ": the actor differs");
  }
}

void CompareState(PGconn* c, const std::string& table, const project::ProjectionSpec& spec,
                  const LogView& log, EventStore& store, std::vector<std::string>& out) {
  std::string columns;
  if (spec.columns.empty()) {
    columns = ", state::text";
  } else {
    for (const project::ColumnSpec& col : spec.columns) {
      columns += ", to_jsonb(" + Quoted(c, col.name) + ")::text";
    }
  }
  auto rows = capture::PgQuery(c, "SELECT stream, revision" + columns + " FROM " + table);
  if (!rows.ok()) return out.push_back(rows.status().ToString());
  std::map<std::string, capture::PgRow> by_stream;
  for (auto& r : *rows) by_stream[*r[0]] = r;
  for (const auto& [stream, events] : log.streams) {
    Result<EntityState> s = store.GetEntity(stream, EntityQuery::Latest());
    auto it = by_stream.find(stream);
    if (!s->exists) {
      if (it != by_stream.end()) out.push_back("state: " + stream + " is deleted but has a row");
      continue;
    }
    if (it == by_stream.end()) {
      out.push_back("state: " + stream + " exists but has no row");
      continue;
    }
    const capture::PgRow& r = it->second;
    if (std::stoull(*r[1]) != events.back().revision) {
      out.push_back("state: " + stream + " is at revision " + *r[1]);
    }
    const json state = json::parse(s->state);
    if (spec.columns.empty()) {
      if (json::parse(*r[2]) != state) out.push_back("state: " + stream + ": the state differs");
      continue;
    }
    for (std::size_t i = 0; i < spec.columns.size(); ++i) {
      std::optional<json> want =
          query::ValueAtPointer(state, *query::ParsePointer(spec.columns[i].path));
      const json got = r[2 + i] ? json::parse(*r[2 + i]) : json();
      if (!SameJson(want.value_or(json()), got)) {
        out.push_back("state: " + stream + "." + spec.columns[i].name + " is " + got.dump() +
                      ", the store says " + want.value_or(json()).dump());
      }
    }
  }
}

// The store's intervals of one property, the present ones only.
std::vector<PropertyInterval> Intervals(EventStore& store, const std::string& stream,
                                        const std::string& path, bool valid_time) {
  std::vector<PropertyInterval> out;
  HistoryQuery q;
  q.valid_time = valid_time;
  q.limit = 10000;
  while (true) {
    Result<PropertyHistory> h = store.GetPropertyHistory(stream, path, q);
    if (!h.ok()) break;
    for (PropertyInterval& i : h->intervals) {
      if (i.present) out.push_back(std::move(i));
    }
    if (h->next_cursor.empty()) break;
    q.cursor = h->next_cursor;
  }
  return out;
}

void CompareHistory(PGconn* c, const std::string& schema, const project::ProjectionSpec& spec,
                    const LogView& log, EventStore& store, std::vector<std::string>& out) {
  for (const project::ColumnSpec& col : spec.columns) {
    const std::string table = schema + "." + Quoted(c, spec.table_name() + "_" + col.name);
    for (const auto& [stream, events] : log.streams) {
      const std::string at = "history " + col.name + " of " + stream + ": ";
      // System time: rows ordered by their revisions, against the intervals in revision order.
      auto sys = capture::PgQuery(
          c,
          "SELECT to_jsonb(value)::text, lower(vclock), upper(vclock), "
          "to_char(lower(sys_period) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
          "FROM " +
              table + " WHERE stream = $1 AND NOT isempty(vclock) ORDER BY lower(vclock)",
          {stream});
      if (!sys.ok()) return out.push_back(sys.status().ToString());
      std::vector<PropertyInterval> want = Intervals(store, stream, col.path, false);
      if (sys->size() != want.size()) {
        out.push_back(at + std::to_string(sys->size()) + " rows in system time, the store has " +
                      std::to_string(want.size()) + " intervals");
        continue;
      }
      for (std::size_t i = 0; i < want.size(); ++i) {
        const auto& r = (*sys)[i];
        const json got = r[0] ? json::parse(*r[0]) : json();
        const bool same_value = SameJson(json::parse(want[i].value), got);
        const bool same_from = std::stoull(*r[1]) == want[i].from.revision;
        const bool same_to =
            want[i].to ? (r[2] && std::stoull(*r[2]) == want[i].to->revision) : !r[2].has_value();
        const bool empty_time = want[i].to && want[i].to->recorded_at == want[i].from.recorded_at;
        const bool same_time =
            empty_time || (r[3] && *r[3] == FormatTimestamp(want[i].from.recorded_at));
        if (!same_value || !same_from || !same_to || !same_time) {
          out.push_back(at + "row " + std::to_string(i) + " (" + got.dump() + " from revision " +
                        *r[1] + ") differs from the store's interval (" + want[i].value +
                        " from revision " + std::to_string(want[i].from.revision) + ")");
        }
      }
      // Valid time: rows by the start of their valid period.
      auto valid = capture::PgQuery(
          c,
          "SELECT to_jsonb(value)::text, "
          "to_char(lower(valid_period) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
          "to_char(upper(valid_period) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
          "FROM " +
              table +
              " WHERE stream = $1 AND NOT isempty(valid_period) ORDER BY lower(valid_period)",
          {stream});
      if (!valid.ok()) return out.push_back(valid.status().ToString());
      std::vector<PropertyInterval> in_valid;
      for (PropertyInterval& i : Intervals(store, stream, col.path, true)) {
        if (!i.to || i.to->valid_from != i.from.valid_from) in_valid.push_back(std::move(i));
      }
      if (valid->size() != in_valid.size()) {
        out.push_back(at + std::to_string(valid->size()) + " rows in valid time, the store has " +
                      std::to_string(in_valid.size()) + " intervals");
        continue;
      }
      for (std::size_t i = 0; i < in_valid.size(); ++i) {
        const auto& r = (*valid)[i];
        const json got = r[0] ? json::parse(*r[0]) : json();
        const bool same = SameJson(json::parse(in_valid[i].value), got) &&
                          *r[1] == FormatTimestamp(in_valid[i].from.valid_from) &&
                          (in_valid[i].to ? r[2] == FormatTimestamp(in_valid[i].to->valid_from)
                                          : !r[2].has_value());
        if (!same) {
          out.push_back(at + "valid-time row " + std::to_string(i) + " (" + got.dump() + " from " +
                        *r[1] + ") differs from the store's interval (" + in_valid[i].value +
                        " from " + FormatTimestamp(in_valid[i].from.valid_from) + ")");
        }
      }
    }
  }
}

}  // namespace

std::vector<std::string> CompareWithStore(EventStore& store, const std::string& target_url,
                                          const project::ProjectionSpec& spec) {
  std::vector<std::string> out;
  Result<capture::PgConn> conn = capture::PgConnect(target_url, false);
  if (!conn.ok()) return {conn.status().ToString()};
  PGconn* c = conn->get();
  const LogView log = ReadAll(store, spec);
  auto checkpoint = capture::PgQuery(
      c, "SELECT position FROM timetrail.projection_checkpoints WHERE name = $1", {spec.name});
  if (!checkpoint.ok() || checkpoint->empty()) return {"no checkpoint for " + spec.name};
  if (std::stoull(*(*checkpoint)[0][0]) != store.LastPosition()) {
    return {"the checkpoint is at " + *(*checkpoint)[0][0] + ", the store's head at " +
            std::to_string(store.LastPosition())};
  }
  const std::string schema = Quoted(c, spec.schema);
  const std::string table = schema + "." + Quoted(c, spec.table_name());
  switch (spec.kind) {
    case project::ProjectionKind::kChanges:
      CompareChanges(c, table, log, store, out);
      break;
    case project::ProjectionKind::kState:
      CompareState(c, table, spec, log, store, out);
      break;
    case project::ProjectionKind::kHistory:
      CompareHistory(c, schema, spec, log, store, out);
      break;
  }
  return out;
}

}  // namespace timetrail::testing
