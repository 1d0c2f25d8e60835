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
        Self::enqueue_many(queues, &[email_id]).await;
    }

    /// `enqueue` for several, in one push.
    pub async fn enqueue_many(queues: &crate::queue::Queues, email_ids: &[Uuid]) {
        let jobs: Vec<SendEmail> = email_ids
            .iter()
            .map(|&email_id| SendEmail { email_id })
            .collect();
        if jobs.is_empty() {
            return;
        }
        if let Err(e) = queues.push_many(&jobs, crate::queue::Schedule::now()).await {
            tracing::warn!(emails = email_ids.len(), error = %e, "could not enqueue emails; the sweep will retry");
        }
    }

    /// Pushes the job of an email sent before and set `pending` again (a
    /// resend): past the idempotency key its first job left.
    pub async fn enqueue_again(queues: &crate::queue::Queues, email_id: Uuid) {
        if let Err(e) = queues
            .push(&SendEmail { email_id }, crate::queue::Schedule::recovery())
            .await
        {
            tracing::warn!(email.id = %email_id, error = %e, "could not enqueue a resend; the sweep will retry");
        }
    }
}

/// Work on one order in the purchases queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum OrderJob {
    /// Reserve seats and open a checkout (`pending` → `awaiting_payment` or
    /// `rejected`); for a reserved order without a checkout, open it.
    Place { order_id: Uuid },
    /// Release the hold of an unpaid order whose time is up.
    Expire { order_id: Uuid },
    /// Close the provider checkout of a cancelled order, so it can no
    /// longer be paid (a payment that still races in is given back).
    CloseCheckout { order_id: Uuid },
}

impl OrderJob {
    pub fn order_id(&self) -> Uuid {
        match self {
            Self::Place { order_id }
            | Self::Expire { order_id }
            | Self::CloseCheckout { order_id } => *order_id,
        }
    }
}

impl Job for OrderJob {
    const QUEUE: QueueName = QueueName::Purchases;
    fn idempotency_key(&self) -> Option<String> {
        Some(match self {
            Self::Place { order_id } => format!("place:{order_id}"),
            Self::Expire { order_id } => format!("expire:{order_id}"),
            Self::CloseCheckout { order_id } => format!("close-checkout:{order_id}"),
        })
    }
}

/// Apply one stored provider event (`webhook_inbox` row) to its order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApplyPaymentEvent {
    pub inbox_id: Uuid,
}

impl Job for ApplyPaymentEvent {
    const QUEUE: QueueName = QueueName::Payments;
    fn idempotency_key(&self) -> Option<String> {
        Some(format!("payment-event:{}", self.inbox_id))
    }
}

/// Work in the refunds queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RefundJob {
    /// Send one refund (a `refunds` row) through the provider.
    Send { refund_id: Uuid },
    /// Refund the paid orders of a cancelled event, a batch at a time: each
    /// run writes the refunds of the next batch, pushes their jobs and
    /// pushes itself again while orders remain (the `cancelled_events`
    /// sweep starts it again if it is lost).
    CancelEvent {
        event_id: Uuid,
        /// The last order the previous run covered: the next run starts
        /// past it, so no run reads again the orders whose refunds are
        /// still in flight, nor an order it could not refund (a buyer's
        /// refund in flight takes its rest); the sweep starts from the
        /// beginning and finds those once they are settled.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<Uuid>,
    },
}

impl RefundJob {
    /// The first run of an event's cancellation fan-out.
    pub fn cancel_event(event_id: Uuid) -> Self {
        Self::CancelEvent {
            event_id,
            after: None,
        }
    }
}

impl Job for RefundJob {
    const QUEUE: QueueName = QueueName::Refunds;
    fn idempotency_key(&self) -> Option<String> {
        match self {
            Self::Send { refund_id } => Some(format!("refund:{refund_id}")),
            // Pushes itself again: a key would swallow that push.
            Self::CancelEvent { .. } => None,
        }
    }
}

/// Send one payout (a `payouts` row) through the provider.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PayoutJob {
    pub payout_id: Uuid,
}

impl Job for PayoutJob {
    const QUEUE: QueueName = QueueName::Payouts;
    fn idempotency_key(&self) -> Option<String> {
        Some(format!("payout:{}", self.payout_id))
    }
}

/// Pushes a job after its row is committed. A failed push is logged, not
/// returned: the row stays in its intermediate state and a sweep pushes the
/// job again.
pub async fn enqueue_or_log<J: Job>(
    queues: &crate::queue::Queues,
    job: &J,
    schedule: crate::queue::Schedule,
) {
    if let Err(e) = queues.push(job, schedule).await {
        tracing::warn!(?job, error = %e, "enqueue failed; the sweep will retry");
    }
}

/// Send one attempt of an outgoing webhook delivery. Pushed by the
/// scheduler's relay for a new delivery, by the job itself (delayed) for
/// the next attempt, by a redelivery and by the lost-delivery sweep; the
/// claim in Postgres makes any duplicate a no-op, so it carries no key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeliverWebhook {
    pub delivery_id: Uuid,
    /// Times this attempt found its endpoint at its in-flight cap: each
    /// time it waits twice as long (up to 4 s), so a slow endpoint's
    /// backlog does not keep the queue busy asking.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub busy: u8,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

impl Job for DeliverWebhook {
    const QUEUE: QueueName = QueueName::Webhooks;
    fn idempotency_key(&self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fan_out_queued_before_the_keyset_still_runs_from_the_start() {
        let event_id = Uuid::now_v7();
        let queued = format!(r#"{{"action":"cancel_event","event_id":"{event_id}"}}"#);
        let job: RefundJob = serde_json::from_str(&queued).unwrap();
        assert_eq!(job, RefundJob::cancel_event(event_id));
        // And the first run is written the way it always was.
        assert_eq!(serde_json::to_string(&job).unwrap(), queued);
        let after = Uuid::now_v7();
        let next = RefundJob::CancelEvent {
            event_id,
            after: Some(after),
        };
        let round: RefundJob =
            serde_json::from_str(&serde_json::to_string(&next).unwrap()).unwrap();
        assert_eq!(round, next);
    }
}
