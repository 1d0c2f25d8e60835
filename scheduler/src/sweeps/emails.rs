//! Emails written but never sent (their job was lost: Redis down at enqueue
//! time, a worker killed mid-send) are pushed again.

use super::SweepError;
use boxoffice_core::{Services, jobs::SendEmail, models::EmailRow, queue::Schedule};

pub async fn run(services: &Services, grace: chrono::Duration) -> Result<usize, SweepError> {
    let mut conn = services.db.get().await?;
    // Twice the recovery grace (60 s by default): in a drop the emails
    // queue holds tens of thousands of confirmations, each in its turn.
    let ids = EmailRow::unsent(&mut conn, grace * 2, 1_000).await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let jobs: Vec<_> = ids.iter().map(|&email_id| SendEmail { email_id }).collect();
    // The first push's idempotency key may still be held: push regardless.
    services
        .queues
        .push_many(&jobs, Schedule::recovery())
        .await?;
    tracing::info!(count = ids.len(), "re-enqueued unsent emails");
    Ok(ids.len())
}
