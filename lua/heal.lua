-- heal.lua: keep one member per timestamp of one candle series, the one the versioned rules keep.
--
-- A non-atomic writer (the Node service's read-then-write addCandleIfNewer) can
-- leave several members at one timestamp. This script finds every such
-- timestamp and, in mode "apply", removes all but one member there, atomically.
--
-- KEYS[1]  the series' sorted set (score = open time in ms, member = candle JSON)
-- ARGV[1]  mode: "dry" = only count what "apply" would remove; "apply" = remove it.
--          Any other mode is an error.
--
-- Reply: an array of two integers: how many timestamps hold more than one member,
-- and how many members are (in "dry": would be) removed.
--
-- The member kept at a timestamp is the one with the highest sequence, as
-- versioned_write.lua reads it (the "sequenceNum" field, compared as the number
-- JavaScript reads): versioned_write counts several members at one timestamp as
-- their highest sequence, so that member is the one the rules keep. A member
-- without a sequence loses to any member with one. Among members that tie (the
-- same highest sequence, or none of them has a sequence) the first in the sorted
-- set's own order (by member bytes) is kept, so the choice is the same on every
-- run and every server. Nothing else changes: TTL, scores and the kept members
-- stay as they are, and nothing is published.

local find, match = string.find, string.match
local key, mode = KEYS[1], ARGV[1]
if mode ~= "dry" and mode ~= "apply" then
  return redis.error_reply("heal: unknown mode " .. tostring(mode))
end
local PAGE = 1000  -- members read per ZRANGE, and removed per ZREM
local SEQUENCE_FIELD = '"sequenceNum":'
local SEQUENCE_TAIL = 40

-- The sequence of a stored member as a number, or nil: versioned_write.lua's sequence_of, unchanged.
local function sequence_of(member)
  local from = #member - SEQUENCE_TAIL
  if from < 1 then from = 1 end
  local at = find(member, SEQUENCE_FIELD, from, true) or find(member, SEQUENCE_FIELD, 1, true)
  if at == nil then
    return nil
  end
  local number = match(member, "^[%d.eE+-]+", at + #SEQUENCE_FIELD)
  return number and tonumber(number)
end

local removals = {}
local healed = 0

-- One timestamp's members, in the sorted set's order: keep the best, remove the rest.
local function settle(group)
  if #group < 2 then return end
  healed = healed + 1
  local best, best_seq = 1, sequence_of(group[1])
  for j = 2, #group do
    local s = sequence_of(group[j])
    if s ~= nil and (best_seq == nil or s > best_seq) then
      best, best_seq = j, s
    end
  end
  for j = 1, #group do
    if j ~= best then removals[#removals + 1] = group[j] end
  end
end

-- Nothing is written until every page is read, so ranks do not move under the reads.
local group, last, from = {}, nil, 0
while true do
  local found = redis.call("ZRANGE", key, from, from + PAGE - 1, "WITHSCORES")
  for j = 1, #found, 2 do
    local score = found[j + 1]
    if score ~= last then
      settle(group)
      group, last = {}, score
    end
    group[#group + 1] = found[j]
  end
  if #found < 2 * PAGE then break end
  from = from + PAGE
end
settle(group)

if mode == "apply" then
  for i = 1, #removals, PAGE do
    redis.call("ZREM", key, unpack(removals, i, math.min(i + PAGE - 1, #removals)))
  end
end
return { healed, #removals }
