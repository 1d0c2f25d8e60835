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

static PEEK: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    // The counts and time left of each window, counting nothing.
    Script::new(
        r"local out = {}
          for i, key in ipairs(KEYS) do
              out[2 * i - 1] = tonumber(redis.call('GET', key) or '0')
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
    let counts = run(state, &HIT, buckets, Some(window)).await?;
    verdict(buckets, &counts, |count, limit| count > limit)
}

/// Errs with 429 if any bucket has used up its limit, without counting:
/// for budgets spent only by failures (a wrong code counts, a right one
/// does not), checked before the attempt.
pub async fn check(state: &AppState, buckets: &[(&str, u32)]) -> Result<(), ApiError> {
    let counts = run(state, &PEEK, buckets, None).await?;
    verdict(buckets, &counts, |count, limit| count >= limit)
}

async fn run(
    state: &AppState,
    script: &Script,
    buckets: &[(&str, u32)],
    window: Option<Duration>,
) -> Result<Vec<i64>, ApiError> {
    let namespace = state.services.queues.namespace();
    let mut invocation = script.prepare_invoke();
    for (bucket, _) in buckets {
        invocation.key(format!("{namespace}-ratelimit:{bucket}"));
    }
    if let Some(window) = window {
        invocation.arg(window.as_millis() as u64);
    }
    let mut conn = state.services.queues.connection();
    Ok(invocation.invoke_async(&mut conn).await?)
}

/// 429 with the longest wait of the buckets `over` their limit.
fn verdict(
    buckets: &[(&str, u32)],
    counts: &[i64],
    over: impl Fn(i64, i64) -> bool,
) -> Result<(), ApiError> {
    let retry_after_ms = buckets
        .iter()
        .zip(counts.chunks(2))
        .filter(|((_, limit), c)| over(c[0], i64::from(*limit)))
        .map(|(_, c)| c[1].max(0) as u64)
        .max();
    match retry_after_ms {
        Some(ms) => Err(ApiError::RateLimited {
            retry_after_secs: ms.div_ceil(1000).max(1),
        }),
        None => Ok(()),
    }
}
