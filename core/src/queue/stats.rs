//! Job throughput per queue and minute, for the ops views. Worker processes
//! count outcomes in memory and flush once a second (one pipelined round
//! trip), so counting costs the hot path nothing; minutes are kept an hour.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serde::Serialize;

use super::{QueueError, QueueName, Queues};

/// A minute is kept for the hour the ops board draws, and a minute more.
const KEEP_SECS: i64 = 3660;

#[derive(Default)]
struct Tally {
    done: AtomicU64,
    failed: AtomicU64,
}

/// In-process outcome counters, flushed to Redis.
#[derive(Clone, Default)]
pub struct JobTally(Arc<BTreeMap<QueueName, Tally>>);

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct MinuteCount {
    /// Start of the minute, unix seconds.
    pub minute: i64,
    pub done: u64,
    pub failed: u64,
}

fn minute_key(queues: &Queues, queue: QueueName, minute: i64) -> String {
    format!("{}-stats:{queue}:{minute}", queues.namespace())
}

impl JobTally {
    pub fn new() -> Self {
        Self(Arc::new(
            QueueName::ALL
                .iter()
                .map(|q| (*q, Tally::default()))
                .collect(),
        ))
    }

    pub fn record(&self, queue: QueueName, ok: bool) {
        if let Some(t) = self.0.get(&queue) {
            if ok { &t.done } else { &t.failed }.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds what was counted since the last flush to this minute's totals.
    pub async fn flush(&self, queues: &Queues) -> Result<(), QueueError> {
        let minute = chrono::Utc::now().timestamp() / 60 * 60;
        let mut pipe = redis::pipe();
        let mut any = false;
        for (queue, tally) in self.0.iter() {
            let (done, failed) = (
                tally.done.swap(0, Ordering::Relaxed),
                tally.failed.swap(0, Ordering::Relaxed),
            );
            if done + failed == 0 {
                continue;
            }
            any = true;
            let key = minute_key(queues, *queue, minute);
            pipe.hincr(&key, "done", done)
                .ignore()
                .hincr(&key, "failed", failed)
                .ignore()
                .expire(&key, KEEP_SECS)
                .ignore();
        }
        if any {
            let _: () = pipe.query_async(&mut queues.connection()).await?;
        }
        Ok(())
    }

    /// Flushes every second until the process ends.
    pub fn spawn_flusher(&self, queues: Queues) {
        let tally = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Err(e) = tally.flush(&queues).await {
                    tracing::debug!(error = %e, "job stats not flushed");
                }
            }
        });
    }
}

impl Queues {
    /// Done and failed jobs per minute over the last `minutes` (oldest first,
    /// the current minute last).
    pub async fn per_minute(
        &self,
        queue: QueueName,
        minutes: i64,
    ) -> Result<Vec<MinuteCount>, QueueError> {
        let now = chrono::Utc::now().timestamp() / 60 * 60;
        let starts: Vec<i64> = (0..minutes).rev().map(|i| now - i * 60).collect();
        let mut pipe = redis::pipe();
        for minute in &starts {
            pipe.cmd("HMGET")
                .arg(minute_key(self, queue, *minute))
                .arg("done")
                .arg("failed");
        }
        let rows: Vec<(Option<u64>, Option<u64>)> =
            pipe.query_async(&mut self.connection()).await?;
        Ok(starts
            .into_iter()
            .zip(rows)
            .map(|(minute, (done, failed))| MinuteCount {
                minute,
                done: done.unwrap_or(0),
                failed: failed.unwrap_or(0),
            })
            .collect())
    }
}
