//! Each worker process's circuit breakers as ops see them: every process
//! writes its providers' states to one Redis hash every few seconds, and
//! `GET /v1/ops/providers` (and the board) reads it, leaving out processes
//! not heard from lately. The breakers themselves stay in-process.

use serde::Serialize;

use super::{Providers, breaker::CircuitState};
use crate::queue::{QueueError, Queues};

/// A process not heard from for this long is left out (and forgotten).
const STALE_SECS: i64 = 30;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CircuitView {
    pub provider: String,
    /// The worker process (`host-pid`).
    pub process: String,
    /// `closed`, `open` or `half_open`.
    pub state: String,
    /// Unix seconds of its last report.
    pub reported_at: i64,
}

fn key(queues: &Queues) -> String {
    format!("{}-circuits", queues.namespace())
}

fn name(state: CircuitState) -> &'static str {
    match state {
        CircuitState::Closed => "closed",
        CircuitState::Open => "open",
        CircuitState::HalfOpen => "half_open",
    }
}

/// Writes this process's breakers.
pub async fn report(
    queues: &Queues,
    process: &str,
    providers: &Providers,
) -> Result<(), QueueError> {
    let now = chrono::Utc::now().timestamp();
    let mut pipe = redis::pipe();
    for provider in providers.all() {
        pipe.hset(
            key(queues),
            format!("{}|{process}", provider.name()),
            format!("{}|{now}", name(provider.circuit())),
        )
        .ignore();
    }
    pipe.query_async::<()>(&mut queues.connection()).await?;
    Ok(())
}

/// Every process's breakers heard from lately, by provider then process.
pub async fn read(queues: &Queues) -> Result<Vec<CircuitView>, QueueError> {
    let all: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(key(queues))
        .query_async(&mut queues.connection())
        .await?;
    let now = chrono::Utc::now().timestamp();
    let mut views: Vec<CircuitView> = all
        .into_iter()
        .filter_map(|(field, value)| {
            let (provider, process) = field.split_once('|')?;
            let (state, at) = value.split_once('|')?;
            let reported_at: i64 = at.parse().ok()?;
            (now - reported_at <= STALE_SECS).then(|| CircuitView {
                provider: provider.to_owned(),
                process: process.to_owned(),
                state: state.to_owned(),
                reported_at,
            })
        })
        .collect();
    views.sort_by(|a, b| (&a.provider, &a.process).cmp(&(&b.provider, &b.process)));
    Ok(views)
}

/// Reports this process's breakers every 2 s, for as long as it runs.
pub fn spawn_reporter(queues: Queues, providers: Providers) {
    let process = format!(
        "{}-{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into()),
        std::process::id()
    );
    tokio::spawn(async move {
        loop {
            if let Err(e) = report(&queues, &process, &providers).await {
                tracing::debug!(error = %e, "circuit states not reported");
            }
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    });
}
