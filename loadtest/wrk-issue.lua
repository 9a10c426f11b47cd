-- wrk script: POST /events/<EVENT>/tickets (or ISSUE_PATH, e.g. /api/v1/coupons/<id>/issue) with
-- a fresh user per request (admin token), and a count of answers by status printed as one line
-- at the end.
--
-- Environment: TOKEN (admin bearer token), EVENT (event key) or ISSUE_PATH, USER_BASE (first
-- user id).

dofile("loadtest/wrk-result.lua")

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
