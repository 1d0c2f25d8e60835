//! The queue plumbing against real Redis: pickup latency, delays, a 20,000-job
//! burst, crash recovery, idempotency keys, retries and the dead set.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use boxoffice_core::{
    Services,
    queue::{Job, QueueName, RetryPolicy, Schedule},
};
use boxoffice_workers::{JobError, Perform, WorkerCtx, run_queue};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::harness::{app::test_config, eventually, smtp::SmtpSink};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A test job that records each start in a Redis list (`{ns}-probe:{id}`),
/// then behaves as told.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Probe {
    pub id: String,
    pub behaviour: Behaviour,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub enum Behaviour {
    Succeed,
    Fail,
    /// Fails until `{ns}-probe-fixed` is set: a cause ops can fix.
    FailUntilFixed,
    Hang,
    /// Takes a second, then succeeds.
    Slow,
}

impl Job for Probe {
    // A queue no real job uses yet; every test has its own namespace anyway.
    const QUEUE: QueueName = QueueName::Webhooks;
    fn idempotency_key(&self) -> Option<String> {
        Some(format!("probe:{}", self.id))
    }
    fn retry_policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl Perform for Probe {
    async fn perform(&self, ctx: &WorkerCtx, _attempt: u32) -> Result<(), JobError> {
        let mut conn = ctx.services.queues.connection();
        let key = format!("{}-probe:{}", ctx.services.queues.namespace(), self.id);
        let _: () = conn
            .rpush(&key, now_ms())
            .await
            .map_err(|e| JobError::new(e.to_string()))?;
        match self.behaviour {
            Behaviour::Succeed => Ok(()),
            Behaviour::Fail => Err(JobError::new(format!("probe {} always fails", self.id))),
            Behaviour::FailUntilFixed => {
                let fixed: bool = conn
                    .exists(format!("{}-probe-fixed", ctx.services.queues.namespace()))
                    .await
                    .map_err(|e| JobError::new(e.to_string()))?;
                if fixed {
                    Ok(())
                } else {
                    Err(JobError::new(format!(
                        "probe {} is broken until fixed",
                        self.id
                    )))
                }
            }
            Behaviour::Slow => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(())
            }
            Behaviour::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
        }
    }
}

/// Services on a fresh namespace (no HTTP needed here). Queue tests never
/// touch the database (the pool connects lazily), so it is dropped at once.
async fn services() -> Services {
    let smtp = SmtpSink::start().await;
    let (config, db_url) = test_config(smtp.port).await;
    crate::harness::db::drop_database_blocking(db_url);
    Services::connect(config).await.unwrap()
}

async fn starts(services: &Services, id: &str) -> Vec<u64> {
    let mut conn = services.queues.connection();
    conn.lrange(format!("{}-probe:{id}", services.queues.namespace()), 0, -1)
        .await
        .unwrap()
}

async fn wait_for_starts(services: &Services, id: &str, n: usize, timeout: Duration) -> Vec<u64> {
    eventually(timeout, || async {
        let s = starts(services, id).await;
        if s.len() >= n {
            Ok(s)
        } else {
            Err(format!("job {id}: {} of {n} starts", s.len()))
        }
    })
    .await
}

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn start_worker(services: &Services, concurrency: usize) -> Running {
    let (stop, rx) = watch::channel(false);
    let ctx = WorkerCtx::new(services.clone()).unwrap();
    let task = tokio::spawn(run_queue::<Probe>(ctx, concurrency, rx));
    Running { stop, task }
}

impl Running {
    async fn shutdown(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("graceful stop")
            .unwrap();
    }
}

