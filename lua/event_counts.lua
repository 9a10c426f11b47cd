-- event_counts.lua: the live figures of one event.
--
-- KEYS[1]  meta hash     <p>{<scope>}:meta
-- KEYS[2]  holders hash  <p>{<scope>}:holders
-- KEYS[3]  day prefix    <p>{<scope>}:day:   the script appends today's KST day number
--
-- ARGV[1]  clock override in epoch ms, '' in production (then Redis TIME decides)
--
-- Returns {meta present (1/0), issued in total, issued today (KST)}.

local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local present = redis.call('EXISTS', KEYS[1])
local day = math.floor((now + 32400000) / 86400000)
return {present, redis.call('HLEN', KEYS[2]), tonumber(redis.call('GET', KEYS[3] .. day) or '0')}
