//! `boxoffice dev`: API + workers + scheduler (+ the sandbox) in one process.

use anyhow::{Context, Result};
use boxoffice_core::Services;

use super::shutdown_signal;

/// API + workers + scheduler in one process: the first-run experience.
pub async fn run(services: Services) -> Result<()> {
    let shutdown = shutdown_signal();
    // The sandbox provider rides along at /sandbox, so the whole purchase
    // flow works with nothing else running.
    let sandbox = boxoffice_sandbox::Sandbox::new(services.config.sandbox.clone())
        .map_err(anyhow::Error::msg)?;
    let extra = axum::Router::new().nest("/sandbox", sandbox.router());
    let (addr, server) = boxoffice_api::bind_with(services.clone(), shutdown.clone(), Some(extra))
        .await
        .map_err(anyhow::Error::msg)?;
    // Each role its own pool, as when they run as separate processes.
    let pool_size = services.config.database.pool_size;
    let for_workers = services
        .for_role("boxoffice-workers", pool_size)
        .map_err(anyhow::Error::msg)?;
    let for_scheduler = services
        .for_role("boxoffice-scheduler", 4)
        .map_err(anyhow::Error::msg)?;
    let workers = tokio::spawn(boxoffice_workers::run(for_workers, shutdown.clone()));
    let scheduler = tokio::spawn(boxoffice_scheduler::run(for_scheduler, shutdown.clone()));
    println!();
    println!("  Boxoffice is running (API + workers + scheduler)");
    println!("  API        http://{addr}/v1");
    println!("  Health     http://{addr}/healthz  http://{addr}/readyz");
    println!("  Payments   sandbox provider at http://{addr}/sandbox (hosted checkout pages)");
    if let boxoffice_core::config::EmailTransportConfig::Outbox(dir) =
        &services.config.smtp.transport
    {
        println!(
            "  Emails     written to {}/ (set SMTP_URL to send them)",
            dir.display()
        );
    }
    println!("  Stop with Ctrl-C");
    println!();
    let served = server.await;
    let _ = workers.await;
    let _ = scheduler.await;
    served.context("http server")
}
