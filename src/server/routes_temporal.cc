// Time travel: an entity's state at a point, a property's history, the diff between two points,
// reverting to an earlier state, and activity across streams (docs/http-api.md, "Temporal
// queries"; docs/temporal.md).
#include <string>

#include "json/json_writer.h"
#include "json/raw_json.h"
#include "server/routes.h"

namespace timetrail::server {
namespace {

using json::JsonWriter;
using json::RawJson;

// The point asked for by the parameters named "rev", "pos", "as_of" or "valid_at" (with
// "known_at"); at most one; a null name is not offered. "*given" says whether one was.
Result<EntityQuery> PointParam(const RequestContext& rc, const char* rev, const char* pos,
                               const char* as_of, const char* valid_at, bool* given) {
  EntityQuery q = EntityQuery::Latest();
  int count = 0;
  if (rc.QueryParam(rev) != nullptr) {
    TT_ASSIGN_OR_RETURN(std::uint64_t r, rc.UintParam(rev));
    q = EntityQuery::AtRevision(r);
    ++count;
  }
  if (pos != nullptr && rc.QueryParam(pos) != nullptr) {
    TT_ASSIGN_OR_RETURN(std::uint64_t p, rc.UintParam(pos));
    q = EntityQuery::AtPosition(p);
    ++count;
  }
  TT_ASSIGN_OR_RETURN(std::optional<Timestamp> t, rc.TimeParam(as_of));
  if (t) {
    q = EntityQuery::AsOf(*t);
    ++count;
  }
  if (valid_at != nullptr) {
    TT_ASSIGN_OR_RETURN(std::optional<Timestamp> v, rc.TimeParam(valid_at));
    TT_ASSIGN_OR_RETURN(std::optional<Timestamp> known, rc.TimeParam("known_at"));
    if (v) {
      q = EntityQuery::ValidAt(*v, known);
      ++count;
    } else if (known) {
      return Status::InvalidArgument("known_at needs valid_at");
    }
  }
  if (count > 1) {
    return Status::InvalidArgument(std::string("give at most one of ") + rev +
                                   (pos ? std::string(", ") + pos : "") + ", " + as_of +
                                   (valid_at ? std::string(", ") + valid_at : ""));
  }
  if (given != nullptr) *given = count == 1;
  return q;
}

void WritePoint(const std::optional<EventPoint>& e, JsonWriter* w) {
  if (!e) {
    w->Null();
    return;
  }
  w->BeginObject();
  w->Key("revision").Uint(e->revision);
  w->Key("position").Uint(e->position);
  w->Key("recorded_at").String(FormatTimestamp(e->recorded_at));
  w->Key("valid_from").String(FormatTimestamp(e->valid_from));
  w->EndObject();
}

// An entity's state; the state and the metadata are stored JSON, inserted as they are.
void WriteState(const EntityState& st, JsonWriter* w) {
  const std::optional<EventPoint>& e = st.event;
  w->BeginObject();
  w->Key("stream").String(st.stream);
  w->Key("exists").Bool(st.exists);
  w->Key("state").Raw(st.state.empty() ? std::string_view("null") : std::string_view(st.state));
  w->Key("revision").UintOrNull(e ? std::optional<std::uint64_t>(e->revision) : std::nullopt);
  w->Key("position").UintOrNull(e ? std::optional<std::uint64_t>(e->position) : std::nullopt);
  w->Key("recorded_at");
  if (e) {
    w->String(FormatTimestamp(e->recorded_at));
  } else {
    w->Null();
  }
  w->Key("valid_from");
  if (e) {
    w->String(FormatTimestamp(e->valid_from));
  } else {
    w->Null();
  }
  w->Key("metadata")
      .Raw(e && !e->metadata.empty() ? std::string_view(e->metadata) : std::string_view("null"));
  w->EndObject();
}

}  // namespace

ApiResponse GetEntity(RequestContext& rc) {
  Result<EntityQuery> q =
      PointParam(rc, "at_revision", "at_position", "as_of", "valid_at", nullptr);
  if (!q.ok()) return ErrorResponse(q.status());
  Result<EntityState> st = rc.store().GetEntity(rc.Param("stream"), *q);
  if (!st.ok()) return ErrorResponse(st.status());
  JsonWriter w;
  WriteState(*st, &w);
  return JsonResponse(200, w.Take());
}

ApiResponse GetHistory(RequestContext& rc) {
  const std::string* path_param = rc.QueryParam("path");
  std::string path = path_param == nullptr ? std::string() : *path_param;
  HistoryQuery hq;
  if (const std::string* vt = rc.QueryParam("valid_time")) {
    if (*vt != "true" && *vt != "false") {
      return ErrorResponse(Status::InvalidArgument("valid_time must be true or false"));
    }
    hq.valid_time = *vt == "true";
  }
  Result<std::optional<Timestamp>> known = rc.TimeParam("known_at");
  if (!known.ok()) return ErrorResponse(known.status());
  // Without valid time, history is in system time and already ends at what is known now.
  if (*known && !hq.valid_time) {
    return ErrorResponse(Status::InvalidArgument("known_at needs valid_time=true"));
  }
  hq.known_at = *known;
  // Intervals are small, so a page holds up to 10,000 (a history of that length in one answer).
  Result<std::size_t> limit = rc.LimitParam(HistoryQuery{}.limit, 10000);
  if (!limit.ok()) return ErrorResponse(limit.status());
  hq.limit = *limit;
  if (const std::string* cursor = rc.QueryParam("cursor")) hq.cursor = *cursor;
  Result<PropertyHistory> h = rc.store().GetPropertyHistory(rc.Param("stream"), path, hq);
  if (!h.ok()) return ErrorResponse(h.status());
  JsonWriter w;
  w.BeginObject();
  w.Key("stream").String(h->stream);
  w.Key("path").String(h->path);
  w.Key("intervals").BeginArray();
  for (const PropertyInterval& iv : h->intervals) {
    w.BeginObject();
    if (iv.present) w.Key("value").Raw(iv.value);
    w.Key("exists").Bool(iv.present);
    w.Key("from");
    WritePoint(iv.from, &w);
    w.Key("to");
    WritePoint(iv.to, &w);
    w.Key("metadata")
        .Raw(iv.from.metadata.empty() ? std::string_view("{}")
                                      : std::string_view(iv.from.metadata));
    w.EndObject();
  }
  w.EndArray();
  w.Key("cursor").NonEmptyStringOrNull(h->next_cursor);
  w.EndObject();
  return JsonResponse(200, w.Take());
}

ApiResponse GetDiff(RequestContext& rc) {
  const std::string& stream = rc.Param("stream");
  bool from_given = false;
  bool to_given = false;
  Result<EntityQuery> from = PointParam(rc, "from", nullptr, "from_time", nullptr, &from_given);
  if (!from.ok()) return ErrorResponse(from.status());
  Result<EntityQuery> to = PointParam(rc, "to", nullptr, "to_time", nullptr, &to_given);
  if (!to.ok()) return ErrorResponse(to.status());
  if (!from_given) {
    return ErrorResponse(Status::InvalidArgument(
        "give the starting point as from=REVISION or from_time=TIME (to defaults to now)"));
  }
  DiffQuery dq = DiffQuery::Between(*from, *to);
  if (const std::string* events = rc.QueryParam("events")) {
    if (*events != "true" && *events != "false") {
      return ErrorResponse(Status::InvalidArgument("events must be true or false"));
    }
    dq.include_events = *events == "true";
  }
  const bool paged = rc.QueryParam("limit") != nullptr || rc.QueryParam("cursor") != nullptr;
  if (!dq.include_events && paged) {
    // Without events=true there is nothing to page; say so rather than ignore the request.
    return ErrorResponse(
        Status::InvalidArgument("limit and cursor page the events between the "
                                "points: give events=true"));
  }
  if (const std::string* cursor = rc.QueryParam("cursor")) dq.cursor = *cursor;
  Result<std::size_t> limit = rc.LimitParam();
  if (!limit.ok()) return ErrorResponse(limit.status());
  dq.limit = *limit;
  Result<DiffResult> d = rc.store().Diff(stream, dq);
  if (!d.ok()) return ErrorResponse(d.status());
  JsonWriter w;
  w.BeginObject();
  w.Key("stream").String(stream);
  w.Key("from");
  WriteState(d->from, &w);
  w.Key("to");
  WriteState(d->to, &w);
  w.Key("patch").Raw(d->patch.empty() ? std::string_view("[]") : std::string_view(d->patch));
  if (dq.include_events) {
    // Absent unless asked for: an empty list would claim that nothing happened in between.
    w.Key("events");
    WriteEvents(d->events, d->events.size(), &w);
    w.Key("cursor").NonEmptyStringOrNull(d->next_cursor);
  }
  w.EndObject();
  return JsonResponse(200, w.Take());
}

ApiResponse RevertEntity(RequestContext& rc) {
  const std::string& stream = rc.Param("stream");
  if (std::optional<ApiResponse> r = RefuseSystemStreamWrite(stream)) return *r;
  Result<RawJson> body = rc.BodyObject();
  if (!body.ok()) return rc.BodyError(body.status());
  RevertRequest rr;
  rr.stream = stream;
  int targets = 0;
  for (const auto& [key, v] : body->members) {
    if (key == "to_revision") {
      std::optional<std::uint64_t> r = v.AsUint();
      if (!r) {
        return ErrorResponse(Status::InvalidArgument("to_revision must be a revision number"));
      }
      rr.target = EntityQuery::AtRevision(*r);
      ++targets;
    } else if (key == "to_time") {
      if (v.kind != RawJson::Kind::kString) {
        return ErrorResponse(Status::InvalidArgument("to_time must be an RFC 3339 time string"));
      }
      Result<Timestamp> t = ParseTimestamp(v.str);
      if (!t.ok()) return ErrorResponse(t.status().WithPrefix("to_time"));
      rr.target = EntityQuery::AsOf(*t);
      ++targets;
    } else if (key == "expected_revision") {
      Result<ExpectedRevision> e = ParseExpected(&v, "expected_revision");
      if (!e.ok()) return ErrorResponse(e.status());
      rr.expected = *e;
    } else if (key == "reason" || key == "actor") {
      if (v.kind != RawJson::Kind::kString) {
        return ErrorResponse(Status::InvalidArgument(key + " must be a string"));
      }
      (key == "reason" ? rr.reason : rr.actor) = v.str;
    } else if (key == "metadata") {
      if (!v.is_object()) {
        return ErrorResponse(Status::InvalidArgument("metadata must be an object"));
      }
      rr.metadata = std::string(v.text);
    } else if (key == "id") {
      Result<Uuid> id = v.kind == RawJson::Kind::kString
                            ? Uuid::Parse(v.str)
                            : Result<Uuid>(Status::InvalidArgument("not a string"));
      if (!id.ok()) return ErrorResponse(id.status().WithPrefix("id"));
      rr.id = *id;
    } else {
      return ErrorResponse(Status::InvalidArgument(
          "unknown field '" + key +
          "'; allowed: to_revision, to_time, expected_revision, reason, actor, metadata, id"));
    }
  }
  if (targets != 1) {
    return ErrorResponse(Status::InvalidArgument("give exactly one of to_revision or to_time"));
  }
  if (!rc.request().if_match.empty() && body->Find("expected_revision") == nullptr) {
    Result<std::uint64_t> rev = IfMatchRevision(rc.request().if_match);
    if (!rev.ok()) return ErrorResponse(rev.status());
    rr.expected = ExpectedRevision::Exact(*rev);
  }
  Result<RevertResult> r = rc.store().Revert(rr);
  if (!r.ok()) return ErrorResponse(r.status());
  if (!r->committed.idempotent_replay) {
    JsonWriter audit;
    audit.BeginObject();
    audit.Key("stream").String(stream);
    audit.Key("request").Raw(body->text);  // the body as sent: it parsed as an object
    audit.Key("position").Uint(r->committed.last_position);
    audit.EndObject();
    if (std::optional<ApiResponse> a = rc.Audit("revert", audit.str())) return *a;
  }
  return CommittedResponse(r->committed);
}

ApiResponse GetActivity(RequestContext& rc) {
  ActivityQuery q;
  if (const std::string* actor = rc.QueryParam("actor")) q.actor = *actor;
  if (const std::string* prefix = rc.QueryParam("stream_prefix")) q.stream_prefix = *prefix;
  if (const std::string* types = rc.QueryParam("type")) q.event_types = SplitComma(*types);
  if (const std::string* types = rc.QueryParam("types")) q.event_types = SplitComma(*types);
  if (const std::string* cursor = rc.QueryParam("cursor")) q.cursor = *cursor;
  Result<std::optional<Timestamp>> since = rc.TimeParam("since");
  if (!since.ok()) return ErrorResponse(since.status());
  Result<std::optional<Timestamp>> until = rc.TimeParam("until");
  if (!until.ok()) return ErrorResponse(until.status());
  q.from = *since;
  q.to = *until;
  Result<std::size_t> limit = rc.LimitParam();
  if (!limit.ok()) return ErrorResponse(limit.status());
  q.limit = *limit;
  if (std::optional<ApiResponse> d =
          rc.DenyAcrossStreams(q.stream_prefix, &q.skip_system_streams)) {
    return *d;
  }
  Result<ActivityPage> page = rc.store().QueryActivity(q);
  if (!page.ok()) return ErrorResponse(page.status());
  JsonWriter w;
  w.BeginObject().Key("events");
  WriteEvents(page->events, page->events.size(), &w);
  w.Key("cursor").NonEmptyStringOrNull(page->next_cursor);
  w.EndObject();
  return JsonResponse(200, w.Take());
}

}  // namespace timetrail::server
