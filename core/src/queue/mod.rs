//! Everything about apalis-redis for every queue, in one place: names, storage
//! settings, per-queue concurrency / timeout / retry policy, pushing, and the
//! guards against apalis-redis 1.0's known defects
//! (see `shared/notes/apalis-redis-1.0.md`).
//!
//! The queues carry ids only. PostgreSQL holds the truth; every handler reloads
//! state and is safe to run twice, so a duplicated job is harmless, and a sweep
//! re-enqueues work whose job was lost.

mod names;
mod ops;
mod retry;
pub mod stats;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::{AsyncCommands, Script, aio::ConnectionManager};
use serde::{Serialize, de::DeserializeOwned};

pub use names::{QueueName, QueueSettings};
pub use ops::{DeadJob, JobInfo, JobStatus, QueueCounts, QueueStats, WorkerInfo};
pub use retry::{AttemptError, RetryPolicy, run_with_retries};
pub use stats::{JobTally, MinuteCount};

/// How long an idempotency key blocks a second push of the same job.
/// Long enough to cover every retry storm; the handler's own idempotency covers
/// anything later.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
/// Jobs promoted from the scheduled set per Lua call: far below the ~8,000 at
/// which apalis' own promotion fails.
pub const PROMOTE_CHUNK: usize = 1_000;
/// How often an idle worker looks for new work. apalis-redis otherwise waits for
/// its 30 s heartbeat (a job pushed to an idle worker waited 27 s).
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Worker liveness: a worker silent for `HEARTBEAT * MISSED_HEARTBEATS` is
/// declared dead and its in-flight jobs go back on the queue.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
pub const MISSED_HEARTBEATS: usize = 3;

/// A job payload: ids only, never copies of rows.
pub trait Job:
    Serialize + DeserializeOwned + std::fmt::Debug + Send + Sync + Unpin + 'static
{
    const QUEUE: QueueName;
    /// Pushing the same key twice (within [`IDEMPOTENCY_TTL`]) makes one job.
    fn idempotency_key(&self) -> Option<String>;
    /// Attempts and backoff; the queue's policy unless a job needs its own.
    fn retry_policy() -> RetryPolicy {
        Self::QUEUE.settings().retry
    }
}

/// Options for one push.
#[derive(Debug, Clone, Copy, Default)]
pub struct Schedule {
    /// Run no earlier than this long from now.
    pub delay: Option<Duration>,
    /// Push even if the job's idempotency key was used: for sweeps that
    /// re-enqueue work whose first job was lost (its key may still be held).
    pub ignore_idempotency_key: bool,
}

impl Schedule {
    pub fn now() -> Self {
        Self::default()
    }
    pub fn after(delay: Duration) -> Self {
        Self {
            delay: Some(delay),
            ..Self::default()
        }
    }
    pub fn recovery() -> Self {
        Self {
            ignore_idempotency_key: true,
            ..Self::default()
        }
    }
}

/// The producer side of every queue, and the ops view of them.
#[derive(Clone)]
pub struct Queues {
    conn: ConnectionManager,
    namespace: String,
}

static PUSH: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("push.lua")));
static PROMOTE: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("promote.lua")));

pub(crate) fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

