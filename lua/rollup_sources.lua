-- rollup_sources.lua: the members of one candle series over the periods that may be complete.
--
-- A roll-up recomputes a target candle from the source candles of its period. Most
-- periods are still incomplete when a source candle lands (a 1d period of 5m candles
-- is, for 287 of its 288 candles), so each period is counted first (ZCOUNT, O(log N))
-- and its members are read only when the count could make it complete; periods that
-- overlap (a 1h period inside its 4h one) are read once. Read-only: it writes nothing.
--
-- KEYS[1]  the series' sorted set (score = open time in ms, member = candle JSON)
-- ARGV     three per period: its lowest and highest timestamp (ms, decimal digits,
--          both included) and the member count that makes it worth reading (the
--          number of source candles in a complete period). At least one period.
--
-- Reply: a two-item array.
--   [1] one integer per period, in ARGV order: the members the key holds in it (ZCOUNT).
--   [2] the members of every period whose count is at least its threshold, each once,
--       ascending by score (members of one score in the key's order). A member
--       belongs to a period when its score is in the period's range: the client
--       reads the open time from the member itself.

local key = KEYS[1]
local n = #ARGV / 3
if n < 1 or #ARGV % 3 ~= 0 then
  return redis.error_reply("rollup_sources: ARGV must hold three items per period")
end

local counts, wanted = {}, {}
for i = 1, n do
  local low, high, need = ARGV[3 * i - 2], ARGV[3 * i - 1], tonumber(ARGV[3 * i])
  local count = redis.call("ZCOUNT", key, low, high)
  counts[i] = count
  if count >= need and count > 0 then
    wanted[#wanted + 1] = { tonumber(low), tonumber(high), low, high }
  end
end

local members = {}
if #wanted > 0 then
  table.sort(wanted, function(a, b) return a[1] < b[1] end)
  -- merge overlapping ranges, so that no member is sent twice
  local first = wanted[1]
  local merged = { { first[1], first[2], first[3], first[4] } }
  for i = 2, #wanted do
    local last, range = merged[#merged], wanted[i]
    if range[1] <= last[2] then
      if range[2] > last[2] then
        last[2], last[4] = range[2], range[4]
      end
    else
      merged[#merged + 1] = { range[1], range[2], range[3], range[4] }
    end
  end
  for _, range in ipairs(merged) do
    local found = redis.call("ZRANGEBYSCORE", key, range[3], range[4]) -- the client's own digits
    for j = 1, #found do members[#members + 1] = found[j] end
  end
end

return { counts, members }
