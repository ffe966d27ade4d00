// The "history" projection: one table per tracked property, in the shape of temporal-sqlalchemy
// (docs/projections.md, "Property history tables"). A row says that the property had "value"
//   - from revision lower(vclock) to upper(vclock) of its stream, and from lower(sys_period)
//     to upper(sys_period) in system time: the stream folded in position order (as AsOf);
//   - during valid_period in valid time, as known now: the stream folded in valid-time order
//     (as ValidAt).
// In each of the three ranges, no two rows of a stream overlap (EXCLUDE USING gist). A row is
// keyed by the event that set the value ("set_by"). When a stream's events come in valid-time
// order both folds agree and each change closes one row and opens one. A backdated correction
// changes the valid-time past, so the stream's rows are then computed again from its events;
// after it the two folds may differ, and each is kept up to date on its own: a row that
// exists only in one fold has an empty range in the other.
#include <map>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "project/copy_text.h"
#include "project/projection.h"
#include "query/document.h"

namespace timetrail::project {
namespace {

using nlohmann::json;

// A property's value in a state: absent (no row), or present with its SQL text (nullopt for
// a JSON null, which is a row with a NULL value).
struct Value {
  bool present = false;
  std::optional<std::string> sql;
  friend bool operator==(const Value&, const Value&) = default;
};

// One row of a property table. An unset upper bound is open (infinity).
struct Row {
  std::size_t property = 0;
  std::string stream;
  std::string id;
  std::optional<std::string> value;
  Position set_by = 0;
  bool in_system = false;  // vclock and sys_period are set (else both empty)
  Revision rev_from = 0;
  std::optional<Revision> rev_to;
  Timestamp sys_from{};
  std::optional<Timestamp> sys_to;
  bool in_valid = false;  // valid_period is set (else empty)
  Timestamp valid_from{};
  std::optional<Timestamp> valid_to;
};

// An open row written by an earlier batch, and where it now ends in system time, in valid
// time, or both.
struct Close {
  std::size_t property = 0;
  std::string stream;
  Position set_by = 0;
  bool system = false;
  Revision rev_to = 0;
  Timestamp sys_to{};
  bool valid = false;
  Timestamp valid_to{};
};

// A row of "property" set by "e", in system time, in valid time, or both.
Row StartRow(std::size_t property, std::string_view stream, std::string_view id, const Value& v,
             const RecordedEvent& e, bool in_system, bool in_valid) {
  Row r;
  r.property = property;
  r.stream = std::string(stream);
  r.id = std::string(id);
  r.value = v.sql;
  r.set_by = e.position;
  r.in_system = in_system;
  r.rev_from = e.revision;
  r.sys_from = e.recorded_at;
  r.in_valid = in_valid;
  r.valid_from = e.valid_from;
  return r;
}

std::string TimeText(Timestamp t) { return "\"" + FormatTimestamp(t) + "\""; }

std::string RevisionRange(const Row& r) {
  if (!r.in_system) return "empty";
  return "[" + std::to_string(r.rev_from) + "," + (r.rev_to ? std::to_string(*r.rev_to) : "") + ")";
}
std::string TimeRange(bool set, Timestamp from, const std::optional<Timestamp>& to) {
  if (!set) return "empty";
  return "[" + TimeText(from) + "," + (to ? TimeText(*to) : "") + ")";
}

class HistoryProjection final : public Projection {
 public:
  HistoryProjection(const ProjectionSpec& spec, LogSource& source) : spec_(spec), source_(source) {
    for (const ColumnSpec& c : spec_.columns) pointers_.push_back(*query::ParsePointer(c.path));
  }

  Status CreateTables(PGconn* conn, const std::string& schema) override;
  std::vector<std::string> Tables() const override {
    std::vector<std::string> out;
    for (const ColumnSpec& c : spec_.columns) out.push_back(TableOf(c));
    return out;
  }
  Status Add(const RecordedEvent& e, std::string_view id) override;
  Result<BatchWrite> Render(const std::string& schema) override;
  void Reset() override {
    trackers_.clear();
    pending_.clear();
    closes_.clear();
    recompute_.clear();
  }

 private:
  // The row that holds a property's value now, in one of the folds, and whether it is in
  // the table yet.
  struct OpenRow {
    Value value;
    Position set_by = 0;
    // While the row is not yet written: its index in pending_, valid in batch "batch" only.
    std::size_t pending = 0;
    std::uint64_t batch = 0;
  };
  // What the projection knows of a stream between batches.
  struct Tracker {
    Revision next_revision = 0;
    query::Document doc;  // folded in position order
    // Folded in valid-time order, kept apart only once the orders differ ("corrected").
    query::Document valid_doc;
    bool corrected = false;
    std::optional<Timestamp> max_valid_from;
    std::vector<std::optional<OpenRow>> open_system;  // per property
    std::vector<std::optional<OpenRow>> open_valid;
  };
  struct Recompute {
    Revision through = 0;
    std::string id;
  };

