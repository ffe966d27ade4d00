#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "core/event_codec.h"
#include "core/hex.h"
#include "json/json_writer.h"
#include "json/raw_json.h"
#include "timetrail/time.h"

namespace timetrail::server {

using json::ParseRawJson;
using json::RawJson;

namespace {

constexpr std::string_view kTokenPrefix = "tt_";
constexpr std::size_t kIdBytes = 6;
constexpr std::size_t kSecretBytes = 32;
constexpr std::size_t kMaxNameBytes = 128;
constexpr std::size_t kMaxPrefixes = 64;

constexpr std::string_view kTokenCreated = "token-created";
constexpr std::string_view kTokenRevoked = "token-revoked";

std::string Base64Url(const std::uint8_t* data, std::size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < n; ++i) {
    acc = (acc << 8) | data[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

bool HasControlCharacter(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

void WriteStringArray(const std::vector<std::string>& items, json::JsonWriter* out) {
  out->BeginArray();
  for (const std::string& item : items) out->String(item);
  out->EndArray();
}

std::vector<std::string> ScopeNames(unsigned scopes) {
  std::vector<std::string> out;
  for (Scope s : {kScopeRead, kScopeAppend, kScopeAdmin}) {
    if (scopes & s) out.emplace_back(ScopeName(s));
  }
  return out;
}

void WriteOptionalTime(const std::optional<Timestamp>& t, json::JsonWriter* out) {
  if (t) {
    out->String(FormatTimestamp(*t));
  } else {
    out->Null();
  }
}

// A string member of an audit event's JSON, or "" when absent.
std::string StringMember(const RawJson& object, std::string_view key) {
  const RawJson* v = object.Find(key);
  return v != nullptr && v->kind == RawJson::Kind::kString ? v->str : std::string();
}

bool IsActive(const TokenInfo& t, Timestamp now) {
  return !t.revoked_at && (!t.spec.expires_at || now < *t.spec.expires_at);
}

}  // namespace

bool IsSystemStream(std::string_view stream) { return stream.starts_with('$'); }

Result<Scope> ParseScope(std::string_view name) {
  if (name == "read") return kScopeRead;
  if (name == "append") return kScopeAppend;
  if (name == "admin") return kScopeAdmin;
  return Status::InvalidArgument("unknown scope '" + std::string(name) +
                                 "'; scopes are read, append and admin");
}

std::string_view ScopeName(Scope scope) {
  switch (scope) {
    case kScopeRead:
      return "read";
    case kScopeAppend:
      return "append";
    case kScopeAdmin:
      return "admin";
  }
  return "?";
}

bool Principal::Covers(std::string_view stream) const {
  if (IsSystemStream(stream)) return (scopes & kScopeAdmin) != 0 && prefixes.empty();
  if (prefixes.empty()) return true;
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](const std::string& p) { return stream.starts_with(p); });
}

bool Principal::CoversPrefix(std::string_view prefix) const {
  if (prefixes.empty()) return true;
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](const std::string& p) { return prefix.starts_with(p); });
}

std::string Principal::Describe() const {
  if (token_id.empty()) return "this request";
  return "token " + token_id + (actor.empty() ? "" : " (" + actor + ")");
}

void WritePrincipalMembers(const Principal& principal, json::JsonWriter* out) {
  out->Key("token_id");
  if (principal.token_id.empty()) {
    out->Null();
  } else {
    out->String(principal.token_id);
  }
  out->Key("actor").String(principal.actor);
  out->Key("scopes");
  WriteStringArray(ScopeNames(principal.scopes), out);
  out->Key("prefixes");
  WriteStringArray(principal.prefixes, out);
  out->Key("expires_at");
  WriteOptionalTime(principal.expires_at, out);
}

