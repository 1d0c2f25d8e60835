//! One file per job. Each job is idempotent; its doc comment says why.

mod apply_payment_event;
mod cancel_event;
mod deliver_webhook;
mod order_job;
pub(crate) mod payout_job;
mod refund_job;
mod send_email;

use std::future::Future;

use boxoffice_core::queue::Job;

use crate::WorkerCtx;

/// A failed attempt. The message is logged and, after the last attempt, kept
/// with the job in the dead set; it must not carry secrets.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt: an outage, a timeout, a row not ready yet.
    #[error("{0}")]
    Transient(String),
    /// Another attempt would fail the same way (a stored payload that
    /// cannot be read, a refusal): the job goes to the dead set at once.
    #[error("{0}")]
    Permanent(String),
    /// Not attempted: run again after this long, no attempt spent (the
    /// provider's circuit is open, or it asked us to wait).
    #[error("deferred for {0:?}: {1}")]
    Deferred(std::time::Duration, String),
}

impl JobError {
    /// A transient failure: retried with backoff.
    pub fn new(message: impl Into<String>) -> Self {
        Self::Transient(message.into())
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent(message.into())
    }

    /// A provider call that did not succeed, in `context`: deferred while
    /// its circuit is open, retried otherwise (a caller that handles
    /// refusals matches them first).
    pub fn provider(context: &str, e: boxoffice_core::payments::ProviderError) -> Self {
        match e {
            boxoffice_core::payments::ProviderError::CircuitOpen { retry_in }
            | boxoffice_core::payments::ProviderError::RateLimited { retry_in } => {
                Self::Deferred(retry_in, format!("{context}: {e}"))
            }
            e => Self::Transient(format!("{context}: {e}")),
        }
    }
}

impl boxoffice_core::queue::AttemptError for JobError {
    fn is_permanent(&self) -> bool {
        matches!(self, JobError::Permanent(_))
    }

    fn deferred(&self) -> Option<std::time::Duration> {
        match self {
            JobError::Deferred(after, _) => Some(*after),
            _ => None,
        }
    }
}

impl From<diesel::result::Error> for JobError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Transient(format!("database: {e}"))
    }
}

impl From<boxoffice_core::batch::BatchError> for JobError {
    fn from(e: boxoffice_core::batch::BatchError) -> Self {
        Self::Transient(e.to_string())
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for JobError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Self::Transient(format!("database pool: {e}"))
    }
}

impl From<crate::emails::EmailError> for JobError {
    fn from(e: crate::emails::EmailError) -> Self {
        use crate::emails::EmailError;
        match e {
            // The row's parameters or its template cannot change by waiting.
            EmailError::Params { .. } | EmailError::Template(_) | EmailError::Qr(_) => {
                Self::Permanent(e.to_string())
            }
            EmailError::Database(_) | EmailError::Pool(_) => Self::Transient(e.to_string()),
            // Not an error of the job: the email is skipped (`send_email`).
            EmailError::Obsolete(why) => Self::Permanent(why.to_owned()),
        }
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
