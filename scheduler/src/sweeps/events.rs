//! Events that have ended move from `published` to `completed`: they leave
//! the public list for good, stop taking edits, and become due for payout.

use super::SweepError;
use boxoffice_core::{Services, models::Event};

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
