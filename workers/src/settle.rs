//! Settling sales: payments record their seats in `pending_sales` instead of
//! updating the tier's stock row (one row that every payment of a drop would
//! otherwise queue on, lock and commit in turn); this batcher folds them into
//! the stock in one transaction for however many payments arrived meanwhile.
//! Reads count unsettled seats as sold already, so nothing waits on it; the
//! scheduler's sweep settles whatever a stopped worker left behind.

use std::time::Duration;

use boxoffice_core::{
    Services,
    batch::{Answers, Batcher, Linger, Pool, Settings, Write},
    models::Tier,
};
use diesel_async::AsyncPgConnection;

use crate::jobs::JobError;

#[derive(Clone)]
pub struct Settler(Batcher<Settle>);

/// Its items are wake-ups: a settlement takes every unsettled sale, whoever
/// poked.
pub struct Settle;

impl Settler {
    pub fn start(services: &Services) -> Self {
        let settings = Settings {
            name: "settle",
            max: 1024,
            // Gathers the payments of the moment, so the hot row is locked
            // once for many of them.
            linger: Linger::Always(Duration::from_millis(50)),
            in_flight: 1,
            // Nothing waits on it.
            pool: Pool::Shared,
        };
        Self(Batcher::start(services, settings, Settle))
    }

    /// A payment committed a sale; settle soon. Wake-ups while a settlement
    /// waits coalesce into it.
    pub fn poke(&self) {
        self.0.nudge(());
    }
}

impl Write for Settle {
    type Item = ();
    type Done = ();
    type Error = JobError;

    /// Never fails whole: no one waits on an answer, and a failed
    /// settlement leaves its rows for the next one or the sweep (a fallback
    /// would only settle once per poke).
    async fn batch(&self, conn: &mut AsyncPgConnection, pokes: &[()]) -> Answers<(), JobError> {
        match Tier::settle_sales(conn).await {
            Ok(seats) => tracing::debug!(seats, "sales settled"),
            Err(error) => tracing::warn!(%error, "settling sales failed"),
        }
        Ok(pokes.iter().map(|_| Ok(())).collect())
    }
}
