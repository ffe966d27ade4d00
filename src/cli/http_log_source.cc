#include "cli/http_log_source.h"

#include "server/raw_json.h"
#include "timetrail/time.h"

namespace timetrail::cli {
namespace {

using json::RawJson;

Status Malformed(const std::string& what) {
  return Status::IOError("the server's answer is not what the API documents: " + what);
}

Result<std::uint64_t> Uint(const RawJson& object, const char* key) {
  const RawJson* v = object.Find(key);
  if (v == nullptr || !v->AsUint())
    return Malformed(std::string("no whole number \"") + key + "\"");
  return *v->AsUint();
}

Result<std::string> String(const RawJson& object, const char* key) {
  const RawJson* v = object.Find(key);
  if (v == nullptr || v->kind != RawJson::Kind::kString) {
    return Malformed(std::string("no string \"") + key + "\"");
  }
  return v->str;
}

// An event object of the API (docs/http-api.md, "The event object").
Result<RecordedEvent> ParseEvent(const RawJson& v) {
  RecordedEvent e;
  TT_ASSIGN_OR_RETURN(e.stream, String(v, "stream"));
  TT_ASSIGN_OR_RETURN(e.revision, Uint(v, "revision"));
  TT_ASSIGN_OR_RETURN(e.position, Uint(v, "position"));
  TT_ASSIGN_OR_RETURN(e.tx, Uint(v, "tx"));
  TT_ASSIGN_OR_RETURN(e.type, String(v, "type"));
  TT_ASSIGN_OR_RETURN(std::string id, String(v, "id"));
  TT_ASSIGN_OR_RETURN(e.id, Uuid::Parse(id));
  if (const RawJson* data = v.Find("data")) e.data = std::string(data->text);
  if (const RawJson* meta = v.Find("metadata")) e.metadata = std::string(meta->text);
  TT_ASSIGN_OR_RETURN(std::string recorded, String(v, "recorded_at"));
  TT_ASSIGN_OR_RETURN(e.recorded_at, ParseTimestamp(recorded));
  TT_ASSIGN_OR_RETURN(std::string valid, String(v, "valid_from"));
  TT_ASSIGN_OR_RETURN(e.valid_from, ParseTimestamp(valid));
  return e;
}

class HttpSource final : public project::LogSource {
 public:
  HttpSource(Backend& backend, Headers headers) : backend_(backend), headers_(std::move(headers)) {}

  Result<LogPage> ReadLog(Position from, std::size_t max) override {
    TT_ASSIGN_OR_RETURN(RawJson page, Get("/v1/log?from=" + std::to_string(from) + "&limit=" +
                                          std::to_string(std::min<std::size_t>(max, 1000))));
    LogPage out;
    TT_ASSIGN_OR_RETURN(out.head_position, Uint(page, "head"));
    TT_ASSIGN_OR_RETURN(out.next_position, Uint(page, "next"));
    const RawJson* events = page.Find("events");
    if (events == nullptr) return Malformed("no \"events\"");
    for (const RawJson& e : events->items) {
      TT_ASSIGN_OR_RETURN(RecordedEvent event, ParseEvent(e));
      out.events.push_back(std::move(event));
    }
    return out;
  }

  Result<std::vector<RecordedEvent>> ReadStream(std::string_view stream,
                                                Revision through) override {
    std::vector<RecordedEvent> out;
    Revision from = 0;
    while (true) {
      TT_ASSIGN_OR_RETURN(RawJson page, Get("/v1/streams/" + UrlEncode(stream) +
                                            "?limit=1000&from=" + std::to_string(from)));
      const RawJson* events = page.Find("events");
      if (events == nullptr) return Malformed("no \"events\"");
      for (const RawJson& e : events->items) {
        TT_ASSIGN_OR_RETURN(RecordedEvent event, ParseEvent(e));
        if (event.revision > through) return out;
        out.push_back(std::move(event));
      }
      const RawJson* next = page.Find("next");
      if (next == nullptr || !next->AsUint() || events->items.empty()) return out;
      from = *next->AsUint();
    }
  }

  Result<EntityState> StateAt(std::string_view stream, Revision revision) override {
    TT_ASSIGN_OR_RETURN(RawJson v, Get("/v1/entities/" + UrlEncode(stream) +
                                       "?at_revision=" + std::to_string(revision)));
    EntityState s;
    s.stream = std::string(stream);
    const RawJson* exists = v.Find("exists");
    s.exists = exists != nullptr && exists->kind == RawJson::Kind::kBool && exists->boolean;
    const RawJson* state = v.Find("state");
    s.state = state == nullptr ? "null" : std::string(state->text);
    return s;
  }

  Status WaitPast(Position position, std::chrono::milliseconds timeout) override {
    // A consistency-token wait: the server answers as soon as the position is committed.
    Result<HttpResponse> r = backend_.Call("GET",
                                           "/v1/log?limit=1&from=" + std::to_string(position + 1) +
                                               "&min_position=" + std::to_string(position + 1) +
                                               "&timeout_ms=" + std::to_string(timeout.count()),
                                           "", headers_);
    if (!r.ok()) return r.status();
    return Status::Ok();  // 200 or a timeout's answer: either way, look again
  }

  std::string Describe() const override { return backend_.Describe(); }

 private:
  Result<RawJson> Get(const std::string& target) {
    TT_ASSIGN_OR_RETURN(HttpResponse r, backend_.Call("GET", target, "", headers_));
    if (r.status != 200) {
      const Status error =
          Status::IOError(backend_.Describe() + " answered " + std::to_string(r.status) +
                          " to GET " + target + ": " + r.body);
      return r.status == 401 || r.status == 403 ? Status::InvalidArgument(error.message()) : error;
    }
    // The parsed value's texts point into its body, which lives until the next call.
    body_ = std::move(r.body);
    Result<RawJson> v = json::ParseRawJson(body_);
    if (!v.ok()) return Malformed(v.status().message());
    return v;
  }

  Backend& backend_;
  Headers headers_;
  std::string body_;
};

}  // namespace

std::unique_ptr<project::LogSource> HttpLogSource(Backend& backend, Headers headers) {
  return std::make_unique<HttpSource>(backend, std::move(headers));
}

}  // namespace timetrail::cli