  std::string TableOf(const ColumnSpec& c) const { return spec_.table_name() + "_" + c.name; }
  Result<std::vector<Value>> ValuesOf(const query::Document& doc, const RecordedEvent& e) const;
  Result<std::vector<Row>> ComputeRows(const std::string& stream, const std::string& id,
                                       Revision through, Tracker* tracker);
  Status WriteFunctions(PGconn* conn, const std::string& schema);
  // Ends "open" at "e" in system time or in valid time.
  void CloseAt(std::size_t property, const std::string& stream, const OpenRow& open,
               const RecordedEvent& e, bool system);

  ProjectionSpec spec_;
  LogSource& source_;
  std::vector<json::json_pointer> pointers_;
  std::unordered_map<std::string, Tracker> trackers_;
  // The batch: rows to insert, rows of earlier batches to close, streams to compute again.
  std::vector<Row> pending_;
  std::map<std::tuple<std::size_t, std::string, Position>, Close> closes_;
  std::map<std::string, Recompute> recompute_;
  std::uint64_t batch_ = 1;  // 0 marks rows written by an earlier batch
};

Result<std::vector<Value>> HistoryProjection::ValuesOf(const query::Document& doc,
                                                       const RecordedEvent& e) const {
  std::vector<Value> out(spec_.columns.size());
  if (!doc.exists) return out;
  for (std::size_t i = 0; i < spec_.columns.size(); ++i) {
    std::optional<json> v = query::ValueAtPointer(doc.state, pointers_[i]);
    if (!v) continue;
    Result<std::optional<std::string>> text = ToSqlText(*v, spec_.columns[i].type);
    if (!text.ok()) {
      return Status::InvalidArgument(EventLabel(e) + ": property '" + spec_.columns[i].name +
                                     "' (" + spec_.columns[i].path +
                                     "): " + text.status().message());
    }
    out[i].present = true;
    out[i].sql = std::move(*text);
  }
  return out;
}

void HistoryProjection::CloseAt(std::size_t property, const std::string& stream,
                                const OpenRow& open, const RecordedEvent& e, bool system) {
  if (open.batch == batch_) {
    Row& r = pending_[open.pending];
    if (system) {
      r.rev_to = e.revision;
      r.sys_to = e.recorded_at;
    } else {
      r.valid_to = e.valid_from;
    }
    return;
  }
  Close& c = closes_[{property, stream, open.set_by}];
  c.property = property;
  c.stream = stream;
  c.set_by = open.set_by;
  if (system) {
    c.system = true;
    c.rev_to = e.revision;
    c.sys_to = e.recorded_at;
  } else {
    c.valid = true;
    c.valid_to = e.valid_from;
  }
}

Status HistoryProjection::Add(const RecordedEvent& e, std::string_view id) {
  if (auto r = recompute_.find(e.stream); r != recompute_.end()) {
    r->second.through = e.revision;
    return Status::Ok();
  }
  if (trackers_.size() > 100000) trackers_.clear();
  auto it = trackers_.find(e.stream);
  if (it == trackers_.end() && e.revision == 0) {
    it = trackers_.emplace(e.stream, Tracker{}).first;
    it->second.open_system.resize(spec_.columns.size());
    it->second.open_valid.resize(spec_.columns.size());
  }
  const bool doc_event = query::IsDocumentType(e.type);
  // A stream not seen since the start, or one whose valid-time past this event changes, is
  // computed again from its events at the end of the batch.
  if (it == trackers_.end() || it->second.next_revision != e.revision ||
      (doc_event && it->second.max_valid_from && e.valid_from < *it->second.max_valid_from)) {
    recompute_[e.stream] = Recompute{e.revision, std::string(id)};
    return Status::Ok();
  }
  Tracker& t = it->second;
  t.next_revision = e.revision + 1;
  if (!doc_event) return Status::Ok();
  // The event comes last in both orders: it folds onto the end of each.
  t.max_valid_from = e.valid_from;
  Status applied = query::Apply(t.doc, e.type, e.data);
  if (applied.ok() && t.corrected) applied = query::Apply(t.valid_doc, e.type, e.data);
  if (!applied.ok()) return applied.WithPrefix(EventLabel(e));
  TT_ASSIGN_OR_RETURN(std::vector<Value> system, ValuesOf(t.doc, e));
  std::vector<Value> valid;
  if (t.corrected) {
    TT_ASSIGN_OR_RETURN(valid, ValuesOf(t.valid_doc, e));
  } else {
    valid = system;
  }
  for (std::size_t p = 0; p < system.size(); ++p) {
    std::optional<OpenRow>& open_s = t.open_system[p];
    std::optional<OpenRow>& open_v = t.open_valid[p];
    const bool system_changed = system[p] != (open_s ? open_s->value : Value{});
    const bool valid_changed = valid[p] != (open_v ? open_v->value : Value{});
    if (system_changed && open_s) {
      CloseAt(p, e.stream, *open_s, e, /*system=*/true);
      open_s.reset();
    }
    if (valid_changed && open_v) {
      CloseAt(p, e.stream, *open_v, e, /*system=*/false);
      open_v.reset();
    }
    const bool new_system = system_changed && system[p].present;
    const bool new_valid = valid_changed && valid[p].present;
    auto add_row = [&](bool in_system, bool in_valid, const Value& v) {
      const OpenRow open{v, e.position, pending_.size(), batch_};
      if (in_system) open_s = open;
      if (in_valid) open_v = open;
      pending_.push_back(StartRow(p, e.stream, id, v, e, in_system, in_valid));
    };
    // One row when both folds start the same value here; else a row per fold.
    if (new_system && new_valid && system[p] == valid[p]) {
      add_row(true, true, system[p]);
    } else {
      if (new_system) add_row(true, false, system[p]);
      if (new_valid) add_row(false, true, valid[p]);
    }
  }
  return Status::Ok();
}

Result<std::vector<Row>> HistoryProjection::ComputeRows(const std::string& stream,
                                                        const std::string& id, Revision through,
                                                        Tracker* tracker) {
  TT_ASSIGN_OR_RETURN(std::vector<RecordedEvent> events, source_.ReadStream(stream, through));
  std::vector<const RecordedEvent*> docs;
  for (const RecordedEvent& e : events) {
    if (query::IsDocumentType(e.type)) docs.push_back(&e);
  }
  const std::size_t n = spec_.columns.size();
  std::vector<Row> rows;
  // (property, set_by, value) -> row, so that a value both folds give the same event is one row.
  std::map<std::tuple<std::size_t, Position, std::optional<std::string>>, std::size_t> by_key;

  // The system-time fold: position order.
  *tracker = Tracker{};
  tracker->open_system.resize(n);
  tracker->open_valid.resize(n);
  std::vector<std::optional<std::size_t>> open(n);
  std::vector<Value> current(n);
  for (const RecordedEvent* e : docs) {
    Status applied = query::Apply(tracker->doc, e->type, e->data);
    if (!applied.ok()) return applied.WithPrefix(EventLabel(*e));
    TT_ASSIGN_OR_RETURN(std::vector<Value> values, ValuesOf(tracker->doc, *e));
    for (std::size_t p = 0; p < n; ++p) {
      if (values[p] == current[p]) continue;
      if (open[p]) {
        rows[*open[p]].rev_to = e->revision;
        rows[*open[p]].sys_to = e->recorded_at;
        open[p].reset();
      }
      current[p] = values[p];
      if (!values[p].present) continue;
      open[p] = rows.size();
      by_key[{p, e->position, values[p].sql}] = rows.size();
      rows.push_back(StartRow(p, stream, id, values[p], *e, true, false));
    }
  }
  for (std::size_t p = 0; p < n; ++p) {
    if (open[p]) tracker->open_system[p] = OpenRow{current[p], rows[*open[p]].set_by, 0, 0};
  }

  // The valid-time fold: (valid_from, position) order.
  std::vector<const RecordedEvent*> in_valid_order = docs;
  std::stable_sort(
      in_valid_order.begin(), in_valid_order.end(),
      [](const RecordedEvent* a, const RecordedEvent* b) { return query::ValidOrderLess(*a, *b); });
  tracker->corrected = in_valid_order != docs;
  if (!docs.empty()) tracker->max_valid_from = in_valid_order.back()->valid_from;
  query::Document valid_doc;
  std::vector<std::optional<std::size_t>> valid_open(n);
  std::vector<Value> valid_current(n);
  for (const RecordedEvent* e : in_valid_order) {
    TT_RETURN_IF_ERROR(query::Apply(valid_doc, e->type, e->data));
    TT_ASSIGN_OR_RETURN(std::vector<Value> values, ValuesOf(valid_doc, *e));
    for (std::size_t p = 0; p < n; ++p) {
      if (values[p] == valid_current[p]) continue;
      if (valid_open[p]) {
        rows[*valid_open[p]].valid_to = e->valid_from;
        valid_open[p].reset();
      }
      valid_current[p] = values[p];
      if (!values[p].present) continue;
      auto found = by_key.find({p, e->position, values[p].sql});
      std::size_t at;
      if (found != by_key.end() && !rows[found->second].in_valid) {
        at = found->second;
      } else {
        at = rows.size();
        rows.push_back(StartRow(p, stream, id, values[p], *e, false, true));
      }
      rows[at].in_valid = true;
      rows[at].valid_from = e->valid_from;
      valid_open[p] = at;
    }
  }
  for (std::size_t p = 0; p < n; ++p) {
    if (valid_open[p]) {
      tracker->open_valid[p] = OpenRow{valid_current[p], rows[*valid_open[p]].set_by, 0, 0};
    }
  }
  if (tracker->corrected) tracker->valid_doc = std::move(valid_doc);
  tracker->next_revision = events.empty() ? 0 : events.back().revision + 1;
  return rows;
}

Status HistoryProjection::CreateTables(PGconn* conn, const std::string& schema) {
  // btree_gist lets one GiST constraint hold both the stream (=) and a range (&&). It is a
  // trusted extension: a database owner may create it without superuser.
  Status ext = Exec(conn, "CREATE EXTENSION IF NOT EXISTS btree_gist",
                    "creating the btree_gist extension, which the property tables' "
                    "EXCLUDE constraints need (a superuser or the database owner can create it)");
  if (!ext.ok()) return ext;
  for (const ColumnSpec& c : spec_.columns) {
    const std::string table = QuoteIdent(TableOf(c));
    const std::string t = schema + "." + table;
    TT_RETURN_IF_ERROR(Exec(conn,
                            "CREATE TABLE IF NOT EXISTS " + t +
                                " (stream text NOT NULL, id text NOT NULL, value " +
                                SqlTypeName(c.type) +
                                ", vclock int4range NOT NULL, sys_period tstzrange NOT NULL,"
                                " valid_period tstzrange NOT NULL, set_by bigint NOT NULL,"
                                " EXCLUDE USING gist (stream WITH =, vclock WITH &&),"
                                " EXCLUDE USING gist (stream WITH =, sys_period WITH &&),"
                                " EXCLUDE USING gist (stream WITH =, valid_period WITH &&))",
                            "creating the history table of property '" + c.name + "'"));
  }
  return WriteFunctions(conn, schema);
}

// <table>_as_of(t) and <table>_valid_at(t): every stream's tracked properties at one time,
// in one query, the way an application asks "the whole entity as of T".
Status HistoryProjection::WriteFunctions(PGconn* conn, const std::string& schema) {
  std::string returns = "stream text, id text";
  for (const ColumnSpec& c : spec_.columns) {
    const std::string name = QuoteIdent(c.name);
    returns += ", " + name + " " + SqlTypeName(c.type);
  }
  for (const auto& [suffix, period] : {std::pair<std::string, std::string>{"_as_of", "sys_period"},
                                       {"_valid_at", "valid_period"}}) {
    const std::string fn = QuoteIdent(spec_.table_name() + suffix);
    std::string values;
    std::string streams;
    for (const ColumnSpec& c : spec_.columns) {
      const std::string table = QuoteIdent(TableOf(c));
      const std::string t = schema + "." + table;
      values += ", (SELECT h.value FROM " + t + " h WHERE h.stream = e.stream AND h." + period +
                " @> at)";
      streams += std::string(streams.empty() ? "" : " UNION ") + "SELECT h.stream, h.id FROM " + t +
                 " h WHERE h." + period + " @> at";
    }
    TT_RETURN_IF_ERROR(Exec(conn,
                            "CREATE OR REPLACE FUNCTION " + schema + "." + fn +
                                "(at timestamptz) RETURNS TABLE (" + returns +
                                ") LANGUAGE sql STABLE AS $timetrail$ SELECT e.stream, e.id" +
                                values + " FROM (" + streams + ") e $timetrail$",
                            "creating the function " + spec_.table_name() + suffix));
  }
  return Status::Ok();
}

Result<BatchWrite> HistoryProjection::Render(const std::string& schema) {
  BatchWrite batch;
  std::vector<std::string> tables;
  for (const ColumnSpec& c : spec_.columns) {
    const std::string table = QuoteIdent(TableOf(c));
    tables.push_back(schema + "." + table);
  }
  // Streams computed again lose every row (they all come back), and their incremental rows of
  // this batch are dropped.
  std::set<std::string> recomputed;
  for (const auto& [stream, unused] : recompute_) recomputed.insert(stream);
  std::vector<Row> rows;
  for (Row& r : pending_) {
    if (!recomputed.contains(r.stream)) rows.push_back(std::move(r));
  }
  pending_.clear();
  for (const auto& [stream, what] : recompute_) {
    Tracker tracker;
    TT_ASSIGN_OR_RETURN(std::vector<Row> all, ComputeRows(stream, what.id, what.through, &tracker));
    for (Row& r : all) rows.push_back(std::move(r));
    trackers_[stream] = std::move(tracker);
  }
  recompute_.clear();
  if (!recomputed.empty()) {
    const std::string streams =
        TextArrayLiteral(std::vector<std::string>(recomputed.begin(), recomputed.end()));
    for (const std::string& t : tables) {
      batch.Sql("DELETE FROM " + t + " WHERE stream = ANY($1)", {streams},
                "replacing the rows of corrected streams");
    }
  }
  // Rows of earlier batches that this one closed: through a temporary table, one UPDATE per
  // property table.
  std::vector<std::vector<const Close*>> closes(tables.size());
  for (const auto& [key, c] : closes_) {
    if (!recomputed.contains(c.stream)) closes[c.property].push_back(&c);
  }
  for (std::size_t p = 0; p < tables.size(); ++p) {
    if (closes[p].empty()) continue;
    CopyRows text;
    for (const Close* c : closes[p]) {
      text.Field(c->stream);
      text.Field(std::to_string(c->set_by));
      text.Field(c->system ? "t" : "f");
      text.Field(std::to_string(c->rev_to));
      text.Field(FormatTimestamp(c->sys_to));
      text.Field(c->valid ? "t" : "f");
      text.Field(FormatTimestamp(c->valid_to));
      text.EndRow();
    }
    batch.Sql(
        "CREATE TEMP TABLE IF NOT EXISTS timetrail_history_closes"
        " (stream text, set_by bigint, system boolean, rev_to int, sys_to timestamptz,"
        " valid boolean, valid_to timestamptz) ON COMMIT DELETE ROWS;"
        "TRUNCATE timetrail_history_closes",
        {}, "preparing the closed rows");
    batch.Copy("timetrail_history_closes", text.text(), "writing the closed rows");
    batch.Sql(
        "UPDATE " + tables[p] +
            // Each fold's range ends only where that fold's row is still open: a row of one
            // fold has an empty range in the other, which must stay empty.
            " h SET vclock = CASE WHEN c.system AND upper_inf(h.vclock)"
            " THEN int4range(lower(h.vclock), c.rev_to) ELSE h.vclock END,"
            " sys_period = CASE WHEN c.system AND upper_inf(h.vclock)"
            " THEN tstzrange(lower(h.sys_period), c.sys_to) ELSE h.sys_period END,"
            " valid_period = CASE WHEN c.valid AND upper_inf(h.valid_period)"
            " THEN tstzrange(lower(h.valid_period), c.valid_to) ELSE h.valid_period END"
            " FROM timetrail_history_closes c WHERE h.stream = c.stream AND h.set_by = c.set_by"
            " AND ((c.system AND upper_inf(h.vclock)) OR (c.valid AND upper_inf(h.valid_period)))",
        {}, "closing rows of property '" + spec_.columns[p].name + "'");
  }
  std::vector<CopyRows> inserts(tables.size());
  for (const Row& r : rows) {
    CopyRows& out = inserts[r.property];
    out.Field(r.stream);
    out.Field(r.id);
    out.Field(r.value);
    out.Field(RevisionRange(r));
    out.Field(TimeRange(r.in_system, r.sys_from, r.sys_to));
    out.Field(TimeRange(r.in_valid, r.valid_from, r.valid_to));
    out.Field(std::to_string(r.set_by));
    out.EndRow();
  }
  for (std::size_t p = 0; p < tables.size(); ++p) {
    if (inserts[p].empty()) continue;
    batch.Copy(tables[p] + " (stream, id, value, vclock, sys_period, valid_period, set_by)",
               inserts[p].text(),
               "writing the history of property '" + spec_.columns[p].name + "'");
  }
  closes_.clear();
  // Every row of this batch is in the table now: closing one later is an UPDATE.
  ++batch_;
  return batch;
}

}  // namespace

std::unique_ptr<Projection> MakeHistoryProjection(const ProjectionSpec& spec, LogSource& source) {
  return std::make_unique<HistoryProjection>(spec, source);
}

}  // namespace timetrail::project
