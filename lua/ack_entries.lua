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
-- XACK is idempotent, so a reclaimed entry acknowledged twice is harmless. Ids go to XACK in
-- chunks: `unpack` of more than about 8,000 values overflows Lua's C stack, and a batch may be
-- larger than that.
-- Returns the number of entries acknowledged.

local CHUNK = 1000
if #ARGV < 2 then
  return 0
end
local acked = 0
for first = 2, #ARGV, CHUNK do
  local ids = {}
  for i = first, math.min(first + CHUNK - 1, #ARGV) do
    ids[#ids + 1] = ARGV[i]
  end
  acked = acked + redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
end

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
