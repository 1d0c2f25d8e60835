//! Emails written but never sent (their job was lost: Redis down at enqueue
//! time, a worker killed mid-send) are pushed again.

use super::SweepError;
use boxoffice_core::{Services, jobs::SendEmail, models::EmailRow, queue::Schedule};

/// Rows younger than this are probably still in the queue.
const GRACE: chrono::Duration = chrono::Duration::seconds(60);

pub async fn run(services: &Services) -> Result<usize, SweepError> {
    let mut conn = services.db.get().await?;
    let ids = EmailRow::unsent(&mut conn, GRACE, 1_000).await?;
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
