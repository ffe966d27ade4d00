// The endpoints of the HTTP API v1 (docs/http-api.md), one handler each, grouped by topic:
// routes_streams.cc (writing and reading events, subscriptions, consumers), routes_groups.cc
// (consumer groups), routes_temporal.cc
// (entity state, history, diff, revert, activity), routes_admin.cc (health, metrics,
// integrity, backups, tokens). routes.cc holds the table that maps requests to them.
#ifndef TIMETRAIL_SERVER_ROUTES_H_
#define TIMETRAIL_SERVER_ROUTES_H_

#include <vector>

#include "server/api_message.h"
#include "server/request_context.h"
#include "server/router.h"

namespace timetrail::server {

// The API's own endpoints, in the order Allow headers list their methods.
const std::vector<Route>& ApiRoutes();

// routes_streams.cc
// Appends are asynchronous (Runs::kAsync): they answer through "respond" once durable.
void AppendToStream(RequestContext& rc, Respond respond);  // POST /v1/streams/{stream}
ApiResponse ReadStream(RequestContext& rc);                // GET /v1/streams/{stream}
ApiResponse GetStreamInfo(RequestContext& rc);             // GET /v1/streams/{stream}/info
void Transact(RequestContext& rc, Respond respond);        // POST /v1/transactions
ApiResponse TransactBatch(RequestContext& rc);             // POST /v1/transactions/batch
ApiResponse ReadLog(RequestContext& rc);                   // GET /v1/log
ApiResponse GetEvent(RequestContext& rc);                  // GET /v1/events/{id}
ApiResponse Subscribe(RequestContext& rc);                 // GET /v1/subscribe
ApiResponse AckConsumer(RequestContext& rc);               // POST /v1/consumers/{name}/ack
ApiResponse GetConsumer(RequestContext& rc);               // GET /v1/consumers/{name}

// routes_groups.cc
ApiResponse ListGroups(RequestContext& rc);    // GET /v1/groups
ApiResponse GetGroup(RequestContext& rc);      // GET /v1/groups/{name}
ApiResponse PutGroup(RequestContext& rc);      // PUT /v1/groups/{name}
ApiResponse DeleteGroup(RequestContext& rc);   // DELETE /v1/groups/{name}
ApiResponse ReadGroup(RequestContext& rc);     // POST /v1/groups/{name}/read
ApiResponse AckGroup(RequestContext& rc);      // POST /v1/groups/{name}/ack
ApiResponse NackGroup(RequestContext& rc);     // POST /v1/groups/{name}/nack
ApiResponse ReplayParked(RequestContext& rc);  // POST /v1/groups/{name}/replay-parked

// routes_temporal.cc
ApiResponse GetEntity(RequestContext& rc);     // GET /v1/entities/{stream}
ApiResponse GetHistory(RequestContext& rc);    // GET /v1/entities/{stream}/history
ApiResponse GetDiff(RequestContext& rc);       // GET /v1/entities/{stream}/diff
ApiResponse RevertEntity(RequestContext& rc);  // POST /v1/entities/{stream}/revert
ApiResponse GetActivity(RequestContext& rc);   // GET /v1/activity

// routes_admin.cc
ApiResponse GetHealth(RequestContext& rc);         // GET /healthz
ApiResponse GetMetrics(RequestContext& rc);        // GET /metrics
ApiResponse GetIntegrityHead(RequestContext& rc);  // GET /v1/integrity
ApiResponse VerifyIntegrity(RequestContext& rc);   // POST /v1/integrity/verify
ApiResponse Backup(RequestContext& rc);            // POST /v1/backup
ApiResponse GetWhoami(RequestContext& rc);         // GET /v1/whoami
ApiResponse ListTokens(RequestContext& rc);        // GET /v1/tokens
ApiResponse CreateToken(RequestContext& rc);       // POST /v1/tokens
ApiResponse RevokeToken(RequestContext& rc);       // DELETE /v1/tokens/{id}

}  // namespace timetrail::server

#endif  // TIMETRAIL_SERVER_ROUTES_H_
