//! Fixed-window counters in Redis, shared by every API replica.

use std::time::Duration;

use redis::Script;

use crate::{error::ApiError, state::AppState};

static HIT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    // For each key: INCR, start the window on the first hit; return the
    // counts and the time left of each window.
    Script::new(
        r"local out = {}
          for i, key in ipairs(KEYS) do
              local n = redis.call('INCR', key)
              if n == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
              out[2 * i - 1] = n
              out[2 * i] = redis.call('PTTL', key)
          end
          return out",
    )
});

/// Counts one hit on every `(bucket, limit)` in one round trip; errs with 429
/// if any bucket has seen more than its limit in the current window.
pub async fn hit(
    state: &AppState,
    buckets: &[(&str, u32)],
    window: Duration,
) -> Result<(), ApiError> {
    let namespace = state.services.queues.namespace();
    let mut invocation = HIT.prepare_invoke();
    for (bucket, _) in buckets {
        invocation.key(format!("{namespace}-ratelimit:{bucket}"));
    }
    let mut conn = state.services.queues.connection();
    let counts: Vec<i64> = invocation
        .arg(window.as_millis() as u64)
        .invoke_async(&mut conn)
        .await?;
    let retry_after_ms = buckets
        .iter()
        .zip(counts.chunks(2))
        .filter(|((_, limit), c)| c[0] > i64::from(*limit))
        .map(|(_, c)| c[1].max(0) as u64)
        .max();
    match retry_after_ms {
        Some(ms) => Err(ApiError::RateLimited {
            retry_after_secs: ms.div_ceil(1000).max(1),
        }),
        None => Ok(()),
    }
}
