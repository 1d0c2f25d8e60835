//! A circuit breaker per provider and process. After `failures` calls in a
//! row fail (a transport error, a 5xx or 429, or an answer slower than
//! `slow`), it opens: calls are refused at once with
//! [`ProviderError::CircuitOpen`], and the jobs that made them are deferred
//! (pushed again with that delay, no attempt spent) instead of holding
//! workers and burning retries against an outage. After `open_for` one
//! call is let through as a probe (half-open): its success closes the
//! circuit, its failure opens it again. A refusal (4xx) is an answer, not
//! a failure: the provider is up.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use super::ProviderError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Failures in a row that open the circuit.
    pub failures: u32,
    /// How long it stays open before a probe.
    pub open_for: Duration,
    /// An answer slower than this counts as a failure.
    pub slow: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: 5,
            open_for: Duration::from_secs(30),
            slow: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    /// One probe is out.
    HalfOpen,
}

impl CircuitState {
    fn gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
        }
    }
}

#[derive(Debug)]
struct State {
    failures: u32,
    opened_at: Option<Instant>,
    probing: bool,
}

#[derive(Debug)]
pub struct Breaker {
    provider: &'static str,
    settings: BreakerSettings,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(provider: &'static str, settings: BreakerSettings) -> Self {
        let breaker = Self {
            provider,
            settings,
            state: Mutex::new(State {
                failures: 0,
                opened_at: None,
                probing: false,
            }),
        };
        breaker.publish(CircuitState::Closed);
        breaker
    }

    pub fn state(&self) -> CircuitState {
        let s = self.state.lock().expect("breaker lock");
        match (s.opened_at, s.probing) {
            (None, _) => CircuitState::Closed,
            (Some(_), true) => CircuitState::HalfOpen,
            (Some(_), false) => CircuitState::Open,
        }
    }

    /// Runs `call` unless the circuit is open, and learns from its outcome.
    pub async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        self.admit()?;
        let started = Instant::now();
        let result = call.await;
        let failed = match &result {
            Err(ProviderError::Transient(_) | ProviderError::RateLimited { .. }) => true,
            _ => started.elapsed() > self.settings.slow,
        };
        self.record(failed);
        result
    }

    fn admit(&self) -> Result<(), ProviderError> {
        let mut s = self.state.lock().expect("breaker lock");
        let Some(opened_at) = s.opened_at else {
            return Ok(());
        };
        let open = opened_at.elapsed();
        if open < self.settings.open_for || s.probing {
            let retry_in = self
                .settings
                .open_for
                .saturating_sub(open)
                .max(Duration::from_millis(250));
            return Err(ProviderError::CircuitOpen { retry_in });
        }
        s.probing = true;
        drop(s);
        self.publish(CircuitState::HalfOpen);
        Ok(())
    }

    fn record(&self, failed: bool) {
        let mut s = self.state.lock().expect("breaker lock");
        if !failed {
            let was_open = s.opened_at.is_some();
            *s = State {
                failures: 0,
                opened_at: None,
                probing: false,
            };
            drop(s);
            if was_open {
                tracing::info!(provider = self.provider, "payment provider circuit closed");
                self.publish(CircuitState::Closed);
            }
            return;
        }
        s.failures += 1;
        if s.probing || (s.opened_at.is_none() && s.failures >= self.settings.failures) {
            s.opened_at = Some(Instant::now());
            s.probing = false;
            let failures = s.failures;
            drop(s);
            tracing::warn!(
                provider = self.provider,
                failures,
                "payment provider circuit open"
            );
            crate::metrics::metrics()
                .provider_circuit_opens
                .get_or_create(&crate::metrics::labels([("provider", self.provider)]))
                .inc();
            self.publish(CircuitState::Open);
        }
    }

    fn publish(&self, state: CircuitState) {
        crate::metrics::metrics()
            .provider_circuit
            .get_or_create(&crate::metrics::labels([("provider", self.provider)]))
            .set(state.gauge());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(open_for_ms: u64) -> Breaker {
        Breaker::new(
            "test",
            BreakerSettings {
                failures: 3,
                open_for: Duration::from_millis(open_for_ms),
                slow: Duration::from_millis(200),
            },
        )
    }

    async fn fail(b: &Breaker) -> Result<(), ProviderError> {
        b.call(async { Err::<(), _>(ProviderError::Transient("down".into())) })
            .await
    }

    async fn succeed(b: &Breaker) -> Result<(), ProviderError> {
        b.call(async { Ok(()) }).await
    }

    #[tokio::test]
    async fn opens_after_failures_in_a_row_and_a_probe_closes_it() {
        let b = breaker(100);
        fail(&b).await.unwrap_err();
        fail(&b).await.unwrap_err();
        succeed(&b).await.unwrap();
        fail(&b).await.unwrap_err();
        fail(&b).await.unwrap_err();
        assert_eq!(
            b.state(),
            CircuitState::Closed,
            "a success resets the count"
        );
        fail(&b).await.unwrap_err();
        assert_eq!(b.state(), CircuitState::Open);
        assert!(matches!(
            succeed(&b).await,
            Err(ProviderError::CircuitOpen { .. })
        ));
        tokio::time::sleep(Duration::from_millis(120)).await;
        // The probe fails: open again; the next probe succeeds: closed.
        fail(&b).await.unwrap_err();
        assert_eq!(b.state(), CircuitState::Open);
        tokio::time::sleep(Duration::from_millis(120)).await;
        succeed(&b).await.unwrap();
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[tokio::test]
    async fn refusals_are_answers_and_slow_answers_are_failures() {
        let b = breaker(10_000);
        for _ in 0..5 {
            b.call(async { Err::<(), _>(ProviderError::Rejected("card declined".into())) })
                .await
                .unwrap_err();
        }
        assert_eq!(b.state(), CircuitState::Closed);
        for _ in 0..3 {
            b.call(async {
                tokio::time::sleep(Duration::from_millis(250)).await;
                Ok(())
            })
            .await
            .unwrap();
        }
        assert_eq!(b.state(), CircuitState::Open);
    }

    #[tokio::test]
    async fn one_probe_at_a_time() {
        let b = breaker(50);
        for _ in 0..3 {
            fail(&b).await.unwrap_err();
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        let slow_probe = b.call(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(())
        });
        let (probe, other) = tokio::join!(slow_probe, async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            succeed(&b).await
        });
        probe.unwrap();
        assert!(matches!(other, Err(ProviderError::CircuitOpen { .. })));
        assert_eq!(b.state(), CircuitState::Closed);
    }
}
