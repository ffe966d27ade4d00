// The route table of the HTTP API v1: every endpoint is one row. Access is checked by the
// dispatcher (Api::HandleAsync) before the handler runs. The "runs" column says where the
// server runs the handler (Api::Placement): kQuick rows are answered on the I/O threads, kAsync
// rows (appends) are checked there and answered when the store's completion says the write is
// durable, kOnWorker rows are served by worker threads. Within a path, GET rows come first: Allow
// headers list methods in table order.
#include "server/routes.h"

namespace timetrail::server {

const std::vector<Route>& ApiRoutes() {
  static const std::vector<Route> kRoutes = {
      // method  path                              access                     runs       handler
      {"GET", "/healthz", Access::kOpen, kQuick, GetHealth},
      {"GET", "/metrics", Access::kRead, kOnWorker, GetMetrics},
      {"GET", "/v1/streams/{stream}", Access::kReadStream, kOnWorker, ReadStream},
      {"POST", "/v1/streams/{stream}", Access::kAppendStream, kAsync, AppendToStream},
      {"GET", "/v1/streams/{stream}/info", Access::kReadStream, kQuick, GetStreamInfo},
      // Each append's stream is checked against the token by the handler.
      {"POST", "/v1/transactions", Access::kAppend, kAsync, Transact},
      // Many transactions, committed in order, stopping at the first that fails (imports).
      {"POST", "/v1/transactions/batch", Access::kAppend, kOnWorker, TransactBatch},
      {"GET", "/v1/log", Access::kReadAcrossStreams, kOnWorker, ReadLog},
      // The event's stream is checked by the handler once the event is found.
      {"GET", "/v1/events/{id}", Access::kRead, kOnWorker, GetEvent},
      {"GET", "/v1/subscribe", Access::kReadAcrossStreams, kOnWorker, Subscribe},
      {"POST", "/v1/consumers/{name}/ack", Access::kRead, kOnWorker, AckConsumer},
      {"GET", "/v1/consumers/{name}", Access::kRead, kOnWorker, GetConsumer},
      // Consumer groups: reading, acking and nacking need the read scope (like named consumers);
      // creating and deleting a group, admin. The group's stream prefix is checked against the
      // token's prefixes by the handlers.
      {"GET", "/v1/groups", Access::kRead, kOnWorker, ListGroups},
      {"GET", "/v1/groups/{name}", Access::kRead, kOnWorker, GetGroup},
      {"PUT", "/v1/groups/{name}", Access::kAdmin, kOnWorker, PutGroup},
      {"DELETE", "/v1/groups/{name}", Access::kAdmin, kOnWorker, DeleteGroup},
      // A long poll (up to wait_ms) for events of the group.
      {"POST", "/v1/groups/{name}/read", Access::kRead, kOnWorker, ReadGroup},
      {"POST", "/v1/groups/{name}/ack", Access::kRead, kOnWorker, AckGroup},
      {"POST", "/v1/groups/{name}/nack", Access::kRead, kOnWorker, NackGroup},
      {"POST", "/v1/groups/{name}/replay-parked", Access::kAdmin, kOnWorker, ReplayParked},
      {"GET", "/v1/entities/{stream}", Access::kReadStream, kQuick, GetEntity},
      {"GET", "/v1/entities/{stream}/history", Access::kReadStream, kOnWorker, GetHistory},
      {"GET", "/v1/entities/{stream}/diff", Access::kReadStream, kOnWorker, GetDiff},
      {"POST", "/v1/entities/{stream}/revert", Access::kAdminStream, kOnWorker, RevertEntity},
      {"GET", "/v1/activity", Access::kReadAcrossStreams, kOnWorker, GetActivity},
      {"GET", "/v1/integrity", Access::kRead, kOnWorker, GetIntegrityHead},
      {"POST", "/v1/integrity/verify", Access::kAdmin, kOnWorker, VerifyIntegrity},
      // It writes a copy of every stream to a directory on the server's machine.
      {"POST", "/v1/backup", Access::kFullAdmin, kOnWorker, Backup},
      // What the caller's token may do (the web UI offers only what it may do).
      {"GET", "/v1/whoami", Access::kAuthenticated, kQuick, GetWhoami},
      {"GET", "/v1/tokens", Access::kFullAdmin, kOnWorker, ListTokens},
      {"POST", "/v1/tokens", Access::kFullAdmin, kOnWorker, CreateToken},
      {"DELETE", "/v1/tokens/{id}", Access::kFullAdmin, kOnWorker, RevokeToken},
  };
  return kRoutes;
}

}  // namespace timetrail::server
