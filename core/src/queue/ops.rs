//! Reading and steering the queues' Redis state directly. apalis-board's own
//! stats calls fail on Redis in 1.0.0, so ops views are built on what the
//! backend really stores.

use redis::{AsyncCommands, Script};
use serde::Serialize;

use super::{QueueError, QueueName, Queues};

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
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

/// A worker registered on a queue, with its last heartbeat.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkerInfo {
    pub name: String,
    /// Unix seconds of the last heartbeat.
    pub last_heartbeat: i64,
    pub seconds_since_heartbeat: i64,
    /// Heartbeats stopped long enough for apalis to re-queue its jobs.
    pub alive: bool,
}

/// Everything the ops views show about one queue.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueueStats {
    #[serde(flatten)]
    pub counts: QueueCounts,
    /// Failed attempts waiting for apalis' own retry (kept apart from delayed).
    pub failed: u64,
    /// Age of the job at the head of the active list.
    pub oldest_pending_age_secs: Option<f64>,
    pub paused: bool,
    /// Done and failed jobs in each minute of the last hour, oldest first.
    pub per_minute: Vec<super::stats::MinuteCount>,
    pub worker_heartbeats: Vec<WorkerInfo>,
}

/// One job as listed by status.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobInfo {
    pub id: String,
    pub status: &'static str,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub attempts: Option<u32>,
    pub last_error: Option<String>,
    /// When it was pushed (from its ULID), unix milliseconds.
    pub enqueued_at_ms: Option<u64>,
    /// When a delayed job falls due, unix milliseconds.
    pub run_at_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Scheduled,
    Running,
    Failed,
    Dead,
}

impl JobStatus {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "scheduled" => Self::Scheduled,
            "running" => Self::Running,
            "failed" => Self::Failed,
            "dead" => Self::Dead,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }
}

fn ulid_ms(id: &str) -> Option<u64> {
    id.parse::<ulid::Ulid>().ok().map(|u| u.timestamp_ms())
}

static DISCARD: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    // Removes a dead (or failed) job and its data for good.
    // KEYS[1] dead set KEYS[2] failed set KEYS[3] data hash KEYS[4] meta prefix ARGV[1] id
    Script::new(
        r"local gone = redis.call('SREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
          if gone == 0 then return 0 end
          redis.call('HDEL', KEYS[3], ARGV[1])
          redis.call('DEL', KEYS[4] .. ':' .. ARGV[1])
          return 1",
    )
});

impl Queues {
    fn paused_key(&self) -> String {
        format!("{}-ops:paused", self.namespace)
    }

    pub async fn pause(&self, queue: QueueName) -> Result<(), QueueError> {
        let _: () = self
            .conn
            .clone()
            .sadd(self.paused_key(), queue.as_str())
            .await?;
        Ok(())
    }

    pub async fn resume(&self, queue: QueueName) -> Result<(), QueueError> {
        let _: () = self
            .conn
            .clone()
            .srem(self.paused_key(), queue.as_str())
            .await?;
        Ok(())
    }

    pub async fn is_paused(&self, queue: QueueName) -> Result<bool, QueueError> {
        Ok(self
            .conn
            .clone()
            .sismember(self.paused_key(), queue.as_str())
            .await?)
    }

    pub async fn stats(&self, queue: QueueName) -> Result<QueueStats, QueueError> {
        let counts = self.counts(queue).await?;
        let config = self.storage_config(queue);
        let mut conn = self.conn.clone();
        let (head, failed, heartbeats, paused): (Vec<String>, u64, Vec<(String, f64)>, bool) =
            redis::pipe()
                .lrange(config.active_jobs_list(), 0, 0)
                .zcard(config.failed_jobs_set())
                .zrange_withscores(config.workers_set(), 0, -1)
                .sismember(self.paused_key(), queue.as_str())
                .query_async(&mut conn)
                .await?;
        let now_ms = super::unix_now_ms();
        let stale_after = (super::HEARTBEAT * super::MISSED_HEARTBEATS as u32).as_secs() as i64;
        let now = (now_ms / 1000) as i64;
        Ok(QueueStats {
            counts,
            failed,
            oldest_pending_age_secs: head
                .first()
                .and_then(|id| ulid_ms(id))
                .map(|ms| now_ms.saturating_sub(ms) as f64 / 1000.0),
            paused,
            per_minute: self.per_minute(queue, 60).await?,
            worker_heartbeats: heartbeats
                .into_iter()
                .map(|(name, score)| {
                    let last = score as i64;
                    WorkerInfo {
                        name,
                        last_heartbeat: last,
                        seconds_since_heartbeat: now - last,
                        alive: now - last <= stale_after,
                    }
                })
                .collect(),
        })
    }

