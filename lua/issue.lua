-- issue.lua: the whole first-come decision for a group of requests to one scope (a golden-ticket
-- event or a first-come coupon batch), in one atomic call. Requests are decided one after
-- another, in the order given, exactly as if each were its own call: grouping only shares the
-- round trip, the flush and the script set-up. The Redis work is flat per call: one HMGET reads
-- every requester's holder entry, the decisions are made in memory, and one HSET, one INCRBY
-- per KST day and one XADD write what the call issued.
--
-- KEYS[1]  meta hash     <p>{<scope>}:meta     total, daily, start, end, active, ver, epoch,
--                                              ceiling, fence; a bucket of a scope with a
--                                              daily limit adds dcap, a bucket of a coupon
--                                              batch pos and pbase (engine::leases), read
--                                              only by a 'leased' call
-- KEYS[2]  holders hash  <p>{<scope>}:holders  user id -> "<issue id>|<issued at ms>"
-- KEYS[3]  day prefix    <p>{<scope>}:day:     the script appends the KST day number
--                                              (days since 1970-01-01 KST, from the clock
--                                              below), so every api process agrees on it
-- KEYS[4]  stream        <p>{<scope>}:stream   each call that issues appends one entry: the
--                                              call itself, from which the drain reads its
--                                              records (engine::stream), not a line per issue
--                                              (see "The stream entry" below)
-- All keys share the {<scope>} hash tag, so the call runs unchanged on a Redis Cluster.
--
-- ARGV[1]  kind of the records ('ticket' or 'coupon')
-- ARGV[2]  scope id written into the records (the event key, the batch id)
-- ARGV[3]  how an issue gets its id: 'given' = the call's ticket ids (ARGV[7]); 'position' = the
--          number of issues before it (0, 1, 2 …), dense and never repeated, since holders only
--          grow; 'leased' (a bucket of a coupon batch) = the position that number indexes in the
--          bucket's leased positions (engine::positions): meta's `pos` lists them as half-open
--          ranges "from:to,from:to…" starting at index `pbase`; ranges used up are dropped from
--          `pos` as the call passes them, and a number the lease does not reach answers RESERVE
-- ARGV[4]  '1' when the caller confirms the call's writes with WAIT (replica mode): a HELD answer
--          then writes its holder entry again, unchanged, so the connection's replication
--          offset covers the original issue and the WAIT confirms it too; '' otherwise
-- ARGV[5]  '1' when the requests carry a clock override (tests only), '' in production (then
--          Redis TIME decides)
-- ARGV[6]  the requests' user ids, in order, each followed by a space: one argument for the
--          group, not one per request (each argument costs the caller an encoding and Redis a
--          parse)
-- ARGV[7]  'given': the first 33 characters of a UUIDv7 the caller drew for the call; the j-th
--          request (from 0) that issues gets it completed with j as three hex digits
--          (engine::issue::TicketIds), so the caller knows every id without sending one; ''
--          otherwise
-- ARGV[8..] with ARGV[5] = '1', each request's clock override in epoch ms ('' for none)
--
-- Returns {total, ceiling (-1: none), now ms, issued before the call, statuses, held...}:
-- `statuses` has one letter per request, in order; `held` is the holder entry
-- "<issue id>|<issued at ms>" of each HELD request, in order ('leased': and the position of
-- each ISSUED request, in request order among them). Everything else about an answer
-- the caller knows already, so it is not sent back (a reply of four values per request cost
-- a fifth of the call): the n-th ISSUED of the call (from 0) leaves `issued before + n + 1`
-- issued, its id is the call's ticket id of its request ('given'), `issued before + n`
-- ('position') or the position sent back ('leased'), and it was issued at its clock override
-- or else at `now`; a RESERVE saw the issued count of the
-- ISSUED before it. Check order (SPEC §2): meta present -> user already holds one (HELD, even
-- when sold out since) -> active -> period -> total -> daily limit -> reservation. Statuses:
--   I = ISSUED, H = HELD, A = INACTIVE, P = NOT_IN_PERIOD, S = SOLD_OUT, D = DAILY_LIMIT,
--   N = NO_META (the caller rebuilds meta and retries), R = RESERVE (the caller reserves more
--   in Postgres and retries). The Rust decoder's Verdict and the api's Denial use the same
--   words.
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
--
-- The stream entry: one per call that issues, written from what the call already holds, so an
-- issue adds no text of its own to it (a record line per issue was an eighth of the script):
--   g   "<kind>|<scope id>|<ids>|<base>|<at ms>|<fence>|<statuses>": ids is ARGV[3]; base is the
--       call's ticket id prefix ('given'), the issues before the call ('position': the n-th
--       ISSUED of the call, from 0, has position base + n) or '' ('leased'); fence is '' for a
--       meta without one; statuses as in the reply
--   gu  ARGV[6] as given: the requests' users, in order, each followed by a space
--   gp  'leased' only: the positions of the call's ISSUED requests, in order, each followed by
--       a space
--   gt  with clock overrides only: each request's time in epoch ms, each followed by a space
-- Each ISSUED request (status I) is one record: its user, its id, its time and the fence.

