-- A floor, not a write rule: versioned_write.lua's ARGV and the commands a versioned write needs at
-- the least when it reads only its own timestamps (one read per distinct timestamp, ZADD, EXPIRE,
-- trim), with no decisions in Lua.
local add, seen = {}, {}
for i = 8, #ARGV, 3 do
  add[#add + 1] = ARGV[i]; add[#add + 1] = ARGV[i + 2]
  if not seen[ARGV[i]] then seen[ARGV[i]] = true; redis.call("ZRANGEBYSCORE", KEYS[1], ARGV[i], ARGV[i]) end
end
redis.call("ZADD", KEYS[1], unpack(add))
redis.call("EXPIRE", KEYS[1], ARGV[2])
redis.call("ZREMRANGEBYRANK", KEYS[1], 0, ARGV[3])
return 1
