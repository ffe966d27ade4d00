#include "server/request_context.h"

#include <charconv>
#include <chrono>

namespace timetrail::server {
namespace {

constexpr std::size_t kDefaultLimit = 100;
constexpr std::size_t kMaxLimit = 1000;
constexpr std::int64_t kDefaultWaitMillis = 5000;
constexpr std::int64_t kMaxWaitMillis = 60000;

ApiResponse Forbidden(const std::string& message) {
  return ErrorResponse(403, "forbidden", message);
}

void WriteStreamResult(const StreamResult& s, json::JsonWriter* w) {
  w->Key("stream").String(s.stream);
  w->Key("first_revision").Uint(s.first_revision);
  w->Key("revision").Uint(s.last_revision);
  w->Key("first_position").Uint(s.first_position);
  w->Key("position").Uint(s.last_position);
}

}  // namespace

const std::string& RequestContext::Param(std::string_view name) const {
  for (const auto& [key, value] : params_) {
    if (key == name) return value;
  }
  static const std::string kNone;
  return kNone;
}

const std::string* RequestContext::QueryParam(std::string_view name) const {
  auto it = query_.find(name);
  return it == query_.end() ? nullptr : &it->second;
}

std::optional<ApiResponse> RequestContext::Deny(Scope scope,
                                                std::optional<std::string_view> stream) const {
  if (!principal_.Has(scope)) {
    return Forbidden(principal_.Describe() + " lacks the '" + std::string(ScopeName(scope)) +
                     "' scope this needs");
  }
  if (stream && !principal_.Covers(*stream)) {
    if (IsSystemStream(*stream)) {
      return Forbidden("'" + std::string(*stream) +
                       "' is a system stream: only an admin token without prefixes may read it");
    }
    return Forbidden(principal_.Describe() + " may use only streams under " + PrefixList() +
                     ", not '" + std::string(*stream) + "'");
  }
  return std::nullopt;
}

std::optional<ApiResponse> RequestContext::DenyAcrossStreams(const std::string& prefix,
                                                             bool* skip_system) const {
  if (std::optional<ApiResponse> d = Deny(kScopeRead)) return d;
  if (!principal_.CoversPrefix(prefix)) {
    return Forbidden(principal_.Describe() + " may read only streams under " + PrefixList() +
                     ": pass one of them (or a longer prefix) as stream_prefix");
  }
  *skip_system = !principal_.Covers(kAuditStream);
  return std::nullopt;
}

std::optional<ApiResponse> RequestContext::DenyUnlessFullAdmin() const {
  if (std::optional<ApiResponse> d = Deny(kScopeAdmin)) return d;
  if (!principal_.prefixes.empty()) {
    return Forbidden(principal_.Describe() +
                     " is limited to stream prefixes; this needs an "
                     "admin token without prefixes");
  }
  return std::nullopt;
}

std::string RequestContext::PrefixList() const {
  std::string out;
  for (std::size_t i = 0; i < principal_.prefixes.size(); ++i) {
    out += (i ? ", '" : "'") + principal_.prefixes[i] + "'";
  }
  return out;
}

Result<json::RawJson> RequestContext::BodyObject() {
  if (request_.body.empty()) {
    return Status::InvalidArgument("a JSON object body is required");
  }
  Result<json::RawJson> body = json::ParseRawJson(request_.body);
  if (!body.ok()) {
    bad_json_ = true;
    return Status::InvalidArgument("request body is not valid JSON: " + body.status().message());
  }
  if (!body->is_object()) {
    return Status::InvalidArgument("request body must be a JSON object, got " +
                                   std::string(body->KindName()));
  }
  return body;
}

ApiResponse RequestContext::BodyError(const Status& s) const {
  if (bad_json_) return ErrorResponse(400, "bad_json", s.message());
  return ErrorResponse(s);
}

std::optional<ApiResponse> RequestContext::Audit(std::string_view type,
                                                 const std::string& data_json) {
  Result<Position> p = tokens().RecordAction(type, data_json, principal_);
  if (p.ok()) return std::nullopt;
  return ErrorResponse(HttpStatusFor(p.status().code()), StatusCodeName(p.status().code()),
                       "the " + std::string(type) + " took effect, but " + p.status().message());
}

Result<std::uint64_t> RequestContext::UintParam(std::string_view name) const {
  const std::string* v = QueryParam(name);
  return ParseUint(v == nullptr ? std::string_view() : std::string_view(*v), name);
}

Result<std::size_t> RequestContext::LimitParam() const {
  return LimitParam(kDefaultLimit, kMaxLimit);
}

Result<std::size_t> RequestContext::LimitParam(std::size_t fallback, std::size_t max) const {
  const std::string* text = QueryParam("limit");
  if (text == nullptr) return fallback;
  TT_ASSIGN_OR_RETURN(std::uint64_t v, ParseUint(*text, "limit"));
  if (v == 0 || v > max) {
    return Status::InvalidArgument("limit must be between 1 and " + std::to_string(max) + ", got " +
                                   *text);
  }
  return static_cast<std::size_t>(v);
}

Result<std::optional<Timestamp>> RequestContext::TimeParam(std::string_view name) const {
  const std::string* text = QueryParam(name);
  if (text == nullptr) return std::optional<Timestamp>();
  Result<Timestamp> t = ParseTimestamp(*text);
  if (!t.ok()) return t.status().WithPrefix(std::string(name));
  return std::optional<Timestamp>(*t);
}

LogFilter RequestContext::FilterParams() const {
  LogFilter f;
  if (const std::string* p = QueryParam("stream_prefix")) f.stream_prefix = *p;
  if (const std::string* t = QueryParam("types")) f.event_types = SplitComma(*t);
  return f;
}

Status RequestContext::WaitForMinPosition() const {
  if (QueryParam("min_position") == nullptr) return Status::Ok();
  TT_ASSIGN_OR_RETURN(std::uint64_t p, UintParam("min_position"));
  std::int64_t wait = kDefaultWaitMillis;
  if (QueryParam("timeout_ms") != nullptr) {
    TT_ASSIGN_OR_RETURN(std::uint64_t ms, UintParam("timeout_ms"));
    if (ms > static_cast<std::uint64_t>(kMaxWaitMillis)) {
      return Status::InvalidArgument("timeout_ms must be at most " +
                                     std::to_string(kMaxWaitMillis));
    }
    wait = static_cast<std::int64_t>(ms);
  }
  Status s = store().WaitForPosition(p, std::chrono::milliseconds(wait));
  if (s.code() == StatusCode::kTimeout) {
    return Status::Timeout("position " + std::to_string(p) + " was not readable within " +
                           std::to_string(wait) + " ms (the last position is " +
                           std::to_string(store().LastPosition()) +
                           "); retry, or pass a larger timeout_ms");
  }
  return s;
}

Result<std::uint64_t> ParseUint(std::string_view text, std::string_view what) {
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    return Status::InvalidArgument(std::string(what) +
                                   " must be a non-negative whole number, got '" +
                                   std::string(text) + "'");
  }
  return v;
}

