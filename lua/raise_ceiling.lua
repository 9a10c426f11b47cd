-- raise_ceiling.lua: lets a scope's Redis copy issue further, once Postgres has reserved it.
--
-- KEYS[1]  meta hash  <p>{<scope>}:meta
-- ARGV[1]  the fence the reservation was made under (scope_reservations.fence)
-- ARGV[2]  the new ceiling (scope_reservations.reserved)
--
-- The ceiling only rises, and only on the copy built under that fence: a copy rebuilt since (a
-- new fence) took its ceiling from Postgres itself, and a missing copy is rebuilt before any
-- decision. Returns the ceiling as it now is, or -1 when the copy is missing, broken or of
-- another fence.

local fence, ceiling, broken = unpack(redis.call('HMGET', KEYS[1], 'fence', 'ceiling', 'broken'))
if not fence or broken or fence ~= ARGV[1] then
  return -1
end
local new = tonumber(ARGV[2])
if tonumber(ceiling) < new then
  redis.call('HSET', KEYS[1], 'ceiling', new)
  return new
end
return tonumber(ceiling)
