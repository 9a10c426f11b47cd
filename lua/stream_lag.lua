-- stream_lag.lua: how far the drain is behind on one stream.
--
-- KEYS[1]  stream  <p>{<scope>}:stream
-- ARGV[1]  consumer group
--
-- Not yet persisted = pending in the group (delivered, not acknowledged) + not yet delivered.
-- Returns {those entries, age of the oldest of them in ms (0 when none), stream length (XLEN:
-- what Redis holds, persisted entries the last trim left included)}.

local function id_ms(id)
  return tonumber(string.match(id, '^(%d+)-'))
end

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, 0, 0}
end
local length = redis.call('XLEN', KEYS[1])
local group
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local fields = {}
  for i = 1, #g - 1, 2 do
    fields[g[i]] = g[i + 1]
  end
  if fields['name'] == ARGV[1] then
    group = fields
  end
end

local pending, undelivered, oldest = 0, 0, nil
if group then
  pending = group['pending']
  local after = redis.call('XRANGE', KEYS[1], '(' .. group['last-delivered-id'], '+', 'COUNT', 1)
  if #after > 0 then
    -- Redis computes the lag from entries-read; it is nil when it cannot tell (then count).
    undelivered = group['lag']
    if type(undelivered) ~= 'number' then
      undelivered = #redis.call('XRANGE', KEYS[1], '(' .. group['last-delivered-id'], '+')
    end
    oldest = id_ms(after[1][1])
  end
  if pending > 0 then
    oldest = id_ms(redis.call('XPENDING', KEYS[1], ARGV[1])[2])
  end
else
  -- No group yet: nothing was ever read.
  undelivered = length
  if undelivered > 0 then
    oldest = id_ms(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1][1])
  end
end

if not oldest then
  return {pending + undelivered, 0, length}
end
local t = redis.call('TIME')
local age = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - oldest
if age < 0 then
  age = 0
end
return {pending + undelivered, age, length}
