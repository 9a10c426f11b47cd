-- load_meta.lua: write a scope's rules (an event's, a first-come batch's) into Redis from
-- Postgres, the source of truth.
--
-- KEYS[1]  meta hash     <p>{<scope>}:meta
-- KEYS[2]  day prefix    <p>{<scope>}:day:   the script appends the KST day numbers given below
-- KEYS[3]  holders hash  <p>{<scope>}:holders
--
-- ARGV[1]  version of the Postgres row (grows with every change)
-- ARGV[2]  total   ARGV[3] daily limit (0 = none)   ARGV[4] start ms   ARGV[5] end ms
-- ARGV[6]  active ('1' or '0')
-- ARGV[7]  '1' = create the hash when it is missing (creation, or a rebuild after the caller
--          restored the holders); '0' = only update an existing hash (a change of the row
--          must never create meta without the holders behind it)
-- ARGV[8]  (create only) least number of issues ever made: known from Postgres (a coupon
--          batch's highest persisted position + 1), and, when the replaced history may have
--          lost answers, all that was reserved for it (engine::meta) — so neither a position nor
--          a unit that may have been answered is ever numbered again
-- ARGV[9]  (create only) the scope's fence in Postgres (scope_reservations.fence): every record
--          the script writes carries it, and the drain writes only records of the current fence
-- ARGV[10] (create only) what Postgres has reserved (scope_reservations.reserved): the ceiling
--          the script issues up to (see issue.lua)
-- ARGV[11] (create only) a bucket's share of the daily limit (`dcap`, engine::leases: what
--          Postgres has leased it), '' for a copy without one
-- ARGV[12] (create only) a coupon bucket's leased positions, "from:to,…" (engine::positions:
--          what Postgres has leased it, written as `pos` from index 0), '' for other copies
-- ARGV[13..] pairs (KST day number, issued that day) restored into the day counters, raised
--          only, never lowered
--
-- Creating (a rebuild) also writes the integrity fields `issue.lua` checks: `issued` = the
-- largest of the old high-water mark (kept by a `broken` meta), the restored holders and
-- ARGV[8]; `gap` = issues that could not be restored into holders; `day`/`today` = today's
-- (KST, Redis clock) counter, raised to what a `broken` meta remembered for today. A `broken`
-- meta is replaced whatever its version. Creating also stamps `epoch`, the server's replication
-- id (see issue.lua): the copy is now known to be complete on this server, and writes `layout`
-- (below).
--
-- Returns 1 when the hash was written, 0 when it was left alone (missing with ARGV[7]='0', or
-- already at this version or a newer one: a slow rebuild never undoes a newer change).

local cur, broken = unpack(redis.call('HMGET', KEYS[1], 'ver', 'broken'))
local create = ARGV[7] == '1'
if not cur then
  if not create then
    return 0
  end
elseif not (broken and create) and tonumber(cur) >= tonumber(ARGV[1]) then
  return 0
end

redis.call('HSET', KEYS[1], 'ver', ARGV[1], 'total', ARGV[2], 'daily', ARGV[3],
           'start', ARGV[4], 'end', ARGV[5], 'active', ARGV[6])

for i = 13, #ARGV - 1, 2 do
  local day = tonumber(ARGV[i])
  local key = KEYS[2] .. ARGV[i]
  local count = tonumber(ARGV[i + 1])
  if count > tonumber(redis.call('GET', key) or '0') then
    redis.call('SET', key, count, 'PXAT', (day + 2) * 86400000 - 32400000)
  end
end
if create then
  local epoch = string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)')
  local held = redis.call('HLEN', KEYS[3])
  local issued = math.max(tonumber(redis.call('HGET', KEYS[1], 'issued') or '0'), held,
                          tonumber(ARGV[8]))
  local t = redis.call('TIME')
  local day = math.floor((tonumber(t[1]) * 1000 + 32400000) / 86400000)
  local today = tonumber(redis.call('GET', KEYS[2] .. day) or '0')
  -- A broken meta remembers today's count even when the counter and the records are gone.
  local old_day, old_today = unpack(redis.call('HMGET', KEYS[1], 'day', 'today'))
  if tonumber(old_day) == day and tonumber(old_today) > today then
    today = tonumber(old_today)
    redis.call('SET', KEYS[2] .. day, today, 'PXAT', (day + 2) * 86400000 - 32400000)
  end
  -- `layout`: a value longer than Redis keeps in a listpack (`hash-max-listpack-value`, 64 bytes
  -- unless raised) makes meta a hash table for good. issue.lua reads 14 fields of it on every
  -- call: a listpack finds each by a scan of the whole hash, a twentieth of the call.
  redis.call('HSET', KEYS[1], 'issued', issued, 'gap', issued - held, 'day', day, 'today', today,
             'epoch', epoch, 'fence', ARGV[9], 'ceiling', ARGV[10], 'layout',
             'a hash table: issue.lua reads these fields on every call, each found directly')
  redis.call('HDEL', KEYS[1], 'broken')
  if ARGV[11] ~= '' then
    redis.call('HSET', KEYS[1], 'dcap', ARGV[11])
  end
  redis.call('HDEL', KEYS[1], 'pos', 'pbase')
  if ARGV[12] ~= '' then
    redis.call('HSET', KEYS[1], 'pos', ARGV[12], 'pbase', 0)
  end
end
return 1
