-- A floor, not a write rule: the commands a versioned write cannot do without, with no decisions.
--
-- KEYS[1]  the series' sorted set
-- ARGV     versioned_write.lua's, as the library plans them: ARGV[2] the TTL, ARGV[3] the trim
--          rank, ARGV[5]/ARGV[6] the lowest/highest timestamp, ARGV[7] the range read's LIMIT or
--          "0" (read timestamp by timestamp), ARGV[8..] three per candle (timestamp, sequence, member)
-- Reply:   an array with one 1 per candle, shaped as versioned_write.lua's reply (the caller must
--          learn, per candle, what was written)
--
-- The commands are versioned_write.lua's when every candle wins: read what the key holds at the
-- batch's timestamps (the same range read, or one read per distinct timestamp, as ARGV[7] says),
-- ZREM the members read at those timestamps (a revision replaces what was there), ZADD every
-- member sent, EXPIRE, trim, and after a trim that removed something read the oldest score left (the
-- reply says 0 for a candle trimmed away). What it leaves out is every decision: it compares no
-- sequence (so an older candle can replace a newer one) and keeps the last candle sent per
-- timestamp. `make bench` runs it as the `floor` contestant (lua-batch's client, this script in
-- versioned_write.lua's place), to measure what the rules' commands cost through the same Lua
-- bridge, never to keep data.
local key = KEYS[1]
local wanted = {}
for i = 8, #ARGV, 3 do
  wanted[ARGV[i]] = true
end
local removals = {}
if ARGV[7] == "0" then
  for t in pairs(wanted) do
    for _, member in ipairs(redis.call("ZRANGEBYSCORE", key, t, t)) do
      removals[#removals + 1] = member
    end
  end
else
  local found = redis.call("ZRANGEBYSCORE", key, ARGV[5], ARGV[6], "WITHSCORES", "LIMIT", "0", ARGV[7])
  for j = 1, #found, 2 do
    if wanted[found[j + 1]] then
      removals[#removals + 1] = found[j]
    end
  end
end
local additions = {}
for i = 8, #ARGV, 3 do
  additions[#additions + 1] = ARGV[i]
  additions[#additions + 1] = ARGV[i + 2]
end
if #removals > 0 then -- before the ZADD, so a re-delivered member (same bytes) is removed and added back
  redis.call("ZREM", key, unpack(removals))
end
redis.call("ZADD", key, unpack(additions))
redis.call("EXPIRE", key, ARGV[2])
if redis.call("ZREMRANGEBYRANK", key, "0", ARGV[3]) > 0 then
  redis.call("ZRANGE", key, "0", "0", "WITHSCORES")
end
local reply = {}
for i = 1, (#ARGV - 7) / 3 do
  reply[i] = 1
end
return reply
