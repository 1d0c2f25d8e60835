//! Recovery sweeps: find rows stuck in an intermediate state and push their
//! job again. Safe because every job is idempotent.

pub mod emails;
pub mod events;
pub mod orders;

/// Why a sweep (or a tick) failed: the next tick tries again.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("no sweep named {0:?}")]
    Unknown(String),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
    #[error("queue: {0}")]
    Queue(#[from] boxoffice_core::queue::QueueError),
}
