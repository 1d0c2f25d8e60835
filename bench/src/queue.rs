//! Queue throughput: N trivial jobs through apalis-redis with 1, 2, 4 worker
//! processes (this binary's `queue-worker` subcommand, each a real
//! supervised worker as `boxoffice workers` runs them), measuring enqueue
//! rate, processing rate and enqueue-to-start latency.

use std::{
    process::{Child, Command},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use boxoffice_core::{
    Services,
    queue::{Job, QueueName, Schedule},
};
use boxoffice_workers::{JobError, Perform, WorkerCtx};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::stats::{Summary, summarize};

/// Every how many jobs one reports its start latency.
const SAMPLE_EVERY: u64 = 50;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

macro_rules! noop_job {
    ($name:ident, $queue:expr) => {
        #[derive(Debug, Clone, Serialize, Deserialize)]
        pub struct $name {
            pub n: u64,
            pub pushed_at_ms: u64,
        }

        impl Job for $name {
            const QUEUE: QueueName = $queue;
            fn idempotency_key(&self) -> Option<String> {
                None
            }
        }

        impl Perform for $name {
            async fn perform(&self, ctx: &WorkerCtx, _attempt: u32) -> Result<(), JobError> {
                if self.n % SAMPLE_EVERY == 0 {
                    let key = format!("{}-bench:latency", ctx.services.queues.namespace());
                    let latency = now_ms().saturating_sub(self.pushed_at_ms);
                    let _: () = ctx
                        .services
                        .queues
                        .connection()
                        .rpush(key, latency)
                        .await
                        .map_err(|e| JobError::new(e.to_string()))?;
                }
                Ok(())
            }
        }
    };
}

noop_job!(NoopPurchase, QueueName::Purchases);
noop_job!(NoopEmail, QueueName::Emails);

#[derive(Debug, Serialize)]
pub struct Run {
    pub queue: String,
    pub processes: usize,
    pub concurrency: usize,
    pub jobs: u64,
    pub enqueued_per_sec: f64,
    pub processed_per_sec: f64,
    pub enqueue_to_start_ms: Summary,
}

/// The child side: run one queue's worker until killed.
pub async fn worker(services: Services, queue: QueueName, concurrency: usize) -> Result<()> {
    let ctx = WorkerCtx::new(services).map_err(anyhow::Error::msg)?;
    let (_keep, rx) = tokio::sync::watch::channel(false);
    match queue {
        QueueName::Purchases => {
            boxoffice_workers::run_queue::<NoopPurchase>(ctx, concurrency, rx).await
        }
        QueueName::Emails => boxoffice_workers::run_queue::<NoopEmail>(ctx, concurrency, rx).await,
        other => bail!("no bench job for {other}"),
    }
    Ok(())
}

struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn push_all(services: &Services, queue: QueueName, jobs: u64) -> Result<()> {
    let mut n = 0;
    while n < jobs {
        let end = (n + 1_000).min(jobs);
        let pushed = now_ms();
        match queue {
            QueueName::Purchases => {
                let batch: Vec<_> = (n..end)
                    .map(|n| NoopPurchase {
                        n,
                        pushed_at_ms: pushed,
                    })
                    .collect();
                services.queues.push_many(&batch, Schedule::now()).await?;
            }
            _ => {
                let batch: Vec<_> = (n..end)
                    .map(|n| NoopEmail {
                        n,
                        pushed_at_ms: pushed,
                    })
                    .collect();
                services.queues.push_many(&batch, Schedule::now()).await?;
            }
        }
        n = end;
    }
    Ok(())
}

/// One measurement: `processes` workers of `concurrency` each, `jobs` jobs.
pub async fn measure(
    services: &Services,
    exe: &std::path::Path,
    queue: QueueName,
    processes: usize,
    concurrency: usize,
    jobs: u64,
) -> Result<Run> {
    let ns = services.queues.namespace().to_owned();
    services.queues.purge_namespace().await?;
    let mut children = Children(Vec::new());
    for _ in 0..processes {
        children.0.push(
            Command::new(exe)
                .args([
                    "queue-worker",
                    "--queue",
                    queue.as_str(),
                    "--concurrency",
                    &concurrency.to_string(),
                ])
                .env("REDIS_NAMESPACE", &ns)
                .env("RUST_LOG", "warn")
                .spawn()
                .context("spawn queue worker")?,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while services.queues.counts(queue).await?.workers < processes as u64 {
        if Instant::now() > deadline {
            bail!("workers did not register");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    push_all(services, queue, jobs).await?;
    let enqueue_secs = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let c = services.queues.counts(queue).await?;
        if c.done >= jobs {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {} of {jobs} done", c.done);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total_secs = started.elapsed().as_secs_f64();
    drop(children);
    let samples: Vec<u64> = services
        .queues
        .connection()
        .lrange(format!("{ns}-bench:latency"), 0, -1)
        .await?;
    services.queues.purge_namespace().await?;
    Ok(Run {
        queue: queue.as_str().into(),
        processes,
        concurrency,
        jobs,
        enqueued_per_sec: jobs as f64 / enqueue_secs,
        processed_per_sec: jobs as f64 / total_secs,
        enqueue_to_start_ms: summarize(samples.into_iter().map(|v| v as f64).collect()),
    })
}
