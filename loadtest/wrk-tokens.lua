-- wrk script: a fresh user per request, each with a bearer token of their own, read from
-- TOKENS_FILE (one "token user-id" per line, minted beforehand). POSTs to ISSUE_PATH with the
-- body {"userId":<id>}, or with no body when NO_BODY is set (a peer that takes the user from
-- the token); with METHOD=GET, GETs ISSUE_PATH with `{user}` replaced by the user's id (a
-- waiting room's poll). Prints the same RESULT line as wrk-issue.lua.

dofile("loadtest/wrk-result.lua")

function init(args)
  statuses = {}
  -- With several wrk threads, each takes every n-th line, so no two share a user.
  local stride = tonumber(os.getenv("WRK_THREADS") or "1")
  local path = os.getenv("ISSUE_PATH")
  local no_body = os.getenv("NO_BODY") ~= nil
  local get = os.getenv("METHOD") == "GET"
  -- Every request is written here, before the load starts: written per request, they cost wrk
  -- about as much CPU as the server under test spends answering them, on the same cores.
  requests = {}
  local n = 0
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    if n % stride == id then
      local token, user = line:match("^(%S+) (%S+)$")
      local headers = {
        ["Authorization"] = "Bearer " .. token,
        ["Content-Type"] = "application/json",
      }
      local request
      if get then
        request = wrk.format("GET", (path:gsub("{user}", user)), headers)
      elseif no_body then
        request = wrk.format("POST", path, headers, "")
      else
        request = wrk.format("POST", path, headers, '{"userId":' .. user .. '}')
      end
      table.insert(requests, request)
    end
    n = n + 1
  end
  next_index = 0
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end
