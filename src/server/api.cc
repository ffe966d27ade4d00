#include "server/api.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <map>
#include <string_view>

#include "server/capture_api.h"
#include "json/json_writer.h"
#include "json/raw_json.h"

namespace timetrail::server {

using json::JsonQuote;
using json::ParseRawJson;
using json::RawJson;
namespace {

using Query = std::map<std::string, std::string, std::less<>>;

constexpr std::size_t kDefaultLimit = 100;
constexpr std::size_t kMaxLimit = 1000;
constexpr std::int64_t kDefaultWaitMillis = 5000;
constexpr std::int64_t kMaxWaitMillis = 60000;

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kTooLarge: return 413;
    case StatusCode::kWrongExpectedRevision: return 409;
    case StatusCode::kDuplicateEvent: return 409;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kTimeout: return 504;
    case StatusCode::kUnavailable: return 503;
    // The disk failed and nothing was acknowledged: the server stays up and a later retry may
    // succeed (docs/operations.md, "Faults and a full disk"). A full disk is 507, below.
    case StatusCode::kIOError: return 503;
    case StatusCode::kCorruption: return 500;
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes "in"; "+" means a space only in query strings.
Result<std::string> PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size() || HexValue(in[i + 1]) < 0 || HexValue(in[i + 2]) < 0) {
        return Status::InvalidArgument("malformed percent-encoding in '" + std::string(in) + "'");
      }
      out.push_back(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<std::uint64_t> ParseUint(std::string_view text, std::string_view what) {
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    return Status::InvalidArgument(std::string(what) + " must be a non-negative whole number, got '" +
                                   std::string(text) + "'");
  }
  return v;
}

std::string U64(std::uint64_t v) { return std::to_string(v); }

ApiResponse Json(int status, std::string body) {
  ApiResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

std::string EventsArray(const std::vector<RecordedEvent>& events, std::size_t count) {
  std::string out = "[";
  for (std::size_t i = 0; i < count && i < events.size(); ++i) {
    if (i > 0) out += ",";
    out += EventJson(events[i]);
  }
  out += "]";
  return out;
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

Result<std::size_t> LimitParam(const Query& q) {
  auto it = q.find("limit");
  if (it == q.end()) return kDefaultLimit;
  TT_ASSIGN_OR_RETURN(std::uint64_t v, ParseUint(it->second, "limit"));
  if (v == 0 || v > kMaxLimit) {
    return Status::InvalidArgument("limit must be between 1 and " + U64(kMaxLimit) + ", got " +
                                   it->second);
  }
  return static_cast<std::size_t>(v);
}

// Reads an "events" array of a request body into proposed events. "field" prefixes errors.
Status ParseEvents(const RawJson* events, const std::string& field,
                   std::vector<ProposedEvent>* out) {
  if (events == nullptr) return Status::InvalidArgument(field + " is required");
  if (events->kind != RawJson::Kind::kArray) {
    return Status::InvalidArgument(field + " must be an array, got " +
                                   std::string(events->KindName()));
  }
  for (std::size_t i = 0; i < events->items.size(); ++i) {
    const RawJson& ev = events->items[i];
    std::string f = field + "[" + U64(i) + "]";
    if (!ev.is_object()) return Status::InvalidArgument(f + " must be an object");
    ProposedEvent pe;
    for (const auto& [key, value] : ev.members) {
      if (key == "id") {
        if (value.kind != RawJson::Kind::kString) {
          return Status::InvalidArgument(f + ".id must be a UUID string");
        }
        Result<Uuid> id = Uuid::Parse(value.str);
        if (!id.ok()) return id.status().WithPrefix(f + ".id");
        pe.id = *id;
      } else if (key == "type") {
        if (value.kind != RawJson::Kind::kString) {
          return Status::InvalidArgument(f + ".type must be a string");
        }
        pe.type = value.str;
      } else if (key == "data") {
        pe.data = std::string(value.text);
      } else if (key == "metadata") {
        if (!value.is_object() && value.kind != RawJson::Kind::kNull) {
          return Status::InvalidArgument(f + ".metadata must be an object");
        }
        if (value.is_object()) pe.metadata = std::string(value.text);
      } else if (key == "valid_from") {
        if (value.kind != RawJson::Kind::kString) {
          return Status::InvalidArgument(f + ".valid_from must be an RFC 3339 time string");
        }
        Result<Timestamp> t = ParseTimestamp(value.str);
        if (!t.ok()) return t.status().WithPrefix(f + ".valid_from");
        pe.valid_from = *t;
      } else {
        return Status::InvalidArgument(f + " has an unknown field '" + key +
                                       "'; allowed: id, type, data, metadata, valid_from");
      }
    }
    if (ev.Find("type") == nullptr) return Status::InvalidArgument(f + ".type is required");
    out->push_back(std::move(pe));
  }
  return Status::Ok();
}

Result<ExpectedRevision> ParseExpected(const RawJson* v, const std::string& field) {
  if (v == nullptr) return ExpectedRevision::Any();
  if (v->kind == RawJson::Kind::kNumber) {
    std::optional<std::uint64_t> n = v->AsUint();
    if (!n) {
      return Status::InvalidArgument(field + " must be \"any\", \"no_stream\", \"exists\" or a "
                                     "revision (a non-negative whole number)");
    }
    return ExpectedRevision::Exact(*n);
  }
  if (v->kind == RawJson::Kind::kString) {
    Result<ExpectedRevision> r = ExpectedRevision::Parse(v->str);
    if (!r.ok()) return r.status().WithPrefix(field);
    return r;
  }
  return Status::InvalidArgument(field + " must be \"any\", \"no_stream\", \"exists\" or a revision");
}

std::string StreamResultJson(const StreamResult& s) {
  return "{\"stream\":" + JsonQuote(s.stream) + ",\"first_revision\":" + U64(s.first_revision) +
         ",\"revision\":" + U64(s.last_revision) + ",\"first_position\":" + U64(s.first_position) +
         ",\"position\":" + U64(s.last_position) + "}";
}

// A request target split the way every route reads it: percent-decoded path segments (split
// before decoding, so that a "%2F" inside a stream name stays inside its segment; a trailing
// slash ignored) and the decoded query parameters.
struct Target {
  std::vector<std::string> segments;
  Query query;
};

Result<Target> ParseTarget(std::string_view target) {
  Target t;
  std::size_t qm = target.find('?');
  if (qm != std::string_view::npos) {
    std::string_view q = target.substr(qm + 1);
    while (!q.empty()) {
      std::size_t amp = q.find('&');
      std::string_view pair = q.substr(0, amp);
      if (!pair.empty()) {
        std::size_t eq = pair.find('=');
        TT_ASSIGN_OR_RETURN(std::string k, PercentDecode(pair.substr(0, eq), true));
        std::string v;
        if (eq != std::string_view::npos) {
          TT_ASSIGN_OR_RETURN(v, PercentDecode(pair.substr(eq + 1), true));
        }
        t.query[std::move(k)] = std::move(v);
      }
      if (amp == std::string_view::npos) break;
      q.remove_prefix(amp + 1);
    }
  }
  std::string_view rest = target.substr(0, qm);
  if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  while (true) {
    std::size_t slash = rest.find('/');
    TT_ASSIGN_OR_RETURN(std::string seg, PercentDecode(rest.substr(0, slash), false));
    t.segments.push_back(std::move(seg));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  if (!t.segments.empty() && t.segments.back().empty() && t.segments.size() > 1) {
    t.segments.pop_back();
  }
  return t;
}

class Handler {
 public:
  Handler(EventStore* store, subscribe::SubscriptionHub* hub, Metrics* metrics,
          const CaptureLink* capture, const std::string& backup_dir, TokenRegistry* tokens,
          const AuthOptions& auth, const ApiRequest& req)
      : store_(store), hub_(hub), metrics_(metrics), capture_(capture), backup_dir_(backup_dir),
        tokens_(tokens),
        auth_(auth), req_(req) {}

  ApiResponse Run() {
    Result<Target> target = ParseTarget(req_.target);
    if (!target.ok()) return ErrorResponse(target.status());
    query_ = std::move(target->query);
    const std::vector<std::string>& segs = target->segments;
    if (std::optional<ApiResponse> refused = Authenticate(segs)) return *refused;

    if (req_.method == "POST" && !req_.body.empty()) {
      std::string_view ct = req_.content_type;
      std::string_view base = ct.substr(0, ct.find(';'));
      while (!base.empty() && base.back() == ' ') base.remove_suffix(1);
      if (base != "application/json") {
        return ErrorResponse(415, "unsupported_media_type",
                             "request bodies must be JSON: send 'Content-Type: application/json'" +
                                 std::string(ct.empty() ? "" : " (got '" + std::string(ct) + "')"));
      }
    }
    return Route(segs);
  }

 private:
  ApiResponse MethodNotAllowed(std::string_view allowed) {
    ApiResponse r = ErrorResponse(405, "method_not_allowed",
                                  req_.method + " is not allowed here; use " + std::string(allowed));
    r.headers.emplace_back("Allow", std::string(allowed));
    return r;
  }

  // Waits for min_position on reads; returns a non-OK status to send instead.
  Status WaitForMinPosition() {
    auto it = query_.find("min_position");
    if (it == query_.end()) return Status::Ok();
    TT_ASSIGN_OR_RETURN(std::uint64_t p, ParseUint(it->second, "min_position"));
    std::int64_t wait = kDefaultWaitMillis;
    if (auto t = query_.find("timeout_ms"); t != query_.end()) {
      TT_ASSIGN_OR_RETURN(std::uint64_t ms, ParseUint(t->second, "timeout_ms"));
      if (ms > static_cast<std::uint64_t>(kMaxWaitMillis)) {
        return Status::InvalidArgument("timeout_ms must be at most " + U64(kMaxWaitMillis));
      }
      wait = static_cast<std::int64_t>(ms);
    }
    Status s = store_->WaitForPosition(p, std::chrono::milliseconds(wait));
    if (s.code() == StatusCode::kTimeout) {
      return Status::Timeout("position " + U64(p) + " was not readable within " +
                             std::to_string(wait) + " ms (the last position is " +
                             U64(store_->LastPosition()) +
                             "); retry, or pass a larger timeout_ms");
    }
    return s;
  }

  // Sets principal_ from the Authorization header; returns the 401 to send instead.
  std::optional<ApiResponse> Authenticate(const std::vector<std::string>& segs) {
    if (segs.size() == 1 && segs[0] == "healthz") return std::nullopt;  // open to probes
    if (req_.authorization.empty()) {
      principal_.actor = auth_.anonymous_actor;
      if (!auth_.required) return std::nullopt;
      return Unauthorized("this server requires an API token: send 'Authorization: Bearer "
                          "<token>' (timetrail commands: --token or TIMETRAIL_TOKEN); see "
                          "docs/security.md",
                          false);
    }
    Result<Principal> p = tokens_->Authenticate(req_.authorization);
    if (!p.ok()) return Unauthorized(p.status().message(), true);
    principal_ = std::move(*p);
    return std::nullopt;
  }

  static ApiResponse Unauthorized(const std::string& message, bool token_given) {
    ApiResponse r = ErrorResponse(401, "unauthenticated", message);
    r.headers.emplace_back("WWW-Authenticate", token_given
                                                   ? "Bearer realm=\"timetrail\", error=\"invalid_token\""
                                                   : "Bearer realm=\"timetrail\"");
    return r;
  }

  static ApiResponse Forbidden(const std::string& message) {
    return ErrorResponse(403, "forbidden", message);
  }

  // The 403 to send when the principal lacks "scope" or, given a stream, may not use it.
  std::optional<ApiResponse> Deny(Scope scope, std::optional<std::string_view> stream = {}) {
    if (!principal_.Has(scope)) {
      return Forbidden(principal_.Describe() + " lacks the '" + std::string(ScopeName(scope)) +
                       "' scope this needs");
    }
    if (stream && !principal_.Covers(*stream)) {
      if (IsSystemStream(*stream)) {
        return Forbidden("'" + std::string(*stream) +
                         "' is a system stream: only an admin token without prefixes may read it");
      }
      return Forbidden(principal_.Describe() + " may use only streams under " +
                       PrefixList() + ", not '" + std::string(*stream) + "'");
    }
    return std::nullopt;
  }

  // Reads across streams (the log, subscriptions, activity) need the read scope, a stream
  // prefix within the token's prefixes, and leave out system streams for non-admins.
  std::optional<ApiResponse> DenyGlobalRead(const std::string& prefix, bool* skip_system) {
    if (std::optional<ApiResponse> d = Deny(kScopeRead)) return d;
    if (!principal_.CoversPrefix(prefix)) {
      return Forbidden(principal_.Describe() + " may read only streams under " + PrefixList() +
                       ": pass one of them (or a longer prefix) as stream_prefix");
    }
    *skip_system = !principal_.Covers(kAuditStream);
    return std::nullopt;
  }

  // Token management is for admin tokens that reach every stream.
  std::optional<ApiResponse> DenyUnlessFullAdmin() {
    if (std::optional<ApiResponse> d = Deny(kScopeAdmin)) return d;
    if (!principal_.prefixes.empty()) {
      return Forbidden(principal_.Describe() + " is limited to stream prefixes; this needs an "
                       "admin token without prefixes");
    }
    return std::nullopt;
  }

  std::string PrefixList() const {
    std::string out;
    for (std::size_t i = 0; i < principal_.prefixes.size(); ++i) {
      out += (i ? ", '" : "'") + principal_.prefixes[i] + "'";
    }
    return out;
  }

  static std::optional<ApiResponse> RefuseSystemStreamWrite(std::string_view stream) {
    if (!IsSystemStream(stream)) return std::nullopt;
    return ErrorResponse(Status::InvalidArgument(
        "stream '" + std::string(stream) +
        "': names beginning with '$' are reserved for the server's own streams (such as " +
        std::string(kAuditStream) + ")"));
  }

  // Records an administrative action in the audit stream. When that fails, the action has
  // happened but is not on record: say so rather than answer as if all were well.
  std::optional<ApiResponse> Audit(std::string_view type, const std::string& data_json) {
    Result<Position> p = tokens_->RecordAction(type, data_json, principal_);
    if (p.ok()) return std::nullopt;
    return ErrorResponse(HttpStatusFor(p.status().code()), StatusCodeName(p.status().code()),
                         "the " + std::string(type) + " took effect, but " + p.status().message());
  }

  ApiResponse Route(const std::vector<std::string>& s) {
    const std::string& m = req_.method;
    if (m == "GET" || m == "HEAD") {
      Status w = WaitForMinPosition();
      if (!w.ok()) return ErrorResponse(w);
    }
    std::size_t n = s.size();
    if (n == 1 && s[0] == "healthz") {
      if (m != "GET") return MethodNotAllowed("GET");
      return Json(200, "{\"status\":\"ok\",\"position\":" + U64(store_->LastPosition()) + "}");
    }
    if (n == 1 && s[0] == "metrics") {
      if (m != "GET") return MethodNotAllowed("GET");
      if (std::optional<ApiResponse> d = Deny(kScopeRead)) return *d;
      ApiResponse r;
      r.content_type = "text/plain; version=0.0.4";
      r.body = metrics_->Render(store_->GetStats(), hub_->watchers(), store_->LastPosition());
      if (capture_ != nullptr) r.body += CaptureMetricsText(*capture_);
      return r;
    }
    if (n < 2 || s[0] != "v1") return NotFound();
    const std::string& top = s[1];
    if (top == "streams" && n == 3) {
      if (m != "POST" && m != "GET") return MethodNotAllowed("GET, POST");
      if (std::optional<ApiResponse> d = Deny(m == "POST" ? kScopeAppend : kScopeRead, s[2])) {
        return *d;
      }
      return m == "POST" ? AppendStream(s[2]) : ReadStream(s[2]);
    }
    if (top == "streams" && n == 4 && s[3] == "info") {
      if (m != "GET") return MethodNotAllowed("GET");
      if (std::optional<ApiResponse> d = Deny(kScopeRead, s[2])) return *d;
      return StreamInfoOf(s[2]);
    }
    if (top == "transactions" && n == 2) {
      if (m != "POST") return MethodNotAllowed("POST");
      if (std::optional<ApiResponse> d = Deny(kScopeAppend)) return *d;
      return Transact();
    }
    if (top == "log" && n == 2) {
      if (m != "GET") return MethodNotAllowed("GET");
      return ReadLog();
    }
    if (top == "events" && n == 3) {
      if (m != "GET") return MethodNotAllowed("GET");
      if (std::optional<ApiResponse> d = Deny(kScopeRead)) return *d;
      return GetEvent(s[2]);
    }
    if (top == "subscribe" && n == 2) {
      if (m != "GET") return MethodNotAllowed("GET");
      return Subscribe();
    }
    if (top == "consumers" && n == 4 && s[3] == "ack") {
      if (m != "POST") return MethodNotAllowed("POST");
      if (std::optional<ApiResponse> d = Deny(kScopeRead)) return *d;
      return Ack(s[2]);
    }
    if (top == "consumers" && n == 3) {
      if (m != "GET") return MethodNotAllowed("GET");
      if (std::optional<ApiResponse> d = Deny(kScopeRead)) return *d;
      return Consumer(s[2]);
    }
    if (top == "entities" && (n == 3 || (n == 4 && (s[3] == "history" || s[3] == "diff")))) {
      if (m != "GET") return MethodNotAllowed("GET");
      if (std::optional<ApiResponse> d = Deny(kScopeRead, s[2])) return *d;
      if (n == 3) return Entity(s[2]);
      return s[3] == "history" ? History(s[2]) : DiffOf(s[2]);
    }
    if (top == "entities" && n == 4 && s[3] == "revert") {
      if (m != "POST") return MethodNotAllowed("POST");
      if (std::optional<ApiResponse> d = Deny(kScopeAdmin, s[2])) return *d;
      return RevertTo(s[2]);
    }
    if (top == "activity" && n == 2) {
      if (m != "GET") return MethodNotAllowed("GET");
      return Activity();
    }
    if (top == "capture" && n == 2) {
      if (m != "GET") return MethodNotAllowed("GET");
      if (std::optional<ApiResponse> d = Deny(kScopeRead)) return *d;
      return CaptureStatusResponse(capture_);
    }
    if (top == "capture" && n == 3 && s[2] == "revert") {
      if (m != "POST") return MethodNotAllowed("POST");
      // It rewrites rows of any captured table in the source database.
      if (std::optional<ApiResponse> d = DenyUnlessFullAdmin()) return *d;
      return CaptureRevert();
    }
    if (top == "integrity" && n == 2) {
      if (m != "GET") return MethodNotAllowed("GET");
      if (std::optional<ApiResponse> d = Deny(kScopeRead)) return *d;
      IntegrityHead h = store_->GetIntegrityHead();
      return Json(200, "{\"position\":" + U64(h.position) + ",\"hash\":\"" + h.hash_hex + "\"}");
    }
    if (top == "integrity" && n == 3 && s[2] == "verify") {
      if (m != "POST") return MethodNotAllowed("POST");
      if (std::optional<ApiResponse> d = Deny(kScopeAdmin)) return *d;
      return Verify();
    }
    if (top == "backup" && n == 2) {
      if (m != "POST") return MethodNotAllowed("POST");
      // It writes a copy of every stream to a directory on the server's machine.
      if (std::optional<ApiResponse> d = DenyUnlessFullAdmin()) return *d;
      return Backup();
    }
    if (top == "tokens" && (n == 2 || n == 3)) {
      if (n == 2 && m != "GET" && m != "POST") return MethodNotAllowed("GET, POST");
      if (n == 3 && m != "DELETE") return MethodNotAllowed("DELETE");
      if (std::optional<ApiResponse> d = DenyUnlessFullAdmin()) return *d;
      if (n == 3) return RevokeToken(s[2]);
      return m == "GET" ? ListTokens() : CreateToken();
    }
    return NotFound();
  }

  ApiResponse NotFound() {
    std::string path = req_.target.substr(0, req_.target.find('?'));
    return ErrorResponse(404, "not_found",
                         "no endpoint " + req_.method + " " + path + "; see docs/http-api.md");
  }

  // Parses the body as a JSON object.
  Result<RawJson> BodyObject() {
    if (req_.body.empty()) {
      return Status::InvalidArgument("a JSON object body is required");
    }
    Result<RawJson> body = ParseRawJson(req_.body);
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

  ApiResponse BodyError(const Status& s) {
    if (bad_json_) return ErrorResponse(400, "bad_json", s.message());
    return ErrorResponse(s);
  }

  static std::string CommittedJson(const Committed& c, bool single) {
    std::string out = "{";
    if (single && !c.streams.empty()) {
      const StreamResult& s = c.streams.front();
      out += "\"stream\":" + JsonQuote(s.stream) + ",\"first_revision\":" + U64(s.first_revision) +
             ",\"revision\":" + U64(s.last_revision) + ",\"first_position\":" +
             U64(s.first_position) + ",\"position\":" + U64(s.last_position) + ",";
    } else {
      out += "\"first_position\":" + U64(c.first_position) + ",\"position\":" +
             U64(c.last_position) + ",";
    }
    out += "\"tx\":" + U64(c.tx) + ",\"recorded_at\":" + JsonQuote(FormatTimestamp(c.recorded_at)) +
           ",\"idempotent_replay\":" + (c.idempotent_replay ? "true" : "false");
    if (!single) {
      out += ",\"streams\":[";
      for (std::size_t i = 0; i < c.streams.size(); ++i) {
        if (i > 0) out += ",";
        out += StreamResultJson(c.streams[i]);
      }
      out += "]";
    }
    out += "}";
    return out;
  }

  ApiResponse AppendStream(const std::string& stream) {
    Result<RawJson> body = BodyObject();
    if (!body.ok()) return BodyError(body.status());
    for (const auto& [key, v] : body->members) {
      if (key != "expected_revision" && key != "events") {
        return ErrorResponse(Status::InvalidArgument(
            "unknown field '" + key + "'; allowed: expected_revision, events"));
      }
    }
    if (std::optional<ApiResponse> r = RefuseSystemStreamWrite(stream)) return *r;
    StreamAppend append;
    append.stream = stream;
    const RawJson* expected = body->Find("expected_revision");
    if (!req_.if_match.empty()) {
      if (expected != nullptr) {
        return ErrorResponse(Status::InvalidArgument(
            "send either an If-Match header or expected_revision in the body, not both"));
      }
      std::string_view tag = req_.if_match;
      if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"') {
        tag = tag.substr(1, tag.size() - 2);
      }
      Result<std::uint64_t> rev = ParseUint(tag, "If-Match");
      if (!rev.ok()) {
        return ErrorResponse(Status::InvalidArgument(
            "If-Match must be a stream revision in quotes, like \"3\" (the ETag of a write)"));
      }
      append.expected = ExpectedRevision::Exact(*rev);
    } else {
      Result<ExpectedRevision> e = ParseExpected(expected, "expected_revision");
      if (!e.ok()) return ErrorResponse(e.status());
      append.expected = *e;
    }
    Status s = ParseEvents(body->Find("events"), "events", &append.events);
    if (!s.ok()) return ErrorResponse(s);
    Transaction tx;
    tx.appends.push_back(std::move(append));
    Result<Committed> c = store_->Transact(tx);
    if (!c.ok()) {
      // The store names fields "appends[0]...."; a single-stream client sent "events[...]".
      return ErrorResponse(c.status());
    }
    ApiResponse r = Json(c->idempotent_replay ? 200 : 201, CommittedJson(*c, true));
    if (!c->streams.empty()) {
      r.headers.emplace_back("ETag", "\"" + U64(c->streams.front().last_revision) + "\"");
    }
    return r;
  }

  ApiResponse Transact() {
    Result<RawJson> body = BodyObject();
    if (!body.ok()) return BodyError(body.status());
    for (const auto& [key, v] : body->members) {
      if (key != "appends") {
        return ErrorResponse(Status::InvalidArgument("unknown field '" + key + "'; allowed: appends"));
      }
    }
    const RawJson* appends = body->Find("appends");
    if (appends == nullptr || appends->kind != RawJson::Kind::kArray) {
      return ErrorResponse(Status::InvalidArgument("appends must be an array of {stream, "
                                                   "expected_revision, events}"));
    }
    Transaction tx;
    for (std::size_t i = 0; i < appends->items.size(); ++i) {
      const RawJson& a = appends->items[i];
      std::string f = "appends[" + U64(i) + "]";
      if (!a.is_object()) return ErrorResponse(Status::InvalidArgument(f + " must be an object"));
      for (const auto& [key, v] : a.members) {
        if (key != "stream" && key != "expected_revision" && key != "events") {
          return ErrorResponse(Status::InvalidArgument(
              f + " has an unknown field '" + key + "'; allowed: stream, expected_revision, events"));
        }
      }
      StreamAppend sa;
      const RawJson* stream = a.Find("stream");
      if (stream == nullptr || stream->kind != RawJson::Kind::kString) {
        return ErrorResponse(Status::InvalidArgument(f + ".stream must be a string"));
      }
      sa.stream = stream->str;
      if (std::optional<ApiResponse> d = Deny(kScopeAppend, sa.stream)) return *d;
      if (std::optional<ApiResponse> r = RefuseSystemStreamWrite(sa.stream)) return *r;
      Result<ExpectedRevision> e = ParseExpected(a.Find("expected_revision"), f + ".expected_revision");
      if (!e.ok()) return ErrorResponse(e.status());
      sa.expected = *e;
      Status s = ParseEvents(a.Find("events"), f + ".events", &sa.events);
      if (!s.ok()) return ErrorResponse(s);
      tx.appends.push_back(std::move(sa));
    }
    Result<Committed> c = store_->Transact(tx);
    if (!c.ok()) return ErrorResponse(c.status());
    return Json(c->idempotent_replay ? 200 : 201, CommittedJson(*c, false));
  }

  ApiResponse ReadStream(const std::string& stream) {
    ReadStreamOptions o;
    if (auto it = query_.find("direction"); it != query_.end()) {
      if (it->second == "backward") {
        o.direction = Direction::kBackward;
      } else if (it->second != "forward") {
        return ErrorResponse(Status::InvalidArgument("direction must be 'forward' or 'backward', got '" +
                                                     it->second + "'"));
      }
    }
    if (auto it = query_.find("from"); it != query_.end()) {
      Result<std::uint64_t> from = ParseUint(it->second, "from");
      if (!from.ok()) return ErrorResponse(from.status());
      o.from_revision = *from;
    }
    Result<std::size_t> limit = LimitParam(query_);
    if (!limit.ok()) return ErrorResponse(limit.status());
    o.max_count = *limit + 1;  // one more tells whether there is a next page
    Result<std::vector<RecordedEvent>> events = store_->ReadStream(stream, o);
    if (!events.ok()) return ErrorResponse(events.status());
    std::string next = "null";
    if (events->size() > *limit) next = U64((*events)[*limit].revision);
    return Json(200, "{\"events\":" + EventsArray(*events, *limit) + ",\"next\":" + next + "}");
  }

  ApiResponse StreamInfoOf(const std::string& stream) {
    Result<StreamInfo> info = store_->GetStreamInfo(stream);
    if (!info.ok()) return ErrorResponse(info.status());
    return Json(200, "{\"stream\":" + JsonQuote(stream) + ",\"exists\":" +
                         (info->exists ? "true" : "false") + ",\"revision\":" +
                         (info->last_revision ? U64(*info->last_revision) : "null") +
                         ",\"position\":" + U64(info->last_position) +
                         ",\"deleted\":" + (info->deleted ? "true" : "false") + "}");
  }

  Result<LogFilter> FilterParams() {
    LogFilter f;
    if (auto it = query_.find("stream_prefix"); it != query_.end()) f.stream_prefix = it->second;
    if (auto it = query_.find("types"); it != query_.end()) f.event_types = SplitComma(it->second);
    return f;
  }

  ApiResponse ReadLog() {
    ReadLogOptions o;
    if (auto it = query_.find("from"); it != query_.end()) {
      Result<std::uint64_t> from = ParseUint(it->second, "from");
      if (!from.ok()) return ErrorResponse(from.status());
      o.from_position = *from == 0 ? 1 : *from;
    }
    Result<std::size_t> limit = LimitParam(query_);
    if (!limit.ok()) return ErrorResponse(limit.status());
    o.max_count = *limit;
    Result<LogFilter> filter = FilterParams();
    if (!filter.ok()) return ErrorResponse(filter.status());
    if (std::optional<ApiResponse> d = DenyGlobalRead(filter->stream_prefix,
                                                      &filter->skip_system_streams)) {
      return *d;
    }
    o.filter = *filter;
    if (!o.filter.empty()) o.max_scan = 100000;
    Result<LogPage> page = store_->ReadLog(o);
    if (!page.ok()) return ErrorResponse(page.status());
    return Json(200, "{\"events\":" + EventsArray(page->events, page->events.size()) +
                         ",\"next\":" + U64(page->next_position) + ",\"head\":" +
                         U64(page->head_position) + "}");
  }

  ApiResponse GetEvent(const std::string& id_text) {
    Result<Uuid> id = Uuid::Parse(id_text);
    if (!id.ok()) return ErrorResponse(id.status().WithPrefix("event id"));
    Result<RecordedEvent> e = store_->GetEvent(*id);
    if (!e.ok()) return ErrorResponse(e.status());
    if (std::optional<ApiResponse> d = Deny(kScopeRead, e->stream)) return *d;
    return Json(200, EventJson(*e));
  }

  ApiResponse Subscribe() {
    SubscribeSpec spec;
    Result<LogFilter> filter = FilterParams();
    if (!filter.ok()) return ErrorResponse(filter.status());
    if (std::optional<ApiResponse> d = DenyGlobalRead(filter->stream_prefix,
                                                      &filter->skip_system_streams)) {
      return *d;
    }
    spec.filter = *filter;
    if (auto it = query_.find("from"); it != query_.end()) {
      Result<std::uint64_t> from = ParseUint(it->second, "from");
      if (!from.ok()) return ErrorResponse(from.status());
      spec.from = *from == 0 ? 1 : *from;
    }
    if (auto it = query_.find("consumer"); it != query_.end()) {
      Result<std::optional<Position>> acked = hub_->GetConsumer(it->second);
      if (!acked.ok()) return ErrorResponse(acked.status());
      if (*acked) spec.from = **acked + 1;
    }
    if (!req_.last_event_id.empty()) {
      Result<std::uint64_t> last = ParseUint(req_.last_event_id, "Last-Event-ID");
      if (!last.ok()) return ErrorResponse(last.status());
      spec.from = *last + 1;
    }
    ApiResponse r;
    r.content_type = "text/event-stream";
    r.subscribe = spec;
    return r;
  }

  ApiResponse Ack(const std::string& name) {
    Result<RawJson> body = BodyObject();
    if (!body.ok()) return BodyError(body.status());
    const RawJson* pos = body->Find("position");
    std::optional<std::uint64_t> p = pos == nullptr ? std::nullopt : pos->AsUint();
    if (!p) {
      return ErrorResponse(Status::InvalidArgument(
          "body must be {\"position\": N} with N the last position the consumer processed"));
    }
    Status s = hub_->AckConsumer(name, *p);
    if (!s.ok()) return ErrorResponse(s);
    return Json(200, "{\"name\":" + JsonQuote(name) + ",\"position\":" + U64(*p) + "}");
  }

  ApiResponse Consumer(const std::string& name) {
    Result<std::optional<Position>> acked = hub_->GetConsumer(name);
    if (!acked.ok()) return ErrorResponse(acked.status());
    if (!*acked) {
      return ErrorResponse(404, "not_found",
                           "consumer '" + name + "' has never acknowledged a position");
    }
    return Json(200, "{\"name\":" + JsonQuote(name) + ",\"position\":" + U64(**acked) + "}");
  }

  ApiResponse Verify() {
    Result<VerifyReport> report = store_->Verify(VerifyOptions{});
    if (!report.ok()) return ErrorResponse(report.status());
    const VerifyReport& r = *report;
    std::string body = std::string("{\"ok\":") + (r.ok ? "true" : "false") +
                       ",\"events_checked\":" + U64(r.events_checked) +
                       ",\"first_bad_position\":" +
                       (r.first_bad_position ? U64(*r.first_bad_position) : "null") +
                       ",\"message\":" + JsonQuote(r.message) + ",\"head\":{\"position\":" +
                       U64(r.head.position) + ",\"hash\":\"" + r.head.hash_hex + "\"}}";
    // The audit event holds the answer itself.
    if (std::optional<ApiResponse> a = Audit("verify", body)) return *a;
    return Json(200, std::move(body));
  }

  Result<std::optional<Timestamp>> TimeParam(const char* name) {
    auto it = query_.find(name);
    if (it == query_.end()) return std::optional<Timestamp>();
    Result<Timestamp> t = ParseTimestamp(it->second);
    if (!t.ok()) return t.status().WithPrefix(name);
    return std::optional<Timestamp>(*t);
  }

  // The point asked for by at_revision, at_position, as_of or valid_at (+ known_at); at most one.
  Result<EntityQuery> PointParam(const char* rev, const char* pos, const char* as_of,
                                 const char* valid_at, bool* given) {
    EntityQuery q = EntityQuery::Latest();
    int count = 0;
    if (auto it = query_.find(rev); it != query_.end()) {
      TT_ASSIGN_OR_RETURN(std::uint64_t r, ParseUint(it->second, rev));
      q = EntityQuery::AtRevision(r);
      ++count;
    }
    if (pos != nullptr) {
      if (auto it = query_.find(pos); it != query_.end()) {
        TT_ASSIGN_OR_RETURN(std::uint64_t p, ParseUint(it->second, pos));
        q = EntityQuery::AtPosition(p);
        ++count;
      }
    }
    TT_ASSIGN_OR_RETURN(std::optional<Timestamp> t, TimeParam(as_of));
    if (t) {
      q = EntityQuery::AsOf(*t);
      ++count;
    }
    if (valid_at != nullptr) {
      TT_ASSIGN_OR_RETURN(std::optional<Timestamp> v, TimeParam(valid_at));
      TT_ASSIGN_OR_RETURN(std::optional<Timestamp> known, TimeParam("known_at"));
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

  static std::string PointJson(const std::optional<EventPoint>& e) {
    if (!e) return "null";
    return "{\"revision\":" + U64(e->revision) + ",\"position\":" + U64(e->position) +
           ",\"recorded_at\":\"" + FormatTimestamp(e->recorded_at) + "\",\"valid_from\":\"" +
           FormatTimestamp(e->valid_from) + "\"}";
  }

  static std::string StateJson(const EntityState& st) {
    const std::optional<EventPoint>& e = st.event;
    return "{\"stream\":" + JsonQuote(st.stream) + ",\"exists\":" + (st.exists ? "true" : "false") +
           ",\"state\":" + (st.state.empty() ? std::string("null") : st.state) +
           ",\"revision\":" + (e ? U64(e->revision) : "null") +
           ",\"position\":" + (e ? U64(e->position) : "null") + ",\"recorded_at\":" +
           (e ? "\"" + FormatTimestamp(e->recorded_at) + "\"" : "null") + ",\"valid_from\":" +
           (e ? "\"" + FormatTimestamp(e->valid_from) + "\"" : "null") + ",\"metadata\":" +
           (e && !e->metadata.empty() ? e->metadata : std::string("null")) + "}";
  }

  ApiResponse Entity(const std::string& stream) {
    Result<EntityQuery> q = PointParam("at_revision", "at_position", "as_of", "valid_at", nullptr);
    if (!q.ok()) return ErrorResponse(q.status());
    Result<EntityState> st = store_->GetEntity(stream, *q);
    if (!st.ok()) return ErrorResponse(st.status());
    return Json(200, StateJson(*st));
  }

  ApiResponse History(const std::string& stream) {
    auto it = query_.find("path");
    std::string path = it == query_.end() ? std::string() : it->second;
    HistoryQuery hq;
    if (auto vt = query_.find("valid_time"); vt != query_.end()) {
      if (vt->second != "true" && vt->second != "false") {
        return ErrorResponse(Status::InvalidArgument("valid_time must be true or false"));
      }
      hq.valid_time = vt->second == "true";
    }
    Result<std::optional<Timestamp>> known = TimeParam("known_at");
    if (!known.ok()) return ErrorResponse(known.status());
    // Without valid time, history is in system time and already ends at what is known now.
    if (*known && !hq.valid_time) {
      return ErrorResponse(Status::InvalidArgument("known_at needs valid_time=true"));
    }
    hq.known_at = *known;
    Result<PropertyHistory> h = store_->GetPropertyHistory(stream, path, hq);
    if (!h.ok()) return ErrorResponse(h.status());
    std::string out = "{\"stream\":" + JsonQuote(h->stream) + ",\"path\":" + JsonQuote(h->path) +
                      ",\"intervals\":[";
    for (std::size_t i = 0; i < h->intervals.size(); ++i) {
      const PropertyInterval& iv = h->intervals[i];
      if (i > 0) out += ",";
      out += "{";
      if (iv.present) out += "\"value\":" + iv.value + ",";
      out += std::string("\"exists\":") + (iv.present ? "true" : "false") +
             ",\"from\":" + PointJson(iv.from) + ",\"to\":" + PointJson(iv.to) +
             ",\"metadata\":" + (iv.from.metadata.empty() ? std::string("{}") : iv.from.metadata) +
             "}";
    }
    out += "]}";
    return Json(200, std::move(out));
  }

  ApiResponse DiffOf(const std::string& stream) {
    bool from_given = false;
    bool to_given = false;
    Result<EntityQuery> from = PointParam("from", nullptr, "from_time", nullptr, &from_given);
    if (!from.ok()) return ErrorResponse(from.status());
    Result<EntityQuery> to = PointParam("to", nullptr, "to_time", nullptr, &to_given);
    if (!to.ok()) return ErrorResponse(to.status());
    if (!from_given) {
      return ErrorResponse(Status::InvalidArgument(
          "give the starting point as from=REVISION or from_time=TIME (to defaults to now)"));
    }
    Result<DiffResult> d = store_->Diff(stream, *from, *to);
    if (!d.ok()) return ErrorResponse(d.status());
    return Json(200, "{\"stream\":" + JsonQuote(stream) + ",\"from\":" + StateJson(d->from) +
                         ",\"to\":" + StateJson(d->to) + ",\"patch\":" +
                         (d->patch.empty() ? std::string("[]") : d->patch) +
                         ",\"events\":" + EventsArray(d->events, d->events.size()) + "}");
  }

  ApiResponse RevertTo(const std::string& stream) {
    if (std::optional<ApiResponse> r = RefuseSystemStreamWrite(stream)) return *r;
    Result<RawJson> body = BodyObject();
    if (!body.ok()) return BodyError(body.status());
    RevertRequest rr;
    rr.stream = stream;
    int targets = 0;
    for (const auto& [key, v] : body->members) {
      if (key == "to_revision") {
        std::optional<std::uint64_t> r = v.AsUint();
        if (!r) return ErrorResponse(Status::InvalidArgument("to_revision must be a revision number"));
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
        if (!v.is_object()) return ErrorResponse(Status::InvalidArgument("metadata must be an object"));
        rr.metadata = std::string(v.text);
      } else if (key == "id") {
        Result<Uuid> id = v.kind == RawJson::Kind::kString ? Uuid::Parse(v.str)
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
    if (!req_.if_match.empty() && body->Find("expected_revision") == nullptr) {
      std::string_view tag = req_.if_match;
      if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"') tag = tag.substr(1, tag.size() - 2);
      Result<std::uint64_t> rev = ParseUint(tag, "If-Match");
      if (!rev.ok()) return ErrorResponse(rev.status());
      rr.expected = ExpectedRevision::Exact(*rev);
    }
    Result<RevertResult> r = store_->Revert(rr);
    if (!r.ok()) return ErrorResponse(r.status());
    if (!r->committed.idempotent_replay) {
      if (std::optional<ApiResponse> a =
              Audit("revert", "{\"stream\":" + JsonQuote(stream) + ",\"request\":" +
                                  std::string(body->text) + ",\"position\":" +
                                  U64(r->committed.last_position) + "}")) {
        return *a;
      }
    }
    ApiResponse resp = Json(r->committed.idempotent_replay ? 200 : 201, CommittedJson(r->committed, true));
    if (!r->committed.streams.empty()) {
      resp.headers.emplace_back("ETag", "\"" + U64(r->committed.streams.front().last_revision) + "\"");
    }
    return resp;
  }

  ApiResponse Activity() {
    ActivityQuery q;
    if (auto it = query_.find("actor"); it != query_.end()) q.actor = it->second;
    if (auto it = query_.find("stream_prefix"); it != query_.end()) q.stream_prefix = it->second;
    if (auto it = query_.find("type"); it != query_.end()) q.event_types = SplitComma(it->second);
    if (auto it = query_.find("types"); it != query_.end()) q.event_types = SplitComma(it->second);
    if (auto it = query_.find("cursor"); it != query_.end()) q.cursor = it->second;
    Result<std::optional<Timestamp>> since = TimeParam("since");
    if (!since.ok()) return ErrorResponse(since.status());
    Result<std::optional<Timestamp>> until = TimeParam("until");
    if (!until.ok()) return ErrorResponse(until.status());
    q.from = *since;
    q.to = *until;
    Result<std::size_t> limit = LimitParam(query_);
    if (!limit.ok()) return ErrorResponse(limit.status());
    q.limit = *limit;
    if (std::optional<ApiResponse> d = DenyGlobalRead(q.stream_prefix, &q.skip_system_streams)) {
      return *d;
    }
    Result<ActivityPage> page = store_->QueryActivity(q);
    if (!page.ok()) return ErrorResponse(page.status());
    return Json(200, "{\"events\":" + EventsArray(page->events, page->events.size()) +
                         ",\"cursor\":" +
                         (page->next_cursor.empty() ? std::string("null") : JsonQuote(page->next_cursor)) +
                         "}");
  }

  ApiResponse CaptureRevert() {
    Result<RawJson> body = BodyObject();
    if (!body.ok()) return BodyError(body.status());
    ApiResponse r = CaptureRevertResponse(*store_, capture_, *body);
    const RawJson* dry_run = body->Find("dry_run");
    if (r.status == 200 && !(dry_run != nullptr && dry_run->boolean)) {
      if (std::optional<ApiResponse> a =
              Audit("capture-revert", "{\"request\":" + std::string(body->text) +
                                          ",\"response\":" + r.body + "}")) {
        return *a;
      }
    }
    return r;
  }

  ApiResponse Backup() {
    Result<RawJson> body = BodyObject();
    if (!body.ok()) return BodyError(body.status());
    if (backup_dir_.empty()) {
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
      return ErrorResponse(Status::InvalidArgument(
          "to: '" + name + "' must be a plain directory name (no '/', not '.' or '..') for a "
          "new directory inside the server's --backup-dir"));
    }
    std::string to = backup_dir_ + "/" + name;
    Result<VerifyReport> r = store_->Backup(to);
    if (!r.ok()) return ErrorResponse(r.status());
    std::string out = "{\"to\":" + JsonQuote(to) + ",\"position\":" + U64(r->head.position) +
                      ",\"hash\":\"" + r->head.hash_hex + "\",\"events_checked\":" +
                      U64(r->events_checked) + "}";
    if (std::optional<ApiResponse> a = Audit("backup", out)) return *a;
    return Json(201, out);
  }

  ApiResponse ListTokens() {
    std::string out = "{\"tokens\":[";
    std::vector<TokenInfo> tokens = tokens_->List();
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      out += (i ? "," : "") + TokenInfoJson(tokens[i]);
    }
    return Json(200, out + "]}");
  }

  ApiResponse CreateToken() {
    Result<RawJson> body = BodyObject();
    if (!body.ok()) return BodyError(body.status());
    TokenSpec spec;
    auto strings = [](const RawJson& v, const std::string& key,
                      std::vector<std::string>* out) -> Status {
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
    };
    for (const auto& [key, v] : body->members) {
      Status st = Status::Ok();
      if (key == "name") {
        if (v.kind != RawJson::Kind::kString) st = Status::InvalidArgument("name must be a string");
        spec.name = v.str;
      } else if (key == "scopes") {
        std::vector<std::string> names;
        st = strings(v, key, &names);
        for (std::size_t i = 0; st.ok() && i < names.size(); ++i) {
          Result<Scope> scope = ParseScope(names[i]);
          st = scope.status();
          if (scope.ok()) spec.scopes |= *scope;
        }
      } else if (key == "prefixes") {
        st = strings(v, key, &spec.prefixes);
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
    Result<std::pair<TokenInfo, std::string>> created = tokens_->Create(spec, principal_);
    if (!created.ok()) return ErrorResponse(created.status());
    std::string info = TokenInfoJson(created->first);
    // The only time the token itself is shown: the store keeps only its hash.
    return Json(201, "{\"token\":" + JsonQuote(created->second) + "," + info.substr(1));
  }

  ApiResponse RevokeToken(const std::string& id) {
    Result<TokenInfo> t = tokens_->Revoke(id, principal_);
    if (!t.ok()) return ErrorResponse(t.status());
    return Json(200, TokenInfoJson(*t));
  }

  EventStore* store_;
  subscribe::SubscriptionHub* hub_;
  Metrics* metrics_;
  const CaptureLink* capture_;  // null: no capture here
  const std::string& backup_dir_;  // empty: no online backups
  TokenRegistry* tokens_;
  const AuthOptions& auth_;
  Principal principal_;  // who makes the request; set by Authenticate()
  const ApiRequest& req_;
  Query query_;
  bool bad_json_ = false;
};

}  // namespace

std::string EventJson(const RecordedEvent& e) {
  std::string out;
  out.reserve(e.data.size() + e.metadata.size() + e.stream.size() + 320);
  out += "{\"stream\":";
  out += JsonQuote(e.stream);
  out += ",\"revision\":" + U64(e.revision);
  out += ",\"position\":" + U64(e.position);
  out += ",\"id\":\"" + e.id.ToString() + "\"";
  out += ",\"type\":" + JsonQuote(e.type);
  out += ",\"data\":";
  out += e.data.empty() ? std::string_view("null") : std::string_view(e.data);
  out += ",\"metadata\":";
  out += e.metadata.empty() ? std::string_view("{}") : std::string_view(e.metadata);
  out += ",\"recorded_at\":\"" + FormatTimestamp(e.recorded_at) + "\"";
  out += ",\"valid_from\":\"" + FormatTimestamp(e.valid_from) + "\"";
  out += ",\"tx\":" + U64(e.tx);
  out += ",\"hash\":\"" + e.HashHex() + "\"}";
  return out;
}

ApiResponse ErrorResponse(int status, std::string_view code, std::string_view message) {
  return Json(status, "{\"error\":" + JsonQuote(code) + ",\"message\":" + JsonQuote(message) + "}");
}

ApiResponse ErrorResponse(const Status& s) {
  std::string body = "{\"error\":" + JsonQuote(StatusCodeName(s.code())) +
                     ",\"message\":" + JsonQuote(s.message());
  if (const ConflictDetail* c = s.conflict()) {
    body += ",\"stream\":" + JsonQuote(c->stream) + ",\"actual_revision\":" +
            (c->actual_revision ? U64(*c->actual_revision) : "null");
  }
  body += "}";
  if (s.code() == StatusCode::kIOError &&
      s.message().find("the disk is full") != std::string::npos) {
    return Json(507, std::move(body));  // Insufficient Storage
  }
  return Json(HttpStatusFor(s.code()), std::move(body));
}

bool Api::IsQuick(const ApiRequest& request) {
  if (request.method != "GET") return false;
  // Parsed as the handler parses it, so that an encoded spelling of a name is recognized too; an
  // undecodable target goes to the workers, whose handler says what is wrong with it.
  Result<Target> target = ParseTarget(request.target);
  if (!target.ok()) return false;
  // A min_position wait may block for seconds: never on an I/O thread.
  if (target->query.contains("min_position")) return false;
  const std::vector<std::string>& s = target->segments;
  if (s.size() == 1) return s[0] == "healthz";
  if (s.size() < 3 || s[0] != "v1" || s[2].empty()) return false;
  if (s.size() == 3) return s[1] == "entities";
  return s.size() == 4 && s[1] == "streams" && s[3] == "info";
}

ApiResponse Api::Handle(const ApiRequest& request) {
  Handler h(store_, hub_, metrics_, capture_ ? &*capture_ : nullptr, backup_dir_, &tokens_, auth_,
            request);
  return h.Run();
}

Status Api::ConfigureAuth(const AuthOptions& options) {
  auth_ = options;
  return tokens_.Load();
}

}  // namespace timetrail::server
