//! Boxoffice's shared core: everything two runtime roles (api, workers,
//! scheduler) both need. The roles depend on this crate and never on each other.

pub mod auth;
pub mod batch;
pub mod catalog;
pub mod config;
pub mod db;
pub mod fees;
pub mod health;
pub mod ics;
pub mod jobs;
pub mod live;
pub mod media;
pub mod metrics;
pub mod models;
pub mod money;
pub mod payments;
pub mod prepared;
pub mod qr;
pub mod queue;
pub mod refunds;
pub mod schema;
pub mod seed;
pub mod services;
pub mod telemetry;
pub mod tickets;
pub mod webhooks;

pub use config::Config;
pub use services::Services;

/// rustls needs one process-wide crypto provider; reqwest and lettre are built
/// without one so that only `ring` is compiled in.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
