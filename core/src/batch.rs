//! What the batching tasks share (order inserts in the API; reservations and
//! payments in the workers): each gathers what waits for it and writes it in
//! one transaction, so batches grow with load and are one item when idle.

use std::{future::Future, sync::Arc};

use tokio::sync::{Semaphore, mpsc};

use crate::{
    Services,
    config::DatabaseConfig,
    db::{self, DbPool},
};

/// Connections in a batching task's own pool.
pub const OWN_CONNECTIONS: usize = 2;

/// How a batching task's connection plans its statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planning {
    /// Postgres's default, for tasks that only insert (rows from arrays,
    /// conflicts found by their unique index, other rows by primary key).
    Cached,
    /// For tasks that find rows by the keys in the batch's arrays: plans are
    /// cached, but only index lookups (joined by nested loops) are planned.
    ///
    /// After five runs Postgres may keep one generic plan for a prepared
    /// statement, and one made while a table was small (a new deployment,
    /// the first seconds of a drop) scans the whole table on every later
    /// run: in the emails benchmark such a plan took 5 ms a batch on a
    /// 20,000-row `email_log`. Planning every run (`force_custom_plan`)
    /// avoided that, but it also planned every foreign-key check of every
    /// inserted row, and the planning was a quarter of what Postgres did
    /// for a drop's orders. A lookup by key is an index lookup at any size,
    /// so here the planner is only offered those.
    ByKey,
}

/// A batching task's own two connections: the requests waiting on it hold
/// none, and it must never queue behind them for one.
pub fn own_pool(services: &Services, planning: Planning) -> DbPool {
    let database = &services.config.database;
    let url = match planning {
        Planning::Cached => database.url.clone(),
        Planning::ByKey => ["enable_seqscan", "enable_hashjoin", "enable_mergejoin"]
            .iter()
            .fold(database.url.clone(), |url, setting| {
                db::with_setting(&url, setting, "off")
            }),
    };
    db::pool(&DatabaseConfig {
        pool_size: OWN_CONNECTIONS,
        url,
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

/// Runs `work` on each batch from `rx` (at most `max` items), up to
/// `in_flight` batches at once, until every sender is gone.
///
/// In a drop a batch spends most of its time waiting for a CPU between
/// round trips; with one in flight everything behind it waited too. A slot
/// is taken before the batch, so a batch takes all that came in while every
/// slot was busy: batches still grow with load.
pub async fn drain<T, W, F>(mut rx: mpsc::Receiver<T>, max: usize, in_flight: usize, work: W)
where
    W: Fn(Vec<T>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(in_flight));
    while let Ok(slot) = slots.clone().acquire_owned().await {
        let Some(batch) = next(&mut rx, max).await else {
            break;
        };
        let running = work(batch);
        tokio::spawn(async move {
            running.await;
            drop(slot);
        });
    }
}
