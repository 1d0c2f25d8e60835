//! Outgoing webhooks: the relay that pushes a job per new delivery (the
//! triggers that write deliveries cannot push), and the sweep that finds
//! deliveries whose job was lost.

use boxoffice_core::{Services, jobs::DeliverWebhook, models::Delivery};

use super::{SweepError, push};

/// Deliveries pushed per statement; the relay runs every second.
const RELAY_BATCH: i64 = 5_000;

/// Pushes a job for each delivery written since the last tick.
pub async fn relay(services: &Services) -> Result<usize, SweepError> {
    let mut pushed = 0;
    loop {
        let mut conn = services.db.get().await?;
        let ids = Delivery::relay(&mut conn, RELAY_BATCH).await?;
        drop(conn);
        let more = ids.len() as i64 == RELAY_BATCH;
        let jobs: Vec<DeliverWebhook> = ids
            .into_iter()
            .map(|delivery_id| DeliverWebhook {
                delivery_id,
                busy: 0,
            })
            .collect();
        if !jobs.is_empty() {
            // Marked queued before the push: a failed push leaves them to
            // the lost-delivery sweep.
            services
                .queues
                .push_many(&jobs, boxoffice_core::queue::Schedule::now())
                .await?;
        }
        pushed += jobs.len();
        if !more {
            return Ok(pushed);
        }
    }
}

/// Re-pushes deliveries overdue by the recovery grace, and attempts whose
/// worker died (past their lease).
pub async fn lost(services: &Services, grace: chrono::Duration) -> Result<usize, SweepError> {
    let mut conn = services.db.get().await?;
    let grace = grace.to_std().unwrap_or_default();
    let ids = Delivery::lost(&mut conn, grace, 1_000).await?;
    drop(conn);
    let jobs = ids
        .into_iter()
        .map(|delivery_id| DeliverWebhook {
            delivery_id,
            busy: 0,
        })
        .collect();
    push(services, jobs, "lost webhook deliveries").await
}
