-- A floor, not a write rule: versioned_write.lua's ARGV, but only one ZADD of the sent members.
-- (The cost of an EVALSHA carrying the batch plus one redis.call.)
local add = {}
for i = 8, #ARGV, 3 do add[#add + 1] = ARGV[i]; add[#add + 1] = ARGV[i + 2] end
redis.call("ZADD", KEYS[1], unpack(add))
return 1
