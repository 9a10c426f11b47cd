-- issue.lua: the whole first-come decision for one user in one atomic call.
--
-- KEYS[1]  meta hash     <p>{<scope>}:meta     total, daily, start, end, active, ver
-- KEYS[2]  holders hash  <p>{<scope>}:holders  user id -> "<issue id>|<issued at ms>"
-- KEYS[3]  day prefix    <p>{<scope>}:day:     the script appends the KST day number
--                                              (days since 1970-01-01 KST, from the clock
--                                              below), so every api process agrees on it
-- KEYS[4]  stream        <p>{<scope>}:stream   the issue record is appended here
-- All keys share the {<scope>} hash tag, so the call runs unchanged on a Redis Cluster.
--
-- ARGV[1]  user id (decimal)
-- ARGV[2]  candidate issue id, used only when this call issues
-- ARGV[3]  clock override in epoch ms, '' in production (then Redis TIME decides)
-- ARGV[4]  kind of the record ('ticket')
-- ARGV[5]  scope id written into the record (the event key)
--
-- Returns {status, issue id, issued at ms, issued count, total}, the same shape on every branch.
-- Check order (SPEC §2): meta present -> user already holds one (DUP, even when sold out since)
-- -> active -> period -> total -> daily limit. Statuses:
--   OK, DUP, INACTIVE, PERIOD, SOLD_OUT, DAILY, NO_META (the caller rebuilds meta and retries).
--
-- The issued count is HLEN of the holders hash, so "never more than total" and "never two per
-- user" rest on one structure and cannot drift apart.

local meta = redis.call('HMGET', KEYS[1], 'total', 'daily', 'start', 'end', 'active')
if not meta[1] then
  return {'NO_META', '', 0, 0, 0}
end
local total = tonumber(meta[1])

local held = redis.call('HGET', KEYS[2], ARGV[1])
if held then
  local sep = string.find(held, '|', 1, true)
  return {'DUP', string.sub(held, 1, sep - 1), tonumber(string.sub(held, sep + 1)),
          redis.call('HLEN', KEYS[2]), total}
end

if meta[5] ~= '1' then
  return {'INACTIVE', '', 0, 0, total}
end

local now
if ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
if now < tonumber(meta[3]) or now > tonumber(meta[4]) then
  return {'PERIOD', '', 0, 0, total}
end

local issued = redis.call('HLEN', KEYS[2])
if issued >= total then
  return {'SOLD_OUT', '', 0, issued, total}
end

-- The day counter is kept even without a daily limit: it answers todayIssuedCount.
local day = math.floor((now + 32400000) / 86400000)
local day_key = KEYS[3] .. day
local daily = tonumber(meta[2])
if daily > 0 and tonumber(redis.call('GET', day_key) or '0') >= daily then
  return {'DAILY', '', 0, issued, total}
end

redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. now)
if redis.call('INCR', day_key) == 1 then
  -- Kept through the next KST day so yesterday's figure can still be read.
  local expire_at = (day + 2) * 86400000 - 32400000
  if ARGV[3] ~= '' then
    -- Under a test's clock override the day may lie in the past: keep it two real days.
    local t = redis.call('TIME')
    expire_at = math.max(expire_at, tonumber(t[1]) * 1000 + 172800000)
  end
  redis.call('PEXPIREAT', day_key, expire_at)
end
redis.call('XADD', KEYS[4], '*', 'k', ARGV[4], 's', ARGV[5], 'u', ARGV[1], 'id', ARGV[2], 't', now)
return {'OK', ARGV[2], now, issued + 1, total}
