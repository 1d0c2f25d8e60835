//! Webhook inbox inserts, batched: the webhook requests of one API process
//! hand their verified events to one task that stores all that wait in one
//! statement and one commit, enqueues the stored ones in one push, and only
//! then answers.
//!
//! Why: in a drop every sale ends in a payment webhook, and one insert and
//! commit each was paid on the same two cores as the next buyers' orders.
//! An answer still means what it meant: `Stored` is committed (and the push
//! was tried: if Redis is down the inbox sweep enqueues it later). If the
//! batch statement fails, each event is stored on its own.

use std::collections::HashSet;

use boxoffice_core::{
    Services, batch,
    db::DbPool,
    jobs::ApplyPaymentEvent,
    models::InboxEvent,
    queue::{Queues, Schedule},
};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;

/// Events stored per statement at most.
const MAX_BATCH: usize = 256;

/// What became of a verified event.
pub enum Stored {
    /// Stored now, and enqueued to be applied.
    New,
    /// Stored before: a redelivery.
    Duplicate,
}

type Reply = oneshot::Sender<Result<Stored, ApiError>>;

#[derive(Clone)]
pub struct InboxWriter {
    tx: mpsc::Sender<(InboxEvent, Reply)>,
}

impl InboxWriter {
    /// Starts the writing task for this process, on connections of its own.
    pub fn start(services: &Services) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let db = batch::own_pool(services, batch::Planning::Cached, batch::Commit::Durable);
        let queues = services.queues.clone();
        tokio::spawn(batch::drain(
            rx,
            MAX_BATCH,
            batch::API_LINGER,
            batch::OWN_CONNECTIONS,
            move |events| write(db.clone(), queues.clone(), events),
        ));
        Self { tx }
    }

    pub async fn store(&self, event: InboxEvent) -> Result<Stored, ApiError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || ApiError::Unavailable("webhook inbox writer stopped".into());
        self.tx.send((event, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn write(db: DbPool, queues: Queues, batch: Vec<(InboxEvent, Reply)>) {
    let mut conn = match db.get().await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::warn!(error = %e, "webhook inbox writer has no connection");
            for (_, reply) in batch {
                let _ = reply.send(Err(ApiError::Unavailable("database".into())));
            }
            return;
        }
    };
    let (events, replies): (Vec<InboxEvent>, Vec<Reply>) = batch.into_iter().unzip();
    // Ids stored now, and (one by one only) ids that could not be stored.
    let mut stored = HashSet::new();
    let mut failed = HashSet::new();
    match InboxEvent::store_many(&mut conn, &events).await {
        Ok(ids) => stored.extend(ids),
        Err(e) => {
            tracing::warn!(events = events.len(), error = %e, "inbox batch failed; storing one by one");
            for event in &events {
                match InboxEvent::store_many(&mut conn, std::slice::from_ref(event)).await {
                    Ok(ids) => stored.extend(ids),
                    Err(e) => {
                        tracing::warn!(event = %event.provider_event_id, error = %e, "webhook not stored");
                        failed.insert(event.id);
                    }
                }
            }
        }
    }
    drop(conn);
    let jobs: Vec<ApplyPaymentEvent> = events
        .iter()
        .filter(|e| stored.contains(&e.id))
        .map(|e| ApplyPaymentEvent { inbox_id: e.id })
        .collect();
    // Stored: acknowledged even if the push fails (the inbox sweep retries).
    if !jobs.is_empty()
        && let Err(e) = queues.push_many(&jobs, Schedule::now()).await
    {
        tracing::warn!(events = jobs.len(), error = %e, "enqueue stored webhooks");
    }
    for (event, reply) in events.iter().zip(replies) {
        let answer = if stored.contains(&event.id) {
            Ok(Stored::New)
        } else if failed.contains(&event.id) {
            Err(ApiError::Unavailable("database".into()))
        } else {
            Ok(Stored::Duplicate)
        };
        let _ = reply.send(answer);
    }
}
