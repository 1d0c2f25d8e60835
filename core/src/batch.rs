//! What the batching tasks share (order inserts in the API; reservations and
//! payments in the workers): each gathers what waits for it and writes it in
//! one transaction, so batches grow with load and are one item when idle.

use tokio::sync::mpsc;

use crate::{
    Services,
    config::DatabaseConfig,
    db::{self, DbPool},
};

/// Connections in a batching task's own pool.
pub const OWN_CONNECTIONS: usize = 2;

/// A batching task's own two connections: the requests waiting on it hold
/// none, and it must never queue behind them for one.
///
/// Their statements are planned on every run (`plan_cache_mode`). They take
/// a whole batch as arrays, and after five runs Postgres may keep one
/// generic plan for a prepared statement: one made while a table was small
/// (a new deployment, the first seconds of a drop) scans the whole table on
/// every later run. In the emails benchmark such a plan took 5 ms a batch
/// on a 20,000-row `email_log`; planning once per batch costs far less.
pub fn own_pool(services: &Services) -> DbPool {
    let database = &services.config.database;
    db::pool(&DatabaseConfig {
        pool_size: OWN_CONNECTIONS,
        url: db::with_setting(&database.url, "plan_cache_mode", "force_custom_plan"),
        ..database.clone()
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