void WriteTokenInfoMembers(const TokenInfo& t, json::JsonWriter* out) {
  out->Key("id").String(t.id);
  out->Key("name").String(t.spec.name);
  out->Key("scopes");
  WriteStringArray(ScopeNames(t.spec.scopes), out);
  out->Key("prefixes");
  WriteStringArray(t.spec.prefixes, out);
  out->Key("created_at").String(FormatTimestamp(t.created_at));
  out->Key("created_by").String(t.created_by);
  out->Key("expires_at");
  WriteOptionalTime(t.spec.expires_at, out);
  out->Key("revoked_at");
  WriteOptionalTime(t.revoked_at, out);
  out->Key("revoked_by");
  if (t.revoked_at) {
    out->String(t.revoked_by);
  } else {
    out->Null();
  }
  out->Key("active").Bool(IsActive(t, Now()));
}

Status TokenRegistry::Load() {
  std::lock_guard<std::mutex> lock(mu_);
  tokens_.clear();
  next_revision_ = 0;
  return CatchUp();
}

Status TokenRegistry::CatchUp() const {
  // Taken first: whatever is at or before it is in the stream read below.
  const Position position = store_->LastPosition();
  ReadStreamOptions o;
  o.from_revision = next_revision_;
  o.max_count = 1000;
  while (true) {
    Result<std::vector<RecordedEvent>> page = store_->ReadStream(kAuditStream, o);
    if (!page.ok() && page.status().code() != StatusCode::kNotFound) {
      return page.status().WithPrefix("cannot read the token records in " +
                                      std::string(kAuditStream));
    }
    // Not found: no stream yet, or nothing after next_revision_.
    if (page.ok()) {
      for (const RecordedEvent& e : *page) Apply(e);
      if (!page->empty()) next_revision_ = page->back().revision + 1;
    }
    if (!page.ok() || page->size() < o.max_count) break;
    o.from_revision = next_revision_;
  }
  folded_at_ = position;
  last_catch_up_ = Now();
  return Status::Ok();
}

void TokenRegistry::CatchUpIfMoved(bool now) const {
  if (store_->LastPosition() == folded_at_) return;
  if (!now && Now().micros - last_catch_up_.micros < 1000000) return;
  (void)CatchUp();
}

void TokenRegistry::Apply(const RecordedEvent& e) const {
  if (e.type != kTokenCreated && e.type != kTokenRevoked) return;
  Result<RawJson> data = ParseRawJson(e.data);
  if (!data.ok() || !data->is_object()) return;
  std::string actor;
  if (Result<RawJson> meta = ParseRawJson(e.metadata.empty() ? "{}" : e.metadata); meta.ok()) {
    actor = StringMember(*meta, "actor");
  }
  std::string id = StringMember(*data, "token_id");
  if (e.type == kTokenRevoked) {
    auto it = tokens_.find(id);
    if (it != tokens_.end() && !it->second.revoked_at) {
      it->second.revoked_at = e.recorded_at;
      it->second.revoked_by = actor;
    }
    return;
  }
  TokenInfo t;
  t.id = id;
  t.spec.name = StringMember(*data, "name");
  if (const RawJson* scopes = data->Find("scopes"); scopes != nullptr) {
    for (const RawJson& s : scopes->items) {
      if (Result<Scope> scope = ParseScope(s.str); scope.ok()) t.spec.scopes |= *scope;
    }
  }
  if (const RawJson* prefixes = data->Find("prefixes"); prefixes != nullptr) {
    for (const RawJson& p : prefixes->items) t.spec.prefixes.push_back(p.str);
  }
  if (std::string expires = StringMember(*data, "expires_at"); !expires.empty()) {
    if (Result<Timestamp> ts = ParseTimestamp(expires); ts.ok()) t.spec.expires_at = *ts;
  }
  if (!HexDecode(StringMember(*data, "sha256"), t.digest.data(), t.digest.size())) {
    return;  // unusable: it could never authenticate
  }
  t.created_at = e.recorded_at;
  t.created_by = actor;
  tokens_[id] = std::move(t);
}

