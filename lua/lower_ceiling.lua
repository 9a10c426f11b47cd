-- lower_ceiling.lua: takes back what a bucket of an event spread over buckets has leased and
-- not issued, so that another bucket may issue it (see engine::leases).
--
-- KEYS[1]  meta hash   <p>{<bucket>}:meta
-- KEYS[2]  day prefix  <p>{<bucket>}:day:   the script appends today's KST day number
-- ARGV[1]  the fence of the bucket's reservation (scope_reservations.fence)
-- ARGV[2]  '1' when the bucket's reservation changed within the last moments: a ceiling (or
--          share of the daily limit) below it is then a raise on its way (engine::leases), and
--          the copy is left alone, so two buckets short of stock at the end of a sale do not
--          take each other's fresh leases back and forth; '' otherwise (a ceiling below the
--          reservation is a raise that was skipped, and what it leased is taken back with the
--          rest)
-- ARGV[3]  the bucket's reservation (scope_reservations.reserved)
-- ARGV[4]  its share of the daily limit in Postgres (scope_reservations.daily_reserved)
--
-- The ceiling falls to what the copy has issued (`issued`, gaps included), and a share of the
-- daily limit (`dcap`) to what it issued today (KST, Redis clock), atomically with respect to
-- issue.lua, and the lease generation `lgen` moves on, so that a raise computed before this call
-- (raise_ceiling.lua with the old generation) changes nothing. The caller holds the event's pool
-- row locked in Postgres and writes the bucket's reservation down to the returned values before
-- it lets go. Returns {ceiling, dcap (-1: none)} as they now are, or {-1, -1} when the copy is
-- missing, broken or of another fence, {-2, -2} when a raise is on its way (its lease then stays
-- where it is).

local fence, ceiling, issued, broken, lgen, dcap =
  unpack(redis.call('HMGET', KEYS[1], 'fence', 'ceiling', 'issued', 'broken', 'lgen', 'dcap'))
if not ceiling or not issued or broken or fence ~= ARGV[1] then
  return {-1, -1}
end
if ARGV[2] == '1' and (tonumber(ceiling) < tonumber(ARGV[3])
                       or (dcap and tonumber(dcap) < tonumber(ARGV[4] or '0'))) then
  return {-2, -2}
end
local now = math.min(tonumber(ceiling), tonumber(issued))
redis.call('HSET', KEYS[1], 'ceiling', now, 'lgen', (tonumber(lgen) or 0) + 1)
local share = -1
if dcap then
  local t = redis.call('TIME')
  local day = math.floor((tonumber(t[1]) * 1000 + 32400000) / 86400000)
  share = math.min(tonumber(dcap), tonumber(redis.call('GET', KEYS[2] .. day) or '0'))
  redis.call('HSET', KEYS[1], 'dcap', share)
end
return {now, share}
