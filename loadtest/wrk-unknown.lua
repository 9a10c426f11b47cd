-- wrk script: issue requests for scopes that do not exist, a distinct one per request —
-- alternately POST /events/flood-<n>/tickets and POST /api/v1/coupons/<n>/issue — to show that
-- the api's memory does not grow with the keys it has been asked about. Prints one RESULT line.
--
-- Environment: TOKEN (admin bearer token).

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  statuses = {}
  n = 1000000000 * (id + 1)
  headers = {
    ["Authorization"] = "Bearer " .. os.getenv("TOKEN"),
    ["Content-Type"] = "application/json",
  }
end

function request()
  n = n + 1
  local path
  if n % 2 == 0 then
    path = "/events/flood-" .. n .. "/tickets"
  else
    path = "/api/v1/coupons/" .. n .. "/issue"
  end
  return wrk.format("POST", path, headers, '{"userId":7}')
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, c in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + c
    end
  end
  local parts = {}
  for status, c in pairs(total) do
    table.insert(parts, status .. "=" .. c)
  end
  table.sort(parts)
  io.write(string.format("RESULT requests=%d rps=%.0f p99_ms=%.2f statuses=%s\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(99) / 1000,
    table.concat(parts, ",")))
end
