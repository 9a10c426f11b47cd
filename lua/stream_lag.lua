-- stream_lag.lua: how far the drain is behind on one stream.
--
-- KEYS[1]  stream  <p>{<scope>}:stream
--
-- Returns {entries not yet persisted, age of the oldest one in ms (0 when empty)}. Entries are
-- deleted once persisted (ack_entries.lua), so the first entry is the oldest unpersisted one.

local len = redis.call('XLEN', KEYS[1])
if len == 0 then
  return {0, 0}
end
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1][1]
local ms = tonumber(string.sub(first, 1, string.find(first, '-', 1, true) - 1))
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local age = now - ms
if age < 0 then
  age = 0
end
return {len, age}
