-- mark_broken.lua: marks a scope's Redis copy broken, so that no decision is made on it until
-- it is rebuilt (an operator's repair).
--
-- KEYS[1]  meta hash  <p>{<scope>}:meta
--
-- A missing copy is left missing: it is rebuilt anyway, and a hash holding only `broken` would
-- hide from the rebuild that the history is whole (see copy_whole.lua).
-- Returns 1 when a copy was marked, 0 when there was none.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'broken', '1')
return 1
