-- A floor, not a write rule: the commands a versioned write cannot do without, with no decisions.
--
-- KEYS[1]  the series' sorted set
-- ARGV     versioned_write.lua's, as the library plans them: ARGV[2] the TTL, ARGV[3] the trim
--          rank, ARGV[5]/ARGV[6] the lowest/highest timestamp, ARGV[7] the range read's LIMIT or
--          "0" (read timestamp by timestamp), ARGV[8..] three per candle (timestamp, sequence, member)
-- Reply:   an array with one 1 per candle, as versioned_write.lua's reply is shaped (the caller
--          must learn, per candle, what was written)
--
-- It reads what the key holds where versioned_write.lua reads it (the same range read, or one
-- read per distinct timestamp, as ARGV[7] says), then ZADDs every member sent, EXPIREs and trims.
-- It compares nothing and removes no replaced member, so it leaves duplicates: `make bench`
-- runs it as the `floor` contestant (lua-batch's client, this script in versioned_write.lua's
-- place), to measure what the rules' commands cost on their own through the same Lua bridge,
-- never to keep data.
local key = KEYS[1]
local add = {}
if ARGV[7] == "0" then
  local seen = {}
  for i = 8, #ARGV, 3 do
    local ts = ARGV[i]
    if not seen[ts] then
      seen[ts] = true
      redis.call("ZRANGEBYSCORE", key, ts, ts)
    end
  end
else
  redis.call("ZRANGEBYSCORE", key, ARGV[5], ARGV[6], "WITHSCORES", "LIMIT", "0", ARGV[7])
end
for i = 8, #ARGV, 3 do
  add[#add + 1] = ARGV[i]
  add[#add + 1] = ARGV[i + 2]
end
redis.call("ZADD", key, unpack(add))
redis.call("EXPIRE", key, ARGV[2])
redis.call("ZREMRANGEBYRANK", key, "0", ARGV[3])
local reply = {}
for i = 1, (#ARGV - 7) / 3 do
  reply[i] = 1
end
return reply