    /// Up to `limit` jobs in a state, oldest first.
    pub async fn jobs(
        &self,
        queue: QueueName,
        status: JobStatus,
        limit: usize,
    ) -> Result<Vec<JobInfo>, QueueError> {
        if status == JobStatus::Dead {
            let mut dead = self.dead_jobs(queue).await?;
            dead.truncate(limit);
            return Ok(dead
                .into_iter()
                .map(|d| JobInfo {
                    enqueued_at_ms: ulid_ms(&d.id),
                    id: d.id,
                    status: "dead",
                    payload: d.payload,
                    attempts: None,
                    last_error: d.last_error,
                    run_at_ms: None,
                })
                .collect());
        }
        let config = self.storage_config(queue);
        let mut conn = self.conn.clone();
        let last = limit.max(1) as isize - 1;
        let mut run_at: std::collections::HashMap<String, u64> = Default::default();
        let ids: Vec<String> = match status {
            JobStatus::Pending => conn.lrange(config.active_jobs_list(), 0, last).await?,
            JobStatus::Failed => conn.zrange(config.failed_jobs_set(), 0, last).await?,
            JobStatus::Scheduled => {
                let ours: Vec<(String, f64)> = conn
                    .zrange_withscores(super::delayed_set(&config), 0, last)
                    .await?;
                let theirs: Vec<(String, f64)> = conn
                    .zrange_withscores(config.scheduled_jobs_set(), 0, last)
                    .await?;
                let mut all: Vec<(String, u64)> = ours
                    .into_iter()
                    .map(|(id, ms)| (id, ms as u64))
                    // apalis scores its scheduled set in seconds.
                    .chain(theirs.into_iter().map(|(id, s)| (id, (s * 1000.0) as u64)))
                    .collect();
                all.sort_by_key(|(_, at)| *at);
                all.truncate(limit);
                run_at = all.iter().cloned().collect();
                all.into_iter().map(|(id, _)| id).collect()
            }
            JobStatus::Running => {
                let workers: Vec<String> = conn.zrange(config.workers_set(), 0, -1).await?;
                let mut ids = Vec::new();
                for worker in workers {
                    let mut mine: Vec<String> = conn
                        .smembers(format!("{}:{worker}", config.inflight_jobs_set()))
                        .await?;
                    ids.append(&mut mine);
                }
                ids.truncate(limit);
                ids
            }
            JobStatus::Dead => unreachable!("handled above"),
        };
        let mut jobs = Vec::with_capacity(ids.len());
        for id in ids {
            let payload: Option<Vec<u8>> = conn.hget(config.job_data_hash(), &id).await?;
            let (attempts, result): (Option<u32>, Option<String>) = redis::cmd("HMGET")
                .arg(format!("{}:{id}", config.job_meta_hash()))
                .arg("attempts")
                .arg("result")
                .query_async(&mut conn)
                .await?;
            jobs.push(JobInfo {
                enqueued_at_ms: ulid_ms(&id),
                run_at_ms: run_at.get(&id).copied(),
                status: status.as_str(),
                payload: payload
                    .and_then(|p| serde_json::from_slice(&p).ok())
                    .unwrap_or(serde_json::Value::Null),
                attempts,
                last_error: result,
                id,
            });
        }
        Ok(jobs)
    }

    /// Deletes a dead (or failed) job for good. False if there is no such job.
    pub async fn discard(&self, queue: QueueName, id: &str) -> Result<bool, QueueError> {
        let config = self.storage_config(queue);
        let gone: u32 = DISCARD
            .key(config.dead_jobs_set())
            .key(config.failed_jobs_set())
            .key(config.job_data_hash())
            .key(config.job_meta_hash())
            .arg(id)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(gone == 1)
    }

    /// Retries every dead job of a queue; returns how many.
    pub async fn retry_all_dead(&self, queue: QueueName) -> Result<usize, QueueError> {
        let mut n = 0;
        for job in self.dead_jobs(queue).await? {
            if self.retry_dead(queue, &job.id).await? {
                n += 1;
            }
        }
        Ok(n)
    }
}

static DEREGISTER: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    // KEYS[1] workers zset KEYS[2] the worker's in-flight set ARGV[1] name
    Script::new(
        r"if redis.call('SCARD', KEYS[2]) > 0 then return 0 end
          redis.call('ZREM', KEYS[1], ARGV[1])
          return 1",
    )
});

impl Queues {
    /// Removes a stopped worker's registration, which apalis' graceful stop
    /// leaves behind (it removes the wrong member), so stats do not count it.
    /// Only a worker with nothing in flight: otherwise apalis' orphan recovery
    /// needs the stale entry to find and re-queue its jobs.
    pub async fn deregister_worker(
        &self,
        queue: QueueName,
        name: &str,
    ) -> Result<bool, QueueError> {
        let config = self.storage_config(queue);
        let removed: u32 = DEREGISTER
            .key(config.workers_set())
            .key(format!("{}:{name}", config.inflight_jobs_set()))
            .arg(name)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(removed == 1)
    }
}
