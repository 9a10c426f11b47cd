-- raise_ceiling.lua: lets a scope's Redis copy issue further, once Postgres has reserved it.
--
-- KEYS[1]  meta hash  <p>{<scope>}:meta
-- ARGV[1]  the fence the reservation was made under (scope_reservations.fence)
-- ARGV[2]  the new ceiling (scope_reservations.reserved)
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
local fence, ceiling, broken = unpack(redis.call('HMGET', KEYS[1], 'fence', 'ceiling', 'broken'))
if broken then
  return -1
end
if fence ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'broken', '1')
  return -1
end
local new = tonumber(ARGV[2])
if tonumber(ceiling) < new then
  redis.call('HSET', KEYS[1], 'ceiling', new)
  return new
end
return tonumber(ceiling)