fn probe(id: &str, behaviour: Behaviour) -> Probe {
    Probe {
        id: id.to_owned(),
        behaviour,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_worker_starts_a_new_job_within_a_second() {
    let services = services().await;
    let worker = start_worker(&services, 4);
    tokio::time::sleep(Duration::from_millis(1500)).await; // idle
    for round in 0..3 {
        let id = format!("idle-{round}");
        let pushed = now_ms();
        services
            .queues
            .push(&probe(&id, Behaviour::Succeed), Schedule::now())
            .await
            .unwrap();
        let started = wait_for_starts(&services, &id, 1, Duration::from_secs(5)).await[0];
        assert!(
            started - pushed < 1_000,
            "picked up after {} ms",
            started - pushed
        );
    }
    worker.shutdown().await;
    services.queues.purge_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delayed_job_runs_within_a_second_of_its_time() {
    let services = services().await;
    let worker = start_worker(&services, 4);
    let pushed = now_ms();
    services
        .queues
        .push(
            &probe("delayed", Behaviour::Succeed),
            Schedule::after(Duration::from_secs(2)),
        )
        .await
        .unwrap();
    let started = wait_for_starts(&services, "delayed", 1, Duration::from_secs(10)).await[0];
    let waited = started - pushed;
    assert!(
        (2_000..3_000).contains(&waited),
        "ran {waited} ms after a 2 s delay"
    );
    worker.shutdown().await;
    // A purge leaves nothing of the namespace, not even its entry in
    // apalis' global queue registry (written as a worker's heartbeat does).
    let mut conn = services.queues.connection();
    let member = format!(
        "{}:workers",
        services.queues.redis_queue(QueueName::Webhooks)
    );
    let _: () = redis::cmd("ZADD")
        .arg("core:apalis:queues:list")
        .arg(now_ms())
        .arg(&member)
        .query_async(&mut conn)
        .await
        .unwrap();
    services.queues.purge_namespace().await.unwrap();
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg("core:apalis:queues:list")
        .arg(&member)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(score, None);
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}-*", services.queues.namespace()))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_idempotency_key_three_times_makes_one_job() {
    let services = services().await;
    let job = probe("once", Behaviour::Succeed);
    let pushes = [
        services.queues.push(&job, Schedule::now()).await.unwrap(),
        services.queues.push(&job, Schedule::now()).await.unwrap(),
        services.queues.push(&job, Schedule::now()).await.unwrap(),
    ];
    assert_eq!(pushes, [true, false, false]);
    assert_eq!(
        services
            .queues
            .counts(QueueName::Webhooks)
            .await
            .unwrap()
            .pending,
        1
    );
    let worker = start_worker(&services, 4);
    wait_for_starts(&services, "once", 1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(starts(&services, "once").await.len(), 1);
    worker.shutdown().await;
    services.queues.purge_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_job_is_retried_with_growing_delays_then_dead() {
    let services = services().await;
    let worker = start_worker(&services, 4);
    services
        .queues
        .push(&probe("doomed", Behaviour::Fail), Schedule::now())
        .await
        .unwrap();
    let attempts = wait_for_starts(&services, "doomed", 4, Duration::from_secs(10)).await;
    let gaps: Vec<u64> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    // Half-jittered exponential backoff from 100 ms: [50,100], [100,200], [200,400].
    assert!(
        gaps[0] >= 50 && gaps[1] >= 100 && gaps[2] >= 200,
        "{gaps:?}"
    );
    assert!(
        gaps[1] >= gaps[0] && gaps[2] >= gaps[1],
        "delays must grow: {gaps:?}"
    );

    let dead = eventually(Duration::from_secs(10), || async {
        let dead = services
            .queues
            .dead_jobs(QueueName::Webhooks)
            .await
            .unwrap();
        if dead.is_empty() {
            Err("job never reached the dead set".into())
        } else {
            Ok(dead)
        }
    })
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload["id"], "doomed");
    let error = dead[0].last_error.clone().unwrap_or_default();
    assert!(
        error.contains("failed after 4 attempts") && error.contains("always fails"),
        "{error}"
    );
    // No fifth attempt sneaks in later (apalis' own 25-attempt re-scheduling).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(starts(&services, "doomed").await.len(), 4);
    let counts = services.queues.counts(QueueName::Webhooks).await.unwrap();
    assert_eq!((counts.dead, counts.pending, counts.scheduled), (1, 0, 0));

    // A dead job can be put back once its cause is fixed.
    assert!(
        services
            .queues
            .retry_dead(QueueName::Webhooks, &dead[0].id)
            .await
            .unwrap()
    );
    wait_for_starts(&services, "doomed", 5, Duration::from_secs(5)).await;
    worker.shutdown().await;
    services.queues.purge_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_thousand_jobs_on_an_idle_queue_are_all_processed_without_a_crash() {
    let services = services().await;
    let worker = start_worker(&services, 32);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Half due now, half falling due in the same second: the case that crashes
    // apalis-redis 1.0's fetch (one unpack() over every due id).
    let now_jobs: Vec<_> = (0..10_000)
        .map(|i| probe(&format!("n{i}"), Behaviour::Succeed))
        .collect();
    let later_jobs: Vec<_> = (0..10_000)
        .map(|i| probe(&format!("l{i}"), Behaviour::Succeed))
        .collect();
    assert_eq!(
        services
            .queues
            .push_many(&later_jobs, Schedule::after(Duration::from_secs(1)))
            .await
            .unwrap(),
        10_000
    );
    assert_eq!(
        services
            .queues
            .push_many(&now_jobs, Schedule::now())
            .await
            .unwrap(),
        10_000
    );

    let counts = eventually(Duration::from_secs(240), || async {
        let counts = services.queues.counts(QueueName::Webhooks).await.unwrap();
        if counts.done == 20_000 {
            Ok(counts)
        } else {
            Err(format!("stuck at {counts:?}"))
        }
    })
    .await;
    assert_eq!((counts.pending, counts.scheduled, counts.dead), (0, 0, 0));
    let health = services.health.snapshot();
    let status = &health[&QueueName::Webhooks];
    assert_eq!(
        status.restarts, 0,
        "worker crashed: {:?}",
        status.last_error
    );
    assert!(status.running);
    worker.shutdown().await;
    services.queues.purge_namespace().await.unwrap();
}

/// A "process" of its own: a runtime with its own Redis connections and
/// worker. Shutting the runtime down kills everything in it without any
/// cleanup — what `kill -9` does to a worker process.
fn spawn_worker_process(config: boxoffice_core::Config) -> tokio::runtime::Runtime {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.spawn(async move {
        let services = Services::connect(config).await.unwrap();
        let (_keep, rx) = watch::channel(false);
        let ctx = WorkerCtx::new(services).unwrap();
        run_queue::<Probe>(ctx, 4, rx).await;
    });
    rt
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_of_a_killed_worker_is_run_by_another_within_30_seconds() {
    let services = services().await;
    let config = (*services.config).clone();
    let doomed_process = spawn_worker_process(config.clone());
    services
        .queues
        .push(&probe("orphan", Behaviour::Hang), Schedule::now())
        .await
        .unwrap();
    wait_for_starts(&services, "orphan", 1, Duration::from_secs(5)).await;

    doomed_process.shutdown_background(); // kill -9
    let killed_at = now_ms();
    let survivor = spawn_worker_process(config);
    let second = wait_for_starts(&services, "orphan", 2, Duration::from_secs(30)).await[1];
    assert!(
        second - killed_at < 30_000,
        "re-run {} ms after the kill",
        second - killed_at
    );
    survivor.shutdown_background();
    services.queues.purge_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_lets_in_flight_jobs_finish() {
    let services = services().await;
    let worker = start_worker(&services, 4);
    services
        .queues
        .push(&probe("slow", Behaviour::Slow), Schedule::now())
        .await
        .unwrap();
    wait_for_starts(&services, "slow", 1, Duration::from_secs(5)).await;
    worker.shutdown().await; // returns once the worker has stopped
    // apalis acks through a batching channel; give the last flush a moment.
    let counts = eventually(Duration::from_secs(5), || async {
        let counts = services.queues.counts(QueueName::Webhooks).await.unwrap();
        if counts.done == 1 {
            Ok(counts)
        } else {
            Err(format!(
                "in-flight job not completed on shutdown: {counts:?}"
            ))
        }
    })
    .await;
    assert_eq!((counts.running, counts.pending), (0, 0));
    assert_eq!(starts(&services, "slow").await.len(), 1);
    services.queues.purge_namespace().await.unwrap();
}

/// A workers process that sells says so for a while; the word runs out
/// when it stops (`Queues::mark_selling`, read by dedicated refund workers).
#[tokio::test(flavor = "multi_thread")]
async fn a_sale_is_seen_by_other_processes_until_its_word_runs_out() {
    let services = services().await;
    let queues = &services.queues;
    assert!(
        !queues.selling_somewhere().await.unwrap(),
        "nobody sells yet"
    );
    queues
        .mark_selling(Duration::from_millis(300))
        .await
        .unwrap();
    assert!(queues.selling_somewhere().await.unwrap());
    eventually(Duration::from_secs(5), || async {
        if queues.selling_somewhere().await.unwrap() {
            Err("still selling".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
}
