#include "project/projections_api.h"

#include <cstdio>

#include "json/json_writer.h"
#include "server/request_context.h"

namespace timetrail::project {
namespace {

using json::JsonWriter;
using server::Access;
using server::ApiResponse;
using server::ErrorResponse;
using server::JsonResponse;
using server::kOnWorker;
using server::RequestContext;

constexpr std::int64_t kDefaultWaitMillis = 5000;
constexpr std::int64_t kMaxWaitMillis = 60000;

ApiResponse NoProjections() {
  return ErrorResponse(404, "not_found",
                       "this server runs no projections; start them with `timetrail serve "
                       "--project CONFIG` (docs/projections.md)");
}

void WriteProjection(JsonWriter& w, const ProjectionService::Running& r, Position head) {
  const ProgressSnapshot s = r.progress.Get();
  w.BeginObject();
  w.Key("name").String(r.spec.name);
  w.Key("kind").String(KindName(r.spec.kind));
  w.Key("schema").String(r.spec.schema);
  w.Key("table").String(r.spec.table_name());
  w.Key("position").Uint(s.position);
  w.Key("head").Uint(head);
  w.Key("lag_events").Uint(head > s.position ? head - s.position : 0);
  w.Key("lag_seconds").Fixed(s.lag_seconds, 3);
  w.Key("events").Uint(s.events);
  w.Key("failures").Uint(s.failures);
  w.Key("running").Bool(s.running);
  if (s.error.empty()) {
    w.Key("error").Null();
  } else {
    w.Key("error").String(s.error);
  }
  w.EndObject();
}

ApiResponse ListProjections(const ProjectionService* service) {
  if (service == nullptr) return NoProjections();
  const Position head = service->store().LastPosition();
  JsonWriter w;
  w.BeginObject();
  w.Key("projections").BeginArray();
  for (const auto& r : service->projections()) WriteProjection(w, *r, head);
  w.EndArray();
  w.EndObject();
  return JsonResponse(200, w.Take());
}

ApiResponse GetProjection(RequestContext& rc, const ProjectionService* service) {
  if (service == nullptr) return NoProjections();
  const std::string& name = rc.Param("name");
  const ProjectionService::Running* r = service->Find(name);
  if (r == nullptr) {
    return ErrorResponse(404, "not_found", "no projection named '" + name + "' runs here");
  }
  if (rc.QueryParam("min_position") != nullptr) {
    Result<std::uint64_t> wanted = rc.UintParam("min_position");
    if (!wanted.ok()) return ErrorResponse(wanted.status());
    std::int64_t wait = kDefaultWaitMillis;
    if (rc.QueryParam("timeout_ms") != nullptr) {
      Result<std::uint64_t> ms = rc.UintParam("timeout_ms");
      if (!ms.ok()) return ErrorResponse(ms.status());
      if (*ms > static_cast<std::uint64_t>(kMaxWaitMillis)) {
        return ErrorResponse(Status::InvalidArgument("timeout_ms must be at most " +
                                                     std::to_string(kMaxWaitMillis)));
      }
      wait = static_cast<std::int64_t>(*ms);
    }
    const Position reached = r->progress.WaitFor(*wanted, std::chrono::milliseconds(wait));
    if (reached < *wanted) {
      const std::string error = r->progress.Get().error;
      return ErrorResponse(Status::Timeout(
          "projection '" + name + "' had projected up to position " + std::to_string(reached) +
          ", not " + std::to_string(*wanted) + ", within " + std::to_string(wait) + " ms" +
          (error.empty() ? "; retry, or pass a larger timeout_ms" : "; it fails: " + error)));
    }
  }
  JsonWriter w;
  WriteProjection(w, *r, service->store().LastPosition());
  return JsonResponse(200, w.Take());
}

std::string MetricsText(const ProjectionService& service) {
  const Position head = service.store().LastPosition();
  std::string o;
  auto family = [&o](const char* name, const char* type, const char* help) {
    o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  auto each = [&](const char* name, auto value) {
    for (const auto& r : service.projections()) {
      o += std::string(name) + "{projection=\"" + r->spec.name + "\"} " + value(*r) + "\n";
    }
  };
  using Running = ProjectionService::Running;
  family("timetrail_projection_position", "gauge",
         "The last log position written to the projection's tables.");
  each("timetrail_projection_position",
       [](const Running& r) { return std::to_string(r.progress.Get().position); });
  family("timetrail_projection_lag_events", "gauge",
         "Events committed to the log but not yet projected.");
  each("timetrail_projection_lag_events", [head](const Running& r) {
    const Position p = r.progress.Get().position;
    return std::to_string(head > p ? head - p : 0);
  });
  family("timetrail_projection_lag_seconds", "gauge",
         "Age of the newest projected event while behind (0 when caught up).");
  each("timetrail_projection_lag_seconds", [](const Running& r) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", r.progress.Get().lag_seconds);
    return std::string(buf);
  });
  family("timetrail_projection_events_total", "counter",
         "Events read by the projection since the server started.");
  each("timetrail_projection_events_total",
       [](const Running& r) { return std::to_string(r.progress.Get().events); });
  family("timetrail_projection_failures_total", "counter",
         "Times the projection failed and started again since the server started.");
  each("timetrail_projection_failures_total",
       [](const Running& r) { return std::to_string(r.progress.Get().failures); });
  return o;
}

}  // namespace

server::ApiExtension ProjectionsApi(const ProjectionService* service) {
  server::ApiExtension out;
  out.routes = {
      {"GET", "/v1/projections", Access::kRead, kOnWorker,
       [service](RequestContext&) { return ListProjections(service); }},
      {"GET", "/v1/projections/{name}", Access::kRead, kOnWorker,
       [service](RequestContext& rc) { return GetProjection(rc, service); }},
  };
  if (service != nullptr) out.metrics = [service] { return MetricsText(*service); };
  return out;
}

}  // namespace timetrail::project
