-- scope_counts.lua: the live figures of one scope (a golden-ticket event, a first-come coupon
-- batch).
--
-- KEYS[1]  meta hash     <p>{<scope>}:meta
-- KEYS[2]  holders hash  <p>{<scope>}:holders
-- KEYS[3]  day prefix    <p>{<scope>}:day:   the script appends today's KST day number
--
-- ARGV[1]  clock override in epoch ms, '' in production (then Redis TIME decides)
--
-- Returns {meta present and sound (1/0; a `broken` meta counts as missing), issued in total
-- (meta's high-water mark `issued` when kept, else HLEN of holders), issued today (KST)}.

local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local meta = redis.call('HMGET', KEYS[1], 'ver', 'broken', 'issued')
local present = (meta[1] and not meta[2]) and 1 or 0
local issued = tonumber(meta[3]) or redis.call('HLEN', KEYS[2])
local day = math.floor((now + 32400000) / 86400000)
return {present, issued, tonumber(redis.call('GET', KEYS[3] .. day) or '0')}
