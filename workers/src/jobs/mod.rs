//! One file per job. Each job is idempotent; its doc comment says why.

mod apply_payment_event;
mod order_job;
mod refund_payment;
mod send_email;

use std::future::Future;

use boxoffice_core::queue::Job;

use crate::WorkerCtx;

/// A failed attempt. The message is logged and, after the last attempt, kept
/// with the job in the dead set; it must not carry secrets.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobError(pub String);

impl JobError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<diesel::result::Error> for JobError {
    fn from(e: diesel::result::Error) -> Self {
        Self(format!("database: {e}"))
    }
}

impl From<boxoffice_core::batch::BatchError> for JobError {
    fn from(e: boxoffice_core::batch::BatchError) -> Self {
        Self(e.to_string())
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for JobError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Self(format!("database pool: {e}"))
    }
}

/// The work a job does. Called once per attempt; `attempt` counts from 1.
pub trait Perform: Job {
    fn perform(
        &self,
        ctx: &WorkerCtx,
        attempt: u32,
    ) -> impl Future<Output = Result<(), JobError>> + Send;
}
