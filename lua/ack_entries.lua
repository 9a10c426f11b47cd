-- ack_entries.lua: acknowledge stream entries whose records are committed to Postgres, and trim
-- what no consumer needs any more.
--
-- KEYS[1]  stream  <p>{<scope>}:stream
-- ARGV[1]  consumer group
-- ARGV[2..] entry ids
--
-- After XACK, everything older than the oldest entry still pending in the group (or, with none
-- pending, everything delivered) is persisted, so the stream is trimmed up to there with
-- `XTRIM MINID ~`: whole nodes at a time, far cheaper than deleting entry by entry. A few
-- persisted entries may linger until the next trim; replaying them changes nothing.
-- XACK is idempotent, so a reclaimed entry acknowledged twice is harmless.
-- Returns the number of entries acknowledged.

local ids = {}
for i = 2, #ARGV do
  ids[#ids + 1] = ARGV[i]
end
if #ids == 0 then
  return 0
end
local acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))

local minid
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
if pending[1] > 0 then
  minid = pending[2]
else
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local fields = {}
    for i = 1, #group - 1, 2 do
      fields[group[i]] = group[i + 1]
    end
    if fields['name'] == ARGV[1] then
      local ms, seq = string.match(fields['last-delivered-id'], '^(%d+)-(%d+)$')
      minid = ms .. '-' .. (tonumber(seq) + 1)
    end
  end
end
if minid then
  redis.call('XTRIM', KEYS[1], 'MINID', '~', minid)
end
return acked
