-- Single-event appends to 10,000 streams with "expected_revision": "any": each request picks a
-- stream at random. The body is the same one the PostgreSQL peer stores (bench/http_wrk).
-- Usage: wrk -s bench/wrk/appends.lua http://HOST:PORT
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local common = require("common")

local streams = 10000
local body = '{"expected_revision":"any","events":[{"type":"appended","data":{"n":1}}]}'
local headers = { ["Content-Type"] = "application/json" }

setup = common.setup
done = common.done

-- Formatted once per stream in init(), so that wrk's threads spend their time on the network
-- rather than in Lua.
local requests = {}

function init(args)
  math.randomseed(seed or 1)
  for s = 0, streams - 1 do
    requests[s + 1] = wrk.format("POST", "/v1/streams/stream-" .. s, headers, body)
  end
end

function request()
  return requests[math.random(1, streams)]
end