impl Queues {
    pub fn new(conn: ConnectionManager, namespace: impl Into<String>) -> Self {
        Self {
            conn,
            namespace: namespace.into(),
        }
    }

    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Marks this Redis as known to us, and says whether it was not: a
    /// sentinel key that vanished means Redis lost its data (a failover or
    /// a restart without persistence) and with it every queued job, so
    /// the recovery sweeps need not wait out their grace. `true` on the
    /// first call against a new Redis as well.
    pub async fn sentinel_vanished(&self) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(format!("{}:sentinel", self.namespace))
            .arg(unix_now_ms())
            .arg("NX")
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }

    /// Says that a workers process of this namespace is selling (placing
    /// orders or applying payments), for the next `ttl`.
    pub async fn mark_selling(&self, ttl: Duration) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: () = redis::cmd("SET")
            .arg(format!("{}-selling", self.namespace))
            .arg(1)
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Whether some workers process said it is selling (`mark_selling`)
    /// and its word has not run out.
    pub async fn selling_somewhere(&self) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let n: i64 = redis::cmd("EXISTS")
            .arg(format!("{}-selling", self.namespace))
            .query_async(&mut conn)
            .await?;
        Ok(n == 1)
    }

    /// The apalis queue name: `{namespace}-{queue}` (no `:`, which apalis'
    /// pub/sub parsing splits on).
    pub fn redis_queue(&self, queue: QueueName) -> String {
        format!("{}-{}", self.namespace, queue.as_str())
    }

    /// The apalis-redis storage settings for one queue, measured to work
    /// together (notes, "Settings that worked together").
    pub fn storage_config(&self, queue: QueueName) -> apalis_redis::Config {
        apalis_redis::Config::default()
            .queue(self.redis_queue(queue))
            .batch_size(queue.settings().fetch_batch)
            // Locking costs an LREM per fetched task (4k vs 27k jobs/s under
            // backlog); crash recovery works without it through the in-flight set.
            .lock_tasks(false)
            .emit_events(false)
            // Never `persist_results(false)`: that skips the ack entirely.
            .persist_results(true)
            .heartbeat_interval(HEARTBEAT)
            .missed_heartbeats(MISSED_HEARTBEATS)
            .idempotency_ttl(Some(IDEMPOTENCY_TTL))
    }

    /// Pushes one job.
    pub async fn push<J: Job>(&self, job: &J, schedule: Schedule) -> Result<bool, QueueError> {
        Ok(self.push_many(std::slice::from_ref(job), schedule).await? == 1)
    }

    /// Pushes jobs of one kind in chunks; returns how many were new (jobs whose
    /// idempotency key was already taken are skipped).
    pub async fn push_many<J: Job>(
        &self,
        jobs: &[J],
        schedule: Schedule,
    ) -> Result<usize, QueueError> {
        let config = self.storage_config(J::QUEUE);
        // Our delayed set is scored in milliseconds (apalis' own set has only
        // whole seconds, which runs a "2 s" job anywhere from 1 to 2 s later).
        let now = unix_now_ms();
        let run_at = match schedule.delay {
            Some(d) if !d.is_zero() => now + d.as_millis() as u64,
            _ => 0,
        };
        let max_attempts = J::retry_policy().max_attempts;
        let mut written = 0;
        for chunk in jobs.chunks(500) {
            let mut invocation = PUSH.prepare_invoke();
            invocation
                .key(config.job_data_hash())
                .key(config.active_jobs_list())
                .key(config.job_meta_hash())
                .key(delayed_set(&config))
                .key(config.idempotency_key_set())
                .arg(IDEMPOTENCY_TTL.as_secs())
                .arg(now);
            for job in chunk {
                invocation
                    .arg(ulid::Ulid::generate().to_string())
                    .arg(serde_json::to_vec(job)?)
                    .arg(max_attempts)
                    .arg(run_at)
                    .arg(if schedule.ignore_idempotency_key {
                        String::new()
                    } else {
                        job.idempotency_key().unwrap_or_default()
                    });
            }
            let mut conn = self.conn.clone();
            written += invocation.invoke_async::<usize>(&mut conn).await?;
        }
        Ok(written)
    }

    /// Moves due jobs to the active list in bounded chunks, until none are
    /// due: first our own delayed set, then apalis' scheduled set (which only
    /// its retry path writes to). The workers process runs this every
    /// [`POLL_INTERVAL`] and before (re)starting a worker.
    pub async fn promote_due(&self, queue: QueueName) -> Result<usize, QueueError> {
        let config = self.storage_config(queue);
        let mut conn = self.conn.clone();
        let mut total = 0;
        // Ours is scored in milliseconds, apalis' in seconds.
        for (source, now) in [
            (delayed_set(&config), unix_now_ms()),
            (config.scheduled_jobs_set(), unix_now_ms() / 1000),
        ] {
            loop {
                let moved: usize = PROMOTE
                    .key(&source)
                    .key(config.active_jobs_list())
                    .arg(now)
                    .arg(PROMOTE_CHUNK)
                    .invoke_async(&mut conn)
                    .await?;
                total += moved;
                if moved < PROMOTE_CHUNK {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// Round trip to Redis, for readiness checks.
    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// Deletes every key of this namespace. Tests use it to clean up.
    pub async fn purge_namespace(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}-*", self.namespace);
        let keys: Vec<String> = {
            let mut iter: redis::AsyncIter<'_, String> = conn.scan_match(&pattern).await?;
            let mut keys = Vec::new();
            while let Some(key) = futures::StreamExt::next(&mut iter).await {
                keys.push(key?);
            }
            keys
        };
        for chunk in keys.chunks(500) {
            let _: () = conn.del(chunk).await?;
        }
        // apalis lists every queue's worker set in one global sorted set.
        let worker_sets: Vec<String> = QueueName::ALL
            .iter()
            .map(|&q| format!("{}:workers", self.redis_queue(q)))
            .collect();
        let _: () = conn.zrem(APALIS_QUEUE_LIST, worker_sets).await?;
        Ok(())
    }
}

/// apalis-redis' registry of queues (a sorted set of their worker sets).
const APALIS_QUEUE_LIST: &str = "core:apalis:queues:list";

/// Delayed jobs wait here, not in apalis' scheduled set: apalis' fetch promotes
/// every due id of that set in one `unpack()`, which fails past ~8,000 ids and
/// kills the worker, so a burst of jobs falling due together (reservation
/// expiries after a ticket drop) must never sit there. [`Queues::promote_due`]
/// moves them in bounded chunks.
pub(crate) fn delayed_set(config: &apalis_redis::Config) -> String {
    format!("{}:delayed", config.queue.as_ref())
}

/// Connects to Redis with timeouts suited to queue work. The client's default
/// 500 ms response timeout turned a busy moment into a fatal worker error.
pub async fn connect(url: &str) -> Result<ConnectionManager, QueueError> {
    let client = redis::Client::open(url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_secs(10)))
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_secs(2));
    Ok(ConnectionManager::new_with_config(client, config).await?)
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("job payload: {0}")]
    Payload(#[from] serde_json::Error),
}
