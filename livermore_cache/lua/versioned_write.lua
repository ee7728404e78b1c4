-- versioned_write.lua: write candles into one series, atomically, in input order.
--
-- KEYS[1]  the series' sorted set (score = open time in ms, member = candle JSON)
-- ARGV[1]  mode: "1" = write a candle only if it is newer than what the key holds
--          at its timestamp; "0" = unconditional (replace whatever is there);
--          "2" = as "1", for a retry of a call that may have been applied: a
--          candle the key already holds byte for byte reports 1
-- ARGV[2]  TTL in seconds for EXPIRE; "0" = leave the TTL alone
-- ARGV[3]  max candles: keep only the newest N timestamps
-- ARGV[4]  channel to PUBLISH each written member on, in input order; "" = none
-- ARGV[5]  the candles, one JSON member per line (newline-delimited JSON: a
--          member never holds a raw newline). Each member begins with
--          {"timestamp":<ms>, and holds "sequenceNum":<n> when it has a sequence.
--          One argument for the whole batch keeps the client's cost per candle low.
--
-- Reply: an array with one integer per candle, in input order: 1 if this call
-- wrote the candle and it is still in the key when the call ends; 0 if it was
-- skipped, replaced by a later candle of this call, or trimmed away.
--
-- Rules per candle against what the key holds at its timestamp ("existing"):
-- nothing -> write; sequence s -> write only a sequence > s; no sequence ->
-- write. Several members at one timestamp (left by a non-atomic writer) count
-- as their highest sequence and are all replaced. Members are found by score,
-- never by bytes: the same candle may be encoded differently by each client.
-- If nothing is written, nothing changes (no EXPIRE, no trim).

local find, sub, match = string.find, string.sub, string.match
local key = KEYS[1]
local versioned = ARGV[1] == "1" or ARGV[1] == "2"
local retry = ARGV[1] == "2"
local ttl = tonumber(ARGV[2])
local max_candles = tonumber(ARGV[3])
local channel = ARGV[4]
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
local CHUNK = 1000 -- stays well below Lua's limit on unpack()

local SEQUENCE_FIELD = '"sequenceNum":'

-- Plain finds (no pattern scans): they are most of this script's cost per candle.
-- Both this library and the Node service write sequenceNum last, so look in the
-- tail first. A quote inside a JSON string is escaped, so the field cannot be faked.
local function sequence_of(member)
  local from = #member - 40
  if from < 1 then from = 1 end
  local at = find(member, SEQUENCE_FIELD, from, true) or find(member, SEQUENCE_FIELD, 1, true)
  if at == nil then
    return nil
  end
  return tonumber(match(member, "^%d+", at + 14))
end

local TIMESTAMP_PREFIX = '{"timestamp":'

local function timestamp_of(member)
  local digits = nil
  if find(member, TIMESTAMP_PREFIX, 1, true) == 1 then
    local ends = find(member, ",", 14, true)
    if ends ~= nil then digits = sub(member, 14, ends - 1) end
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

-- The members already stored at each timestamp of this call, found by score.
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
local existing = {} -- timestamp -> list of members
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

-- What the key holds at each timestamp as the candles are applied in order:
-- false = nothing, true = a candle without sequence, a number = its sequence.
local holds = {}
for t, members in pairs(existing) do
  local best = true
  for _, member in ipairs(members) do
    local s = sequence_of(member)
    if s ~= nil and (best == true or s > best) then best = s end
  end
  holds[t] = best
end

local winner = {} -- timestamp -> index of the candle that ends up stored
local held_member = {} -- timestamp -> the one member held there, when there is exactly one
if retry then
  for t, members in pairs(existing) do
    if #members == 1 then held_member[t] = members[1] end
  end
end
local already = {} -- candle index -> true: a retry found this very candle stored
for i = 1, count do
  local t = stamps[i]
  local seq = sequence_of(candles[i])
  local held = holds[t]
  local write
  if not versioned or held == nil or held == true then
    write = true
  else
    write = seq ~= nil and seq > held
  end
  if write then
    winner[t] = i
    if seq == nil then holds[t] = true else holds[t] = seq end
    held_member[t] = candles[i]
  elseif retry and held_member[t] == candles[i] then
    already[i] = true
  end
end

local reply = {}
for i = 1, count do reply[i] = 0 end
if next(winner) == nil then
  if retry then
    -- nothing written: what was found stays as it is, so it is still stored
    for i in pairs(already) do reply[i] = 1 end
  end
  return reply
end

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

if ttl > 0 then
  redis.call("EXPIRE", key, ttl)
end
for i in pairs(already) do
  if held_member[stamps[i]] == candles[i] then reply[i] = 1 end
end
local trimmed = redis.call("ZREMRANGEBYRANK", key, 0, -(max_candles + 1))
if trimmed > 0 then
  local oldest = tonumber(redis.call("ZRANGE", key, 0, 0, "WITHSCORES")[2])
  for i = 1, count do
    if reply[i] == 1 and stamps[i] < oldest then reply[i] = 0 end
  end
end

if channel ~= "" then
  for i = 1, count do
    if reply[i] == 1 then
      redis.call("PUBLISH", channel, candles[i])
    end
  end
end

return reply
