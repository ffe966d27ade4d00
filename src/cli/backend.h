// Where the CLI's commands go: a running server (HTTP API v1) or a data directory opened in this
// process. Both speak the same API, so every command builds the same request either way, and
// `--json` prints the same bytes in both modes: in data mode the requests are served in-process
// by the server's own API handler.
#ifndef TIMETRAIL_CLI_BACKEND_H_
#define TIMETRAIL_CLI_BACKEND_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "cli/http_client.h"
#include "timetrail/status.h"
#include "timetrail/store.h"

namespace timetrail::cli {

// Not thread-safe: a command uses its backend from one thread.
class Backend {
 public:
  virtual ~Backend() = default;

  // Sends one API request ("target" is the path and query, percent-encoded). Any HTTP status is
  // a successful call; kUnavailable means the server could not be reached.
  virtual Result<HttpResponse> Call(std::string_view method, std::string_view target,
                                    std::string_view body, const Headers& headers = {}) = 0;

  // Delivers the events of GET /v1/subscribe?"query" (one event JSON each, in position order)
  // until "on_event" returns false. Server mode follows the event stream; data mode polls the
  // store. A non-200 answer to the subscription is returned in "*error_response".
  virtual Status Subscribe(std::string_view query, const Headers& headers,
                           const std::function<bool(std::string_view event_json)>& on_event,
                           HttpResponse* error_response) = 0;

  // "server http://..." or "data directory DIR", for messages.
  virtual std::string Describe() const = 0;

  // The store of a data directory opened in this process; null for a server. For the few
  // commands whose work the API cannot express as fast (import commits many transactions
  // pipelined, sharing fsyncs); everything else goes through Call like in server mode.
  virtual EventStore* store() { return nullptr; }
};

// Intentionally copyable.
struct TargetOptions {
  std::string server;  // URL; used unless data_dir is set
  std::string data_dir;
  std::string store_url;     // a store kept in PostgreSQL; used instead of data_dir when set
  std::string store_schema;  // its schema (Options::postgres_schema)
  std::string token;         // API token sent as "Authorization: Bearer" in server mode
  std::string ca_file;       // certificate authorities for an https server; empty: the system's
};

// What a command does with a data directory (a server decides for itself).
enum class Access {
  // Only reads: the directory is opened read-only (Options::read_only). It takes no lock, so it
  // works while a server or a capture holds the directory (and never keeps one from starting),
  // and sees what that process had written when it opened. Writes through it fail.
  kRead,
  // Writes to an existing store: the directory is held (locked) while the command runs.
  kWrite,
  // Writes, and makes a new store if the directory has none.
  kCreate,
  // Writes when it can: held (locked) like kWrite when no other process holds the directory,
  // else opened read-only like kRead (for commands whose write is a record of what they did,
  // like verify's entry in $audit).
  kWriteIfFree,
};

// Connects to the server, or opens the data directory for "access". Opening fails with
// kUnavailable when another process holds the directory and "access" writes, kNotFound when
// the directory does not exist (or holds no store) and "access" is not kCreate. A data
// directory's store is opened with "store_options" (create_if_missing and read_only set from
// "access").
Result<std::unique_ptr<Backend>> OpenBackend(const TargetOptions& target, Access access,
                                             Options store_options = Options());

}  // namespace timetrail::cli

#endif  // TIMETRAIL_CLI_BACKEND_H_
