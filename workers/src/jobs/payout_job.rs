//! `PayoutJob`: sends one payout to the organizer's account.
//!
//! Exactly once: the payout is marked `processing` in a durable commit
//! before the provider hears of it, the transfer carries the payout id as
//! its idempotency key (a retried job gets the same transfer back), and the
//! payout is marked `paid` (or `failed`, its ledger movement reversed) once,
//! whether the answer or the provider's webhook comes first.

use boxoffice_core::{
    jobs::PayoutJob,
    models::{NewEmail, Payout, PayoutStatus, User},
    payments::{ProviderError, TransferRequest, TransferStatus},
};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use super::{JobError, Perform};
use crate::{WorkerCtx, fulfil::AfterCommit};

impl Perform for PayoutJob {
    async fn perform(&self, ctx: &WorkerCtx, _attempt: u32) -> Result<(), JobError> {
        let services = &ctx.services;
        let mut conn = services.db.get().await?;
        let payout = Payout::find(&mut conn, self.payout_id).await?;
        if matches!(payout.status(), PayoutStatus::Paid | PayoutStatus::Failed) {
            return Ok(());
        }
        Payout::mark_processing(&mut conn, payout.id).await?;
        drop(conn);
        let answer = services
            .payments
            .for_row(&payout.provider)
            .map_err(|e| JobError::provider("transfer", e))?
            .transfer(&TransferRequest {
                payout_id: payout.id,
                destination: payout.destination.clone(),
                amount_minor: payout.amount_minor,
                currency: payout.currency.clone(),
            })
            .await;
        let mut conn = services.db.get().await?;
        match answer {
            Ok(t) if t.status == TransferStatus::Paid => {
                let after = finish(&mut conn, payout.id, &t.id).await?;
                drop(conn);
                after.run(ctx).await;
                tracing::info!(payout.id = %payout.id, amount = payout.amount_minor, "payout paid");
                Ok(())
            }
            // The provider's webhook finishes it.
            Ok(t) if t.status == TransferStatus::Pending => Ok(()),
            Ok(_) => {
                fail(
                    &mut conn,
                    payout.id,
                    "the provider reported the transfer failed",
                )
                .await?;
                Err(JobError::permanent("the transfer failed"))
            }
            Err(ProviderError::Rejected(e)) => {
                fail(&mut conn, payout.id, &e).await?;
                Err(JobError::permanent(format!("transfer refused: {e}")))
            }
            Err(e) => Err(JobError::provider("transfer", e)),
        }
    }
}

/// A transfer the provider confirmed: the payout `paid`, once, and the
/// organizer sent a statement.
pub(crate) async fn finish(
    conn: &mut AsyncPgConnection,
    payout_id: Uuid,
    transfer_id: &str,
) -> Result<AfterCommit, JobError> {
    let mut after = AfterCommit::default();
    conn.transaction::<_, JobError, _>(async |conn| {
        let payout = Payout::lock(conn, payout_id).await?;
        if !Payout::mark_paid(conn, payout.id, transfer_id).await? {
            return Ok(());
        }
        let organizer = User::find(conn, payout.organizer_id).await?;
        let dedupe = format!("payout_statement:{}", payout.id);
        let email = NewEmail {
            id: Uuid::now_v7(),
            dedupe_key: &dedupe,
            template: "payout_statement",
            to_address: &organizer.email,
            user_id: Some(organizer.id),
            params: serde_json::json!({ "payout_id": payout.id }),
        };
        after.emails.extend(email.insert(conn).await?);
        Ok(())
    })
    .await?;
    Ok(after)
}

/// A transfer the provider refused: the payout `failed` and its balance
/// owed again (a later payout sends it, once the account is fixed).
pub(crate) async fn fail(
    conn: &mut AsyncPgConnection,
    payout_id: Uuid,
    error: &str,
) -> Result<(), JobError> {
    conn.transaction::<_, JobError, _>(async |conn| {
        Payout::lock(conn, payout_id).await?;
        if Payout::fail(conn, payout_id, error).await? {
            tracing::error!(payout.id = %payout_id, error, "payout failed; its balance is owed again");
        }
        Ok(())
    })
    .await
}
