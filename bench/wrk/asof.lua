-- Valid-time as-of point reads: the state of a random one of 100,000 entities at a random
-- instant of its 10 versions' validity (version v of entity-E is valid from 2026-01-01 + v days,
-- the last one open-ended; bench/http_wrk loads them). The PostgreSQL peer answers the same
-- question from a tstzrange history table.
-- Usage: wrk -s bench/wrk/asof.lua http://HOST:PORT
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local common = require("common")

-- bench/http_wrk --quick loads fewer entities and says so here.
local entities = tonumber(os.getenv("WRK_ENTITIES")) or 100000
local versions = 10
local base = 1767225600  -- 2026-01-01T00:00:00Z

setup = common.setup
done = common.done

-- A pool of random queries formatted in init() and used in turn, so that wrk's threads spend
-- their time on the network rather than in Lua.
local pool_size = 50000
local requests = {}
local next_request = 0

function init(args)
  math.randomseed(seed or 1)
  for i = 1, pool_size do
    local at = os.date("!%Y-%m-%dT%H:%M:%SZ", base + math.random(0, versions * 86400 - 1))
    requests[i] = wrk.format("GET", "/v1/entities/entity-" .. math.random(0, entities - 1) ..
                             "?valid_at=" .. at)
  end
end

function request()
  next_request = next_request % pool_size + 1
  return requests[next_request]
end
