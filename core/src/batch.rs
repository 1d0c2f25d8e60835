//! In-process batching, one generic piece: a [`Batcher`] gathers what the
//! tasks of one process hand it and writes it in one statement or one
//! transaction, so batches grow with load and are one item when idle. A
//! batcher is only its [`Write`]: how to write a batch, how to write one item
//! (when its batch failed), and what to do after the commit.
//!
//! The batcher owns the rest, the same for every one of them: the channel
//! (four batches deep), the linger, the number of batches in flight, the
//! connections (a private pool with its session settings, or the shared
//! one), the fallback (a batch that fails whole is written item by item, so
//! one bad item fails only itself; logged with the batch's size and error,
//! and counted in `boxoffice_batch_fallbacks_total`), and shutdown (once
//! every handle is gone, the batches in flight finish). Every batcher, its
//! pool and settings, and why, are in `docs/ARCHITECTURE.md` ("Batchers").

use std::{future::Future, sync::Arc, time::Duration};

use diesel_async::AsyncPgConnection;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::{
    Services,
    config::DatabaseConfig,
    db::{self, DbPool},
};

/// Connections in a batcher's own pool: one per batch in flight.
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
    ///
    /// "Every plan it can make is one" does not hold for a statement that
    /// joins a table to the batch's arrays (`UPDATE … FROM unnest(…)`): the
    /// table can also be walked whole along any index, with the arrays
    /// joined by a filter. For those, see [`Planning::ByKeyReplanned`].
    ByKey,
    /// As [`Planning::ByKey`], but every statement is planned again on each
    /// run (`force_custom_plan`), against the table as it is then: for
    /// batchers that only update rows found through the batch's arrays
    /// (no inserts, so no per-row foreign-key checks to plan), where a few
    /// plans per batch cost little.
    ///
    /// Why: the first plan of the reservation batch's `UPDATE orders … FROM
    /// unnest(…)`, made while `orders` was nearly empty, walked the whole
    /// `orders_event_idx` and joined the batch by a filter; kept for the
    /// drop, it grew to 1.5 s a batch (6.3 million rows filtered for 512
    /// orders), and in two drops of five the decisions took 15–20 s instead
    /// of 0.4 (docs/PERFORMANCE.md, item 38).
    ByKeyReplanned,
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

/// Where a batcher's connections come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// Its own [`OWN_CONNECTIONS`], opened with these settings: the
    /// requests waiting on a batcher hold no connection, and it must never
    /// queue behind them for one.
    Own(Planning, Commit),
    /// The process's shared pool: for work nothing waits on.
    Shared,
}

/// A batcher's own connections, with the session settings asked for.
pub fn own_pool(services: &Services, planning: Planning, commit: Commit) -> DbPool {
    let database = &services.config.database;
    let url = match commit {
        Commit::Durable => database.url.clone(),
        Commit::Deferred => db::with_setting(&database.url, "synchronous_commit", "off"),
    };
    let plan_cache_mode = match planning {
        Planning::Cached => None,
        Planning::ByKey => Some("force_generic_plan"),
        Planning::ByKeyReplanned => Some("force_custom_plan"),
    };
    let url = match plan_cache_mode {
        None => url,
        Some(mode) => [
            ("enable_seqscan", "off"),
            ("enable_hashjoin", "off"),
            ("enable_mergejoin", "off"),
            ("plan_cache_mode", mode),
        ]
        .iter()
        .fold(url, |url, (setting, value)| {
            db::with_setting(&url, setting, value)
        }),
    };
    match db::pool(&DatabaseConfig {
        pool_size: OWN_CONNECTIONS,
        url,
        ..database.clone()
    }) {
        Ok(pool) => pool,
        Err(error) => {
            // Still correct on the shared pool, but without the settings
            // (and slower in a drop): say so.
            tracing::error!(%error, ?planning, ?commit, "a batcher's own pool could not be made; using the shared pool without its settings");
            services.db.clone()
        }
    }
}

/// How long a batch that found company waits for more before it is
/// written, in the API (whose answers wait for it) and in the workers.
pub const API_LINGER: Duration = Duration::from_millis(1);
pub const WORKER_LINGER: Duration = Duration::from_millis(2);

