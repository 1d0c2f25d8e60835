//! Keeps one apalis worker per queue alive. A worker whose stream ends with an
//! error (Redis gone, a failing fetch script) is marked down in
//! [`WorkerHealth`](boxoffice_core::health::WorkerHealth), and restarted under
//! a fresh name after a short backoff.

use std::{panic::AssertUnwindSafe, time::Duration};

use apalis::prelude::*;
use apalis_redis::RedisStorage;
use boxoffice_core::queue::{HEARTBEAT, POLL_INTERVAL, QueueName, run_with_retries};
use futures::FutureExt;
use tokio::sync::watch;

use crate::{
    WorkerCtx,
    jobs::{JobError, Perform},
};

/// Worker names must be unique per process and per start: apalis keys
/// in-flight sets by name, and a reused name fails to register or blocks
/// orphan recovery.
fn worker_name(queue: QueueName) -> String {
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "host".into());
    let short = &uuid::Uuid::new_v4().simple().to_string()[..8];
    format!("{queue}-{host}-{}-{short}", std::process::id())
}

/// The apalis handler for job type `J`: retries with backoff inside the
/// delivery, dead set after the last attempt.
async fn handle<J: Perform>(
    job: J,
    ctx: Data<WorkerCtx>,
    worker: WorkerContext,
) -> Result<(), BoxDynError> {
    // Every log line of the job carries its queue and payload (ids only, so
    // `order_id`, `email_id`... are searchable fields).
    let span = tracing::info_span!("job", queue = J::QUEUE.as_str(), job = ?job);
    // On a task of its own: apalis drops the futures of its jobs in flight
    // when its stream fails (Redis gone), and a job cut at an await point
    // (an email the SMTP server took, not yet marked sent) is done again
    // once its claim runs out. Only the death of the process cuts it now.
    tokio::spawn(tracing::Instrument::instrument(
        deliver(job, ctx, worker),
        span,
    ))
    .await
    .unwrap_or_else(|e| Err(format!("job task: {e}").into()))
}

async fn deliver<J: Perform>(
    job: J,
    ctx: Data<WorkerCtx>,
    worker: WorkerContext,
) -> Result<(), BoxDynError> {
    let settings = J::QUEUE.settings();
    let started = std::time::Instant::now();
    // Payments jobs count as selling when they apply a payment (see there).
    let _sale = matches!(J::QUEUE, QueueName::Purchases).then(|| ctx.selling.job());
    let result = run_with_retries(
        J::retry_policy(),
        settings.attempt_timeout,
        || worker.is_shutting_down(),
        |attempt| {
            // A panicking job is a failed attempt, not a dead worker.
            AssertUnwindSafe(job.perform(&ctx, attempt))
                .catch_unwind()
                .map(|result| {
                    result.unwrap_or_else(|panic| {
                        let message = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "unknown panic".into());
                        Err(JobError::new(format!("job panicked: {message}")))
                    })
                })
        },
    )
    .await;
    // Deferred: pushed again to run later (past its idempotency key), and
    // this delivery ends; if the push fails the delivery fails, and apalis
    // delivers it again.
    let result = match result {
        Ok(Some(delay)) => ctx
            .services
            .queues
            .push(
                &job,
                boxoffice_core::queue::Schedule {
                    delay: Some(delay),
                    ignore_idempotency_key: true,
                },
            )
            .await
            .map(|_| ())
            .map_err(|e| -> BoxDynError { format!("defer: {e}").into() }),
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    let queue = J::QUEUE.as_str();
    let outcome = if result.is_ok() { "ok" } else { "failed" };
    let m = boxoffice_core::metrics::metrics();
    m.jobs
        .get_or_create(&boxoffice_core::metrics::labels([
            ("queue", queue),
            ("outcome", outcome),
        ]))
        .inc();
    m.job_duration
        .get_or_create(&boxoffice_core::metrics::labels([("queue", queue)]))
        .observe(started.elapsed().as_secs_f64());
    ctx.tally.record(J::QUEUE, result.is_ok());
    result
}

/// How often a worker looks at its queue's pause flag.
const PAUSE_POLL: Duration = Duration::from_millis(500);

async fn is_paused(ctx: &WorkerCtx, queue: QueueName) -> bool {
    ctx.services.queues.is_paused(queue).await.unwrap_or(false)
}

