// Consumer groups, competing consumers over the log (docs/http-api.md, "Consumer groups"):
// create, describe, list and delete groups; members read events under a lease and ack or nack
// them. The work is done by timetrail::ConsumerGroups (include/timetrail/consumer_group.h).
#include <chrono>
#include <string>
#include <vector>

#include "json/json_writer.h"
#include "json/raw_json.h"
#include "server/routes.h"
#include "timetrail/consumer_group.h"

namespace timetrail::server {
namespace {

using json::JsonWriter;
using json::RawJson;

// A long poll holds a worker thread: at most a minute, as a min_position wait.
constexpr std::uint64_t kMaxWaitMillis = 60000;
constexpr std::uint64_t kMaxReadEvents = 1000;
constexpr std::size_t kMaxPositions = 1000;

std::string TimeOf(std::chrono::system_clock::time_point t) {
  return FormatTimestamp(Timestamp{
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count()});
}

void WriteGroup(const ConsumerGroupInfo& g, JsonWriter* w) {
  w->BeginObject();
  w->Key("name").String(g.name);
  w->Key("stream_prefix").String(g.settings.stream_prefix);
  w->Key("types").BeginArray();
  for (const std::string& t : g.settings.event_types) w->String(t);
  w->EndArray();
  w->Key("start_position").Uint(g.settings.start_position);
  w->Key("max_retries").Uint(g.settings.max_retries);
  w->Key("lease_ms").Uint(static_cast<std::uint64_t>(g.settings.lease.count()));
  w->Key("max_in_flight").Uint(g.settings.max_in_flight);
  w->Key("acked_through").Uint(g.acked_through);
  w->Key("done_above").Uint(g.done_above);
  w->Key("in_flight").Uint(g.in_flight);
  w->Key("awaiting_retry").Uint(g.awaiting_retry);
  w->Key("parked").Uint(g.parked);
  w->Key("replaying").Uint(g.replaying);
  w->Key("parked_stream").String(g.parked_stream);
  w->Key("members").BeginArray();
  for (const GroupMemberInfo& m : g.members) {
    w->BeginObject();
    w->Key("name").String(m.name);
    w->Key("in_flight").Uint(m.in_flight);
    w->Key("last_seen").String(TimeOf(m.last_seen));
    w->EndObject();
  }
  w->EndArray();
  w->EndObject();
}

std::string GroupJson(const ConsumerGroupInfo& g) {
  JsonWriter w;
  WriteGroup(g, &w);
  return w.Take();
}

ConsumerGroups& Groups(RequestContext& rc) { return *rc.services().groups; }

// The 403 when the caller lacks "scope" or a group filtering on "prefix" would show it streams
// beyond its token's prefixes.
std::optional<ApiResponse> DenyGroup(RequestContext& rc, Scope scope, const std::string& prefix) {
  if (std::optional<ApiResponse> d = rc.Deny(scope)) return d;
  if (!rc.principal().CoversPrefix(prefix)) {
    return ErrorResponse(403, "forbidden",
                         rc.principal().Describe() +
                             " may not use a consumer group of stream "
                             "prefix '" +
                             prefix + "': it reaches streams beyond the token's prefixes");
  }
  return std::nullopt;
}

// Checks access to an existing group; its settings in "*settings".
std::optional<ApiResponse> DenyExistingGroup(RequestContext& rc, Scope scope,
                                             ConsumerGroupSettings* settings) {
  Result<ConsumerGroupSettings> s = Groups(rc).Settings(rc.Param("name"));
  if (!s.ok()) return ErrorResponse(s.status());
  *settings = *s;
  return DenyGroup(rc, scope, s->stream_prefix);
}

// "field" of "body" as a whole number within [min, max], or "fallback" when absent.
Result<std::uint64_t> UintField(const RawJson& body, std::string_view field, std::uint64_t min,
                                std::uint64_t max, std::uint64_t fallback) {
  const RawJson* v = body.Find(field);
  if (v == nullptr) return fallback;
  std::optional<std::uint64_t> n = v->AsUint();
  if (!n || *n < min || *n > max) {
    return Status::InvalidArgument(std::string(field) + " must be a whole number from " +
                                   std::to_string(min) + " to " + std::to_string(max));
  }
  return *n;
}

Status OnlyFields(const RawJson& body, const std::vector<std::string_view>& allowed) {
  for (const auto& [key, v] : body.members) {
    bool ok = false;
    for (std::string_view a : allowed) ok = ok || key == a;
    if (ok) continue;
    std::string list;
    for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    return Status::InvalidArgument("unknown field '" + key + "'; allowed: " + list);
  }
  return Status::Ok();
}

// The "positions" of an ack or nack body.
Result<std::vector<Position>> PositionsField(const RawJson& body) {
  const RawJson* list = body.Find("positions");
  Status bad = Status::InvalidArgument("positions must be an array of 1 to " +
                                       std::to_string(kMaxPositions) +
                                       " log positions, as POST .../read answered them");
  if (list == nullptr || list->kind != RawJson::Kind::kArray || list->items.empty() ||
      list->items.size() > kMaxPositions) {
    return bad;
  }
  std::vector<Position> out;
  for (const RawJson& item : list->items) {
    std::optional<std::uint64_t> p = item.AsUint();
    if (!p) return bad;
    out.push_back(*p);
  }
  return out;
}

// Ack and nack refuse positions that no member holds: the request conflicts with the group's
// state (done already, or never delivered), 409.
ApiResponse AckError(const Status& s) {
  if (s.code() == StatusCode::kInvalidArgument) return ErrorResponse(409, "not_held", s.message());
  return ErrorResponse(s);
}

}  // namespace

ApiResponse ListGroups(RequestContext& rc) {
  Result<std::vector<ConsumerGroupInfo>> all = Groups(rc).List();
  if (!all.ok()) return ErrorResponse(all.status());
  JsonWriter w;
  w.BeginObject().Key("groups").BeginArray();
  for (const ConsumerGroupInfo& g : *all) {
    // A token limited to prefixes sees only the groups it could use.
    if (rc.principal().CoversPrefix(g.settings.stream_prefix)) WriteGroup(g, &w);
  }
  w.EndArray().EndObject();
  return JsonResponse(200, w.Take());
}

ApiResponse GetGroup(RequestContext& rc) {
  ConsumerGroupSettings settings;
  if (std::optional<ApiResponse> d = DenyExistingGroup(rc, kScopeRead, &settings)) return *d;
  Result<ConsumerGroupInfo> info = Groups(rc).Describe(rc.Param("name"));
  if (!info.ok()) return ErrorResponse(info.status());
  return JsonResponse(200, GroupJson(*info));
}

ApiResponse PutGroup(RequestContext& rc) {
  const std::string& name = rc.Param("name");
  // An empty body creates a group with every default.
  RawJson empty;
  empty.kind = RawJson::Kind::kObject;
  Result<RawJson> body = rc.request().body.empty() ? Result<RawJson>(empty) : rc.BodyObject();
  if (!body.ok()) return rc.BodyError(body.status());
  Status fields = OnlyFields(*body, {"stream_prefix", "types", "start_position", "max_retries",
                                     "lease_ms", "max_in_flight"});
  if (!fields.ok()) return ErrorResponse(fields);
  ConsumerGroupSettings s;
  if (const RawJson* prefix = body->Find("stream_prefix")) {
    if (prefix->kind != RawJson::Kind::kString) {
      return ErrorResponse(Status::InvalidArgument("stream_prefix must be a string"));
    }
    s.stream_prefix = prefix->str;
  }
  if (const RawJson* types = body->Find("types")) {
    Status bad = Status::InvalidArgument("types must be an array of event type strings");
    if (types->kind != RawJson::Kind::kArray) return ErrorResponse(bad);
    for (const RawJson& t : types->items) {
      if (t.kind != RawJson::Kind::kString) return ErrorResponse(bad);
      s.event_types.push_back(t.str);
    }
  }
  if (const RawJson* start = body->Find("start_position")) {
    if (start->kind == RawJson::Kind::kString && start->str == "end") {
      s.start_at_end = true;
    } else if (std::optional<std::uint64_t> p = start->AsUint()) {
      s.start_position = *p;
    } else {
      return ErrorResponse(Status::InvalidArgument(
          "start_position must be a log position or \"end\" (after the last event)"));
    }
  }
  Result<std::uint64_t> retries = UintField(*body, "max_retries", 1, 1000, s.max_retries);
  Result<std::uint64_t> lease =
      UintField(*body, "lease_ms", 10, 86400000, static_cast<std::uint64_t>(s.lease.count()));
  Result<std::uint64_t> in_flight = UintField(*body, "max_in_flight", 1, 10000, s.max_in_flight);
  for (const Status& st : {retries.status(), lease.status(), in_flight.status()}) {
    if (!st.ok()) return ErrorResponse(st);
  }
  s.max_retries = static_cast<std::uint32_t>(*retries);
  s.lease = std::chrono::milliseconds(*lease);
  s.max_in_flight = static_cast<std::uint32_t>(*in_flight);
  if (std::optional<ApiResponse> d = DenyGroup(rc, kScopeAdmin, s.stream_prefix)) return *d;

  Result<PutGroupResult> put = Groups(rc).Put(name, s);
  if (!put.ok()) return ErrorResponse(put.status());
  std::string out = GroupJson(put->info);
  if (std::optional<ApiResponse> a =
          rc.Audit(put->created ? "group-create" : "group-update", out)) {
    return *a;
  }
  return JsonResponse(put->created ? 201 : 200, std::move(out));
}

ApiResponse DeleteGroup(RequestContext& rc) {
  const std::string& name = rc.Param("name");
  ConsumerGroupSettings settings;
  if (std::optional<ApiResponse> d = DenyExistingGroup(rc, kScopeAdmin, &settings)) return *d;
  Result<ConsumerGroupInfo> info = Groups(rc).Describe(name);
  if (!info.ok()) return ErrorResponse(info.status());
  Status s = Groups(rc).Delete(name);
  if (!s.ok()) return ErrorResponse(s);
  std::string out = GroupJson(*info);
  if (std::optional<ApiResponse> a = rc.Audit("group-delete", out)) return *a;
  return JsonResponse(200, std::move(out));
}

ApiResponse ReadGroup(RequestContext& rc) {
  const std::string& name = rc.Param("name");
  Result<RawJson> body = rc.BodyObject();
  if (!body.ok()) return rc.BodyError(body.status());
  Status fields = OnlyFields(*body, {"member", "max", "wait_ms"});
  if (!fields.ok()) return ErrorResponse(fields);
  const RawJson* member = body->Find("member");
  if (member == nullptr || member->kind != RawJson::Kind::kString) {
    return ErrorResponse(Status::InvalidArgument(
        "member must be a string naming the reader, e.g. {\"member\": \"worker-1\"}"));
  }
  Result<std::uint64_t> max = UintField(*body, "max", 1, kMaxReadEvents, 10);
  if (!max.ok()) return ErrorResponse(max.status());
  Result<std::uint64_t> wait = UintField(*body, "wait_ms", 0, kMaxWaitMillis, 0);
  if (!wait.ok()) return ErrorResponse(wait.status());
  ConsumerGroupSettings settings;
  if (std::optional<ApiResponse> d = DenyExistingGroup(rc, kScopeRead, &settings)) return *d;

  Result<std::vector<GroupEvent>> events = Groups(rc).Read(
      name, member->str, *max, std::chrono::milliseconds(static_cast<std::int64_t>(*wait)));
  if (!events.ok()) return ErrorResponse(events.status());
  JsonWriter w;
  w.BeginObject().Key("events").BeginArray();
  for (const GroupEvent& e : *events) {
    w.BeginObject();
    w.Key("position").Uint(e.event.position);
    w.Key("delivery_count").Uint(e.delivery_count);
    w.Key("lease_expires").String(TimeOf(e.lease_expires));
    w.Key("event");
    WriteEvent(e.event, &w);
    w.EndObject();
  }
  w.EndArray().EndObject();
  return JsonResponse(200, w.Take());
}

ApiResponse AckGroup(RequestContext& rc) {
  const std::string& name = rc.Param("name");
  Result<RawJson> body = rc.BodyObject();
  if (!body.ok()) return rc.BodyError(body.status());
  Status fields = OnlyFields(*body, {"positions"});
  if (!fields.ok()) return ErrorResponse(fields);
  Result<std::vector<Position>> positions = PositionsField(*body);
  if (!positions.ok()) return ErrorResponse(positions.status());
  ConsumerGroupSettings settings;
  if (std::optional<ApiResponse> d = DenyExistingGroup(rc, kScopeRead, &settings)) return *d;
  Status s = Groups(rc).Ack(name, *positions);
  if (!s.ok()) return AckError(s);
  JsonWriter w;
  w.BeginObject().Key("group").String(name).Key("acked").BeginArray();
  for (Position p : *positions) w.Uint(p);
  w.EndArray().EndObject();
  return JsonResponse(200, w.Take());
}

ApiResponse NackGroup(RequestContext& rc) {
  const std::string& name = rc.Param("name");
  Result<RawJson> body = rc.BodyObject();
  if (!body.ok()) return rc.BodyError(body.status());
  Status fields = OnlyFields(*body, {"positions", "action", "reason", "member"});
  if (!fields.ok()) return ErrorResponse(fields);
  Result<std::vector<Position>> positions = PositionsField(*body);
  if (!positions.ok()) return ErrorResponse(positions.status());
  NackAction action = NackAction::kRetry;
  std::string action_name = "retry";
  if (const RawJson* a = body->Find("action")) {
    action_name = a->kind == RawJson::Kind::kString ? a->str : "";
    if (action_name == "park") {
      action = NackAction::kPark;
    } else if (action_name == "skip") {
      action = NackAction::kSkip;
    } else if (action_name != "retry") {
      return ErrorResponse(
          Status::InvalidArgument("action must be \"retry\", \"park\" or \"skip\""));
    }
  }
  std::string reason;
  if (const RawJson* r = body->Find("reason")) {
    if (r->kind != RawJson::Kind::kString) {
      return ErrorResponse(Status::InvalidArgument("reason must be a string"));
    }
    reason = r->str;
    if (reason.size() > 1000) {
      return ErrorResponse(Status::InvalidArgument("reason must be at most 1000 bytes"));
    }
  }
  std::string member;
  if (const RawJson* m = body->Find("member")) {
    if (m->kind != RawJson::Kind::kString || m->str.empty()) {
      return ErrorResponse(Status::InvalidArgument(
          "member must be the name the member reads with, e.g. {\"member\": \"worker-1\"}"));
    }
    member = m->str;
  }
  ConsumerGroupSettings settings;
  if (std::optional<ApiResponse> d = DenyExistingGroup(rc, kScopeRead, &settings)) return *d;
  Status s = Groups(rc).Nack(name, *positions, action, reason, member);
  if (!s.ok()) return AckError(s);
  JsonWriter w;
  w.BeginObject().Key("group").String(name).Key("action").String(action_name);
  w.Key("nacked").BeginArray();
  for (Position p : *positions) w.Uint(p);
  w.EndArray().EndObject();
  return JsonResponse(200, w.Take());
}

ApiResponse ReplayParked(RequestContext& rc) {
  const std::string& name = rc.Param("name");
  ConsumerGroupSettings settings;
  if (std::optional<ApiResponse> d = DenyExistingGroup(rc, kScopeAdmin, &settings)) return *d;
  Result<std::size_t> replayed = Groups(rc).ReplayParked(name);
  if (!replayed.ok()) return ErrorResponse(replayed.status());
  JsonWriter w;
  w.BeginObject().Key("group").String(name).Key("replayed").Uint(*replayed).EndObject();
  std::string out = w.Take();
  if (std::optional<ApiResponse> a = rc.Audit("group-replay-parked", out)) return *a;
  return JsonResponse(200, std::move(out));
}

}  // namespace timetrail::server
