-- Shared by the wrk scripts of bench/http_wrk: a per-thread random seed, and a summary line
-- that bench/http_wrk parses (requests, non-2xx answers, socket errors, latency percentiles).
local common = {}

local thread_counter = 0
function common.setup(thread)
  thread_counter = thread_counter + 1
  thread:set("seed", thread_counter * 7919)
end

function common.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end

return common