/// Whether a batch waits for company before it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linger {
    /// Written as soon as it is taken.
    Never,
    /// If others were waiting with the first item (the process is busy),
    /// wait this long and take what came meanwhile: a batch costs the
    /// database a statement per kind of row and a commit whatever its
    /// size, and at a drop's rate batches taken at once held four orders
    /// (with the lingers: Postgres −22 % CPU for the same drop). A lone
    /// item (idle) goes at once.
    WhenBusy(Duration),
    /// Always wait this long after the first item: for work that nothing
    /// waits on, where fewer, larger batches are the point.
    Always(Duration),
}

/// What sets one batcher apart from another, besides its [`Write`].
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// In logs and metrics.
    pub name: &'static str,
    /// Items per batch at most.
    pub max: usize,
    pub linger: Linger,
    /// Batches being written at once. In a drop a batch spends most of its
    /// time waiting for a CPU between round trips; with one in flight
    /// everything behind it waited too. With an own pool, one per
    /// connection.
    pub in_flight: usize,
    pub pool: Pool,
}

/// Why a batcher could not write an item, whatever its writer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BatchError {
    /// The batcher's task is gone (the process is shutting down).
    #[error("the {0} batcher stopped")]
    Stopped(&'static str),
    /// No connection could be had for the batch.
    #[error("the {0} batcher has no database connection: {1}")]
    NoConnection(&'static str, String),
}

/// A batch's answers, one per item; `Err` fails the batch whole.
pub type Answers<T, E> = Result<Vec<Result<T, E>>, E>;

/// What a batcher writes, and how. Its error type takes a [`BatchError`] for
/// the failures the batcher itself meets.
pub trait Write: Send + Sync + 'static {
    type Item: Send + Sync + 'static;
    type Done: Send + 'static;
    type Error: std::error::Error + From<BatchError> + Send + 'static;

    /// Writes the whole batch (one statement, or one transaction); an answer
    /// per item, in order. `Err` fails the batch whole: each item is then
    /// written with [`Write::one`].
    fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        items: &[Self::Item],
    ) -> impl Future<Output = Answers<Self::Done, Self::Error>> + Send;

    /// Writes one item of a batch that failed: by default, as a batch of
    /// its own.
    fn one(
        &self,
        conn: &mut AsyncPgConnection,
        item: &Self::Item,
    ) -> impl Future<Output = Result<Self::Done, Self::Error>> + Send {
        async move {
            let mut answers = self.batch(conn, std::slice::from_ref(item)).await?;
            assert_eq!(answers.len(), 1, "an answer per item");
            answers.pop().expect("one answer")
        }
    }

    /// After the commit, before the answers go out (the connection is back
    /// and the next batch may be writing): pushes, live updates.
    fn after(
        &self,
        _items: &[Self::Item],
        _answers: &mut [Result<Self::Done, Self::Error>],
    ) -> impl Future<Output = ()> + Send {
        async {}
    }
}

type Reply<W> = oneshot::Sender<Result<<W as Write>::Done, <W as Write>::Error>>;

/// A handle on a running batcher; clones share it. The task stops once every
/// handle is gone, after the batches in flight.
pub struct Batcher<W: Write> {
    name: &'static str,
    tx: mpsc::Sender<(W::Item, Option<Reply<W>>)>,
}

impl<W: Write> Clone for Batcher<W> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            tx: self.tx.clone(),
        }
    }
}

impl<W: Write> Batcher<W> {
    /// Starts the batching task, with its pool as `settings` says.
    pub fn start(services: &Services, settings: Settings, writer: W) -> Self {
        let db = match settings.pool {
            Pool::Own(planning, commit) => own_pool(services, planning, commit),
            Pool::Shared => services.db.clone(),
        };
        let (tx, rx) = mpsc::channel(4 * settings.max);
        tokio::spawn(run(Arc::new(writer), settings, db, rx));
        Self {
            name: settings.name,
            tx,
        }
    }

