#include "server/capture_api.h"

#include <cstdio>

#include "capture/pgoutput.h"
#include "capture/source_revert.h"

namespace timetrail::server {

using json::JsonQuote;
using json::ParseRawJson;
using json::RawJson;
namespace {

ApiResponse JsonResponse(int status, std::string body) {
  ApiResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

ApiResponse NoCapture() {
  return ErrorResponse(404, "not_found",
                       "this server runs no capture; start it with `timetrail serve --capture "
                       "URL` (docs/capture.md)");
}

// Seconds since the last stored source commit while the capture is behind; 0 when caught up.
double LagSeconds(const capture::CaptureStats& s) {
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

}  // namespace

ApiResponse CaptureStatusResponse(const CaptureLink* link) {
  if (link == nullptr || !link->stats) return NoCapture();
  capture::CaptureStats s = link->stats();
  return JsonResponse(
      200, "{\"slot\":" + JsonQuote(link->slot) +
               ",\"transactions\":" + std::to_string(s.transactions) +
               ",\"changes\":" + std::to_string(s.changes) +
               ",\"reconnects\":" + std::to_string(s.reconnects) + ",\"stored_lsn\":" +
               JsonQuote(capture::FormatLsn(s.stored_lsn)) + ",\"source_lsn\":" +
               JsonQuote(capture::FormatLsn(s.server_lsn)) +
               ",\"lag_bytes\":" + std::to_string(s.lag_bytes()) +
               ",\"lag_seconds\":" + Seconds(LagSeconds(s)) + "}");
}

ApiResponse CaptureRevertResponse(const EventStore& store, const CaptureLink* link,
                                  const RawJson& body) {
  if (link == nullptr) return NoCapture();
  capture::SourceRevertOptions options;
  options.source_url = link->source_url;
  std::vector<std::string> streams;
  bool has_to = false;
  capture::RowFilter filter;
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
  Result<capture::SourceRevertResult> r =
      filtered ? capture::RevertFilteredInSource(store, filter, options)
               : capture::RevertInSource(store, streams, options);
  if (!r.ok()) return ErrorResponse(r.status());
  std::string statements = "[";
  for (std::size_t i = 0; i < r->statements.size(); ++i) {
    statements += (i ? "," : "") + JsonQuote(r->statements[i]);
  }
  statements += "]";
  return JsonResponse(200, "{\"dry_run\":" + std::string(options.dry_run ? "true" : "false") +
                               ",\"rows_changed\":" + std::to_string(r->rows_changed) +
                               ",\"statements\":" + statements + "}");
}

std::string CaptureMetricsText(const CaptureLink& link) {
  if (!link.stats) return "";
  capture::CaptureStats s = link.stats();
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

}  // namespace timetrail::server
