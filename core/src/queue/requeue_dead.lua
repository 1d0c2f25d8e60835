-- Puts a dead job back on the active list with a fresh attempt count.
-- KEYS[1] dead set  KEYS[2] active list  KEYS[3] meta key prefix  ARGV[1] task id
if redis.call("srem", KEYS[1], ARGV[1]) == 0 then
    return 0
end
redis.call("hset", KEYS[3] .. ":" .. ARGV[1], "attempts", 0, "status", "Pending")
redis.call("rpush", KEYS[2], ARGV[1])
return 1
