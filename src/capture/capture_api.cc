#include "capture/capture_api.h"

#include <cstdio>
#include <memory>

#include "capture/pgoutput.h"
#include "capture/source_revert.h"
#include "json/json_writer.h"
#include "json/raw_json.h"
#include "server/request_context.h"

namespace timetrail::capture {
namespace {

using json::JsonWriter;
using json::RawJson;
using server::Access;
using server::ApiResponse;
using server::ErrorResponse;
using server::JsonResponse;
using server::kOnWorker;
using server::RequestContext;

ApiResponse NoCapture() {
  return ErrorResponse(404, "not_found",
                       "this server runs no capture; start it with `timetrail serve --capture "
                       "URL` (docs/capture.md)");
}

// Seconds since the last stored source commit while the capture is behind; 0 when caught up.
double LagSeconds(const CaptureStats& s) {
  if (s.lag_bytes() == 0 || s.last_commit_micros == 0) return 0;
  double lag = static_cast<double>(Now().micros - s.last_commit_micros) / 1e6;
  return lag > 0 ? lag : 0;
}

std::string Seconds(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

Result<std::string> StringField(const RawJson& v, const std::string& key) {
  if (v.kind != RawJson::Kind::kString) {
    return Status::InvalidArgument(key + " must be a string, got " + std::string(v.KindName()));
  }
  return v.str;
}

Result<Timestamp> TimeField(const RawJson& v, const std::string& key) {
  TT_ASSIGN_OR_RETURN(std::string text, StringField(v, key));
  Result<Timestamp> t = ParseTimestamp(text);
  if (!t.ok()) return t.status().WithPrefix(key);
  return t;
}

// GET /v1/capture.
ApiResponse CaptureStatus(const CaptureLink* link) {
  if (link == nullptr || !link->stats) return NoCapture();
  CaptureStats s = link->stats();
  JsonWriter w;
  w.BeginObject();
  w.Key("slot").String(link->slot);
  w.Key("transactions").Uint(s.transactions);
  w.Key("changes").Uint(s.changes);
  w.Key("reconnects").Uint(s.reconnects);
  w.Key("stored_lsn").String(FormatLsn(s.stored_lsn));
  w.Key("source_lsn").String(FormatLsn(s.server_lsn));
  w.Key("lag_bytes").Uint(s.lag_bytes());
  w.Key("lag_seconds").Fixed(LagSeconds(s), 3);
  w.EndObject();
  return JsonResponse(200, w.Take());
}

// The revert itself, for a request body already parsed as an object.
ApiResponse RevertResponse(const EventStore& store, const CaptureLink* link, const RawJson& body) {
  if (link == nullptr) return NoCapture();
  SourceRevertOptions options;
  options.source_url = link->source_url;
  std::vector<std::string> streams;
  bool has_to = false;
  RowFilter filter;
  for (const auto& [key, v] : body.members) {
    Status s = Status::Ok();
    if (key == "streams") {
      if (v.kind != RawJson::Kind::kArray) {
        s = Status::InvalidArgument("streams must be an array of stream names");
      }
      for (const RawJson& item : v.items) {
        Result<std::string> name = StringField(item, "each of streams");
        if (!name.ok()) return ErrorResponse(name.status());
        streams.push_back(*name);
      }
    } else if (key == "to") {
      Result<Timestamp> t = TimeField(v, key);
      if (t.ok()) {
        options.to = *t;
        has_to = true;
      }
      s = t.status();
    } else if (key == "from" || key == "until") {
      Result<Timestamp> t = TimeField(v, key);
      if (t.ok()) (key == "from" ? filter.from : filter.until) = *t;
      s = t.status();
    } else if (key == "table" || key == "changes_by" || key == "actor" || key == "reason" ||
               key == "source") {
      Result<std::string> text = StringField(v, key);
      if (!text.ok()) return ErrorResponse(text.status());
      if (key == "table") filter.table = *text;
      if (key == "changes_by") filter.actor = *text;
      if (key == "actor") options.actor = *text;
      if (key == "reason") options.reason = *text;
      if (key == "source") {
        if (link->request_may_name_source && link->source_url.empty()) {
          options.source_url = *text;
        } else if (*text != link->source_url) {
          // Never connect to a database the request names: the server reverts only in its own.
          s = Status::InvalidArgument(
              "source is not the database this server captures; a server reverts only in its "
              "own source (omit source, or use the server that captures that database)");
        }
      }
    } else if (key == "xid") {
      if (!v.AsUint()) s = Status::InvalidArgument("xid must be a transaction id number");
      filter.xid = v.AsUint();
    } else if (key == "dry_run") {
      if (v.kind != RawJson::Kind::kBool) s = Status::InvalidArgument("dry_run must be a boolean");
      options.dry_run = v.boolean;
    } else {
      s = Status::InvalidArgument("unknown field '" + key +
                                  "'; allowed: streams, to, table, changes_by, xid, from, until, "
                                  "dry_run, actor, reason, source");
    }
    if (!s.ok()) return ErrorResponse(s);
  }
  if (options.source_url.empty()) {
    return ErrorResponse(Status::InvalidArgument("source: the PostgreSQL URL to revert in is "
                                                 "required here"));
  }
  bool filtered = !filter.table.empty();
  if (filtered == !streams.empty() || (!filtered && !has_to) || (filtered && has_to)) {
    return ErrorResponse(Status::InvalidArgument(
        "give either streams with to, or table with any of changes_by, xid, from, until"));
  }
  if (!filtered && (filter.actor || filter.xid || filter.from || filter.until)) {
    return ErrorResponse(
        Status::InvalidArgument("changes_by, xid, from and until choose rows of a table: give table"));
  }
  Result<SourceRevertResult> r =
      filtered ? RevertFilteredInSource(store, filter, options)
               : RevertInSource(store, streams, options);
  if (!r.ok()) return ErrorResponse(r.status());
  JsonWriter w;
  w.BeginObject();
  w.Key("dry_run").Bool(options.dry_run);
  w.Key("rows_changed").Uint(r->rows_changed);
  w.Key("statements").BeginArray();
  for (const std::string& statement : r->statements) w.String(statement);
  w.EndArray();
  w.EndObject();
  return JsonResponse(200, w.Take());
}

// POST /v1/capture/revert: the revert, recorded in the audit stream unless it was a dry run.
ApiResponse CaptureRevert(RequestContext& rc, const CaptureLink* link) {
  Result<RawJson> body = rc.BodyObject();
  if (!body.ok()) return rc.BodyError(body.status());
  ApiResponse r = RevertResponse(rc.store(), link, *body);
  const RawJson* dry_run = body->Find("dry_run");
  if (r.status == 200 && !(dry_run != nullptr && dry_run->boolean)) {
    JsonWriter audit;
    audit.BeginObject();
    audit.Key("request").Raw(body->text);
    audit.Key("response").Raw(r.body);
    audit.EndObject();
    if (std::optional<ApiResponse> a = rc.Audit("capture-revert", audit.str())) return *a;
  }
  return r;
}

// Prometheus lines for a running capture: counters, lag in bytes and seconds.
std::string CaptureMetricsText(const CaptureLink& link) {
  CaptureStats s = link.stats();
  std::string o;
  auto metric = [&o](const char* name, const char* type, const char* help, const std::string& v) {
    o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
         name + " " + v + "\n";
  };
  metric("timetrail_capture_transactions_total", "counter",
         "Source transactions stored by the capture since the server started.",
         std::to_string(s.transactions));
  metric("timetrail_capture_changes_total", "counter",
         "Row changes stored by the capture since the server started.", std::to_string(s.changes));
  metric("timetrail_capture_reconnects_total", "counter",
         "Times the capture reconnected to its source.", std::to_string(s.reconnects));
  metric("timetrail_capture_lag_bytes", "gauge",
         "Bytes of source WAL written but not yet stored (0 when caught up).",
         std::to_string(s.lag_bytes()));
  metric("timetrail_capture_lag_seconds", "gauge",
         "Seconds since the last stored source commit while behind (0 when caught up).",
         Seconds(LagSeconds(s)));
  return o;
}

}  // namespace

server::ApiExtension CaptureApi(std::optional<CaptureLink> link) {
  // Shared by the handlers, which the server keeps (and copies) with its route table.
  std::shared_ptr<const CaptureLink> shared;
  if (link) shared = std::make_shared<const CaptureLink>(std::move(*link));
  server::ApiExtension out;
  out.routes = {
      // method  path                   access               quick      handler
      {"GET",    "/v1/capture",         Access::kRead,       kOnWorker,
       [shared](RequestContext&) { return CaptureStatus(shared.get()); }},
      // It rewrites rows of any captured table in the source database.
      {"POST",   "/v1/capture/revert",  Access::kFullAdmin,  kOnWorker,
       [shared](RequestContext& rc) { return CaptureRevert(rc, shared.get()); }},
  };
  if (shared && shared->stats) out.metrics = [shared] { return CaptureMetricsText(*shared); };
  return out;
}

}  // namespace timetrail::capture
