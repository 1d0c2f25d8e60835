//! `ApplyPaymentEvent`: applies one stored provider event to its order.
//!
//! Idempotent: the inbox row is marked processed after the effects commit, and
//! each effect is itself recorded once (payment id, refund id, conditional
//! order transitions), so a duplicated or re-run job changes nothing more.
//! Out-of-order events are harmless: a decline after a payment finds the order
//! no longer awaiting payment; a payment after a decline or expiry takes the
//! late-payment path.

use boxoffice_core::{
    jobs::ApplyPaymentEvent,
    models::{InboxEvent, Refund},
    payments::{EventKind, PaymentCheck, ProviderEvent},
};

use super::{JobError, Perform, payout_job};
use crate::{
    WorkerCtx,
    fulfil::AfterCommit,
    pay::{PaymentEvent, PaymentKind},
    refunds::Confirmed,
};

impl Perform for ApplyPaymentEvent {
    async fn perform(&self, ctx: &WorkerCtx, _attempt: u32) -> Result<(), JobError> {
        let services = &ctx.services;
        let mut conn = services.db.get().await?;
        let row = InboxEvent::find(&mut conn, self.inbox_id).await?;
        if row.processed_at.is_some() {
            return Ok(());
        }
        let event: ProviderEvent = serde_json::from_value(row.payload["event"].clone())
            .map_err(|e| JobError::permanent(format!("stored event unreadable: {e}")))?;
        let payment = |order_id, kind| PaymentEvent {
            inbox_id: row.id,
            provider: row.provider.clone(),
            order_id,
            kind,
        };
        // A payment is part of a sale (`selling`); a refund or payout is not.
        let _sale = matches!(
            event.kind,
            EventKind::PaymentSucceeded { .. } | EventKind::PaymentFailed { .. }
        )
        .then(|| ctx.selling.job());
        let after = match &event.kind {
            EventKind::PaymentSucceeded {
                checkout_id,
                order_id,
                payment_id,
                amount_minor,
                currency,
            } => {
                // With the other payment events of the moment (the batch
                // marks the webhook processed); no connection held meanwhile.
                drop(conn);
                let provider = services
                    .payments
                    .for_row(&row.provider)
                    .map_err(|e| JobError::provider("confirm payment", e))?;
                match provider
                    .confirm_payment(checkout_id, *order_id, *amount_minor, currency)
                    .await
                {
                    Ok(PaymentCheck::Paid) => {}
                    Ok(PaymentCheck::NotPaid(why)) => {
                        tracing::warn!(order.id = %order_id, provider = %row.provider, why, "a reported payment the provider does not confirm; not applied");
                        let mut conn = services.db.get().await?;
                        InboxEvent::mark_processed(&mut conn, row.id).await?;
                        return Ok(());
                    }
                    Err(e) => return Err(JobError::provider("confirm payment", e)),
                }
                let kind = PaymentKind::Paid {
                    payment_id: payment_id.clone(),
                    amount_minor: *amount_minor,
                    currency: currency.clone(),
                };
                ctx.payer.apply(payment(*order_id, kind)).await?
            }
            EventKind::PaymentFailed { order_id, .. } => {
                drop(conn);
                ctx.payer
                    .apply(payment(*order_id, PaymentKind::Declined))
                    .await?
            }
            EventKind::RefundSucceeded {
                provider_refund_id,
                refund_id,
            } => {
                if InboxEvent::mark_processed_if_refund_succeeded(&mut conn, row.id, *refund_id)
                    .await?
                {
                    return Ok(());
                }
                drop(conn);
                // Marked processed in the finishing batch's transaction.
                ctx.refunds
                    .finish(Confirmed {
                        refund_id: *refund_id,
                        provider_refund_id: provider_refund_id.clone(),
                        inbox_id: Some(row.id),
                    })
                    .await?
            }
            EventKind::RefundFailed {
                provider_refund_id,
                refund_id,
            } => {
                Refund::mark_failed(
                    &mut conn,
                    *refund_id,
                    Some(provider_refund_id),
                    "the provider reported the refund failed",
                )
                .await?;
                InboxEvent::mark_processed(&mut conn, row.id).await?;
                tracing::error!(refund.id = %refund_id, "refund failed at the provider");
                AfterCommit::default()
            }
            EventKind::TransferPaid {
                transfer_id,
                payout_id,
            } => {
                let after = payout_job::finish(&mut conn, *payout_id, transfer_id).await?;
                InboxEvent::mark_processed(&mut conn, row.id).await?;
                after
            }
            EventKind::TransferFailed { payout_id, .. } => {
                payout_job::fail(
                    &mut conn,
                    *payout_id,
                    "the provider reported the transfer failed",
                )
                .await?;
                InboxEvent::mark_processed(&mut conn, row.id).await?;
                AfterCommit::default()
            }
            EventKind::Ignored => {
                InboxEvent::mark_processed(&mut conn, row.id).await?;
                AfterCommit::default()
            }
        };
        after.run(ctx).await;
        tracing::info!(inbox.id = %row.id, event = %event.event_type, "payment event applied");
        Ok(())
    }
}
