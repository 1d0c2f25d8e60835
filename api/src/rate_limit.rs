//! Fixed-window counters in Redis, shared by every API replica.

use std::time::Duration;

use redis::Script;

use crate::{error::ApiError, state::AppState};

static HIT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    // INCR, set the window on the first hit, return count and time left.
    Script::new(
        r"local n = redis.call('INCR', KEYS[1])
          if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
          return {n, redis.call('PTTL', KEYS[1])}",
    )
});

/// Counts one hit on `bucket`; errs with 429 once `limit` hits were made in
/// the current window.
pub async fn hit(
    state: &AppState,
    bucket: &str,
    limit: u32,
    window: Duration,
) -> Result<(), ApiError> {
    let key = format!("{}-ratelimit:{bucket}", state.services.queues.namespace());
    let mut conn = state.services.queues.connection();
    let (count, ttl_ms): (u32, i64) = HIT
        .key(key)
        .arg(window.as_millis() as u64)
        .invoke_async(&mut conn)
        .await?;
    if count > limit {
        return Err(ApiError::RateLimited {
            retry_after_secs: (ttl_ms.max(0) as u64).div_ceil(1000).max(1),
        });
    }
    Ok(())
}
