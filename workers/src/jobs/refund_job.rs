//! `RefundJob`: sends one refund through the provider (`Send`), or fans
//! out the refunds of a cancelled event (`CancelEvent`, in `cancel_event`).
//!
//! `Send` is idempotent: the provider call carries the refund id as its
//! idempotency key (a retry returns the same refund), and the refund is
//! recorded as succeeded once, whether the answer or the provider's webhook
//! arrives first.

use boxoffice_core::{
    jobs::RefundJob,
    models::{Refund, RefundKind},
    payments::{self, ProviderError, RefundRequest},
};
use uuid::Uuid;

use super::{JobError, Perform, cancel_event};
use crate::{WorkerCtx, refund_starts::Sending, refunds::Confirmed};

impl Perform for RefundJob {
    async fn perform(&self, ctx: &WorkerCtx, _attempt: u32) -> Result<(), JobError> {
        match *self {
            RefundJob::Send { refund_id } => send(ctx, refund_id).await,
            RefundJob::CancelEvent { event_id, after } => {
                cancel_event::fan_out(ctx, event_id, after).await
            }
        }
    }
}

async fn send(ctx: &WorkerCtx, refund_id: Uuid) -> Result<(), JobError> {
    let services = &ctx.services;
    // A durable commit before the provider hears of it (see `pay`).
    let Some(Sending { refund, payment }) = ctx.refund_starts.start_sending(refund_id).await?
    else {
        return Ok(()); // succeeded already
    };
    services.live.refund_status(&refund).await;
    if refund.kind() == RefundKind::EventCancelled {
        // Thousands at once: they yield to another event's sale.
        ctx.selling.refund_turn().await;
    }
    let answer = services
        .payments
        .for_row(&payment.provider)
        .map_err(|e| JobError::provider("refund", e))?
        .refund(&RefundRequest {
            refund_id: refund.id,
            payment_id: payment.provider_payment_id.clone(),
            amount_minor: refund.amount_minor,
            currency: refund.currency.clone(),
            reason: refund.reason.clone(),
        })
        .await;
    let mut conn = services.db.get().await?;
    match answer {
        Ok(result) if result.status == payments::RefundStatus::Succeeded => {
            drop(conn);
            ctx.refunds
                .finish(Confirmed {
                    refund_id: refund.id,
                    provider_refund_id: result.id,
                    inbox_id: None,
                })
                .await?
                .run(ctx)
                .await;
            tracing::info!(refund.id = %refund.id, "refund succeeded");
            Ok(())
        }
        Ok(result) if result.status == payments::RefundStatus::Pending => {
            // The provider's webhook will finish it.
            Refund::mark_processing(&mut conn, refund.id, Some(&result.id)).await?;
            Ok(())
        }
        Ok(result) => {
            Refund::mark_failed(
                &mut conn,
                refund.id,
                Some(&result.id),
                "refused by the provider",
            )
            .await?;
            failed(ctx, refund.id).await;
            Err(JobError::permanent("the provider refused the refund"))
        }
        Err(ProviderError::Rejected(e)) => {
            Refund::mark_failed(&mut conn, refund.id, None, &e).await?;
            failed(ctx, refund.id).await;
            Err(JobError::permanent(format!("refund refused: {e}")))
        }
        Err(e) => Err(JobError::provider("refund", e)),
    }
}

/// A refund the provider refused: on the order's live stream (ops retry it
/// from the dead set once the cause is fixed).
async fn failed(ctx: &WorkerCtx, refund_id: Uuid) {
    let Ok(mut conn) = ctx.services.db.get().await else {
        return;
    };
    if let Ok(refund) = Refund::find(&mut conn, refund_id).await {
        drop(conn);
        ctx.services.live.refund_status(&refund).await;
    }
}
