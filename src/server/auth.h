// API tokens, their scopes, and the audit stream (docs/security.md).
//
// A token is "tt_<id>_<secret>": the id finds its record, the secret proves it. Only the SHA-256
// of the whole token is stored, so a copy of the data directory gives no working token. Token
// records are events of the system stream "$audit", like every other administrative action
// (token creation and revocation, reverts, verifications), so they are immutable, ordered and
// covered by the integrity chain; the registry is the fold of that stream, rebuilt at start and
// kept current by this process. Other nodes serving the same store (kept in PostgreSQL) append
// to the stream too: the registry folds what they added when it meets a token it does not
// know, and at most a second after the store moved otherwise (so a token revoked on another
// node stops working here within about a second).
#ifndef TIMETRAIL_SERVER_AUTH_H_
#define TIMETRAIL_SERVER_AUTH_H_

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "json/json_writer.h"
#include "timetrail/status.h"
#include "timetrail/store.h"

namespace timetrail::server {

// The system stream of administrative actions. Streams beginning with '$' belong to the server:
// the API refuses appends to them and shows them only to the admin scope.
inline constexpr std::string_view kAuditStream = "$audit";

bool IsSystemStream(std::string_view stream);

// What a token may do. "admin" includes "read" and "append".
enum Scope : unsigned {
  kScopeRead = 1u << 0,
  kScopeAppend = 1u << 1,
  kScopeAdmin = 1u << 2,
};
inline constexpr unsigned kAllScopes = kScopeRead | kScopeAppend | kScopeAdmin;

// "read" -> kScopeRead...; kInvalidArgument names an unknown scope.
Result<Scope> ParseScope(std::string_view name);
std::string_view ScopeName(Scope scope);

// Who makes a request. Intentionally copyable.
struct Principal {
  std::string token_id;  // empty: no token (authentication off, or a local data directory)
  std::string actor;     // recorded in the audit stream: the token's name, or "token <id>"
  unsigned scopes = kAllScopes;
  std::vector<std::string> prefixes;  // empty: every stream
  std::optional<Timestamp> expires_at;

  bool Has(Scope scope) const { return (scopes & (scope | kScopeAdmin)) != 0; }
  // Whether the stream is within the token's prefixes (system streams: admin only).
  bool Covers(std::string_view stream) const;
  // Whether every stream starting with "prefix" is within the token's prefixes.
  bool CoversPrefix(std::string_view prefix) const;
  // "token 1a2b3c (deploy)" or "this request", for error messages.
  std::string Describe() const;
};

// What to create. Intentionally copyable.
struct TokenSpec {
  std::string name;
  unsigned scopes = 0;
  std::vector<std::string> prefixes;
  std::optional<Timestamp> expires_at;
};

// A token's record, without its secret. Intentionally copyable.
struct TokenInfo {
  std::string id;
  TokenSpec spec;
  Timestamp created_at;
  std::string created_by;
  std::optional<Timestamp> revoked_at;
  std::string revoked_by;
  std::array<std::uint8_t, 32> digest{};  // SHA-256 of the whole token
};

// The members of GET /v1/whoami's object: what the caller may do ("token_id", "actor",
// "scopes", "prefixes", "expires_at"), without the braces.
void WritePrincipalMembers(const Principal& principal, json::JsonWriter* out);

// The members of a token's JSON object ("id", "name", "scopes", ...), without the digest and
// without the braces, so that an answer can put the token itself first.
void WriteTokenInfoMembers(const TokenInfo& info, json::JsonWriter* out);

// The tokens of one store. Thread-safe.
class TokenRegistry {
 public:
  // REQUIRES: "store" outlives the registry.
  explicit TokenRegistry(EventStore* store) : store_(store) {}

  // Rebuilds the table from the audit stream.
  Status Load();

  // The principal for an Authorization header value ("Bearer tt_..."). kInvalidArgument with
  // the reason (malformed, unknown, revoked, expired) when it does not authenticate.
  Result<Principal> Authenticate(std::string_view authorization) const;

  // Records a new token in the audit stream and returns its record and, once only, the token.
  // kInvalidArgument when the spec is not acceptable (no scope, a '$' prefix, a past expiry).
  Result<std::pair<TokenInfo, std::string>> Create(const TokenSpec& spec, const Principal& by);

  // Records the revocation; kNotFound for an unknown id. Revoking twice is not an error: the
  // record says when it was first revoked.
  Result<TokenInfo> Revoke(std::string_view id, const Principal& by);

  std::vector<TokenInfo> List() const;
  // How many tokens are neither revoked nor expired.
  std::size_t ActiveCount() const;

  // Appends one event of "type" to the audit stream with "data_json" (an object) and the
  // principal as metadata (actor, token_id). Returns its position.
  Result<Position> RecordAction(std::string_view type, const std::string& data_json,
                                const Principal& by);

 private:
  // Applies one audit event to the table. REQUIRES: mu_ held.
  void Apply(const RecordedEvent& e) const;
  // Folds the audit events after the last one applied. REQUIRES: mu_ held.
  Status CatchUp() const;
  // CatchUp when the store moved since the last one, and (unless "now") a second has passed.
  // Errors are left for the next call: the table as it is still answers. REQUIRES: mu_ held.
  void CatchUpIfMoved(bool now) const;
  // Appends to the audit stream and waits until it is durable.
  Result<Position> AppendAuditEvent(std::string_view type, const std::string& data_json,
                                    const Principal& by, Timestamp* recorded_at);

  EventStore* store_;
  mutable std::mutex mu_;
  mutable std::map<std::string, TokenInfo, std::less<>> tokens_;  // by id; GUARDED_BY(mu_)
  mutable Revision next_revision_ = 0;  // of the audit stream, to fold next; GUARDED_BY(mu_)
  mutable Position folded_at_ = 0;      // the store's last position then; GUARDED_BY(mu_)
  mutable Timestamp last_catch_up_{0};  // GUARDED_BY(mu_)
};

}  // namespace timetrail::server

#endif  // TIMETRAIL_SERVER_AUTH_H_
