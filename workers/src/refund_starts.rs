//! Refunds marked `processing` in batches, before the provider hears of
//! them: the `Send` jobs of one worker process hand their refund ids to one
//! batcher that marks all that wait in one statement and one durable
//! commit, and reads their payments in a second.
//!
//! Why: an event cancellation sends thousands of refunds a minute, and a
//! statement, a commit and a payment lookup for each were a share of what
//! the database did for it (docs/PERFORMANCE.md, "Event cancellation").

use std::collections::HashMap;

use boxoffice_core::{
    Services,
    batch::{self, Answers, Batcher, Commit, Linger, Planning, Pool, Settings, Write},
    models::{Payment, Refund},
};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::jobs::JobError;

/// A refund marked `processing`, with the payment it gives back.
pub struct Sending {
    pub refund: Refund,
    pub payment: Payment,
}

#[derive(Clone)]
pub struct RefundStarts(Batcher<Start>);

pub struct Start;

impl RefundStarts {
    /// Starts the batching task for this process, on connections of its own.
    pub fn start(services: &Services) -> Self {
        let settings = Settings {
            name: "refund_starts",
            max: 256,
            linger: Linger::WhenBusy(batch::WORKER_LINGER),
            // One, as the finisher: larger batches, fewer statements.
            in_flight: 1,
            // Durable: a refund is `processing` on disk before the
            // provider is asked (as a payment's checkout is recorded
            // before the buyer is sent to it).
            pool: Pool::Own(Planning::ByKey, Commit::Durable),
        };
        Self(Batcher::start(services, settings, Start))
    }

    /// Marks the refund `processing`, with the others of the moment; `None`
    /// if it succeeded already (or is unknown).
    pub async fn start_sending(&self, refund_id: Uuid) -> Result<Option<Sending>, JobError> {
        self.0.write(refund_id).await
    }
}

impl Write for Start {
    type Item = Uuid;
    type Done = Option<Sending>;
    type Error = JobError;

    async fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        ids: &[Uuid],
    ) -> Answers<Option<Sending>, JobError> {
        let mut started: HashMap<Uuid, Refund> = Refund::start_sending_many(conn, ids)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        let payment_ids: Vec<Uuid> = started.values().map(|r| r.payment_id).collect();
        let payments = Payment::find_many(conn, &payment_ids).await?;
        Ok(ids
            .iter()
            .map(|id| {
                let Some(refund) = started.remove(id) else {
                    return Ok(None);
                };
                let payment = payments
                    .get(&refund.payment_id)
                    .cloned()
                    .ok_or_else(|| JobError::new("a refund's payment is gone"))?;
                Ok(Some(Sending { refund, payment }))
            })
            .collect())
    }
}
