-- lower_ceiling.lua: takes back what a bucket of an event spread over buckets has leased and
-- not issued, so that another bucket may issue it (see engine::leases).
--
-- KEYS[1]  meta hash  <p>{<bucket>}:meta
-- ARGV[1]  the fence of the bucket's reservation (scope_reservations.fence)
-- ARGV[2]  '1' when the bucket's reservation changed within the last moments: a ceiling below
--          it is then a raise on its way (engine::leases), and the copy is left alone, so two
--          buckets short of stock at the end of a sale do not take each other's fresh leases
--          back and forth; '' otherwise (a ceiling below the reservation is a raise that was
--          skipped, and what it leased is taken back with the rest)
-- ARGV[3]  the bucket's reservation (scope_reservations.reserved)
--
-- The ceiling falls to what the copy has issued (`issued`, gaps included), atomically with
-- respect to issue.lua, and the lease generation `lgen` moves on, so that a raise computed
-- before this call (raise_ceiling.lua with the old generation) changes nothing. The caller
-- holds the event's pool row locked in Postgres and writes the bucket's reservation down to
-- the returned ceiling before it lets go. Returns the ceiling as it now is, -1 when the copy is
-- missing, broken or of another fence, -2 when a raise is on its way (its lease then stays
-- where it is).

local fence, ceiling, issued, broken, lgen =
  unpack(redis.call('HMGET', KEYS[1], 'fence', 'ceiling', 'issued', 'broken', 'lgen'))
if not ceiling or not issued or broken or fence ~= ARGV[1] then
  return -1
end
if ARGV[2] == '1' and tonumber(ceiling) < tonumber(ARGV[3]) then
  return -2
end
local now = math.min(tonumber(ceiling), tonumber(issued))
redis.call('HSET', KEYS[1], 'ceiling', now, 'lgen', (tonumber(lgen) or 0) + 1)
return now
