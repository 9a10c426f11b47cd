-- lower_ceiling.lua: takes back what a bucket of an event spread over buckets has leased and
-- not issued, so that another bucket may issue it (see engine::leases).
--
-- KEYS[1]  meta hash   <p>{<bucket>}:meta
-- KEYS[2]  day prefix  <p>{<bucket>}:day:   the script appends today's KST day number
-- ARGV[1]  the fence of the bucket's reservation (scope_reservations.fence)
-- ARGV[2]  '1' when the bucket's reservation changed within the last moments: what it leased
--          and has not issued is then a fresh lease (engine::leases), its raise on its way or
--          landed and the requests it was leased for not yet asking again, and the copy is left
--          alone, so two buckets short of stock at the end of a sale do not take each other's
--          fresh leases back and forth; '' otherwise (a ceiling below the reservation is a
--          raise that was skipped, and what it leased is taken back with the rest)
-- ARGV[3]  the bucket's reservation (scope_reservations.reserved)
-- ARGV[4]  its share of the daily limit in Postgres (scope_reservations.daily_reserved)
-- ARGV[5]  'daily' to take back only today's unused share of the daily limit (the ceiling stays,
--          and is returned as it is); '' to take back units too
--
-- The ceiling falls to what the copy has issued (`issued`, gaps included), and a share of the
-- daily limit (`dcap`) to what it issued today (KST, Redis clock), atomically with respect to
-- issue.lua, and the lease generation `lgen` moves on, so that a raise computed before this call
-- (raise_ceiling.lua with the old generation) changes nothing. The caller holds the event's pool
-- row locked in Postgres and writes the bucket's reservation down to the returned values before
-- it lets go. Returns {ceiling, dcap (-1: none)} as they now are, or {-1, -1} when the copy is
-- missing, broken, of another fence or of another history (it keeps its lease until its
-- rebuild), {-2, -2} when a fresh lease is left alone (it then stays where it is).

local fence, ceiling, issued, broken, lgen, dcap, epoch =
  unpack(redis.call('HMGET', KEYS[1], 'fence', 'ceiling', 'issued', 'broken', 'lgen', 'dcap',
                    'epoch'))
if not ceiling or not issued or broken or fence ~= ARGV[1] then
  return {-1, -1}
end
-- A copy of another history (see issue.lua) may count fewer issues than it answered: lowering
-- its ceiling to that count would give answered units back to the pool. It is marked broken, as
-- issue.lua would, and keeps its lease until its rebuild.
if epoch ~= string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)') then
  redis.call('HSET', KEYS[1], 'broken', '1')
  return {-1, -1}
end
local today
if dcap then
  local t = redis.call('TIME')
  local day = math.floor((tonumber(t[1]) * 1000 + 32400000) / 86400000)
  today = tonumber(redis.call('GET', KEYS[2] .. day) or '0')
end
local units = ARGV[5] ~= 'daily'
if ARGV[2] == '1' and ((units and tonumber(issued) < tonumber(ARGV[3]))
                       or (dcap and today < tonumber(ARGV[4] or '0'))) then
  return {-2, -2}
end
local now = tonumber(ceiling)
if units then
  now = math.min(now, tonumber(issued))
end
-- The generation moves on either way: a raise computed before must not restore a share.
redis.call('HSET', KEYS[1], 'ceiling', now, 'lgen', (tonumber(lgen) or 0) + 1)
local share = -1
if dcap then
  share = math.min(tonumber(dcap), today)
  redis.call('HSET', KEYS[1], 'dcap', share)
end
return {now, share}
