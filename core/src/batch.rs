//! What the batching tasks share (order inserts in the API; reservations and
//! payments in the workers): each gathers what waits for it and writes it in
//! one transaction, so batches grow with load and are one item when idle.

use tokio::sync::mpsc;

use crate::{
    Services,
    config::DatabaseConfig,
    db::{self, DbPool},
};

/// A batching task's own two connections: the requests waiting on it hold
/// none, and it must never queue behind them for one.
pub fn own_pool(services: &Services) -> DbPool {
    db::pool(&DatabaseConfig {
        pool_size: 2,
        ..services.config.database.clone()
    })
    .unwrap_or_else(|_| services.db.clone())
}

/// Waits for one item, then takes what else is already waiting, up to
/// `max`. `None` once every sender is gone.
pub async fn next<T>(rx: &mut mpsc::Receiver<T>, max: usize) -> Option<Vec<T>> {
    let mut batch = vec![rx.recv().await?];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    Some(batch)
}