    /// Writes `item` with whatever else is waiting; its answer.
    pub async fn write(&self, item: W::Item) -> Result<W::Done, W::Error> {
        let (reply, answer) = oneshot::channel();
        let stopped = || W::Error::from(BatchError::Stopped(self.name));
        self.tx
            .send((item, Some(reply)))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Hands `item` over without waiting for its answer; dropped if the
    /// channel is full (for wake-ups, where one waiting is as good as many).
    pub fn nudge(&self, item: W::Item) {
        let _ = self.tx.try_send((item, None));
    }
}

async fn run<W: Write>(
    writer: Arc<W>,
    settings: Settings,
    db: DbPool,
    mut rx: mpsc::Receiver<(W::Item, Option<Reply<W>>)>,
) {
    let slots = Arc::new(Semaphore::new(settings.in_flight));
    // A slot is taken before the batch, so a batch takes all that came in
    // while every slot was busy: batches still grow with load.
    while let Ok(slot) = slots.clone().acquire_owned().await {
        let Some(batch) = next(&mut rx, settings.max, settings.linger).await else {
            break;
        };
        let (writer, db) = (writer.clone(), db.clone());
        tokio::spawn(async move {
            let (items, replies): (Vec<W::Item>, Vec<Option<Reply<W>>>) = batch.into_iter().unzip();
            let mut answers = write(&*writer, settings.name, &db, &items).await;
            drop(slot);
            writer.after(&items, &mut answers).await;
            for (reply, answer) in replies.into_iter().zip(answers) {
                if let Some(reply) = reply {
                    let _ = reply.send(answer);
                }
            }
        });
    }
    // Every handle is gone: let the batches in flight finish.
    let _ = slots.acquire_many(settings.in_flight as u32).await;
}

/// Writes a batch, or each of its items alone if it fails whole.
async fn write<W: Write>(
    writer: &W,
    name: &'static str,
    db: &DbPool,
    items: &[W::Item],
) -> Vec<Result<W::Done, W::Error>> {
    let mut conn = match db.get().await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::warn!(batcher = name, items = items.len(), error = %e, "batch has no connection");
            return items
                .iter()
                .map(|_| Err(BatchError::NoConnection(name, e.to_string()).into()))
                .collect();
        }
    };
    let started = std::time::Instant::now();
    match writer.batch(&mut conn, items).await {
        Ok(answers) => {
            assert_eq!(answers.len(), items.len(), "{name}: an answer per item");
            tracing::debug!(
                batcher = name,
                items = items.len(),
                ms = started.elapsed().as_secs_f64() * 1e3,
                "batch written"
            );
            answers
        }
        // Alone already: nothing to fall back to.
        Err(e) if items.len() == 1 => vec![Err(e)],
        Err(e) => {
            tracing::warn!(batcher = name, items = items.len(), error = %e, "batch failed; writing its items one by one");
            crate::metrics::metrics()
                .batch_fallbacks
                .get_or_create(&crate::metrics::labels([("batcher", name)]))
                .inc();
            let mut answers = Vec::with_capacity(items.len());
            for item in items {
                answers.push(writer.one(&mut conn, item).await);
            }
            answers
        }
    }
}

/// Waits for one item, then takes what else is already waiting, up to
/// `max`, and lingers as asked. `None` once every sender is gone.
pub async fn next<T>(rx: &mut mpsc::Receiver<T>, max: usize, linger: Linger) -> Option<Vec<T>> {
    let mut batch = vec![rx.recv().await?];
    take_waiting(rx, &mut batch, max);
    let wait = match linger {
        Linger::Never => None,
        Linger::WhenBusy(wait) => (batch.len() > 1).then_some(wait),
        Linger::Always(wait) => Some(wait),
    };
    if let Some(wait) = wait
        && batch.len() < max
    {
        tokio::time::sleep(wait).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lone_item_goes_at_once_and_a_busy_batch_waits_for_more() {
        let (tx, mut rx) = mpsc::channel(8);
        let linger = Linger::WhenBusy(Duration::from_secs(60));
        tx.send(1).await.unwrap();
        let alone = tokio::time::timeout(Duration::from_secs(5), next(&mut rx, 8, linger))
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
        let busy = next(&mut rx, 8, Linger::WhenBusy(Duration::from_millis(500))).await;
        assert_eq!(busy, Some(vec![2, 3, 4]), "took what came while lingering");

        drop(tx);
        assert_eq!(next(&mut rx, 8, Linger::Never).await, None);
    }

    #[tokio::test]
    async fn an_always_lingering_batch_waits_even_alone_and_a_never_one_does_not() {
        let (tx, mut rx) = mpsc::channel(8);
        tx.send(1).await.unwrap();
        let late = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            late.send(2).await.unwrap();
        });
        let gathered = next(&mut rx, 8, Linger::Always(Duration::from_millis(500))).await;
        assert_eq!(gathered, Some(vec![1, 2]));

        tx.send(3).await.unwrap();
        tx.send(4).await.unwrap();
        let at_once = tokio::time::timeout(Duration::from_secs(5), next(&mut rx, 8, Linger::Never))
            .await
            .expect("never lingers");
        assert_eq!(at_once, Some(vec![3, 4]));
    }
}