Result<Principal> TokenRegistry::Authenticate(std::string_view authorization) const {
  std::string_view v = authorization;
  constexpr std::string_view kBearer = "bearer ";
  bool bearer = v.size() > kBearer.size();
  for (std::size_t i = 0; bearer && i < kBearer.size(); ++i) {
    bearer = std::tolower(static_cast<unsigned char>(v[i])) == kBearer[i];
  }
  if (!bearer) {
    return Status::InvalidArgument("the Authorization header must be 'Bearer <token>'");
  }
  v.remove_prefix(kBearer.size());
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  std::size_t sep = v.find('_', kTokenPrefix.size());
  if (!v.starts_with(kTokenPrefix) || sep == std::string_view::npos) {
    return Status::InvalidArgument("not a timetrail token (they look like tt_<id>_<secret>)");
  }
  std::string_view id = v.substr(kTokenPrefix.size(), sep - kTokenPrefix.size());
  std::array<std::uint8_t, 32> digest = Sha256({v});
  std::unique_lock<std::mutex> lock(mu_);
  CatchUpIfMoved(/*now=*/false);
  auto it = tokens_.find(id);
  if (it == tokens_.end()) {
    // Created on another node a moment ago? This node may not have heard of that write yet:
    // look at the store's head first. Refresh may wait (for a read replica to catch up), so
    // not under the lock: requests with unknown tokens must not hold up everyone else's.
    lock.unlock();
    (void)store_->Refresh();
    lock.lock();
    CatchUpIfMoved(/*now=*/true);
    it = tokens_.find(id);
  }
  // Compare in constant time, so the time taken says nothing about how close a guess came.
  if (it == tokens_.end() ||
      CRYPTO_memcmp(digest.data(), it->second.digest.data(), digest.size()) != 0) {
    return Status::InvalidArgument(
        "unknown token: check that it was copied whole, or have an admin create one "
        "(timetrail token create)");
  }
  const TokenInfo& t = it->second;
  if (t.revoked_at) {
    return Status::InvalidArgument("token " + t.id + " was revoked at " +
                                   FormatTimestamp(*t.revoked_at) +
                                   "; have an admin create a new one (timetrail token create)");
  }
  if (t.spec.expires_at && Now() >= *t.spec.expires_at) {
    return Status::InvalidArgument("token " + t.id + " expired at " +
                                   FormatTimestamp(*t.spec.expires_at) +
                                   "; have an admin create a new one (timetrail token create)");
  }
  Principal p;
  p.token_id = t.id;
  p.actor = t.spec.name.empty() ? "token " + t.id : t.spec.name;
  p.scopes = t.spec.scopes;
  p.prefixes = t.spec.prefixes;
  p.expires_at = t.spec.expires_at;
  return p;
}

