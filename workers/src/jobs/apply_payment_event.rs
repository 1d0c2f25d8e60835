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
    models::{InboxEvent, Order, OrderStatus},
    payments::{EventKind, ProviderEvent},
};
use diesel_async::AsyncConnection;

use super::{JobError, Perform};
use crate::{
    WorkerCtx,
    fulfil::{self, AfterCommit, PaymentReceived},
    pay::PaymentIn,
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
            .map_err(|e| JobError::new(format!("stored event unreadable: {e}")))?;
        // A payment marks its webhook processed in its own transaction.
        let marked = matches!(event.kind, EventKind::PaymentSucceeded { .. });
        let after = match &event.kind {
            EventKind::PaymentSucceeded {
                order_id,
                payment_id,
                amount_minor,
                currency,
                ..
            } => {
                // With the other payments of the moment if it is plain;
                // alone (every case handled) if not. No connection held
                // while the batch runs.
                drop(conn);
                let batched = ctx
                    .payer
                    .pay(PaymentIn {
                        inbox_id: row.id,
                        provider: row.provider.clone(),
                        order_id: *order_id,
                        payment_id: payment_id.clone(),
                        amount_minor: *amount_minor,
                        currency: currency.clone(),
                    })
                    .await?;
                match batched {
                    Some(after) => {
                        after.run(ctx).await;
                        tracing::info!(inbox.id = %row.id, event = %event.event_type, "payment event applied");
                        return Ok(());
                    }
                    None => {
                        conn = services.db.get().await?;
                        fulfil::apply_payment(
                            &mut conn,
                            &PaymentReceived {
                                provider: &row.provider,
                                order_id: *order_id,
                                payment_id,
                                amount_minor: *amount_minor,
                                currency,
                            },
                            row.id,
                        )
                        .await?
                    }
                }
            }
            EventKind::PaymentFailed { order_id, .. } => {
                let order_id = *order_id;
                let released = conn
                    .transaction::<_, diesel::result::Error, _>(async |conn| {
                        Order::release(
                            conn,
                            order_id,
                            OrderStatus::Cancelled,
                            "payment_declined",
                            false,
                        )
                        .await
                    })
                    .await?;
                match released {
                    Some(order) => AfterCommit {
                        orders: vec![order.id],
                        stock_changed: vec![order.event_id],
                        ..Default::default()
                    },
                    None => AfterCommit::default(),
                }
            }
            EventKind::RefundSucceeded {
                provider_refund_id,
                refund_id,
            } => fulfil::finish_refund(&mut conn, *refund_id, provider_refund_id).await?,
            EventKind::RefundFailed {
                provider_refund_id,
                refund_id,
            } => {
                boxoffice_core::models::Refund::mark(
                    &mut conn,
                    *refund_id,
                    "failed",
                    Some(provider_refund_id),
                    Some("the provider reported the refund failed"),
                )
                .await?;
                tracing::error!(refund.id = %refund_id, "refund failed at the provider");
                AfterCommit::default()
            }
            EventKind::Ignored => AfterCommit::default(),
        };
        if !marked {
            InboxEvent::mark_processed(&mut conn, row.id).await?;
        }
        drop(conn);
        after.run(ctx).await;
        tracing::info!(inbox.id = %row.id, event = %event.event_type, "payment event applied");
        Ok(())
    }
}
