//! Events that have ended move from `published` to `completed`: they leave
//! the public list for good, stop taking edits, and become due for payout.
//! Cancelled events get every paid order refunded.

use super::SweepError;
use boxoffice_core::{Services, jobs::RefundJob, models::Event};

pub async fn complete_ended(services: &Services) -> Result<usize, SweepError> {
    let mut conn = services.db.get().await?;
    let ids = Event::complete_ended(&mut conn).await?;
    for id in &ids {
        services.event_cache.invalidate_or_log(*id).await;
    }
    if !ids.is_empty() {
        tracing::info!(count = ids.len(), "events completed");
    }
    Ok(ids.len())
}

/// Cancelled events whose paid orders are not all covered by a refund (the
/// fan-out job was lost, or its worker died half-way), and whose fan-out
/// has written nothing for `grace`: the fan-out starts again. A second
/// fan-out beside a live one would be harmless (each order's cancellation
/// refund is written once), only wasteful.
pub async fn cancelled(services: &Services, grace: chrono::Duration) -> Result<usize, SweepError> {
    let mut conn = services.db.get().await?;
    let ids = Event::cancelled_with_unrefunded_orders(&mut conn, grace).await?;
    drop(conn);
    let jobs = ids.into_iter().map(RefundJob::cancel_event).collect();
    super::push(services, jobs, "cancellations").await
}