Result<std::pair<TokenInfo, std::string>> TokenRegistry::Create(const TokenSpec& spec,
                                                                const Principal& by) {
  if ((spec.scopes & kAllScopes) == 0) {
    return Status::InvalidArgument("a token needs at least one scope: read, append or admin");
  }
  if (spec.name.size() > kMaxNameBytes || HasControlCharacter(spec.name)) {
    return Status::InvalidArgument("name must be at most " + std::to_string(kMaxNameBytes) +
                                   " bytes without control characters");
  }
  if (spec.prefixes.size() > kMaxPrefixes) {
    return Status::InvalidArgument("at most " + std::to_string(kMaxPrefixes) + " prefixes");
  }
  for (const std::string& p : spec.prefixes) {
    if (p.empty() || p.size() > 512 || HasControlCharacter(p)) {
      return Status::InvalidArgument("prefix '" + p +
                                     "' must be 1 to 512 bytes without control characters");
    }
    if (IsSystemStream(p)) {
      return Status::InvalidArgument("prefix '" + p +
                                     "': streams beginning with '$' belong to the server");
    }
  }
  if (spec.expires_at && *spec.expires_at <= Now()) {
    return Status::InvalidArgument("expires_at " + FormatTimestamp(*spec.expires_at) +
                                   " is not in the future");
  }
  std::array<std::uint8_t, kIdBytes + kSecretBytes> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    return Status::Internal("the system's random number generator failed; no token created");
  }
  TokenInfo t;
  t.id = HexEncode(random.data(), kIdBytes);
  std::string token =
      std::string(kTokenPrefix) + t.id + "_" + Base64Url(random.data() + kIdBytes, kSecretBytes);
  t.spec = spec;
  t.digest = Sha256({token});
  t.created_by = by.actor;
  json::JsonWriter record;
  record.BeginObject();
  record.Key("token_id").String(t.id);
  record.Key("name").String(spec.name);
  record.Key("scopes");
  WriteStringArray(ScopeNames(spec.scopes), &record);
  record.Key("prefixes");
  WriteStringArray(spec.prefixes, &record);
  record.Key("expires_at");
  WriteOptionalTime(spec.expires_at, &record);
  record.Key("sha256").String(HexEncode(t.digest.data(), t.digest.size()));
  record.EndObject();
  std::string data = record.Take();
  std::lock_guard<std::mutex> lock(mu_);  // the table changes in the order of the stream
  TT_ASSIGN_OR_RETURN(Position pos, AppendAuditEvent(kTokenCreated, data, by, &t.created_at));
  (void)pos;
  tokens_[t.id] = t;
  return std::make_pair(std::move(t), std::move(token));
}

Result<TokenInfo> TokenRegistry::Revoke(std::string_view id, const Principal& by) {
  std::lock_guard<std::mutex> lock(mu_);
  CatchUpIfMoved(/*now=*/true);
  auto it = tokens_.find(id);
  if (it == tokens_.end()) {
    return Status::NotFound("no token has id '" + std::string(id) + "'");
  }
  if (it->second.revoked_at) return it->second;
  Timestamp at;
  TT_ASSIGN_OR_RETURN(
      Position pos,
      AppendAuditEvent(
          kTokenRevoked,
          json::JsonWriter().BeginObject().Key("token_id").String(id).EndObject().Take(), by, &at));
  (void)pos;
  it->second.revoked_at = at;
  it->second.revoked_by = by.actor;
  return it->second;
}

std::vector<TokenInfo> TokenRegistry::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  CatchUpIfMoved(/*now=*/true);
  std::vector<TokenInfo> out;
  out.reserve(tokens_.size());
  for (const auto& [id, t] : tokens_) out.push_back(t);
  std::sort(out.begin(), out.end(),
            [](const TokenInfo& a, const TokenInfo& b) { return a.created_at < b.created_at; });
  return out;
}

std::size_t TokenRegistry::ActiveCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  Timestamp now = Now();
  return static_cast<std::size_t>(std::count_if(
      tokens_.begin(), tokens_.end(), [&](const auto& kv) { return IsActive(kv.second, now); }));
}

Result<Position> TokenRegistry::RecordAction(std::string_view type, const std::string& data_json,
                                             const Principal& by) {
  Timestamp at;
  return AppendAuditEvent(type, data_json, by, &at);
}

Result<Position> TokenRegistry::AppendAuditEvent(std::string_view type,
                                                 const std::string& data_json, const Principal& by,
                                                 Timestamp* recorded_at) {
  ProposedEvent e;
  e.type = std::string(type);
  e.data = data_json;
  json::JsonWriter metadata;
  metadata.BeginObject().Key("actor").String(by.actor);
  if (!by.token_id.empty()) metadata.Key("token_id").String(by.token_id);
  metadata.EndObject();
  e.metadata = metadata.Take();
  Result<Committed> c = store_->Append(kAuditStream, ExpectedRevision::Any(), {std::move(e)});
  if (!c.ok()) {
    return c.status().WithPrefix("cannot record '" + std::string(type) + "' in " +
                                 std::string(kAuditStream));
  }
  *recorded_at = c->recorded_at;
  return c->last_position;
}

}  // namespace timetrail::server
