//! Webhook inbox inserts, batched: the webhook requests of one API process
//! hand their verified events to one batcher that stores all that wait in
//! one statement and one commit, enqueues the stored ones still to apply in
//! one push, and only then answers.
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
    models::{Arriving, InboxEvent, StoredRow},
    queue::{Queues, Schedule},
};
use diesel_async::AsyncPgConnection;

use crate::error::ApiError;

/// What became of a verified event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored now, and enqueued to be applied.
    New,
    /// Stored now, processed: it reports a refund that has succeeded
    /// already, nothing to apply (`InboxEvent::store_many`).
    Settled,
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

    pub async fn store(&self, event: Arriving) -> Result<Stored, ApiError> {
        self.0.write(event).await
    }
}

/// What became of `event`, from the rows the statement stored.
fn stored(event: &Arriving, rows: &[StoredRow]) -> Stored {
    match rows.iter().find(|r| r.id == event.row.id) {
        Some(row) if row.processed => Stored::Settled,
        Some(_) => Stored::New,
        None => Stored::Duplicate,
    }
}

impl Write for Inbox {
    type Item = Arriving;
    type Done = Stored;
    type Error = ApiError;

    async fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        events: &[Arriving],
    ) -> Answers<Stored, ApiError> {
        let rows = InboxEvent::store_many(conn, events).await?;
        Ok(events.iter().map(|e| Ok(stored(e, &rows))).collect())
    }

    async fn one(
        &self,
        conn: &mut AsyncPgConnection,
        event: &Arriving,
    ) -> Result<Stored, ApiError> {
        let rows = InboxEvent::store_many(conn, std::slice::from_ref(event))
            .await
            .map_err(|e| {
                ApiError::Unavailable(format!(
                    "store webhook {}: {e}",
                    event.row.provider_event_id
                ))
            })?;
        Ok(stored(event, &rows))
    }

    async fn after(&self, events: &[Arriving], answers: &mut [Result<Stored, ApiError>]) {
        let jobs: Vec<ApplyPaymentEvent> = events
            .iter()
            .zip(answers.iter())
            .filter(|(_, answer)| matches!(answer, Ok(Stored::New)))
            .map(|(e, _)| ApplyPaymentEvent { inbox_id: e.row.id })
            .collect();
        if !jobs.is_empty()
            && let Err(e) = self.queues.push_many(&jobs, Schedule::now()).await
        {
            tracing::warn!(events = jobs.len(), error = %e, "enqueue stored webhooks");
        }
    }
}
