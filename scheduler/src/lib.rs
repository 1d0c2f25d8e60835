//! The scheduler role: cron schedules for time-based work and recovery sweeps.
//!
//! Several replicas may run; one holds the leader lock and fires ticks. Each
//! tick is also claimed by its timestamp, so even two leaders (a lock lost to
//! a network pause) never fire the same tick twice.

mod leader;
mod sweeps;

pub use sweeps::{SweepError, reminders::run_at as remind_at};

use std::{str::FromStr, time::Duration};

use boxoffice_core::Services;
use chrono::Utc;
use cron::Schedule;
use tokio::sync::watch;

pub use leader::LeaderLock;

/// One cron entry.
struct Entry {
    name: &'static str,
    schedule: Schedule,
}

fn entries() -> Vec<Entry> {
    // Six fields: seconds first.
    [
        ("email_sweep", "*/15 * * * * *"),
        ("event_completion", "0 * * * * *"),
        ("stuck_orders", "*/10 * * * * *"),
        ("expired_reservations", "*/5 * * * * *"),
        ("unapplied_webhooks", "*/10 * * * * *"),
        ("unsettled_sales", "*/10 * * * * *"),
        ("open_refunds", "*/30 * * * * *"),
        ("cancelled_events", "*/30 * * * * *"),
        ("payouts", "0 * * * * *"),
        ("open_payouts", "*/30 * * * * *"),
        ("reminders", "*/5 * * * * *"),
        ("messages", "*/2 * * * * *"),
        ("webhook_relay", "* * * * * *"),
        ("lost_webhooks", "*/30 * * * * *"),
    ]
    .into_iter()
    .map(|(name, expr)| Entry {
        name,
        schedule: Schedule::from_str(expr).expect("valid cron expression"),
    })
    .collect()
}

/// Runs a named sweep once, now. Used by ticks and by tests.
pub async fn run_sweep(services: &Services, name: &str) -> Result<usize, SweepError> {
    let grace = sweeps::grace(services);
    match name {
        "email_sweep" => sweeps::emails::run(services, grace).await,
        "event_completion" => sweeps::events::complete_ended(services).await,
        "stuck_orders" => sweeps::orders::stuck_orders(services, grace).await,
        "expired_reservations" => sweeps::orders::expired_reservations(services).await,
        "unapplied_webhooks" => sweeps::orders::unapplied_webhooks(services, grace).await,
        "open_refunds" => sweeps::orders::open_refunds(services, grace).await,
        "unsettled_sales" => sweeps::orders::unsettled_sales(services).await,
        "cancelled_events" => sweeps::events::cancelled(services, grace).await,
        "payouts" => sweeps::payouts::create_due(services).await,
        "open_payouts" => sweeps::payouts::open(services, grace).await,
        "reminders" => sweeps::reminders::run(services).await,
        "messages" => sweeps::messages::run(services).await,
        "webhook_relay" => sweeps::webhooks::relay(services).await,
        "lost_webhooks" => sweeps::webhooks::lost(services, grace).await,
        other => Err(SweepError::Unknown(other.to_owned())),
    }
}

/// Redis lost its data (its sentinel vanished): every queued job is gone,
/// so every row in an intermediate state gets its job again now, without
/// the grace that spares jobs merely slow in a healthy queue. Pushing a
/// job that still exists is harmless: every job is idempotent.
pub async fn recover_lost_queues(services: &Services) -> Result<usize, SweepError> {
    let now = chrono::Duration::zero();
    Ok(sweeps::orders::stuck_orders(services, now).await?
        + sweeps::orders::unapplied_webhooks(services, now).await?
        + sweeps::orders::expired_reservations(services).await?
        + sweeps::orders::open_refunds(services, now).await?
        + sweeps::events::cancelled(services, now).await?
        + sweeps::emails::run(services, now).await?
        + sweeps::payouts::open(services, now).await?
        + sweeps::webhooks::lost(services, now).await?)
}

/// Runs until `shutdown` turns true; releases the leader lock on the way out.
pub async fn run(services: Services, mut shutdown: watch::Receiver<bool>) {
    let lock = LeaderLock::new(&services, "scheduler");
    let entries = entries();
    let mut next: Vec<_> = entries
        .iter()
        .map(|e| e.schedule.upcoming(Utc).next())
        .collect();
    // Each tick runs as its own task: a long one (a fan-out spends up to a
    // second per tick) never holds the others back. An entry whose previous
    // tick is still running skips this one.
    let mut running: Vec<Option<tokio::task::JoinHandle<()>>> =
        entries.iter().map(|_| None).collect();
    tracing::info!(schedules = entries.len(), "scheduler started");
    loop {
        let is_leader = lock.acquire_or_renew().await;
        if is_leader && matches!(services.queues.sentinel_vanished().await, Ok(true)) {
            // Also on the first start against a fresh Redis: harmless.
            match recover_lost_queues(&services).await {
                Ok(n) => tracing::warn!(
                    jobs = n,
                    "Redis lost its queues; every open job pushed again"
                ),
                Err(e) => tracing::error!(error = %e, "recovering lost queues failed"),
            }
        }
        let now = Utc::now();
        for ((entry, due), task) in entries.iter().zip(next.iter_mut()).zip(running.iter_mut()) {
            let Some(at) = *due else { continue };
            if at > now {
                continue;
            }
            *due = entry.schedule.after(&now).next();
            if task.as_ref().is_some_and(|t| !t.is_finished()) {
                tracing::debug!(
                    schedule = entry.name,
                    "previous tick still running; skipped"
                );
                continue;
            }
            if !is_leader || !lock.claim_tick(entry.name, at.timestamp()).await {
                continue;
            }
            let late = (Utc::now() - at).to_std().unwrap_or_default();
            boxoffice_core::metrics::metrics()
                .scheduler_tick_delay
                .get_or_create(&boxoffice_core::metrics::labels([("schedule", entry.name)]))
                .observe(late.as_secs_f64());
            let services = services.clone();
            let name = entry.name;
            *task = Some(tokio::spawn(async move {
                match run_sweep(&services, name).await {
                    Ok(n) => tracing::debug!(schedule = name, handled = n, "tick"),
                    Err(e) => tracing::error!(schedule = name, error = %e, "tick failed"),
                }
            }));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
        }
    }
    // Ticks in flight finish (each is bounded) before the lock goes.
    for task in running.into_iter().flatten() {
        let _ = task.await;
    }
    lock.release().await;
    tracing::info!("scheduler stopped");
}
