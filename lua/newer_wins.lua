-- newer_wins.lua: store one JSON value under its key unless the key holds one at least as new.
--
-- One script for the ticker, orderbook and indicator caches: such a key is a
-- string holding one JSON object, whose top-level "timestamp" is its version.
--
-- KEYS[1]  the value's key
-- ARGV[1]  the new value's timestamp: an integer in decimal digits (a leading "-"
--          allowed), the "timestamp" of ARGV[2]
-- ARGV[2]  the JSON to store
-- ARGV[3]  TTL in seconds, an integer >= 1: a write is SET KEYS[1] ARGV[2] EX ARGV[3]
-- ARGV[4]  channel to PUBLISH ARGV[2] on when this call writes; "" = none
-- ARGV[5]  "0" = first attempt; "1" = a retry of a call that may have been
--          applied: when the key holds exactly ARGV[2] (byte for byte), reply 1
--          and change nothing; "2" = as "1", proving: in that case make one
--          replicated write that changes nothing (SET KEYS[1] ARGV[2] KEEPTTL: the
--          same bytes, the same expiry), so that a WAIT on this connection covers
--          the earlier attempt's write too (min_replicas)
--
-- Reply: 1 if this call wrote ARGV[2] (or, as a retry, found exactly it stored);
-- 0 if it was skipped.
--
-- Rules against what the key holds ("stored"):
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
-- stays as it was, no PUBLISH (ARGV[5] "2"'s proving SET rewrites the same bytes
-- with the same TTL, and publishes nothing).

local key = KEYS[1]
if #ARGV ~= 5 then
  error("newer_wins.lua takes 5 arguments (timestamp, json, ttl, channel, retry), got " .. #ARGV)
end
local stamp_text, value, ttl, channel, retry = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if string.find(stamp_text, "^%-?%d+$") == nil then
  error("ARGV[1] (timestamp) must be an integer in decimal digits, got " .. string.sub(stamp_text, 1, 40))
end
if string.find(ttl, "^%d+$") == nil or tonumber(ttl) < 1 then
  error("ARGV[3] (ttl) must be an integer >= 1, got " .. string.sub(ttl, 1, 40))
end
if retry ~= "0" and retry ~= "1" and retry ~= "2" then
  error("ARGV[5] (retry) must be \"0\", \"1\" or \"2\", got " .. string.sub(retry, 1, 40))
end
local stamp = tonumber(stamp_text)

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
if stored then
  local held = timestamp_of(stored)
  if held ~= nil and held >= stamp then
    if retry ~= "0" and stored == value then
      if retry == "2" then
        redis.call("SET", key, value, "KEEPTTL") -- proving: replicated, and changes nothing
      end
      return 1
    end
    return 0
  end
end

redis.call("SET", key, value, "EX", ttl)
if channel ~= "" then
  redis.call("PUBLISH", channel, value)
end
return 1
