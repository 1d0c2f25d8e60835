//! Settling sales: payments record their seats in `pending_sales` instead of
//! updating the tier's stock row (one row that every payment of a drop would
//! otherwise queue on, lock and commit in turn); this task folds them into
//! the stock in one transaction for however many payments arrived meanwhile.
//! Reads count unsettled seats as sold already, so nothing waits on it; the
//! scheduler's sweep settles whatever a stopped worker left behind.

use std::{sync::Arc, time::Duration};

use boxoffice_core::{Services, db::DbPool, models::Tier};
use tokio::sync::Notify;

/// How long a wake-up waits for more payments to settle with.
const GATHER: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub struct Settler {
    wake: Arc<Notify>,
}

impl Settler {
    pub fn start(services: &Services) -> Self {
        let wake = Arc::new(Notify::new());
        tokio::spawn(run(services.db.clone(), wake.clone()));
        Self { wake }
    }

    /// A payment committed a sale; settle soon. Wake-ups while a settlement
    /// runs coalesce into one more.
    pub fn poke(&self) {
        self.wake.notify_one();
    }
}

async fn run(db: DbPool, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        tokio::time::sleep(GATHER).await;
        let settled = match db.get().await {
            Ok(mut conn) => Tier::settle_sales(&mut conn)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match settled {
            Ok(seats) => tracing::debug!(seats, "sales settled"),
            // The rows stay; the next payment or the sweep settles them.
            Err(error) => tracing::warn!(%error, "settling sales failed"),
        }
    }
}