local out = {0, -1, 0, 0, ''}
local find, sub, format = string.find, string.sub, string.format
-- The users, split at their spaces by plain finds, not by a pattern tried at every character.
local users, n_users = {}, 0
do
  local list, from = ARGV[6], 1
  local space = find(list, ' ', from, true)
  while space do
    n_users = n_users + 1
    users[n_users] = sub(list, from, space - 1)
    from = space + 1
    space = find(list, ' ', from, true)
  end
  if from <= #list then
    n_users = n_users + 1
    users[n_users] = sub(list, from)
  end
end

local function no_meta()
  out[5] = string.rep('N', n_users)
  return out
end

-- (A bucket of a coupon batch reads its `pos` and `pbase` below: every field read is a reply
-- value made and a string interned, on every call.)
local meta = redis.call('HMGET', KEYS[1], 'total', 'daily', 'start', 'end', 'active',
                        'issued', 'gap', 'day', 'today', 'broken', 'epoch', 'ceiling', 'fence',
                        'dcap')
if not meta[1] or meta[10] then
  return no_meta()
end
-- The replication id: the 40 hex digits after its name, found as plain text (a pattern match
-- tried every position of the section).
local info = redis.call('INFO', 'replication')
local replid_at = find(info, 'master_replid:', 1, true)
if not replid_at or meta[11] ~= sub(info, replid_at + 14, replid_at + 53) then
  redis.call('HSET', KEYS[1], 'broken', '1')
  return no_meta()
end
local total, daily = tonumber(meta[1]), tonumber(meta[2])
-- A bucket's share of the daily limit, leased like its ceiling: it issues no more a KST day.
local dcap = tonumber(meta[14])
local ceiling = tonumber(meta[12]) or -1
local start_ms, end_ms, active = tonumber(meta[3]), tonumber(meta[4]), meta[5] == '1'
local counted = tonumber(meta[6])

local t = redis.call('TIME')
local redis_now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Numbers become text once per call where they can, and text read back is compared as text:
-- Lua's tostring of a number is a floating-point print ('%.14g') and tonumber a strtod, each a
-- visible share of the call's cost; '%d' is an integer print. Every writer of these fields and
-- counters writes an integer's canonical text (INCRBY, '%d', or a Lua integer passed to
-- redis.call), so equal numbers are equal text.
local redis_now_text = format('%d', redis_now)

-- The KST day at Redis's clock, for every request without a clock override.
local real_day = math.floor((redis_now + 32400000) / 86400000)
local real_day_text = format('%d', real_day)
local function day_text(day)
  if day == real_day then
    return real_day_text
  end
  return format('%d', day)
end
-- A count read as text: missing or '0' is 0 without a strtod.
local function count_of(text)
  if not text or text == '0' then
    return 0
  end
  return tonumber(text)
end
local today = {}     -- KST day -> issued that day (read once per call)
if counted then
  local issued_today = meta[8] == real_day_text
  local lost = redis.call('HLEN', KEYS[2]) + count_of(meta[7]) ~= counted
    or (counted > 0 and redis.call('EXISTS', KEYS[4]) == 0)
    or (issued_today and (redis.call('GET', KEYS[3] .. real_day_text) or '0') ~= meta[9])
  if lost then
    redis.call('HSET', KEYS[1], 'broken', '1')
    return no_meta()
  end
  if issued_today then
    -- Checked equal to today's counter just now: the loop need not read it again.
    today[real_day] = count_of(meta[9])
  end
