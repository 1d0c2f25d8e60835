//! Retries with exponential backoff, full jitter and a real attempt limit.
//!
//! apalis-redis 1.0 ignores a task's `max_attempts` (it re-schedules failures up
//! to a hard-coded 25 times, `attempt` seconds apart), so the limit and the
//! backoff live here: a job is tried up to `max_attempts` times inside one
//! delivery, and once they are spent the last error goes out as an
//! [`AbortError`], which apalis files in the queue's dead set.
//! A process that dies mid-way loses nothing: the delivery is still in its
//! in-flight set and comes back when the worker is declared dead.

use std::{future::Future, time::Duration};

use apalis::prelude::{AbortError, BoxDynError};
use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Delay before attempt `attempt + 1` (attempts count from 1): a random
    /// point in `[cap/2, cap]` where `cap = min(max, base * 2^(attempt-1))`.
    /// Half-jitter keeps delays growing while spreading a thundering herd.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let cap = exp.min(self.max_delay);
        let half = cap / 2;
        half + cap
            .saturating_sub(half)
            .mul_f64(rand::rng().random::<f64>())
    }

    /// The longest one delivery can take, for apalis' outer timeout.
    pub fn worst_case(&self, attempt_timeout: Duration) -> Duration {
        (1..self.max_attempts)
            .map(|a| self.backoff_cap(a))
            .sum::<Duration>()
            + attempt_timeout * self.max_attempts
    }

    fn backoff_cap(&self, attempt: u32) -> Duration {
        self.base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_delay)
    }
}

/// A failed attempt, as the retry loop sees it.
pub trait AttemptError: std::fmt::Display {
    /// Another attempt would fail the same way (a payload that cannot be
    /// read, a refusal): the job goes to the dead set at once.
    fn is_permanent(&self) -> bool;

    /// Not attempted at all: the job should run again after this long,
    /// without spending an attempt (e.g. a provider's circuit is open).
    fn deferred(&self) -> Option<Duration> {
        None
    }
}

/// Runs `attempt` until it succeeds, fails permanently, or the policy is
/// spent; `Ok(Some(delay))` when an attempt asked to be deferred (the
/// caller pushes the job again with that delay and ends this delivery).
///
/// `stop_early` is checked between attempts: on shutdown the job returns a
/// plain error, so apalis puts it back on the queue instead of the dead set.
pub async fn run_with_retries<F, Fut, E>(
    policy: RetryPolicy,
    attempt_timeout: Duration,
    stop_early: impl Fn() -> bool,
    mut attempt: F,
) -> Result<Option<Duration>, BoxDynError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: AttemptError,
{
    let mut n = 1;
    loop {
        let (error, permanent) = match tokio::time::timeout(attempt_timeout, attempt(n)).await {
            Ok(Ok(())) => return Ok(None),
            Ok(Err(e)) if e.deferred().is_some() => {
                tracing::info!(attempt = n, error = %e, "job deferred");
                return Ok(e.deferred());
            }
            Ok(Err(e)) => (e.to_string(), e.is_permanent()),
            Err(_) => (
                format!("attempt timed out after {attempt_timeout:?}"),
                false,
            ),
        };
        if permanent {
            tracing::error!(attempt = n, error = %error, "job failed permanently; moved to the dead set");
            return Err(AbortError::new(format!("failed permanently: {error}")).into());
        }
        if n >= policy.max_attempts {
            tracing::error!(attempts = n, error = %error, "job failed for good; moved to the dead set");
            return Err(AbortError::new(format!("failed after {n} attempts: {error}")).into());
        }
        let delay = policy.backoff(n);
        tracing::warn!(attempt = n, retry_in_ms = delay.as_millis() as u64, error = %error, "job attempt failed");
        tokio::time::sleep(delay).await;
        if stop_early() {
            return Err(format!("shutting down after attempt {n}: {error}").into());
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..100 {
            let first = p.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = p.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            assert!(p.backoff(9) <= Duration::from_secs(1));
            assert!(p.backoff(9) >= Duration::from_millis(500));
        }
    }
}
