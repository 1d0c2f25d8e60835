//! Reading and steering the queues' Redis state directly. apalis-board's own
//! stats calls fail on Redis in 1.0.0, so ops views are built on what the
//! backend really stores.

use redis::{AsyncCommands, Script};
use serde::Serialize;

use super::{QueueError, QueueName, Queues};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QueueCounts {
    pub queue: QueueName,
    /// Waiting on the active list.
    pub pending: u64,
    /// Delayed (or waiting for a retry) in the scheduled set.
    pub scheduled: u64,
    /// In some live or dead worker's in-flight set.
    pub running: u64,
    pub done: u64,
    pub dead: u64,
    pub workers: u64,
}

impl Serialize for QueueName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadJob {
    pub id: String,
    pub payload: serde_json::Value,
    /// The error the last attempt ended with, as apalis stored it.
    pub last_error: Option<String>,
    pub finished_at: Option<u64>,
}

static REQUEUE_DEAD: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("requeue_dead.lua")));

impl Queues {
    pub async fn counts(&self, queue: QueueName) -> Result<QueueCounts, QueueError> {
        let config = self.storage_config(queue);
        let mut conn = self.conn.clone();
        let workers: Vec<String> = conn.zrange(config.workers_set(), 0, -1).await?;
        let mut pipe = redis::pipe();
        pipe.llen(config.active_jobs_list())
            .zcard(config.scheduled_jobs_set())
            .zcard(super::delayed_set(&config))
            .scard(config.done_jobs_set())
            .scard(config.dead_jobs_set());
        for worker in &workers {
            pipe.scard(format!("{}:{worker}", config.inflight_jobs_set()));
        }
        let sizes: Vec<u64> = pipe.query_async(&mut conn).await?;
        let [pending, retrying, delayed, done, dead] = sizes[..5] else {
            unreachable!("the pipeline has five fixed replies first")
        };
        let running = sizes[5..].iter().sum();
        Ok(QueueCounts {
            queue,
            pending,
            scheduled: retrying + delayed,
            running,
            done,
            dead,
            workers: workers.len() as u64,
        })
    }

    pub async fn dead_jobs(&self, queue: QueueName) -> Result<Vec<DeadJob>, QueueError> {
        let config = self.storage_config(queue);
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn.smembers(config.dead_jobs_set()).await?;
        let mut jobs = Vec::with_capacity(ids.len());
        for id in ids {
            let payload: Option<Vec<u8>> = conn.hget(config.job_data_hash(), &id).await?;
            let (result, done_at): (Option<String>, Option<u64>) = redis::cmd("HMGET")
                .arg(format!("{}:{id}", config.job_meta_hash()))
                .arg("result")
                .arg("done_at")
                .query_async(&mut conn)
                .await?;
            jobs.push(DeadJob {
                id,
                payload: payload
                    .and_then(|p| serde_json::from_slice(&p).ok())
                    .unwrap_or(serde_json::Value::Null),
                last_error: result,
                finished_at: done_at,
            });
        }
        jobs.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(jobs)
    }

    /// Puts a dead job back on its queue with a fresh attempt count. Returns
    /// false if no such job is dead.
    pub async fn retry_dead(&self, queue: QueueName, id: &str) -> Result<bool, QueueError> {
        let config = self.storage_config(queue);
        let mut conn = self.conn.clone();
        let moved: u32 = REQUEUE_DEAD
            .key(config.dead_jobs_set())
            .key(config.active_jobs_list())
            .key(config.job_meta_hash())
            .arg(id)
            .invoke_async(&mut conn)
            .await?;
        Ok(moved == 1)
    }
}
