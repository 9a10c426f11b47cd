-- retire_stream.lua: drop the stream of a scope that has ended and is fully persisted, so the
-- drain's passes and the lag gauges do not grow with every scope ever created.
--
-- KEYS[1]  stream  <p>{<scope>}:stream
-- KEYS[2]  meta    <p>{<scope>}:meta
-- ARGV[1]  consumer group
--
-- Check order: the scope's window has ended by the Redis clock (`meta.end` < TIME; a scope
-- without meta is left alone, since its rules are unknown) → nothing is pending in the group
-- → nothing is undelivered (the last entry is at or before the group's last-delivered id).
-- Then the stream is trimmed empty; the key stays (with its group), since `issue.lua` takes a
-- missing stream of a scope that issued for lost data. An ended scope takes no issues (the
-- script answers NOT_IN_PERIOD), so no entry can arrive after the check; a scope whose window
-- is extended later is registered again by the change that extends it.
-- Returns 1 when the stream was retired (the caller removes it from the registry), else 0.

local finish = tonumber(redis.call('HGET', KEYS[2], 'end'))
if not finish then
  return 0
end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if finish >= now_ms then
  return 0
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
if pending[1] > 0 then
  return 0
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then
  local delivered
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    for i = 1, #group - 1, 2 do
      if group[i] == 'name' and group[i + 1] == ARGV[1] then
        for j = 1, #group - 1, 2 do
          if group[j] == 'last-delivered-id' then
            delivered = group[j + 1]
          end
        end
      end
    end
  end
  if not delivered then
    return 0
  end
  local lms, lseq = string.match(last[1][1], '^(%d+)-(%d+)$')
  local dms, dseq = string.match(delivered, '^(%d+)-(%d+)$')
  lms, lseq, dms, dseq = tonumber(lms), tonumber(lseq), tonumber(dms), tonumber(dseq)
  if lms > dms or (lms == dms and lseq > dseq) then
    return 0
  end
end
redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)
return 1
