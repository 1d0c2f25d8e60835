-- Moves at most ARGV[2] due jobs from the scheduled set to the active list.
-- apalis-redis 1.0's fetch promotes *all* due jobs with one unpack(), which
-- fails past ~8,000 ids and kills every worker; promoting in bounded chunks
-- ahead of it keeps that backlog small.
-- KEYS[1] scheduled zset  KEYS[2] active list   ARGV[1] now (in the set's unit)  ARGV[2] chunk size
local ids = redis.call("zrangebyscore", KEYS[1], 0, ARGV[1], "LIMIT", 0, tonumber(ARGV[2]))
if #ids > 0 then
    redis.call("rpush", KEYS[2], unpack(ids))
    redis.call("zrem", KEYS[1], unpack(ids))
end
return #ids
