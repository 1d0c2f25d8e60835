//! What the batching tasks share (order inserts in the API; reservations and
//! payments in the workers): each gathers what waits for it and writes it in
//! one transaction, so batches grow with load and are one item when idle.

use std::{future::Future, sync::Arc, time::Duration};

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
    /// so here the planner is only offered those; and as every plan it can
    /// make is one, the first is kept (`force_generic_plan`): under `auto`
    /// a statement on arrays of keys was planned again on every run (its
    /// generic plan, costed for arrays of unknown length, never looked
    /// cheaper than a custom one), once per batch for each of the
    /// reservation batch's lookups. The API's order insert is one too (it
    /// checks each buyer's session by key): under `auto` it was planned on
    /// every run in one drop of six (4,295 plans in 4,294 runs), at random.
    ByKey,
}

/// When a batching task's commit returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Once its WAL is on disk (Postgres's default): for anything answered
    /// or acted on outside the database.
    Durable,
    /// At once, the WAL written to disk in the background
    /// (`synchronous_commit = off`): for work derived from rows already
    /// durable, which a database crash can only undo and a sweep redoes.
    ///
    /// Why: commits wait their turn for the WAL flush, and in a drop every
    /// batch of payments was one more commit between the API's order
    /// inserts and the disk. With the payments of a drop arriving in its
    /// first second, `POST /orders` p50 there went from ~5 to 60–80 ms with
    /// the machine a fifth idle, the order inserts waiting on the flush.
    ///
    /// The loss is bounded: WAL is written in order, so the next durable
    /// commit of any task (an order insert, an email claim) makes every
    /// deferred one before it durable too, and Postgres's WAL writer does
    /// within three `wal_writer_delay`s (600 ms) if none comes.
    Deferred,
}

/// A batching task's own two connections: the requests waiting on it hold
/// none, and it must never queue behind them for one.
pub fn own_pool(services: &Services, planning: Planning, commit: Commit) -> DbPool {
    let database = &services.config.database;
    let url = match commit {
        Commit::Durable => database.url.clone(),
        Commit::Deferred => db::with_setting(&database.url, "synchronous_commit", "off"),
    };
    let url = match planning {
        Planning::Cached => url,
        Planning::ByKey => [
            ("enable_seqscan", "off"),
            ("enable_hashjoin", "off"),
            ("enable_mergejoin", "off"),
            ("plan_cache_mode", "force_generic_plan"),
        ]
        .iter()
        .fold(url, |url, (setting, value)| {
            db::with_setting(&url, setting, value)
        }),
    };
    db::pool(&DatabaseConfig {
        pool_size: OWN_CONNECTIONS,
        url,
        ..database.clone()
    })
    .unwrap_or_else(|_| services.db.clone())
}

/// How long a batch that found company waits for more before it is
/// written, in the API (whose answers wait for it) and in the workers.
pub const API_LINGER: Duration = Duration::from_millis(1);
pub const WORKER_LINGER: Duration = Duration::from_millis(2);

/// Waits for one item, then takes what else is already waiting, up to
/// `max`. If others were waiting (the process is busy), waits `linger` and
/// takes what came meanwhile: a batch costs the database a statement per
/// kind of row and a commit whatever its size, and at a drop's rate batches
/// taken at once held four orders (with the lingers: Postgres −22 % CPU
/// for the same drop). A lone item (idle) goes at once. `None` once every
/// sender is gone.
pub async fn next<T>(rx: &mut mpsc::Receiver<T>, max: usize, linger: Duration) -> Option<Vec<T>> {
    let mut batch = vec![rx.recv().await?];
    take_waiting(rx, &mut batch, max);
    if batch.len() > 1 && batch.len() < max && !linger.is_zero() {
        tokio::time::sleep(linger).await;
        take_waiting(rx, &mut batch, max);
    }
    Some(batch)
}

fn take_waiting<T>(rx: &mut mpsc::Receiver<T>, batch: &mut Vec<T>, max: usize) {
    while batch.len() < max {
        match rx.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
}

/// Runs `work` on each batch from `rx` (at most `max` items), up to
/// `in_flight` batches at once, until every sender is gone.
///
/// In a drop a batch spends most of its time waiting for a CPU between
/// round trips; with one in flight everything behind it waited too. A slot
/// is taken before the batch, so a batch takes all that came in while every
/// slot was busy: batches still grow with load.
pub async fn drain<T, W, F>(
    mut rx: mpsc::Receiver<T>,
    max: usize,
    linger: Duration,
    in_flight: usize,
    work: W,
) where
    W: Fn(Vec<T>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(in_flight));
    while let Ok(slot) = slots.clone().acquire_owned().await {
        let Some(batch) = next(&mut rx, max, linger).await else {
            break;
        };
        let running = work(batch);
        tokio::spawn(async move {
            running.await;
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lone_item_goes_at_once_and_a_busy_batch_waits_for_more() {
        let (tx, mut rx) = mpsc::channel(8);
        tx.send(1).await.unwrap();
        let alone = tokio::time::timeout(
            Duration::from_secs(5),
            next(&mut rx, 8, Duration::from_secs(60)),
        )
        .await
        .expect("an idle batch does not linger");
        assert_eq!(alone, Some(vec![1]));

        tx.send(2).await.unwrap();
        tx.send(3).await.unwrap();
        let late = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            late.send(4).await.unwrap();
        });
        let busy = next(&mut rx, 8, Duration::from_millis(500)).await;
        assert_eq!(busy, Some(vec![2, 3, 4]), "took what came while lingering");

        drop(tx);
        assert_eq!(next(&mut rx, 8, Duration::from_millis(1)).await, None);
    }
}