end
out[1], out[2], out[3] = total, ceiling, redis_now

local held = redis.call('HMGET', KEYS[2], unpack(users))

local ids, with_clock = ARGV[3], ARGV[5] == '1'
local leased = ids == 'leased'
local by_position = leased or ids == 'position'
-- A bucket's leased positions, from index `rstart` (see ARGV[3]); range `r` is the current one.
local ranges, r, rstart, leased_position
local positions      -- 'leased': the positions issued, for the stream entry
if leased then
  local lease = redis.call('HMGET', KEYS[1], 'pos', 'pbase')
  ranges, r, rstart, positions = {}, 1, tonumber(lease[2] or '0'), {}
  for from, to in string.gmatch(lease[1] or '', '(%d+):(%d+)') do
    ranges[#ranges + 1] = {tonumber(from), tonumber(to)}
  end
  -- The position of the bucket's n-th issue; nil when its lease does not reach it.
  leased_position = function(n)
    while ranges[r] and n >= rstart + ranges[r][2] - ranges[r][1] do
      rstart = rstart + ranges[r][2] - ranges[r][1]
      r = r + 1
    end
    if not ranges[r] or n < rstart then
      return nil
    end
    return ranges[r][1] + n - rstart
  end
end
local rewrite_held = ARGV[4] == '1'
-- Issues so far: the high-water mark when meta keeps it, else the size of holders.
local issued = counted or redis.call('HLEN', KEYS[2])
out[4] = issued
local n_out = #out
local statuses = {}  -- one letter per request
local fresh = {}     -- user -> holder entry issued by this call
local writes = {}    -- HSET arguments for holders
local n_writes = 0
local times = with_clock and {} -- clock overrides: each request's time, for the stream entry
local days = {}      -- KST days issued on, in order
local before = {}    -- KST day -> what it had before this call
local last_day

local tickets = ARGV[7]
-- The three hex digits that complete the j-th ticket id of a call (engine::issue::TicketIds),
-- cut from this text rather than printed: a print per issue cost more than the rest of its id.
-- One literal on one line: Lua 5.1 does not fold `..` of constants, so pieces joined here would
-- be joined (and the result hashed) on every call.
local HEX = '00000100200300400500600700800900a00b00c00d00e00f01001101201301401501601701801901a01b01c01d01e01f02002102202302402502602702802902a02b02c02d02e02f03003103203303403503603703803903a03b03c03d03e03f04004104204304404504604704804904a04b04c04d04e04f05005105205305405505605705805905a05b05c05d05e05f06006106206306406506606706806906a06b06c06d06e06f07007107207307407507607707807907a07b07c07d07e07f08008108208308408508608708808908a08b08c08d08e08f09009109209309409509609709809909a09b09c09d09e09f0a00a10a20a30a40a50a60a70a80a90aa0ab0ac0ad0ae0af0b00b10b20b30b40b50b60b70b80b90ba0bb0bc0bd0be0bf0c00c10c20c30c40c50c60c70c80c90ca0cb0cc0cd0ce0cf0d00d10d20d30d40d50d60d70d80d90da0db0dc0dd0de0df0e00e10e20e30e40e50e60e70e80e90ea0eb0ec0ed0ee0ef0f00f10f20f30f40f50f60f70f80f90fa0fb0fc0fd0fe0ff'
-- What follows a holder entry's id at Redis's clock: made once per call.
local at_now = '|' .. redis_now_text
for j = 1, n_users do
  local user = users[j]
  local entry = fresh[user] or held[j]
  local now, at, day = redis_now, at_now, real_day
  if with_clock then
    local clock = ARGV[7 + j]
    if clock and clock ~= '' then
      now, at = tonumber(clock), '|' .. clock
      day = math.floor((now + 32400000) / 86400000)
    end
    times[j] = sub(at, 2)
  end
  if entry then
    if rewrite_held and not fresh[user] then
      writes[n_writes + 1] = user
      writes[n_writes + 2] = entry
      n_writes = n_writes + 2
    end
    statuses[j] = 'H'
    n_out = n_out + 1
    out[n_out] = entry
  elseif not active then
    statuses[j] = 'A'
  elseif now < start_ms or now > end_ms then
    statuses[j] = 'P'
  elseif issued >= total then
    statuses[j] = 'S'
  else
    -- The day counter is kept even without a daily limit: it answers todayIssuedCount.
    local count = today[day]
    if not count then
      count = count_of(redis.call('GET', KEYS[3] .. day_text(day)))
      today[day] = count
    end
    local position = issued
    if ranges then
      position = leased_position(issued)
    end
    if (daily > 0 and count >= daily) or (dcap and count >= dcap) then
      statuses[j] = 'D'
    elseif (ceiling >= 0 and issued >= ceiling) or position == nil then
      -- (A lease always names a position for every unit below the ceiling: none is a
      -- lease to be made, not an issue.)
      statuses[j] = 'R'
    else
      local value
      if by_position then
        local id = format('%d', position)
        if leased then
          n_out = n_out + 1
          out[n_out] = id
          positions[#positions + 1] = id
        end
        value = id .. at
      elseif j <= 256 then
        value = tickets .. sub(HEX, 3 * j - 2, 3 * j) .. at
      else
        value = tickets .. format('%03x', j - 1) .. at
      end
      fresh[user] = value
      writes[n_writes + 1] = user
      writes[n_writes + 2] = value
      n_writes = n_writes + 2
      if not before[day] then
        days[#days + 1] = day
        before[day] = count
      end
      today[day] = count + 1
      issued = issued + 1
      last_day = day
      statuses[j] = 'I'
    end
  end
end

if n_writes > 0 then
  redis.call('HSET', KEYS[2], unpack(writes))
end
for _, day in ipairs(days) do
  local day_key = KEYS[3] .. day_text(day)
  redis.call('INCRBY', day_key, format('%d', today[day] - before[day]))
  if before[day] == 0 then
    -- Kept through the next KST day so yesterday's figure can still be read.
    local expire_at = (day + 2) * 86400000 - 32400000
    if with_clock then
      -- Under a test's clock override the day may lie in the past: keep it two real days.
      expire_at = math.max(expire_at, redis_now + 172800000)
    end
    redis.call('PEXPIREAT', day_key, expire_at)
  end
end
out[5] = table.concat(statuses)
if last_day then
  local base = ''
  if ids == 'given' then
    base = tickets
  elseif not leased then
    -- The issues before the call: meta's own text of it when it keeps the count.
    base = counted and meta[6] or format('%d', out[4])
  end
  -- Joined by `..` (one concatenation) rather than format's per-piece '%s' handling.
  local group = ARGV[1] .. '|' .. ARGV[2] .. '|' .. ids .. '|' .. base .. '|' .. redis_now_text
    .. '|' .. (meta[13] or '') .. '|' .. out[5]
  if leased or with_clock then
    -- (A table of the command and an unpack only when the entry has more than its two fields.)
    local entry = {'XADD', KEYS[4], '*', 'g', group, 'gu', ARGV[6]}
    if leased then
      entry[#entry + 1] = 'gp'
      entry[#entry + 1] = table.concat(positions, ' ') .. ' '
    end
    if with_clock then
      entry[#entry + 1] = 'gt'
      entry[#entry + 1] = table.concat(times, ' ') .. ' '
    end
    redis.call(unpack(entry))
  else
    redis.call('XADD', KEYS[4], '*', 'g', group, 'gu', ARGV[6])
  end
  redis.call('HSET', KEYS[1], 'issued', format('%d', issued), 'day', day_text(last_day),
             'today', format('%d', today[last_day]))
  if ranges and r > 1 then
    local left = {}
    for k = r, #ranges do
      left[#left + 1] = format('%d:%d', ranges[k][1], ranges[k][2])
    end
    redis.call('HSET', KEYS[1], 'pos', table.concat(left, ','), 'pbase', format('%d', rstart))
  end
end
return out
