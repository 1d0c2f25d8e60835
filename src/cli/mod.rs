//! The subcommands that are more than a hand-off to a role crate, and what
//! they share: connecting, migrating, the shutdown signal.

pub mod dev;
pub mod ledger;
pub mod queues;
pub mod seed;
pub mod users;

use anyhow::Result;
use boxoffice_core::{Config, Services, db};
use tokio::sync::watch;

pub async fn connect(config: Config) -> Result<Services> {
    Services::connect(config).await.map_err(anyhow::Error::msg)
}

pub async fn migrate(config: &Config) -> Result<()> {
    db::ensure_database(&config.database.url)
        .await
        .map_err(anyhow::Error::msg)?;
    let applied = db::migrate(&config.database.url)
        .await
        .map_err(anyhow::Error::msg)?;
    tracing::info!(applied = applied.len(), "migrations up to date");
    Ok(())
}

/// A flag that turns true on Ctrl-C or SIGTERM.
pub fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    rx
}
