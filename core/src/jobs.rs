//! Job payloads: ids only. Each handler reloads the row and checks it still
//! needs the work, which is what makes a duplicated delivery harmless.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::queue::{Job, QueueName};

/// Render and send one row of `email_log`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SendEmail {
    pub email_id: Uuid,
}

impl Job for SendEmail {
    const QUEUE: QueueName = QueueName::Emails;
    fn idempotency_key(&self) -> Option<String> {
        Some(format!("email:{}", self.email_id))
    }
}

impl SendEmail {
    /// Pushes the job after the `email_log` row is committed. A failed push is
    /// logged, not returned: the row stays `pending` and the scheduler's email
    /// sweep pushes it again, so the caller's request still succeeds.
    pub async fn enqueue(queues: &crate::queue::Queues, email_id: Uuid) {
        if let Err(e) = queues
            .push(&SendEmail { email_id }, crate::queue::Schedule::now())
            .await
        {
            tracing::warn!(email.id = %email_id, error = %e, "could not enqueue email; the sweep will retry");
        }
    }
}
