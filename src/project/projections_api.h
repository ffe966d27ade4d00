// GET /v1/projections and GET /v1/projections/{name} (docs/http-api.md, "Projections"): the
// position of each projection running beside the server, and with min_position=P a wait until
// P is projected, the consistency token across the boundary; and their lines in /metrics.
#ifndef TIMETRAIL_PROJECT_PROJECTIONS_API_H_
#define TIMETRAIL_PROJECT_PROJECTIONS_API_H_

#include "project/projection_service.h"
#include "server/api.h"

namespace timetrail::project {

// The endpoints for the projections of "service" (null: none run here; the endpoints then
// answer 404 saying how to start them). "service" must outlive the server.
server::ApiExtension ProjectionsApi(const ProjectionService* service);

}  // namespace timetrail::project

#endif  // TIMETRAIL_PROJECT_PROJECTIONS_API_H_
