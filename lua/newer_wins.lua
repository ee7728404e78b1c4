-- newer_wins.lua: store JSON values under one key, each unless the key then holds one at least as new.
--
-- One script for the ticker, orderbook and indicator caches: such a key is a
-- string holding one JSON object, whose top-level "timestamp" is its version.
-- Every value of a batch for one key comes in one call and is decided in the
-- order given, so input order holds whatever happens to other calls (NOSCRIPT,
-- retries).
--
-- KEYS[1]  the values' key
-- ARGV[1]  TTL in seconds, an integer >= 0: a write is SET KEYS[1] json EX ARGV[1];
--          "0" = no expiry (SET without EX, which also removes a TTL the key had)
-- ARGV[2]  channel to PUBLISH each written value on, in order; "" = none
-- ARGV[3]  "0" = first attempt; "1" = a retry of a call that may have been
--          applied: a value that finds exactly itself stored (byte for byte) when
--          its turn comes replies 1 and changes nothing; "2" = as "1", proving: if
--          this call then writes nothing, it makes one replicated write that changes
--          nothing (SET KEYS[1] <the stored bytes> KEEPTTL: the same bytes, the same
--          expiry), so that a WAIT on this connection covers the earlier attempt's
--          write too (min_replicas)
-- ARGV[4], ARGV[5]  the first value: its timestamp (an integer in decimal digits,
--          a leading "-" allowed; the "timestamp" of the JSON) and its JSON
-- ARGV[6], ARGV[7]  the second value, and so on (at least one value)
--
-- Reply: an array with one integer per value, in order: 1 if this call wrote it
-- (or, as a retry, found exactly it stored), 0 if it was skipped.
--
-- Rules for each value against what the key holds at its turn ("stored"):
--   nothing                                         -> write
--   JSON object, top-level "timestamp" older        -> write
--   JSON object, top-level "timestamp" equal/newer  -> skip
--   any other string (not JSON, not an object, a "timestamp" that is missing,
--   not a number, NaN or infinite: a foreign writer's value) -> write, replacing it
--   a key of another type                           -> error (WRONGTYPE from GET),
--                                                      nothing changed
-- Timestamps are compared as numbers (doubles), never as text: the stored value
-- may have been written by the Node service (JSON.stringify) or by this library.
-- The stored value is read with cjson.decode, so a nested "timestamp" (inside
-- "value" or "params") never counts. A skip changes nothing: no SET, the TTL
-- stays as it was, no PUBLISH (the proving SET of ARGV[3] "2" rewrites the same
-- bytes with the same TTL, and publishes nothing). Of several values written by one call, each is
-- PUBLISHed in turn and the last is SET once, at the end (the same end state as
-- one SET each: nothing reads the key in between, a script being atomic).

local key = KEYS[1]
if #ARGV < 5 or #ARGV % 2 ~= 1 then
  error("newer_wins.lua takes ttl, channel, retry, then (timestamp, json) pairs, got " .. #ARGV .. " arguments")
end
local ttl, channel, retry = ARGV[1], ARGV[2], ARGV[3]
if string.find(ttl, "^%d+$") == nil then
  error("ARGV[1] (ttl) must be an integer >= 0, got " .. string.sub(ttl, 1, 40))
end
if retry ~= "0" and retry ~= "1" and retry ~= "2" then
  error("ARGV[3] (retry) must be \"0\", \"1\" or \"2\", got " .. string.sub(retry, 1, 40))
end
for i = 4, #ARGV, 2 do
  if string.find(ARGV[i], "^%-?%d+$") == nil then
    error("ARGV[" .. i .. "] (timestamp) must be an integer in decimal digits, got " .. string.sub(ARGV[i], 1, 40))
  end
end

-- The top-level "timestamp" of a stored value as a number, or nil when the value
-- is not a JSON object with a finite numeric one.
local function timestamp_of(stored)
  local ok, decoded = pcall(cjson.decode, stored)
  if not ok or type(decoded) ~= "table" then
    return nil
  end
  local t = decoded["timestamp"] -- nil for a JSON array
  if type(t) ~= "number" or t ~= t or t == math.huge or t == -math.huge then
    return nil
  end
  return t
end

local stored = redis.call("GET", key) -- false when the key does not exist; WRONGTYPE raises
local held = stored and timestamp_of(stored) or nil
local replies = {}
local written = nil
local found = false -- a retry found one of its values stored as sent
for i = 4, #ARGV, 2 do
  local stamp, value = tonumber(ARGV[i]), ARGV[i + 1]
  if stored and held ~= nil and held >= stamp then
    if retry ~= "0" and stored == value then
      found = true
      replies[#replies + 1] = 1
    else
      replies[#replies + 1] = 0
    end
  else
    if channel ~= "" then
      redis.call("PUBLISH", channel, value)
    end
    stored, held, written = value, stamp, value
    replies[#replies + 1] = 1
  end
end
if written then
  if ttl == "0" then
    redis.call("SET", key, written)
  else
    redis.call("SET", key, written, "EX", ttl)
  end
elseif found and retry == "2" then
  redis.call("SET", key, stored, "KEEPTTL") -- proving: replicated, and changes nothing
end
return replies
