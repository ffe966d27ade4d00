// Operating the server: health, Prometheus metrics, the integrity chain, online backups and API
// tokens (docs/http-api.md, "Integrity", "Operations", "Authentication").
#include <algorithm>
#include <string>

#include "json/json_writer.h"
#include "json/raw_json.h"
#include "server/routes.h"

namespace timetrail::server {
namespace {

using json::JsonWriter;
using json::RawJson;

void WriteHead(const IntegrityHead& head, JsonWriter* w) {
  w->BeginObject();
  w->Key("position").Uint(head.position);
  w->Key("hash").String(head.hash_hex);
  w->EndObject();
}

// The members of a token request body that hold lists of strings.
Status StringArray(const RawJson& v, const std::string& key, std::vector<std::string>* out) {
  if (v.kind != RawJson::Kind::kArray) {
    return Status::InvalidArgument(key + " must be an array of strings");
  }
  for (const RawJson& item : v.items) {
    if (item.kind != RawJson::Kind::kString) {
      return Status::InvalidArgument(key + " must be an array of strings");
    }
    out->push_back(item.str);
  }
  return Status::Ok();
}

}  // namespace

ApiResponse GetHealth(RequestContext& rc) {
  JsonWriter w;
  w.BeginObject();
  w.Key("status").String("ok");
  w.Key("position").Uint(rc.store().LastPosition());
  w.EndObject();
  return JsonResponse(200, w.Take());
}

ApiResponse GetMetrics(RequestContext& rc) {
  ApiResponse r;
  r.content_type = "text/plain; version=0.0.4";
  const Position head = rc.store().LastPosition();
  r.body = rc.services().metrics->Render(rc.store().GetStats(), rc.hub().watchers(), head);
  if (rc.services().groups != nullptr) {
    Result<std::vector<ConsumerGroupInfo>> groups = rc.services().groups->List();
    if (groups.ok()) {
      // As GET /v1/groups: a token limited to prefixes sees only the groups it could use.
      std::erase_if(*groups, [&rc](const ConsumerGroupInfo& g) {
        return !rc.principal().CoversPrefix(g.settings.stream_prefix);
      });
      r.body += Metrics::RenderGroups(*groups, head);
    }
  }
  for (const MetricsSource& source : rc.services().metrics_sources) r.body += source();
  return r;
}

ApiResponse GetIntegrityHead(RequestContext& rc) {
  JsonWriter w;
  WriteHead(rc.store().GetIntegrityHead(), &w);
  return JsonResponse(200, w.Take());
}

constexpr std::string_view kVerifyNotRecorded =
    "not recorded in the $audit stream: the data directory was opened read-only";

ApiResponse VerifyIntegrity(RequestContext& rc) {
  Result<VerifyReport> report = rc.store().Verify(VerifyOptions{});
  if (!report.ok()) return ErrorResponse(report.status());
  const VerifyReport& r = *report;
  JsonWriter w;
  w.BeginObject();
  w.Key("ok").Bool(r.ok);
  w.Key("events_checked").Uint(r.events_checked);
  w.Key("first_bad_position").UintOrNull(r.first_bad_position);
  w.Key("message").String(r.message);
  w.Key("head");
  WriteHead(r.head, &w);
  if (rc.store().IsReadOnly()) {
    // The CLI reading a data directory that another process may hold: the verification is
    // answered, but cannot be recorded.
    w.Key("recorded").Bool(false);
    w.Key("note").String(std::string(kVerifyNotRecorded));
    w.EndObject();
    return JsonResponse(200, w.Take());
  }
  w.EndObject();
  std::string body = w.Take();
  // The audit event holds the answer itself.
  if (std::optional<ApiResponse> a = rc.Audit("verify", body)) return *a;
  return JsonResponse(200, std::move(body));
}

ApiResponse Backup(RequestContext& rc) {
  Result<RawJson> body = rc.BodyObject();
  if (!body.ok()) return rc.BodyError(body.status());
  const std::string& backup_dir = rc.services().backup_dir;
  if (backup_dir.empty()) {
    return ErrorResponse(Status::InvalidArgument(
        "online backups are off on this server: start it with --backup-dir DIR to allow "
        "them into that directory"));
  }
  std::string name;
  for (const auto& [key, v] : body->members) {
    if (key != "to" || v.kind != RawJson::Kind::kString) {
      return ErrorResponse(Status::InvalidArgument(
          "the body is {\"to\": \"NAME\"}: a new directory name inside the server's "
          "--backup-dir"));
    }
    name = v.str;
  }
  // One plain name, so a request can never write outside the backup directory.
  bool plain = !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
               std::none_of(name.begin(), name.end(), [](char c) {
                 return c == '/' || static_cast<unsigned char>(c) < 0x20;
               });
  if (!plain) {
    return ErrorResponse(
        Status::InvalidArgument("to: '" + name +
                                "' must be a plain directory name (no '/', not '.' or '..') for a "
                                "new directory inside the server's --backup-dir"));
  }
  std::string to = backup_dir + "/" + name;
  Result<VerifyReport> r = rc.store().Backup(to);
  if (!r.ok()) return ErrorResponse(r.status());
  JsonWriter w;
  w.BeginObject();
  w.Key("to").String(to);
  w.Key("position").Uint(r->head.position);
  w.Key("hash").String(r->head.hash_hex);
  w.Key("events_checked").Uint(r->events_checked);
  w.EndObject();
  std::string out = w.Take();
  if (std::optional<ApiResponse> a = rc.Audit("backup", out)) return *a;
  return JsonResponse(201, std::move(out));
}

ApiResponse GetWhoami(RequestContext& rc) {
  JsonWriter w;
  w.BeginObject();
  WritePrincipalMembers(rc.principal(), &w);
  w.EndObject();
  return JsonResponse(200, w.Take());
}

ApiResponse ListTokens(RequestContext& rc) {
  JsonWriter w;
  w.BeginObject().Key("tokens").BeginArray();
  for (const TokenInfo& t : rc.tokens().List()) {
    w.BeginObject();
    WriteTokenInfoMembers(t, &w);
    w.EndObject();
  }
  w.EndArray().EndObject();
  return JsonResponse(200, w.Take());
}

ApiResponse CreateToken(RequestContext& rc) {
  Result<RawJson> body = rc.BodyObject();
  if (!body.ok()) return rc.BodyError(body.status());
  TokenSpec spec;
  for (const auto& [key, v] : body->members) {
    Status st = Status::Ok();
    if (key == "name") {
      if (v.kind != RawJson::Kind::kString) st = Status::InvalidArgument("name must be a string");
      spec.name = v.str;
    } else if (key == "scopes") {
      std::vector<std::string> names;
      st = StringArray(v, key, &names);
      for (std::size_t i = 0; st.ok() && i < names.size(); ++i) {
        Result<Scope> scope = ParseScope(names[i]);
        st = scope.status();
        if (scope.ok()) spec.scopes |= *scope;
      }
    } else if (key == "prefixes") {
      st = StringArray(v, key, &spec.prefixes);
    } else if (key == "expires_at") {
      if (v.kind != RawJson::Kind::kNull) {
        Result<Timestamp> t = v.kind == RawJson::Kind::kString
                                  ? ParseTimestamp(v.str)
                                  : Result<Timestamp>(Status::InvalidArgument("not a string"));
        st = t.status().WithPrefix("expires_at");
        if (t.ok()) spec.expires_at = *t;
      }
    } else {
      st = Status::InvalidArgument("unknown field '" + key +
                                   "'; allowed: name, scopes, prefixes, expires_at");
    }
    if (!st.ok()) return ErrorResponse(st);
  }
  Result<std::pair<TokenInfo, std::string>> created = rc.tokens().Create(spec, rc.principal());
  if (!created.ok()) return ErrorResponse(created.status());
  JsonWriter w;
  w.BeginObject();
  // The only time the token itself is shown: the store keeps only its hash.
  w.Key("token").String(created->second);
  WriteTokenInfoMembers(created->first, &w);
  w.EndObject();
  return JsonResponse(201, w.Take());
}

ApiResponse RevokeToken(RequestContext& rc) {
  Result<TokenInfo> t = rc.tokens().Revoke(rc.Param("id"), rc.principal());
  if (!t.ok()) return ErrorResponse(t.status());
  JsonWriter w;
  w.BeginObject();
  WriteTokenInfoMembers(*t, &w);
  w.EndObject();
  return JsonResponse(200, w.Take());
}

}  // namespace timetrail::server
