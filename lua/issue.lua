-- issue.lua: the whole first-come decision for a group of requests to one scope (a golden-ticket
-- event or a first-come coupon batch), in one atomic call. Requests are decided one after
-- another, in the order given, exactly as if each were its own call: grouping only shares the
-- round trip, the flush and the script set-up.
--
-- KEYS[1]  meta hash     <p>{<scope>}:meta     total, daily, start, end, active, ver, epoch,
--                                              ceiling, fence
-- KEYS[2]  holders hash  <p>{<scope>}:holders  user id -> "<issue id>|<issued at ms>"
-- KEYS[3]  day prefix    <p>{<scope>}:day:     the script appends the KST day number
--                                              (days since 1970-01-01 KST, from the clock
--                                              below), so every api process agrees on it
-- KEYS[4]  stream        <p>{<scope>}:stream   each issue appends one field
--                                              r = "<kind>|<scope id>|<user>|<issue id>|<at ms>|<fence>"
-- All keys share the {<scope>} hash tag, so the call runs unchanged on a Redis Cluster.
--
-- ARGV[1]  kind of the records ('ticket' or 'coupon')
-- ARGV[2]  scope id written into the records (the event key, the batch id)
-- ARGV[3]  how an issue gets its id: 'given' = the request's candidate; 'position' = the number
--          of issues before it (0, 1, 2 …), dense and never repeated, since holders only grow
-- ARGV[4]  '1' when the caller confirms the call's writes with WAIT (replica mode): a HELD answer
--          then writes its holder entry again, unchanged, so the connection's replication
--          offset covers the original issue and the WAIT confirms it too; '' otherwise
-- ARGV[5..] one triple per request:
--          user id; candidate issue id (used only if this request issues, in 'given' mode);
--          clock override in epoch ms, '' in production (then Redis TIME decides)
--
-- Returns, per request in order, six values {status, issue id, issued at ms, issued count,
-- total, ceiling (-1: none)}. Check order (SPEC §2): meta present -> user already holds one
-- (HELD, even when sold out since) -> active -> period -> total -> daily limit -> reservation.
-- Statuses:
--   ISSUED, HELD, INACTIVE, NOT_IN_PERIOD, SOLD_OUT, DAILY_LIMIT, NO_META (the caller rebuilds
--   meta and retries), RESERVE (the caller reserves more in Postgres and retries). The Rust
--   decoder's Verdict and the api's Denial use the same words.
--
-- Reservations (a lost answer is never answered again): meta's `ceiling` is what Postgres has
-- reserved for this copy of the scope (`scope_reservations.reserved`): the script never issues
-- the unit at `ceiling` or above, it answers RESERVE, and the api raises the reservation in
-- Postgres before it raises the ceiling. A rebuild resumes the count at the reservation, so no
-- position or unit that may have been answered before a loss of Redis is answered again.
-- `fence` is the scope's fence in Postgres when the copy was built; every record carries it,
-- and the drain writes only records of the current fence or a later one (a rebuild raises it).
-- A meta without `ceiling` (written before reservations existed) issues up to the quantity
-- until its rebuild.
--
-- Integrity (partial loss of a scope's keys): meta also counts what the script did —
-- `issued` (issues ever, the high-water mark), `gap` (issues a rebuild could not restore into
-- holders), `day`/`today` (the last KST day an issue was made and its count) — all written in
-- the same atomic call as the holders, the day counter and the stream. Before deciding
-- anything the script checks HLEN(holders) + gap == issued, that the stream exists once
-- anything was issued, and that today's counter still holds `today`. Any mismatch means keys
-- were lost: meta is marked `broken` and every request answers NO_META, so the caller rebuilds
-- from the stream and Postgres before any further decision. A broken meta keeps `issued`, so
-- the quantity and coupon positions (numbered from `issued`, never from HLEN) survive the
-- loss of holders and stream together. A meta without `issued` (written before these fields
-- existed) skips the checks until its next rebuild.
--
-- Epoch (a Redis copy behind Postgres): meta records in `epoch` the replication id of the
-- server it was built or rebuilt on. Redis gives a server a new replication id whenever it
-- starts (a restart, also from its AOF or RDB) and whenever a replica is promoted, so a meta
-- whose epoch is not the server's own may come from a history that lost its last writes while
-- the drain had already written them to Postgres. Such a meta is marked `broken` like a lost
-- key, and the rebuild merges Postgres back in before any decision.

local out = {}
local ceiling = -1
local function answer(status, id, at, issued, total)
  out[#out + 1] = status
  out[#out + 1] = id
  out[#out + 1] = at
  out[#out + 1] = issued
  out[#out + 1] = total
  out[#out + 1] = ceiling
end

local function no_meta()
  for _ = 5, #ARGV, 3 do
    answer('NO_META', '', 0, 0, 0)
  end
  return out
end

local meta = redis.call('HMGET', KEYS[1], 'total', 'daily', 'start', 'end', 'active',
                        'issued', 'gap', 'day', 'today', 'broken', 'epoch', 'ceiling', 'fence')
if not meta[1] or meta[10] then
  return no_meta()
end
if meta[11] ~= string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)') then
  redis.call('HSET', KEYS[1], 'broken', '1')
  return no_meta()
end
local total, daily = tonumber(meta[1]), tonumber(meta[2])
ceiling = tonumber(meta[12]) or -1
local fence = meta[13] and ('|' .. meta[13]) or ''

local start_ms, end_ms, active = tonumber(meta[3]), tonumber(meta[4]), meta[5] == '1'
local counted = tonumber(meta[6])

if counted then
  local t = redis.call('TIME')
  local real_day = math.floor((tonumber(t[1]) * 1000 + 32400000) / 86400000)
  local lost = redis.call('HLEN', KEYS[2]) + tonumber(meta[7] or '0') ~= counted
    or (counted > 0 and redis.call('EXISTS', KEYS[4]) == 0)
    or (tonumber(meta[8]) == real_day
        and tonumber(redis.call('GET', KEYS[3] .. real_day) or '0') ~= tonumber(meta[9]))
  if lost then
    redis.call('HSET', KEYS[1], 'broken', '1')
    return no_meta()
  end
end

local by_position = ARGV[3] == 'position'
local redis_now
-- Issues so far: the high-water mark when meta keeps it, else the size of holders.
local issued = counted
local today = {}  -- KST day -> issued that day, read once per batch
local last_day

local rewrite_held = ARGV[4] == '1'
for i = 5, #ARGV, 3 do
  local user, candidate, clock = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local held = redis.call('HGET', KEYS[2], user)
  if held then
    if rewrite_held then
      redis.call('HSET', KEYS[2], user, held)
    end
    local sep = string.find(held, '|', 1, true)
    issued = issued or redis.call('HLEN', KEYS[2])
    answer('HELD', string.sub(held, 1, sep - 1), tonumber(string.sub(held, sep + 1)), issued, total)
  elseif not active then
    answer('INACTIVE', '', 0, 0, total)
  else
    local now
    if clock ~= '' then
      now = tonumber(clock)
    else
      if not redis_now then
        local t = redis.call('TIME')
        redis_now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      end
      now = redis_now
    end
    issued = issued or redis.call('HLEN', KEYS[2])
    if now < start_ms or now > end_ms then
      answer('NOT_IN_PERIOD', '', 0, 0, total)
    elseif issued >= total then
      answer('SOLD_OUT', '', 0, issued, total)
    else
      -- The day counter is kept even without a daily limit: it answers todayIssuedCount.
      local day = math.floor((now + 32400000) / 86400000)
      local day_key = KEYS[3] .. day
      if not today[day] then
        today[day] = tonumber(redis.call('GET', day_key) or '0')
      end
      if daily > 0 and today[day] >= daily then
        answer('DAILY_LIMIT', '', 0, issued, total)
      elseif ceiling >= 0 and issued >= ceiling then
        answer('RESERVE', '', 0, issued, total)
      else
        if by_position then
          candidate = tostring(issued)
        end
        redis.call('HSET', KEYS[2], user, candidate .. '|' .. now)
        today[day] = redis.call('INCR', day_key)
        if today[day] == 1 then
          -- Kept through the next KST day so yesterday's figure can still be read.
          local expire_at = (day + 2) * 86400000 - 32400000
          if clock ~= '' then
            -- Under a test's clock override the day may lie in the past: keep it two real days.
            local t = redis.call('TIME')
            expire_at = math.max(expire_at, tonumber(t[1]) * 1000 + 172800000)
          end
          redis.call('PEXPIREAT', day_key, expire_at)
        end
        redis.call('XADD', KEYS[4], '*', 'r',
                   ARGV[1] .. '|' .. ARGV[2] .. '|' .. user .. '|' .. candidate .. '|' .. now .. fence)
        issued = issued + 1
        last_day = day
        answer('ISSUED', candidate, now, issued, total)
      end
    end
  end
end
if last_day then
  redis.call('HSET', KEYS[1], 'issued', issued, 'day', last_day, 'today', today[last_day])
end
return out
