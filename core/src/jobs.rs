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
