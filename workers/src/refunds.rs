//! Confirmed refunds finished in batches: the refund jobs (the provider's
//! answer) and the payment-event jobs (its webhook) of one worker process
//! hand the refunds the provider confirmed to one batcher that records all
//! that wait in one transaction, one statement per kind of row
//! (`fulfil::finish_refunds`).
//!
//! Why: an event cancellation confirms thousands of refunds in a minute,
//! and recorded one at a time each cost a transaction of a dozen statements
//! (docs/PERFORMANCE.md, "Event cancellation").

use boxoffice_core::{
    Services,
    batch::{self, Answers, Batcher, Commit, Linger, Planning, Pool, Settings, Write},
    models::InboxEvent,
};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::{
    fulfil::{self, AfterCommit},
    jobs::JobError,
};

/// A refund the provider confirmed.
pub struct Confirmed {
    pub refund_id: Uuid,
    pub provider_refund_id: String,
    /// The provider's webhook that said so, marked processed in the same
    /// transaction (`None`: the answer to our call).
    pub inbox_id: Option<Uuid>,
}

#[derive(Clone)]
pub struct RefundFinisher(Batcher<Finish>);

pub struct Finish;

impl RefundFinisher {
    /// Starts the batching task for this process, on connections of its own.
    pub fn start(services: &Services) -> Self {
        let settings = Settings {
            name: "refunds",
            max: 256,
            linger: Linger::WhenBusy(batch::WORKER_LINGER),
            // One: the answer and the webhook of one refund, in two batches
            // at once, made the second wait on the first's row lock; and
            // larger batches cost fewer statements (with two in flight a
            // cancellation ran 11 % slower). Two processes' batches can
            // still meet on a refund: the second waits, then finds it
            // succeeded and skips it.
            in_flight: 1,
            // Deferred: a finished refund is derived from the provider's
            // answer; a crash that loses it leaves the refund `processing`,
            // and the open-refunds sweep sends it again (idempotent at the
            // provider) and finishes it again (and a webhook left
            // unprocessed is applied again by the inbox sweep, a no-op).
            pool: Pool::Own(Planning::ByKey, Commit::Deferred),
        };
        Self(Batcher::start(services, settings, Finish))
    }

    /// Records the refund as succeeded (once, however often it is
    /// confirmed) with the others of the moment; what to do after the
    /// commit (for the whole batch, handed to its first item's caller).
    pub async fn finish(&self, confirmed: Confirmed) -> Result<AfterCommit, JobError> {
        self.0.write(confirmed).await
    }
}

impl Write for Finish {
    type Item = Confirmed;
    type Done = AfterCommit;
    type Error = JobError;

    async fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        items: &[Confirmed],
    ) -> Answers<AfterCommit, JobError> {
        let done: Vec<(Uuid, &str)> = items
            .iter()
            .map(|c| (c.refund_id, c.provider_refund_id.as_str()))
            .collect();
        let webhooks: Vec<Uuid> = items.iter().filter_map(|c| c.inbox_id).collect();
        let after = conn
            .transaction::<_, JobError, _>(async |conn| {
                let after = fulfil::finish_refunds(conn, &done).await?;
                if !webhooks.is_empty() {
                    InboxEvent::mark_processed_many(conn, &webhooks).await?;
                }
                Ok(after)
            })
            .await?;
        let mut answers: Vec<Result<AfterCommit, JobError>> =
            items.iter().map(|_| Ok(AfterCommit::default())).collect();
        if let Some(first) = answers.first_mut() {
            *first = Ok(after);
        }
        Ok(answers)
    }
}
