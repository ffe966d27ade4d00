#include "server/api_message.h"

namespace timetrail::server {

ApiResponse JsonResponse(int status, std::string body) {
  ApiResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kTooLarge:
      return 413;
    case StatusCode::kWrongExpectedRevision:
      return 409;
    case StatusCode::kDuplicateEvent:
      return 409;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kTimeout:
      return 504;
    case StatusCode::kUnavailable:
      return 503;
    // The disk failed and nothing was acknowledged: the server stays up and a later retry may
    // succeed (docs/operations.md, "Faults and a full disk"). A full disk is 507, below.
    case StatusCode::kIOError:
      return 503;
    case StatusCode::kCorruption:
      return 500;
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

ApiResponse ErrorResponse(int status, std::string_view code, std::string_view message) {
  json::JsonWriter w;
  w.BeginObject().Key("error").String(code).Key("message").String(message).EndObject();
  return JsonResponse(status, w.Take());
}

ApiResponse ErrorResponse(const Status& s) {
  json::JsonWriter w;
  w.BeginObject();
  w.Key("error").String(StatusCodeName(s.code()));
  w.Key("message").String(s.message());
  if (const ConflictDetail* c = s.conflict()) {
    w.Key("stream").String(c->stream);
    w.Key("actual_revision").UintOrNull(c->actual_revision);
  }
  w.EndObject();
  if (s.code() == StatusCode::kIOError &&
      s.message().find("the disk is full") != std::string::npos) {
    return JsonResponse(507, w.Take());  // Insufficient Storage
  }
  return JsonResponse(HttpStatusFor(s.code()), w.Take());
}

void WriteEvent(const RecordedEvent& e, json::JsonWriter* out) {
  out->BeginObject();
  out->Key("stream").String(e.stream);
  out->Key("revision").Uint(e.revision);
  out->Key("position").Uint(e.position);
  out->Key("id").String(e.id.ToString());
  out->Key("type").String(e.type);
  out->Key("data").Raw(e.data.empty() ? std::string_view("null") : std::string_view(e.data));
  out->Key("metadata")
      .Raw(e.metadata.empty() ? std::string_view("{}") : std::string_view(e.metadata));
  out->Key("recorded_at").String(FormatTimestamp(e.recorded_at));
  out->Key("valid_from").String(FormatTimestamp(e.valid_from));
  out->Key("tx").Uint(e.tx);
  out->Key("hash").String(e.HashHex());
  out->EndObject();
}

std::string EventJson(const RecordedEvent& e) {
  json::JsonWriter w(e.data.size() + e.metadata.size() + e.stream.size() + 320);
  WriteEvent(e, &w);
  return w.Take();
}

}  // namespace timetrail::server
