-- room.lua: a scope's waiting room: joining, reading one's place, and the outflow, in one call.
--
-- KEYS[1]  room hash     <p>{<scope>}:room     n (joined so far), npre (joined before the start;
--                                              set at the first call at or after it), adm
--                                              (admitted so far), at (ms up to which the outflow
--                                              has been counted)
-- KEYS[2]  queue hash    <p>{<scope>}:queue    user id -> "<join index>:<s joined after the
--                                              pre-queue opened>" (the wait histogram's start)
-- KEYS[3]  passes hash   <p>{<scope>}:passes   user id -> when the user's pass expires (ms)
-- KEYS[4]  meta hash     <p>{<scope>}:meta     total, issued (sold out when issued >= total)
-- KEYS[5]  holders hash  <p>{<scope>}:holders  whether the user holds an issue
--
-- ARGV[1]  'join', 'place' (read one's place) or 'grant' (give the admitted user a pass)
-- ARGV[2]  user id
-- ARGV[3]  pre-queue opening ms   ARGV[4] the scope's start ms
-- ARGV[5]  admissions per second  ARGV[6] 'R' running, 'P' paused, 'C' closed
-- ARGV[7]  pass lifetime ms (grant)
--
-- The settings come from the caller on every call (its cached rules, fresh within a second),
-- so a change takes effect within a second and the room keeps no copy of them. The outflow is
-- counted on every call: `adm` grows by `admissions per second` for each second since `at`,
-- never past `n`; when everyone is admitted, `at` moves to now, so no credit builds up for
-- later arrivals; while paused, closed or sold out `at` moves to now and `adm` stays.
--
-- The order is not written: the caller computes a user's slot from the join index (a keyed
-- permutation of the first `npre`, then arrival order). A user whose pass expired unused and
-- who joins again goes to the back.
--
-- Returns {status, index, npre (-1 before the start), n, adm, now ms, pass expiry (0 none),
-- holds (1/0), sold out (1/0), joined at ms, joined now (1/0), a pass expired unused was given
-- up (1/0), the outflow's clock `at` ms}; status is 'OK', 'NOT_OPEN', 'CLOSED' or 'NONE'.
-- 'grant' returns the pass expiry (the existing one, or now + lifetime).

local mode, user = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if mode == 'grant' then
  redis.call('HSETNX', KEYS[3], user, now + tonumber(ARGV[7]))
  return tonumber(redis.call('HGET', KEYS[3], user))
end

local opens, start, rate, state = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local room = redis.call('HMGET', KEYS[1], 'n', 'npre', 'adm', 'at')
local n, npre, adm, at = tonumber(room[1]) or 0, tonumber(room[2]), tonumber(room[3]) or 0, tonumber(room[4])
local meta = redis.call('HMGET', KEYS[4], 'total', 'issued')
local sold = meta[1] and meta[2] and tonumber(meta[2]) >= tonumber(meta[1])

-- The pre-queue ends at the start: everyone who joined before it is in the shuffle.
if now >= start and not npre then
  npre = n
  redis.call('HSET', KEYS[1], 'npre', npre)
end
if npre then
  if not at or at < start then
    at = start
  end
  if state == 'R' and not sold then
    local k = math.floor((now - at) * rate / 1000)
    if k > 0 then
      adm = math.min(n, adm + k)
      at = adm == n and now or at + k * 1000 / rate
      redis.call('HSET', KEYS[1], 'adm', adm, 'at', string.format('%.3f', at))
    end
  elseif at < now then
    redis.call('HSET', KEYS[1], 'at', now)
  end
end

local opens_s = math.floor(opens / 1000)
local entry = redis.call('HGET', KEYS[2], user)
local index, joined_at
if entry then
  local i, after = string.match(entry, '^(%d+):(%d+)$')
  index = tonumber(i or entry)
  joined_at = (opens_s + tonumber(after or '0')) * 1000
end
local fresh, forfeit = 0, 0
local expiry = tonumber(redis.call('HGET', KEYS[3], user)) or 0
local holds = redis.call('HEXISTS', KEYS[5], user)
if mode == 'join' then
  if now < opens then
    return {'NOT_OPEN', -1, npre or -1, n, adm, now, 0, holds, sold and 1 or 0}
  end
  -- A pass that expired unused gives the place up: joining again goes to the back.
  if index and expiry > 0 and expiry <= now and holds == 0 then
    redis.call('HDEL', KEYS[3], user)
    index, expiry, forfeit = nil, 0, 1
  end
  if not index then
    if state == 'C' then
      return {'CLOSED', -1, npre or -1, n, adm, now, 0, holds, sold and 1 or 0}
    end
    index = n
    n = n + 1
    joined_at, fresh = now, 1
    redis.call('HSET', KEYS[2], user, index .. ':' .. math.max(0, math.floor(now / 1000) - opens_s))
    redis.call('HSET', KEYS[1], 'n', n)
  end
elseif not index then
  return {'NONE', -1, npre or -1, n, adm, now, 0, holds, sold and 1 or 0}
end
return {'OK', index, npre or -1, n, adm, now, expiry, holds, sold and 1 or 0, joined_at, fresh, forfeit,
        math.floor(at or start)}
