-- versioned_write.lua: write candles into one series, atomically, in input order.
--
-- KEYS[1]  the series' sorted set (score = open time in ms, member = candle JSON)
-- ARGV[1]  mode: "1" = versioned: write a candle only if it is newer than what the
--          key holds at its timestamp; "0" = unconditional: replace whatever is
--          there; "2" = versioned, for a retry of a call that may have been
--          applied already: a candle the key holds byte for byte reports 1;
--          "3" = as "2", proving: when this call writes nothing yet reports a
--          candle found stored (its earlier attempt's), it makes one replicated
--          write that changes nothing (PEXPIRE to the key's own expiry, or
--          PEXPIRE then PERSIST when it has none), so that a WAIT on this
--          connection covers the earlier attempt's write too (min_replicas).
--          Any other mode is an error.
-- ARGV[2]  TTL in seconds, decimal digits, for EXPIRE after a write; "0" = leave the TTL alone
-- ARGV[3]  the trim rank, "-(N+1)" in digits for max candles N: after a write, keep
--          only the N members with the highest scores (by rank: N members, not N
--          distinct timestamps)
-- ARGV[4]  channel to PUBLISH each written member on, in input order; "" = none
-- ARGV[5]  the lowest timestamp of the candles, ARGV[6] the highest, ARGV[7] a LIMIT
--          for the range read between them (the client sends 4 x distinct + 16), or
--          "0": read timestamp by timestamp instead (the client sends "0" when the
--          span holds many open times the batch does not write: a range read would
--          carry their members and their scores, which cost more than a read per
--          timestamp; see docs/benchmark.md, "Performance round 3")
-- ARGV[8..] three per candle, in input order: its timestamp (canonical decimal
--          digits, as Redis writes an integer score), its sequence (digits, "" = none),
--          its JSON member. The client computes the first two from the candle, so
--          this script never parses a new member.
--
-- Reply: an array with one integer per candle, in input order: 1 if this call
-- wrote the candle and it is still in the key when the call ends (in mode "2",
-- also when the key held it byte for byte); 0 if it was skipped, replaced by a
-- later candle of this call, or trimmed away.
--
-- Rules per candle against what the key holds at its timestamp ("held"): nothing
-- -> write; sequence s -> write only a sequence > s; no sequence -> write.
-- Several members at one timestamp (left by a non-atomic writer) count as their
-- highest sequence and are all replaced. Members are found by score, never by
-- bytes: the same candle may be encoded differently by each client. Stored
-- sequences are compared as the numbers JavaScript reads (1e+21 and 1.0e3 included).
-- If nothing is written, nothing changes (no EXPIRE, no trim, no PUBLISH), but
-- for mode "3"'s proving write, which leaves the key's members and expiry as they were.

local find, match = string.find, string.match
local key = KEYS[1]
local mode, ttl, trim_rank, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if mode ~= "0" and mode ~= "1" and mode ~= "2" and mode ~= "3" then
  return redis.error_reply("versioned_write: unknown mode " .. tostring(mode))
end
local versioned = mode ~= "0"
local retry = mode == "2" or mode == "3"
local proving = mode == "3"
local FIRST = 8 -- ARGV index of the first candle's timestamp
local count = (#ARGV - FIRST + 1) / 3
if count < 1 then
  return {}
end
local CHUNK = 1000 -- items per ZADD/ZREM: stays well below Lua's limit on unpack()
-- Arguments of redis.call are strings, never Lua numbers: Redis 7.0 turns a number into
-- its argument with snprintf("%.17g"), about 2,500 instructions each (callgrind).
local SEQUENCE_FIELD = '"sequenceNum":'
local SEQUENCE_TAIL = 40 -- both writers put sequenceNum last: look in the member's tail first

-- The sequence of a stored member as a number, or nil when it has none, read as
-- the library's decoder reads it. Both writers write '"sequenceNum":<number>'
-- last, so the member's tail is searched first; a quote inside a JSON string is
-- escaped, so the field cannot be faked by a string's content. Any other spelling
-- of the field (whitespace around the ':', as Python's json.dumps writes it, or
-- an escaped name) is read by cjson instead: only a member that holds the word
-- "sequence" or a backslash pays for that.
local function sequence_of(member)
  local from = #member - SEQUENCE_TAIL
  if from < 1 then from = 1 end
  local at = find(member, SEQUENCE_FIELD, from, true) or find(member, SEQUENCE_FIELD, 1, true)
  if at ~= nil then
    local number = match(member, "^[%d.eE+-]+", at + #SEQUENCE_FIELD)
    if number then
      return tonumber(number)
    end
  end
  if find(member, "sequence", 1, true) == nil and find(member, "\\", 1, true) == nil then
    return nil
  end
  local ok, decoded = pcall(cjson.decode, member)
  if not ok or type(decoded) ~= "table" then
    return nil
  end
  local sequence = decoded["sequenceNum"]
  if type(sequence) ~= "number" then
    return nil
  end
  return sequence
end

local function call_chunked(command, items)
  for i = 1, #items, CHUNK do
    redis.call(command, key, unpack(items, i, math.min(i + CHUNK - 1, #items)))
  end
end

-- == read what the key holds at the batch's timestamps =========================
-- Timestamps are matched as text: the client sends them as Redis writes a score.
local existing = {} -- timestamp text -> list of members held there
local wanted = {}   -- timestamp text -> true, for the timestamps of this call
for i = FIRST, #ARGV, 3 do wanted[ARGV[i]] = true end
local limit = tonumber(ARGV[7])
local found = limit > 0 and redis.call("ZRANGEBYSCORE", key, ARGV[5], ARGV[6], "WITHSCORES", "LIMIT", "0", ARGV[7])
if found and #found < 2 * limit then
  for j = 1, #found, 2 do
    local t = found[j + 1]
    if wanted[t] then
      local list = existing[t]
      if list == nil then
        existing[t] = { found[j] }
      else
        list[#list + 1] = found[j]
      end
    end
  end
else
  -- LIMIT "0" (the client's choice), or a far-apart batch whose span holds more members
  -- than LIMIT: timestamp by timestamp
  for t in pairs(wanted) do
    local members = redis.call("ZRANGEBYSCORE", key, t, t)
    if #members > 0 then existing[t] = members end
  end
end

-- == decide, candle by candle, in input order ==================================
-- holds[t]: what the key holds at t as the candles are applied: nil = nothing,
-- true = a candle without sequence, a number = the highest sequence there.
local holds = {}
if versioned then
  for t, members in pairs(existing) do
    local best = true
    for _, member in ipairs(members) do
      local s = sequence_of(member)
      if s ~= nil and (best == true or s > best) then best = s end
    end
    holds[t] = best
  end
end

local winner = {}      -- timestamp text -> ARGV index of the candle that ends up stored there
local held_member = {} -- retry mode only: timestamp text -> the one member held there, if exactly one
local already = {}     -- retry mode only: ARGV index -> true when the key holds this very candle
if retry then
  for t, members in pairs(existing) do
    if #members == 1 then held_member[t] = members[1] end
  end
end
for i = FIRST, #ARGV, 3 do
  local t = ARGV[i]
  if not versioned then
    winner[t] = i
  else
    local held = holds[t]
    local seq = ARGV[i + 1]
    if seq == "" then seq = nil else seq = tonumber(seq) end
    if held == nil or held == true or (seq ~= nil and seq > held) then
      winner[t] = i
      if seq == nil then holds[t] = true else holds[t] = seq end
      if retry then held_member[t] = ARGV[i + 2] end
    elseif retry and held_member[t] == ARGV[i + 2] then
      already[i] = true
    end
  end
end

local reply = {}
for n = 1, count do reply[n] = 0 end
if next(winner) == nil then
  -- nothing written: what was found stays as it is, so a retry's own candle is still stored
  local found_own = false
  for i in pairs(already) do
    reply[(i - FIRST) / 3 + 1] = 1
    found_own = true
  end
  if proving and found_own then
    -- a write that is replicated and changes nothing: the key keeps its members and its expiry
    local ms = redis.call("PTTL", key)
    if ms > 0 then
      redis.call("PEXPIRE", key, ms)
    else
      redis.call("PEXPIRE", key, 3600000)
      redis.call("PERSIST", key)
    end
  end
  return reply
end

-- == write =====================================================================
-- ZADD goes first: it is the call that grows memory, so on a server over its
-- maxmemory (noeviction) it is refused before anything has changed, and the key
-- stays as it was. What the ZREM removes therefore never includes a member that
-- is being added again.
local removals, additions = {}, {}
for t, i in pairs(winner) do
  local member = ARGV[i + 2]
  additions[#additions + 1] = t
  additions[#additions + 1] = member
  local members = existing[t]
  if members ~= nil then
    for _, old in ipairs(members) do
      if old ~= member then removals[#removals + 1] = old end
    end
  end
  reply[(i - FIRST) / 3 + 1] = 1
end
call_chunked("ZADD", additions)
if #removals > 0 then call_chunked("ZREM", removals) end
if ttl ~= "0" then
  redis.call("EXPIRE", key, ttl)
end
for i in pairs(already) do
  -- a retry's own candle still counts if no later candle of this call replaced it
  if held_member[ARGV[i]] == ARGV[i + 2] then reply[(i - FIRST) / 3 + 1] = 1 end
end

-- == trim to the newest max candles members ====================================
if redis.call("ZREMRANGEBYRANK", key, "0", trim_rank) > 0 then
  local oldest = tonumber(redis.call("ZRANGE", key, "0", "0", "WITHSCORES")[2])
  for n = 1, count do
    if reply[n] == 1 and tonumber(ARGV[FIRST + 3 * (n - 1)]) < oldest then reply[n] = 0 end
  end
end

-- == announce ==================================================================
if channel ~= "" then
  for n = 1, count do
    if reply[n] == 1 then
      redis.call("PUBLISH", channel, ARGV[FIRST + 3 * (n - 1) + 2])
    end
  end
end

return reply
