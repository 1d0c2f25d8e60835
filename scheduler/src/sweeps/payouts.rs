//! Payouts: organizers are paid what their events owe them once those
//! events are over (`PAYOUT_DELAY_SECS` after the end, or after a
//! cancellation), one payout per organizer and currency; payouts whose job
//! was lost are sent again.

use boxoffice_core::{
    Services,
    jobs::PayoutJob,
    models::{Payout, User},
    queue::Schedule,
};
use diesel_async::AsyncConnection;

use super::{SweepError, push};

/// Writes the payouts that are due and pushes their jobs. An organizer
/// without a payout account is skipped (their balance waits, visible on
/// `GET /v1/organizer/balance`).
pub async fn create_due(services: &Services) -> Result<usize, SweepError> {
    let delay = services.config.payments.payout_delay;
    let mut conn = services.db.get().await?;
    let mut jobs = Vec::new();
    for (organizer_id, currency) in Payout::due(&mut conn, delay).await? {
        let organizer = User::find(&mut conn, organizer_id).await?;
        let Some(account) = organizer.payout_account else {
            tracing::debug!(organizer.id = %organizer_id, "payout due but no payout account");
            continue;
        };
        // Their own provider if they chose one, else the platform's.
        let provider = services
            .payments
            .for_organizer(organizer.payment_provider.as_deref())
            .name();
        let payout = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                Payout::create_due(conn, organizer_id, &currency, provider, &account, delay).await
            })
            .await?;
        if let Some(payout) = payout {
            tracing::info!(payout.id = %payout.id, organizer.id = %organizer_id, amount = payout.amount_minor, currency, "payout created");
            jobs.push(PayoutJob {
                payout_id: payout.id,
            });
        }
    }
    drop(conn);
    if !jobs.is_empty() {
        services.queues.push_many(&jobs, Schedule::now()).await?;
    }
    Ok(jobs.len())
}

/// Payouts still in flight after the grace: their job is pushed again.
pub async fn open(services: &Services, grace: chrono::Duration) -> Result<usize, SweepError> {
    let mut conn = services.db.get().await?;
    let ids = Payout::open(&mut conn, grace, 1_000).await?;
    drop(conn);
    let jobs = ids
        .into_iter()
        .map(|payout_id| PayoutJob { payout_id })
        .collect();
    push(services, jobs, "open payouts").await
}
