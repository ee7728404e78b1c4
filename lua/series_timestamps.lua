-- series_timestamps.lua: the distinct timestamps (scores) of one candle series, without its members.
--
-- No Redis command returns a sorted set's scores alone; this script reads the
-- members with their scores on the server and sends only the scores, so a
-- health check of a long series costs its timestamps, not its candles' JSON.
--
-- KEYS[1]  the series' sorted set
-- ARGV[1]  "range": ARGV[2], ARGV[3] are the lowest and highest timestamp (ms, both included)
--          "newest": ARGV[2] is how many distinct timestamps to return, the newest ones
--          Any other value is an error.
--
-- Reply: the distinct timestamps as decimal strings, ascending.

local key, mode = KEYS[1], ARGV[1]
local reply = {}

if mode == "range" then
  local found = redis.call("ZRANGEBYSCORE", key, ARGV[2], ARGV[3], "WITHSCORES")
  local last = nil
  for j = 2, #found, 2 do
    local score = found[j]
    if score ~= last then
      reply[#reply + 1] = score
      last = score
    end
  end
  return reply
end

if mode ~= "newest" then
  return redis.error_reply("series_timestamps: unknown mode " .. tostring(mode))
end

-- Newest first, in pages, until enough distinct timestamps are found (duplicates
-- left by a non-atomic writer take a page's room without adding a timestamp).
local wanted = tonumber(ARGV[2])
local page = wanted + 16
local newest_first, last, from = {}, nil, 0
while #newest_first < wanted do
  local found = redis.call("ZREVRANGE", key, from, from + page - 1, "WITHSCORES")
  if #found == 0 then break end
  for j = 2, #found, 2 do
    local score = found[j]
    if score ~= last then
      newest_first[#newest_first + 1] = score
      last = score
      if #newest_first == wanted then break end
    end
  end
  from = from + page
end
for i = #newest_first, 1, -1 do
  reply[#reply + 1] = newest_first[i]
end
return reply
