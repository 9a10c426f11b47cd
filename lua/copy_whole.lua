-- copy_whole.lua: whether this server's history of a scope is known whole, before a rebuild
-- (see engine::meta): then no answer can be lost, and the count resumes where it was rather
-- than above what Postgres reserved.
--
-- KEYS[1]  meta hash     <p>{<scope>}:meta
-- KEYS[2]  holders hash  <p>{<scope>}:holders
-- KEYS[3]  stream        <p>{<scope>}:stream
-- ARGV[1]  the scope's fence in Postgres (scope_reservations.fence)
--
-- Whole: the meta (even one marked broken) was built on this server (its epoch is the server's
-- replication id) under the scope's current fence, so its high-water mark counts every issue;
-- or the meta alone is gone while this server still has the holders or a stream that issues were
-- added to, which with Postgres name every answer (keys are lost whole, and a server that lost
-- its data or came back from an older copy has a new replication id). A stream nothing was ever
-- added to tells nothing: the drain makes one (MKSTREAM) when it finds its group gone; a drained
-- one is empty but counts what it was given (XINFO STREAM's entries-added, Redis 7).
-- Returns 1 when whole, 0 otherwise.

local issued, epoch, fence = unpack(redis.call('HMGET', KEYS[1], 'issued', 'epoch', 'fence'))
if issued then
  local mine = string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)')
  return (epoch == mine and fence == ARGV[1]) and 1 or 0
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0 -- a meta from before the integrity fields: nothing to tell by
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 1
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  return 0
end
local info = redis.call('XINFO', 'STREAM', KEYS[3])
for i = 1, #info - 1, 2 do
  if info[i] == 'entries-added' then
    return info[i + 1] > 0 and 1 or 0
  end
end
return redis.call('XLEN', KEYS[3]) > 0 and 1 or 0