/// A stop signal for one worker run: process shutdown, or ops pausing the
/// queue. Returns the receiver and whether the stop was a pause.
fn run_stop(
    ctx: &WorkerCtx,
    queue: QueueName,
    shutdown: &watch::Receiver<bool>,
) -> (watch::Receiver<bool>, tokio::task::JoinHandle<bool>) {
    let (tx, rx) = watch::channel(false);
    let (ctx, mut shutdown) = (ctx.clone(), shutdown.clone());
    let watcher = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped(&mut shutdown) => {
                    let _ = tx.send(true);
                    return false;
                }
                _ = tokio::time::sleep(PAUSE_POLL) => {
                    if is_paused(&ctx, queue).await {
                        let _ = tx.send(true);
                        return true;
                    }
                }
            }
        }
    });
    (rx, watcher)
}

/// Runs the queue of job type `J` until shutdown, restarting its worker if it
/// dies, and stopping it (in-flight jobs finish) while ops pause the queue.
pub async fn run_queue<J: Perform>(
    ctx: WorkerCtx,
    concurrency: usize,
    shutdown: watch::Receiver<bool>,
) {
    let queue = J::QUEUE;
    let promoter = tokio::spawn(promote_loop(ctx.clone(), queue, shutdown.clone()));
    let mut failures = 0u32;
    loop {
        if *shutdown.borrow() {
            break;
        }
        if is_paused(&ctx, queue).await {
            ctx.services.health.paused(queue);
            let mut shutdown = shutdown.clone();
            tokio::select! {
                _ = tokio::time::sleep(PAUSE_POLL) => continue,
                _ = stopped(&mut shutdown) => break,
            }
        }
        // Whatever fell due while no worker ran is moved in bounded chunks
        // before apalis' fetch can see it.
        if let Err(e) = ctx.services.queues.promote_due(queue).await {
            tracing::warn!(%queue, error = %e, "promoting due jobs failed");
        }
        let name = worker_name(queue);
        ctx.services.health.up(queue, &name);
        let (stop, watcher) = run_stop(&ctx, queue, &shutdown);
        let result = run_worker::<J>(&ctx, &name, concurrency, stop).await;
        watcher.abort();
        let paused = watcher.await.unwrap_or(false);
        if let Err(e) = ctx.services.queues.deregister_worker(queue, &name).await {
            tracing::debug!(%queue, worker = %name, error = %e, "worker not deregistered");
        }
        if *shutdown.borrow() {
            ctx.services.health.down(queue, None);
            break;
        }
        if paused || is_paused(&ctx, queue).await {
            tracing::info!(%queue, worker = %name, "queue paused; worker stopped");
            ctx.services.health.paused(queue);
            continue;
        }
        failures += 1;
        let error = match result {
            Ok(()) => "worker stopped unexpectedly".to_owned(),
            Err(e) => e,
        };
        tracing::error!(%queue, worker = %name, error = %error, "worker died; restarting");
        ctx.services.health.down(queue, Some(error));
        let backoff = Duration::from_millis(250 * u64::from(failures.min(20)));
        let mut shutdown = shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stopped(&mut shutdown) => break,
        }
    }
    promoter.abort();
}

async fn run_worker<J: Perform>(
    ctx: &WorkerCtx,
    name: &str,
    concurrency: usize,
    shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let queue = J::QUEUE;
    let settings = queue.settings();
    let storage = RedisStorage::<J, _>::new(ctx.services.queues.connection())
        .with_config(ctx.services.queues.storage_config(queue))
        .poll_with_interval(POLL_INTERVAL);
    let worker = WorkerBuilder::new(name)
        .backend(storage)
        .data(ctx.clone())
        .concurrency(concurrency)
        // Our own per-attempt timeout sits inside; this bounds a whole delivery
        // (apalis re-queues a job only if its handler returns).
        .timeout(J::retry_policy().worst_case(settings.attempt_timeout) + HEARTBEAT)
        .build(handle::<J>);
    let shutdown_timeout = ctx.services.config.workers.shutdown_timeout;
    let mut stop = shutdown.clone();
    let mut shutdown = shutdown;
    let run = worker.run_until(async move {
        stopped(&mut shutdown).await;
        Ok::<(), std::io::Error>(())
    });
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => result.map_err(|e| e.to_string()),
        _ = stopped(&mut stop) => {
            // Shutdown began: give in-flight jobs their bounded time.
            match tokio::time::timeout(shutdown_timeout, run).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(_) => {
                    tracing::warn!(%queue, "in-flight jobs did not finish in {shutdown_timeout:?}; they will be re-run");
                    Ok(())
                }
            }
        }
    }
}

async fn promote_loop(ctx: WorkerCtx, queue: QueueName, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = ctx.services.queues.promote_due(queue).await {
            tracing::warn!(%queue, error = %e, "promoting due jobs failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = stopped(&mut shutdown) => return,
        }
    }
}

/// Resolves once shutdown has begun (or its sender is gone).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
