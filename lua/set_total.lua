-- set_total.lua: lowers a scope's quantity in its Redis copy, in the same atomic step as the
-- check that nothing issued is above it: between this call and the next `issue.lua` call no
-- issue can slip in under the old quantity. (A raise needs no check: Postgres commits it first
-- and `load_meta.lua` copies it.)
--
-- KEYS[1]  meta hash     <p>{<scope>}:meta
-- KEYS[2]  holders hash  <p>{<scope>}:holders
--
-- ARGV[1]  the new quantity
--
-- Only `total` changes; the version stays, so the `load_meta.lua` call that follows the
-- Postgres commit writes the whole row at its new version. Should that commit fail, the caller
-- calls this again with the old quantity (a raise back, which the check always lets through).
--
-- Returns {1, issued} when written; {0, issued} when more than the new quantity was issued
-- already (nothing changed); {-1, 0} when the copy is missing, broken or of another server's
-- history (as `issue.lua` finds it; then marked broken): the caller rebuilds it and asks again.

local meta = redis.call('HMGET', KEYS[1], 'total', 'broken', 'epoch', 'issued')
if not meta[1] or meta[2] then
  return {-1, 0}
end
if meta[3] ~= string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)') then
  redis.call('HSET', KEYS[1], 'broken', '1')
  return {-1, 0}
end
-- Issues so far: the high-water mark when meta keeps it, else the size of holders.
local issued = tonumber(meta[4]) or redis.call('HLEN', KEYS[2])
if issued > tonumber(ARGV[1]) then
  return {0, issued}
end
redis.call('HSET', KEYS[1], 'total', ARGV[1])
return {1, issued}
