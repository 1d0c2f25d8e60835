-- Pushes jobs in apalis-redis 1.0's storage layout, without its pitfalls:
-- jobs due now go straight onto the active list and delayed jobs into our own
-- delayed set (apalis routes every push through its scheduled set, and its
-- fetch crashes once ~8,000 there are due at once), and the idempotency key
-- always carries a TTL (apalis sends 0, which expires the key at once).
--
-- KEYS[1] task data hash      KEYS[2] active list     KEYS[3] meta key prefix
-- KEYS[4] delayed zset        KEYS[5] idempotency key prefix
-- ARGV[1] idempotency ttl (s) ARGV[2] now (unix ms)
-- ARGV[3..] groups of 5: task id, payload, max attempts, run at (unix ms, 0 = now), idempotency key ("" = none)
-- Returns the number of jobs written (duplicates by key are skipped).
local written = 0
local now = tonumber(ARGV[2])
for i = 3, #ARGV, 5 do
    local id, payload, max_attempts = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    local run_at, key = tonumber(ARGV[i + 3]), ARGV[i + 4]
    local allowed = true
    if #key > 0 then
        allowed = redis.call("set", KEYS[5] .. ":" .. key, id, "NX", "EX", ARGV[1]) ~= false
    end
    if allowed and redis.call("hsetnx", KEYS[1], id, payload) == 1 then
        redis.call("hset", KEYS[3] .. ":" .. id, "attempts", 0, "max_attempts", max_attempts,
            "status", "Pending", "idempotency_key", key, "run_at", math.floor(run_at / 1000))
        if run_at > now then
            redis.call("zadd", KEYS[4], run_at, id)
        else
            redis.call("rpush", KEYS[2], id)
        end
        written = written + 1
    end
end
return written
