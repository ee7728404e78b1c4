-- versioned_write.lua: write candles into one series, atomically, in input order.
--
-- KEYS[1]  the series' sorted set (score = open time in ms, member = candle JSON)
-- ARGV[1]  mode: "1" = versioned: write a candle only if it is newer than what the
--          key holds at its timestamp; "0" = unconditional: replace whatever is
--          there; "2" = versioned, for a retry of a call that may have been
--          applied already: a candle the key holds byte for byte reports 1.
--          Any other mode is an error.
-- ARGV[2]  TTL in seconds, decimal digits, for EXPIRE after a write; "0" = leave the TTL alone
-- ARGV[3]  max candles, decimal digits: after a write, keep only the N members with the
--          highest scores (trim by rank, so N members, not N distinct timestamps)
-- ARGV[4]  channel to PUBLISH each written member on, in input order; "" = none
-- ARGV[5]  the candles, one JSON member per line (newline-delimited JSON: a
--          member never holds a raw newline). Each member begins with
--          {"timestamp":<ms>, and holds "sequenceNum":<n> when it has a sequence.
--          One argument for the whole batch keeps the client's cost per candle low.
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
-- bytes: the same candle may be encoded differently by each client. Sequences
-- are compared as the numbers JavaScript reads (1e+21 and 1.0e3 included).
-- If nothing is written, nothing changes (no EXPIRE, no trim, no PUBLISH).

local find, sub, match = string.find, string.sub, string.match
local key = KEYS[1]
local mode, ttl, max_candles, channel = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
if mode ~= "0" and mode ~= "1" and mode ~= "2" then
  return redis.error_reply("versioned_write: unknown mode " .. tostring(mode))
end
local versioned = mode ~= "0"
local retry = mode == "2"
local CHUNK = 1000 -- items per ZADD/ZREM: stays well below Lua's limit on unpack()
local TIMESTAMP_PREFIX = '{"timestamp":'
local TIMESTAMP_DIGITS_AT = #TIMESTAMP_PREFIX + 1
local SEQUENCE_FIELD = '"sequenceNum":'
local SEQUENCE_TAIL = 40 -- both writers put sequenceNum last: look in the member's tail first

-- == split the batch ==========================================================
local candles = {}
do
  local blob, at = ARGV[5], 1
  while true do
    local newline = find(blob, "\n", at, true)
    if newline == nil then
      if at <= #blob then candles[#candles + 1] = sub(blob, at) end
      break
    end
    if newline > at then candles[#candles + 1] = sub(blob, at, newline - 1) end
    at = newline + 1
  end
end
local count = #candles
if count == 0 then
  return {}
end

-- The sequence of a member as a number, or nil when it has none. A quote inside
-- a JSON string is escaped, so the field cannot be faked by a string's content.
local function sequence_of(member)
  local from = #member - SEQUENCE_TAIL
  if from < 1 then from = 1 end
  local at = find(member, SEQUENCE_FIELD, from, true) or find(member, SEQUENCE_FIELD, 1, true)
  if at == nil then
    return nil
  end
  local number = match(member, "^[%d.eE+-]+", at + #SEQUENCE_FIELD)
  return number and tonumber(number)
end

-- The timestamp of a member, as the digits it was written with.
local function timestamp_of(member)
  local digits = nil
  if find(member, TIMESTAMP_PREFIX, 1, true) == 1 then
    local ends = find(member, ",", TIMESTAMP_DIGITS_AT, true)
    if ends ~= nil then digits = sub(member, TIMESTAMP_DIGITS_AT, ends - 1) end
  end
  if digits == nil or tonumber(digits) == nil then
    error("candle member does not begin with {\"timestamp\":<ms>, : " .. sub(member, 1, 80))
  end
  return digits
end

local function call_chunked(command, items)
  for i = 1, #items, CHUNK do
    redis.call(command, key, unpack(items, i, math.min(i + CHUNK - 1, #items)))
  end
end

-- == read what the key holds at the batch's timestamps =========================
local stamps = {}     -- candle index -> timestamp (number)
local stamp_text = {} -- timestamp -> timestamp as sent (string)
local distinct = {}   -- the distinct timestamps, in first-seen order
local lowest, highest
for i = 1, count do
  local text = timestamp_of(candles[i])
  local t = tonumber(text)
  stamps[i] = t
  if stamp_text[t] == nil then
    stamp_text[t] = text
    distinct[#distinct + 1] = t
    if lowest == nil or t < lowest then lowest = t end
    if highest == nil or t > highest then highest = t end
  end
end

-- One range read covers the batch; LIMIT bounds it, and a batch whose span holds
-- more members than that (a far-apart re-delivery) reads timestamp by timestamp.
local existing = {} -- timestamp -> list of members held there
local limit = 4 * #distinct + 16
local found = redis.call("ZRANGEBYSCORE", key, stamp_text[lowest], stamp_text[highest], "WITHSCORES", "LIMIT", 0, limit)
if #found < 2 * limit then
  for j = 1, #found, 2 do
    local t = tonumber(found[j + 1])
    if stamp_text[t] ~= nil then
      local list = existing[t]
      if list == nil then
        list = {}
        existing[t] = list
      end
      list[#list + 1] = found[j]
    end
  end
else
  for _, t in ipairs(distinct) do
    local members = redis.call("ZRANGEBYSCORE", key, stamp_text[t], stamp_text[t])
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

local winner = {}      -- timestamp -> index of the candle that ends up stored there
local held_member = {} -- retry mode only: timestamp -> the one member held there, if exactly one
local already = {}     -- retry mode only: candle index -> true when the key holds this very candle
if retry then
  for t, members in pairs(existing) do
    if #members == 1 then held_member[t] = members[1] end
  end
end
for i = 1, count do
  local t = stamps[i]
  if not versioned then
    winner[t] = i
  else
    local seq = sequence_of(candles[i])
    local held = holds[t]
    if held == nil or held == true or (seq ~= nil and seq > held) then
      winner[t] = i
      if seq == nil then holds[t] = true else holds[t] = seq end
      if retry then held_member[t] = candles[i] end
    elseif retry and held_member[t] == candles[i] then
      already[i] = true
    end
  end
end

local reply = {}
for i = 1, count do reply[i] = 0 end
if next(winner) == nil then
  -- nothing written: what was found stays as it is, so a retry's own candle is still stored
  for i in pairs(already) do reply[i] = 1 end
  return reply
end

-- == write =====================================================================
-- ZADD goes first: it is the call that grows memory, so on a server over its
-- maxmemory (noeviction) it is refused before anything has changed, and the key
-- stays as it was. What the ZREM removes therefore never includes a member that
-- is being added again.
local removals, additions = {}, {}
for t, i in pairs(winner) do
  local member = candles[i]
  additions[#additions + 1] = stamp_text[t]
  additions[#additions + 1] = member
  local members = existing[t]
  if members ~= nil then
    for _, old in ipairs(members) do
      if old ~= member then removals[#removals + 1] = old end
    end
  end
  reply[i] = 1
end
call_chunked("ZADD", additions)
if #removals > 0 then call_chunked("ZREM", removals) end
if ttl ~= "0" then
  redis.call("EXPIRE", key, ttl)
end
for i in pairs(already) do
  -- a retry's own candle still counts if no later candle of this call replaced it
  if held_member[stamps[i]] == candles[i] then reply[i] = 1 end
end

-- == trim to the newest max_candles members ====================================
local trimmed = redis.call("ZREMRANGEBYRANK", key, 0, -(max_candles + 1))
if trimmed > 0 then
  local oldest = tonumber(redis.call("ZRANGE", key, 0, 0, "WITHSCORES")[2])
  for i = 1, count do
    if reply[i] == 1 and stamps[i] < oldest then reply[i] = 0 end
  end
end

-- == announce ==================================================================
if channel ~= "" then
  for i = 1, count do
    if reply[i] == 1 then
      redis.call("PUBLISH", channel, candles[i])
    end
  end
end

return reply
