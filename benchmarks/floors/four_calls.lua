-- A floor, not a write rule: versioned_write.lua's ARGV and the four commands a versioned write
-- needs at the least (read the batch's range, ZADD, EXPIRE, trim), with no decisions in Lua.
local add = {}
for i = 8, #ARGV, 3 do add[#add + 1] = ARGV[i]; add[#add + 1] = ARGV[i + 2] end
redis.call("ZRANGEBYSCORE", KEYS[1], ARGV[5], ARGV[6], "WITHSCORES", "LIMIT", 0, ARGV[7])
redis.call("ZADD", KEYS[1], unpack(add))
redis.call("EXPIRE", KEYS[1], ARGV[2])
redis.call("ZREMRANGEBYRANK", KEYS[1], 0, ARGV[3])
return 1
