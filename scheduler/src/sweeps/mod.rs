//! Recovery sweeps: find rows stuck in an intermediate state and push their
//! job again. Safe because every job is idempotent.

pub mod emails;
pub mod events;
pub mod messages;
pub mod orders;
pub mod payouts;
pub mod reminders;
pub mod webhooks;

/// How long a row may sit in an intermediate state before its job counts
/// as lost (`RECOVERY_GRACE_SECS`).
pub(crate) fn grace(services: &boxoffice_core::Services) -> chrono::Duration {
    chrono::Duration::from_std(services.config.orders.recovery_grace).unwrap_or_default()
}

/// Pushes recovered jobs (past the idempotency key the lost push may still
/// hold).
pub(super) async fn push<J: boxoffice_core::queue::Job>(
    services: &boxoffice_core::Services,
    jobs: Vec<J>,
    what: &str,
) -> Result<usize, SweepError> {
    if jobs.is_empty() {
        return Ok(0);
    }
    services
        .queues
        .push_many(&jobs, boxoffice_core::queue::Schedule::recovery())
        .await?;
    tracing::info!(count = jobs.len(), what, "re-enqueued");
    Ok(jobs.len())
}

/// Emails written per statement by a fan-out (reminders, messages).
const BATCH: i64 = 5_000;
/// Time one fan-out tick spends writing at most (the rest waits for the
/// next tick), so the scheduler's other entries never wait long.
const TICK_BUDGET: std::time::Duration = std::time::Duration::from_secs(1);

/// Pushes the jobs of emails a fan-out just wrote. A lost push leaves the
/// rows `pending`: the email sweep pushes them again.
async fn push_emails(services: &boxoffice_core::Services, ids: &[uuid::Uuid]) {
    if ids.is_empty() {
        return;
    }
    let jobs: Vec<boxoffice_core::jobs::SendEmail> = ids
        .iter()
        .map(|&email_id| boxoffice_core::jobs::SendEmail { email_id })
        .collect();
    if let Err(e) = services
        .queues
        .push_many(&jobs, boxoffice_core::queue::Schedule::now())
        .await
    {
        tracing::warn!(error = %e, count = jobs.len(), "could not push emails; the email sweep will");
    }
}

/// Why a sweep (or a tick) failed: the next tick tries again.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("no sweep named {0:?}")]
    Unknown(String),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
    #[error("queue: {0}")]
    Queue(#[from] boxoffice_core::queue::QueueError),
}
