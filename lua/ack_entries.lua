-- ack_entries.lua: forget stream entries whose records are committed to Postgres.
--
-- KEYS[1]  stream  <p>{<scope>}:stream
-- ARGV[1]  consumer group
-- ARGV[2..] entry ids
--
-- XACK and XDEL together, so the stream holds only what is not yet persisted: its length is the
-- lag in entries and its first entry dates the lag in seconds. Both commands are idempotent, so a
-- reclaimed entry acknowledged twice is harmless. Returns the number of entries acknowledged.

local ids = {}
for i = 2, #ARGV do
  ids[#ids + 1] = ARGV[i]
end
if #ids == 0 then
  return 0
end
local acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
redis.call('XDEL', KEYS[1], unpack(ids))
return acked
