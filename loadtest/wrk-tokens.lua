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
  tokens, users = {}, {}
  local n = 0
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    if n % stride == id then
      local token, user = line:match("^(%S+) (%S+)$")
      table.insert(tokens, token)
      table.insert(users, user)
    end
    n = n + 1
  end
  next_index = 0
  path = os.getenv("ISSUE_PATH")
  no_body = os.getenv("NO_BODY") ~= nil
  get = os.getenv("METHOD") == "GET"
end

function request()
  next_index = next_index % #tokens + 1
  local headers = {
    ["Authorization"] = "Bearer " .. tokens[next_index],
    ["Content-Type"] = "application/json",
  }
  if get then
    return wrk.format("GET", (path:gsub("{user}", users[next_index])), headers)
  end
  if no_body then
    return wrk.format("POST", path, headers, "")
  end
  return wrk.format("POST", path, headers, '{"userId":' .. users[next_index] .. '}')
end
