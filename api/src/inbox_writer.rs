//! Webhook inbox inserts, batched: the webhook requests of one API process
//! hand their verified events to one batcher that stores all that wait in
//! one statement and one commit, enqueues the stored ones in one push, and
//! only then answers.
//!
//! Why: in a drop every sale ends in a payment webhook, and one insert and
//! commit each was paid on the same two cores as the next buyers' orders.
//! An answer still means what it meant: `Stored` is committed (and the push
//! was tried: if Redis is down the inbox sweep enqueues it later). If the
//! batch statement fails, each event is stored on its own.

use boxoffice_core::{
    Services,
    batch::{self, Answers, Batcher, Commit, Linger, Planning, Pool, Settings, Write},
    jobs::ApplyPaymentEvent,
    models::InboxEvent,
    queue::{Queues, Schedule},
};
use diesel_async::AsyncPgConnection;

use crate::error::ApiError;

/// What became of a verified event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored now, and enqueued to be applied.
    New,
    /// Stored before: a redelivery.
    Duplicate,
}

#[derive(Clone)]
pub struct InboxWriter(Batcher<Inbox>);

pub struct Inbox {
    queues: Queues,
}

impl InboxWriter {
    /// Starts the writing task for this process, on connections of its own.
    pub fn start(services: &Services) -> Self {
        let settings = Settings {
            name: "webhook_inbox",
            max: 256,
            linger: Linger::WhenBusy(batch::API_LINGER),
            in_flight: batch::OWN_CONNECTIONS,
            pool: Pool::Own(Planning::Cached, Commit::Durable),
        };
        let queues = services.queues.clone();
        Self(Batcher::start(services, settings, Inbox { queues }))
    }

    pub async fn store(&self, event: InboxEvent) -> Result<Stored, ApiError> {
        self.0.write(event).await
    }
}

impl Write for Inbox {
    type Item = InboxEvent;
    type Done = Stored;
    type Error = ApiError;

    async fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        events: &[InboxEvent],
    ) -> Answers<Stored, ApiError> {
        let stored = InboxEvent::store_many(conn, events).await?;
        Ok(events
            .iter()
            .map(|e| {
                Ok(if stored.contains(&e.id) {
                    Stored::New
                } else {
                    Stored::Duplicate
                })
            })
            .collect())
    }

    async fn one(
        &self,
        conn: &mut AsyncPgConnection,
        event: &InboxEvent,
    ) -> Result<Stored, ApiError> {
        // The provider retries on any 5xx; a 503 says "later", as it is.
        let stored = InboxEvent::store_many(conn, std::slice::from_ref(event))
            .await
            .map_err(|e| {
                ApiError::Unavailable(format!("store webhook {}: {e}", event.provider_event_id))
            })?;
        Ok(if stored.is_empty() {
            Stored::Duplicate
        } else {
            Stored::New
        })
    }

    /// Stored events are acknowledged even if the push fails (the inbox
    /// sweep enqueues them).
    async fn after(&self, events: &[InboxEvent], answers: &mut [Result<Stored, ApiError>]) {
        let jobs: Vec<ApplyPaymentEvent> = events
            .iter()
            .zip(answers.iter())
            .filter(|(_, answer)| matches!(answer, Ok(Stored::New)))
            .map(|(e, _)| ApplyPaymentEvent { inbox_id: e.id })
            .collect();
        if !jobs.is_empty()
            && let Err(e) = self.queues.push_many(&jobs, Schedule::now()).await
        {
            tracing::warn!(events = jobs.len(), error = %e, "enqueue stored webhooks");
        }
    }
}
