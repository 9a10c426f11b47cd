-- wrk script: POST /events/<EVENT>/tickets (or ISSUE_PATH, e.g. /api/v1/coupons/<id>/issue) with
-- a fresh user per request (admin token), and a count of answers by status printed as one line
-- at the end.
--
-- Environment: TOKEN (admin bearer token), EVENT (event key) or ISSUE_PATH, USER_BASE (first
-- user id).

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  statuses = {}
  next_user = tonumber(os.getenv("USER_BASE") or "1000000") + id * 100000000
  path = os.getenv("ISSUE_PATH") or ("/events/" .. os.getenv("EVENT") .. "/tickets")
  headers = {
    ["Authorization"] = "Bearer " .. os.getenv("TOKEN"),
    ["Content-Type"] = "application/json",
  }
end

function request()
  next_user = next_user + 1
  return wrk.format("POST", path, headers, '{"userId":' .. next_user .. '}')
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(total) do
    table.insert(parts, status .. "=" .. n)
  end
  table.sort(parts)
  io.write(string.format("RESULT rps=%.0f p99_ms=%.2f p50_ms=%.2f errors=%d statuses=%s\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(99) / 1000,
    latency:percentile(50) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ",")))
end