std::vector<std::string> SplitComma(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    std::size_t c = s.find(',');
    std::string_view part = s.substr(0, c);
    if (!part.empty()) out.emplace_back(part);
    if (c == std::string_view::npos) break;
    s.remove_prefix(c + 1);
  }
  return out;
}

Result<std::uint64_t> IfMatchRevision(std::string_view tag) {
  if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"') {
    tag = tag.substr(1, tag.size() - 2);
  }
  return ParseUint(tag, "If-Match");
}

Result<ExpectedRevision> ParseExpected(const json::RawJson* v, const std::string& field) {
  using Kind = json::RawJson::Kind;
  if (v == nullptr) return ExpectedRevision::Any();
  if (v->kind == Kind::kNumber) {
    std::optional<std::uint64_t> n = v->AsUint();
    if (!n) {
      return Status::InvalidArgument(field +
                                     " must be \"any\", \"no_stream\", \"exists\" or a "
                                     "revision (a non-negative whole number)");
    }
    return ExpectedRevision::Exact(*n);
  }
  if (v->kind == Kind::kString) {
    Result<ExpectedRevision> r = ExpectedRevision::Parse(v->str);
    if (!r.ok()) return r.status().WithPrefix(field);
    return r;
  }
  return Status::InvalidArgument(field +
                                 " must be \"any\", \"no_stream\", \"exists\" or a revision");
}

std::optional<ApiResponse> RefuseSystemStreamWrite(std::string_view stream) {
  if (!IsSystemStream(stream)) return std::nullopt;
  return ErrorResponse(Status::InvalidArgument(
      "stream '" + std::string(stream) +
      "': names beginning with '$' are reserved for the server's own streams (such as " +
      std::string(kAuditStream) + ")"));
}

void WriteEvents(const std::vector<RecordedEvent>& events, std::size_t count,
                 json::JsonWriter* out) {
  out->BeginArray();
  for (std::size_t i = 0; i < count && i < events.size(); ++i) WriteEvent(events[i], out);
  out->EndArray();
}

std::string CommittedJson(const Committed& c, bool single) {
  json::JsonWriter w;
  w.BeginObject();
  if (single && !c.streams.empty()) {
    WriteStreamResult(c.streams.front(), &w);
  } else {
    w.Key("first_position").Uint(c.first_position);
    w.Key("position").Uint(c.last_position);
  }
  w.Key("tx").Uint(c.tx);
  w.Key("recorded_at").String(FormatTimestamp(c.recorded_at));
  w.Key("idempotent_replay").Bool(c.idempotent_replay);
  if (!single) {
    w.Key("streams").BeginArray();
    for (const StreamResult& s : c.streams) {
      w.BeginObject();
      WriteStreamResult(s, &w);
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  return w.Take();
}

ApiResponse CommittedResponse(const Committed& c) {
  ApiResponse r = JsonResponse(c.idempotent_replay ? 200 : 201, CommittedJson(c, true));
  if (!c.streams.empty()) {
    r.headers.emplace_back("ETag", "\"" + std::to_string(c.streams.front().last_revision) + "\"");
  }
  return r;
}

}  // namespace timetrail::server
