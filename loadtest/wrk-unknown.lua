-- wrk script: issue requests for scopes that do not exist, a distinct one per request —
-- alternately POST /events/flood-<n>/tickets and POST /api/v1/coupons/<n>/issue — to show that
-- the api's memory does not grow with the keys it has been asked about. Prints the RESULT line
-- of wrk-result.lua.
--
-- Environment: TOKEN (admin bearer token).

dofile("loadtest/wrk-result.lua")

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
