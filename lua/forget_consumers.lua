-- forget_consumers.lua: remove consumer names left behind by drain processes that are gone.
--
-- KEYS[1]  stream  <p>{<scope>}:stream
-- ARGV[1]  consumer group
-- ARGV[2]  minimum idle time in ms
--
-- Only consumers with nothing pending are removed, so no entry changes hands here (entries of a
-- dead consumer are claimed by XAUTOCLAIM first). A live consumer that was merely idle is
-- created again by its next XREADGROUP. Returns how many were removed.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then
  return 0
end
local removed = 0
local min_idle = tonumber(ARGV[2])
for _, c in ipairs(consumers) do
  local fields = {}
  for i = 1, #c - 1, 2 do
    fields[c[i]] = c[i + 1]
  end
  if fields['pending'] == 0 and fields['idle'] >= min_idle then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], fields['name'])
    removed = removed + 1
  end
end
return removed
