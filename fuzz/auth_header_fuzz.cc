// The Authorization header of an API request, against a registry holding real tokens (one
// active, one revoked). Property: a header authenticates exactly when it is "Bearer" (any case)
// followed by the active token, with surrounding spaces; then the principal is that token's.
// Everything else (the revoked token, near misses, garbage) is refused with a message.
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_store.h"
#include "server/auth.h"

namespace {

struct Tokens {
  timetrail::server::TokenRegistry registry{timetrail::fuzz::FuzzStore()};
  std::string active;
  std::string active_id;
  std::string revoked;
};

Tokens& Fixture() {
  static Tokens* t = [] {
    auto* tokens = new Tokens;
    timetrail::server::Principal admin;
    admin.actor = "fuzz";
    timetrail::server::TokenSpec spec;
    spec.scopes = timetrail::server::kScopeRead;
    spec.prefixes = {"orders/"};
    auto a = tokens->registry.Create(spec, admin);
    auto r = tokens->registry.Create(spec, admin);
    if (!a.ok() || !r.ok() || !tokens->registry.Revoke(r->first.id, admin).ok()) std::abort();
    tokens->active = a->second;
    tokens->active_id = a->first.id;
    tokens->revoked = r->second;
    return tokens;
  }();
  return *t;
}

// What should authenticate: "bearer" in any case, spaces, the active token, spaces.
bool IsActiveHeader(std::string_view h, const std::string& token) {
  constexpr std::string_view kScheme = "bearer ";
  if (h.size() < kScheme.size()) return false;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(h[i])) != kScheme[i]) return false;
  }
  h.remove_prefix(kScheme.size());
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
  return h == token;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Tokens& t = Fixture();
  std::string header(reinterpret_cast<const char*>(data), size);
  // "$ACTIVE" and "$REVOKED" in the input stand for the real tokens, so the fuzzer can reach
  // the accepting path and the near misses around it.
  for (auto [mark, token] : {std::pair<std::string_view, const std::string*>{"$ACTIVE", &t.active},
                             {"$REVOKED", &t.revoked}}) {
    for (std::size_t at; (at = header.find(mark)) != std::string::npos;) {
      header.replace(at, mark.size(), *token);
    }
  }
  auto principal = t.registry.Authenticate(header);
  bool want = IsActiveHeader(header, t.active);
  if (principal.ok() != want ||
      (principal.ok() && (principal->token_id != t.active_id ||
                          principal->scopes != timetrail::server::kScopeRead)) ||
      (!principal.ok() && principal.status().message().empty())) {
    std::fprintf(stderr, "header '%s': authenticated %d, expected %d\n", header.c_str(),
                 principal.ok(), want);
    std::abort();
  }
  return 0;
}
