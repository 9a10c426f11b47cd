-- room.lua: a scope's waiting room: joining, reading one's place, and the outflow, in one call.
--
-- KEYS[1]  room hash     <p>{<scope>}:room     n (joined so far), npre (joined before the start;
--                                              set at the first call at or after it), adm
--                                              (admitted so far), at (ms up to which the outflow
--                                              has been counted), gone (admitted in steps whose
--                                              passes have expired)
-- KEYS[2]  queue hash    <p>{<scope>}:queue    user id -> "<join index>:<s joined after the
--                                              pre-queue opened>" (the wait histogram's start)
-- KEYS[3]  passes hash   <p>{<scope>}:passes   user id -> when the user's pass expires (ms)
-- KEYS[4]  meta hash     <p>{<scope>}:meta     total, issued (sold out when issued >= total)
-- KEYS[5]  holders hash  <p>{<scope>}:holders  whether the user holds an issue
-- KEYS[6]  steps zset    <p>{<scope>}:steps    the outflow's steps: member "<adm after>:<ms>",
--                                              score adm after; dropped once their passes expire
-- KEYS[7]  used zset     <p>{<scope>}:used     passes used: member user id, score the pass's
--                                              expiry (written by the issuer after an issue)
--
-- ARGV[1]  'join', 'place' (read one's place) or 'grant' (give the admitted user a pass)
-- ARGV[2]  user id
-- ARGV[3]  pre-queue opening ms   ARGV[4] the scope's start ms
-- ARGV[5]  admissions per second  ARGV[6] 'R' running, 'P' paused, 'C' closed
-- ARGV[7]  pass lifetime ms       ARGV[8] most unused passes (0: no cap)
-- ARGV[9]  the user's slot (grant)
--
-- The settings come from the caller on every call (its cached rules, fresh within a second),
-- so a change takes effect within a second and the room keeps no copy of them. The outflow is
-- counted on every call: `adm` grows by `admissions per second` for each second since `at`,
-- never past `n` nor, with a cap, past `cap + gone + used passes not yet expired` (at most
-- `cap` admitted whose pass is neither used nor expired); when a bound stops it, `at` moves to
-- now, so no credit builds up for later; while paused, closed or sold out `at` moves to now
-- and `adm` stays.
--
-- A pass lasts from its admission: the slot's step time plus the lifetime, whenever the user
-- comes for it, so an admission that is never taken frees its slot at that time too. Steps
-- closer than 1 % of the lifetime merge, so a pass may be up to that much shorter.
--
-- The order is not written: the caller computes a user's slot from the join index (a keyed
-- permutation of the first `npre`, then arrival order). A user whose pass expired unused and
-- who joins again goes to the back.
--
-- Returns {status, index, npre (-1 before the start), n, adm, now ms, pass expiry (0 none),
-- holds (1/0), sold out (1/0), joined at ms, joined now (1/0), a pass expired unused was given
-- up (1/0), the outflow's clock `at` ms, the cap's bound on adm (-1 none)}; status is 'OK',
-- 'NOT_OPEN', 'CLOSED' or 'NONE'. 'grant' returns the pass expiry (the existing one, or the
-- slot's step time + lifetime).

-- When a step member was made.
local function step_ms(member)
  return tonumber(string.match(member, ':(%d+)$'))
end

local mode, user = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local ttl = tonumber(ARGV[7])
if mode == 'grant' then
  local slot = tonumber(ARGV[9])
  -- The step that admitted the slot: the first whose count is above it.
  local step = redis.call('ZRANGEBYSCORE', KEYS[6], '(' .. slot, '+inf', 'LIMIT', 0, 1)
  local expiry = now + ttl
  if step[1] then
    expiry = step_ms(step[1]) + ttl
  elseif slot < (tonumber(redis.call('HGET', KEYS[1], 'gone')) or 0) then
    expiry = now
  end
  redis.call('HSETNX', KEYS[3], user, expiry)
  return tonumber(redis.call('HGET', KEYS[3], user))
end

local opens, start, rate, state = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local cap = tonumber(ARGV[8])
local room = redis.call('HMGET', KEYS[1], 'n', 'npre', 'adm', 'at', 'gone')
local n, npre, adm, at = tonumber(room[1]) or 0, tonumber(room[2]), tonumber(room[3]) or 0, tonumber(room[4])
local gone, limit = tonumber(room[5]) or 0, -1
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
  -- Steps whose passes have expired, used or not (a bounded number per call; the rest next).
  local was = gone
  for _ = 1, 64 do
    local head = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
    if not head[1] or step_ms(head[1]) + ttl > now then
      break
    end
    gone = tonumber(head[2])
    redis.call('ZPOPMIN', KEYS[6])
  end
  if gone ~= was then
    redis.call('HSET', KEYS[1], 'gone', gone)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now)
  if cap > 0 then
    limit = cap + gone + redis.call('ZCARD', KEYS[7])
  end
  if state == 'R' and not sold then
    local k = math.floor((now - at) * rate / 1000)
    if k > 0 then
      local next = math.min(n, adm + k)
      if limit >= 0 then
        next = math.max(adm, math.min(next, limit))
      end
      at = next < adm + k and now or at + k * 1000 / rate
      if next > adm then
        -- Steps closer than 1 % of a pass lifetime (10 ms to 1 s) merge, keeping the first's time:
        -- at most about a hundred live steps, whatever the call rate.
        local last = redis.call('ZRANGE', KEYS[6], -1, -1)
        local when = now
        if last[1] and step_ms(last[1]) > now - math.min(1000, math.max(10, ttl / 100)) then
          when = step_ms(last[1])
          redis.call('ZREM', KEYS[6], last[1])
        end
        redis.call('ZADD', KEYS[6], next, next .. ':' .. when)
      end
      adm = next
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
        math.floor(at or start), limit}
