// `timetrail token create | list | revoke`: API tokens (docs/security.md), through
// POST/GET /v1/tokens and DELETE /v1/tokens/{id} on a server or a data directory.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/output.h"
#include "json/json_writer.h"
#include "json/raw_json.h"

namespace timetrail::cli {
namespace {

using json::JsonQuote;
using json::RawJson;

struct CreateArgs {
  CommonOptions common;
  std::string name;
  std::vector<std::string> scopes;
  std::vector<std::string> prefixes;
  std::string expires;
};

std::string JsonArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + JsonQuote(items[i]);
  return out + "]";
}

// "read,append" from ["read","append"].
std::string Joined(const RawJson* array) {
  std::string out;
  if (array == nullptr) return out;
  for (const RawJson& item : array->items) out += (out.empty() ? "" : ",") + item.str;
  return out;
}

int RunCreate(const CreateArgs& a) {
  Result<std::unique_ptr<Backend>> backend = OpenBackend(a.common.target, Access::kCreate);
  if (!backend.ok()) return ReportStatus("token create", backend.status());
  std::string body = "{\"name\":" + JsonQuote(a.name) + ",\"scopes\":" + JsonArray(a.scopes) +
                     ",\"prefixes\":" + JsonArray(a.prefixes);
  if (!a.expires.empty()) body += ",\"expires_at\":" + JsonQuote(a.expires);
  body += "}";
  std::string raw;
  RawJson res;
  int code =
      CallJson(**backend, "token create", a.common, "POST", "/v1/tokens", body, {}, &raw, &res);
  if (code != kExitOk) return code;
  if (a.common.json) {
    std::cout << OneLine(raw) << "\n";
    return kExitOk;
  }
  // The token alone on stdout, so that `TOKEN=$(timetrail token create ...)` works.
  std::cout << Str(res, "token") << "\n";
  std::cerr << "token " << Str(res, "id") << " created (scopes " << Joined(res.Find("scopes"))
            << (res.Find("prefixes") && !res.Find("prefixes")->items.empty()
                    ? "; streams under " + Joined(res.Find("prefixes"))
                    : std::string())
            << "); it is shown only now: keep it secret\n";
  return kExitOk;
}

int RunList(const CommonOptions& o) {
  Result<std::unique_ptr<Backend>> backend = OpenBackend(o.target, Access::kRead);
  if (!backend.ok()) return ReportStatus("token list", backend.status());
  std::string raw;
  RawJson res;
  int code = CallJson(**backend, "token list", o, "GET", "/v1/tokens", "", {}, &raw, &res);
  if (code != kExitOk) return code;
  if (o.json) {
    std::cout << OneLine(raw) << "\n";
    return kExitOk;
  }
  Table table({"ID", "NAME", "SCOPES", "PREFIXES", "CREATED", "EXPIRES", "STATE"});
  if (const RawJson* tokens = res.Find("tokens")) {
    for (const RawJson& t : tokens->items) {
      const RawJson* active = t.Find("active");
      std::string state = active != nullptr && active->boolean ? "active"
                          : Text(t, "revoked_at") != "null"    ? "revoked " + Str(t, "revoked_at")
                                                               : "expired";
      table.AddRow({Str(t, "id"), Str(t, "name"), Joined(t.Find("scopes")),
                    Joined(t.Find("prefixes")), Str(t, "created_at"),
                    Text(t, "expires_at") == "null" ? "never" : Str(t, "expires_at"), state});
    }
  }
  if (table.empty()) {
    std::cerr << "no tokens\n";
  } else {
    table.Print(std::cout);
  }
  return kExitOk;
}

int RunRevoke(const CommonOptions& o, const std::string& id) {
  Result<std::unique_ptr<Backend>> backend = OpenBackend(o.target, Access::kWrite);
  if (!backend.ok()) return ReportStatus("token revoke", backend.status());
  std::string raw;
  RawJson res;
  int code = CallJson(**backend, "token revoke", o, "DELETE", "/v1/tokens/" + UrlEncode(id), "", {},
                      &raw, &res);
  if (code != kExitOk) return code;
  if (o.json) {
    std::cout << OneLine(raw) << "\n";
  } else {
    std::cout << "token " << Str(res, "id") << " revoked at " << Str(res, "revoked_at") << "\n";
  }
  return kExitOk;
}

}  // namespace

void AddTokenCommands(CLI::App& app) {
  CLI::App* token =
      app.add_subcommand("token", "Create, list and revoke API tokens (docs/security.md)");
  token->require_subcommand(1);
  token->footer(
      "Tokens are recorded in the system stream $audit; only their SHA-256 is stored.\n"
      "Manage them on a stopped server's data directory (--data), or through a running server\n"
      "with an admin token (--server URL --token T).");

  auto c = std::make_shared<CreateArgs>();
  CLI::App* create =
      token->add_subcommand("create", "Create a token and print it once (POST /v1/tokens)");
  AddCommonOptions(create, &c->common);
  create
      ->add_option("--scope", c->scopes,
                   "read, append or admin (admin includes the others); repeat for several")
      ->required()
      ->check(CLI::IsMember({"read", "append", "admin"}));
  create->add_option("--prefix", c->prefixes,
                     "Limit the token to streams starting with this; repeat for several");
  create->add_option("--name", c->name, "A name to recognise the token by (its owner or job)");
  create->add_option("--expires", c->expires, "RFC 3339 time after which it stops working");
  create->footer(
      "Examples:\n"
      "  timetrail token create --data ./timetrail-data --scope admin --name ops\n"
      "  TOKEN=$(timetrail token create --server https://tt:7070 --token $ADMIN \\\n"
      "          --scope append --prefix orders/ --name order-service)\n"
      "The token is printed alone on stdout; its id and scopes go to stderr.\n"
      "Exit codes: 0 created, 2 bad input, 5 server unreachable, 6 not authorized.");
  SetAction(create, [c] { return RunCreate(*c); });

  auto l = std::make_shared<CommonOptions>();
  CLI::App* list =
      token->add_subcommand("list", "List the tokens, revoked ones too (GET /v1/tokens)");
  AddCommonOptions(list, l.get());
  list->footer("Example:\n  timetrail token list --data ./timetrail-data");
  SetAction(list, [l] { return RunList(*l); });

  auto r = std::make_shared<CommonOptions>();
  auto id = std::make_shared<std::string>();
  CLI::App* revoke = token->add_subcommand(
      "revoke", "Revoke a token at once; it can never be used again (DELETE /v1/tokens/{id})");
  AddCommonOptions(revoke, r.get());
  revoke->add_option("id", *id, "The token's id (from `token list`)")->required();
  revoke->footer(
      "Example:\n  timetrail token revoke 3f9a1c0b7d2e --server http://127.0.0.1:7070 --token "
      "$ADMIN\n"
      "Exit codes: 0 revoked, 3 no such token, 5 server unreachable, 6 not authorized.");
  SetAction(revoke, [r, id] { return RunRevoke(*r, *id); });
}

}  // namespace timetrail::cli
