-- load_meta.lua: write an event's rules into Redis from Postgres, the source of truth.
--
-- KEYS[1]  meta hash   <p>{<scope>}:meta
-- KEYS[2]  day prefix  <p>{<scope>}:day:   the script appends the KST day numbers given below
--
-- ARGV[1]  version of the Postgres row (grows with every change)
-- ARGV[2]  total   ARGV[3] daily limit (0 = none)   ARGV[4] start ms   ARGV[5] end ms
-- ARGV[6]  active ('1' or '0')
-- ARGV[7]  '1' = create the hash when it is missing (creation, or a rebuild after the caller
--          restored the holders); '0' = only update an existing hash (a change of the row
--          must never create meta without the holders behind it)
-- ARGV[8..] pairs (KST day number, issued that day) restored into the day counters, raised
--          only, never lowered
--
-- Returns 1 when the hash was written, 0 when it was left alone (missing with ARGV[7]='0', or
-- already at this version or a newer one: a slow rebuild never undoes a newer change).

local cur = redis.call('HGET', KEYS[1], 'ver')
if not cur then
  if ARGV[7] ~= '1' then
    return 0
  end
elseif tonumber(cur) >= tonumber(ARGV[1]) then
  return 0
end

redis.call('HSET', KEYS[1], 'ver', ARGV[1], 'total', ARGV[2], 'daily', ARGV[3],
           'start', ARGV[4], 'end', ARGV[5], 'active', ARGV[6])

for i = 8, #ARGV - 1, 2 do
  local day = tonumber(ARGV[i])
  local key = KEYS[2] .. ARGV[i]
  local count = tonumber(ARGV[i + 1])
  if count > tonumber(redis.call('GET', key) or '0') then
    redis.call('SET', key, count, 'PXAT', (day + 2) * 86400000 - 32400000)
  end
end
return 1
