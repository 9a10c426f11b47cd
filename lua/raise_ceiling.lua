-- raise_ceiling.lua: lets a scope's Redis copy issue further, once Postgres has reserved it.
--
-- KEYS[1]  meta hash  <p>{<scope>}:meta
-- ARGV[1]  the fence the reservation was made under (scope_reservations.fence)
-- ARGV[2]  the new ceiling (scope_reservations.reserved)
-- ARGV[3]  (a bucket's lease only) the lease generation `lgen` the caller read before it
--          leased: when it has moved on since (lower_ceiling.lua took the lease back), the
--          ceiling is left alone; a raise moves it on
-- ARGV[4]  (a bucket's lease of a scope with a daily limit) its new share of the daily limit
--          (`dcap`), raised with the ceiling under the same generation; '' otherwise
-- ARGV[5]  (a bucket's lease of a coupon batch) every position leased to the bucket,
--          "from:to,from:to…" (engine::positions), written with a raised ceiling as `pos` from
--          index 0 (`pbase`; issue.lua drops the ranges it passes)
--
-- The ceiling only rises, and only on the copy built under that fence: a copy rebuilt since (a
-- new fence) took its ceiling from Postgres itself, and a missing copy is rebuilt before any
-- decision. A copy of another fence (a rebuild that did not commit) must decide nothing more:
-- it is marked `broken` here, in the same call, so that the next request rebuilds it. A missing
-- copy is left missing — a hash holding only `broken` would hide from the rebuild that the
-- history is whole (see copy_whole.lua). Returns the ceiling as it now is, or -1 when the copy
-- is missing, broken or of another fence.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local fence, ceiling, broken, lgen =
  unpack(redis.call('HMGET', KEYS[1], 'fence', 'ceiling', 'broken', 'lgen'))
if broken then
  return -1
end
if ARGV[3] and (lgen or '0') ~= ARGV[3] then
  return tonumber(ceiling)
end
if fence ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'broken', '1')
  return -1
end
local new = tonumber(ARGV[2])
local raised = false
if tonumber(ceiling) < new then
  redis.call('HSET', KEYS[1], 'ceiling', new)
  if ARGV[5] then
    redis.call('HSET', KEYS[1], 'pos', ARGV[5], 'pbase', 0)
  end
  ceiling, raised = new, true
end
if ARGV[4] and ARGV[4] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'dcap') or '0') < tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'dcap', ARGV[4])
  raised = true
end
if raised and ARGV[3] then
  redis.call('HSET', KEYS[1], 'lgen', tonumber(ARGV[3]) + 1)
end
return tonumber(ceiling)
