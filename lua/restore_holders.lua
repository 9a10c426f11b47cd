-- restore_holders.lua: merge known issues back into a scope's holders hash.
--
-- KEYS[1]  holders hash  <p>{<scope>}:holders
-- ARGV     pairs (user id, "<issue id>|<issued at ms>")
--
-- HSETNX keeps whatever Redis already holds, so a merge can be repeated and can never replace
-- a user's ticket with another. Returns the number of users added.

local added = 0
for i = 1, #ARGV - 1, 2 do
  added = added + redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
end
return added
