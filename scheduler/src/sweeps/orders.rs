//! Recovery for the purchase pipeline: every intermediate state has a sweep
//! that pushes its job again. All the jobs are idempotent, so a sweep that
//! races a slow (not lost) job is harmless.

use super::{SweepError, push};
use boxoffice_core::{
    Services,
    jobs::{ApplyPaymentEvent, OrderJob, RefundJob},
    models::{InboxEvent, Order, Refund, Tier},
};

const BATCH: i64 = 1_000;

/// Orders still `pending` (Redis was down when they were placed, or their
/// job was lost), and reserved orders that never got a checkout.
pub async fn stuck_orders(
    services: &Services,
    grace: chrono::Duration,
) -> Result<usize, SweepError> {
    let mut conn = services.db.get().await?;
    let mut ids = Order::stuck_pending(&mut conn, grace, BATCH).await?;
    ids.extend(
        Order::without_checkout(&mut conn, grace.max(chrono::Duration::seconds(5)), BATCH).await?,
    );
    drop(conn);
    let jobs = ids
        .into_iter()
        .map(|order_id| OrderJob::Place { order_id })
        .collect();
    push(services, jobs, "stuck orders").await
}

/// Reservations whose time is up (their delayed expiry job may be lost).
pub async fn expired_reservations(services: &Services) -> Result<usize, SweepError> {
    let mut conn = services.db.get().await?;
    let ids = Order::overdue(&mut conn, BATCH).await?;
    drop(conn);
    let jobs = ids
        .into_iter()
        .map(|order_id| OrderJob::Expire { order_id })
        .collect();
    push(services, jobs, "overdue reservations").await
}

/// Provider events stored but never applied.
pub async fn unapplied_webhooks(
    services: &Services,
    grace: chrono::Duration,
) -> Result<usize, SweepError> {
    let mut conn = services.db.get().await?;
    let ids = InboxEvent::unprocessed(&mut conn, grace, BATCH).await?;
    drop(conn);
    let jobs = ids
        .into_iter()
        .map(|inbox_id| ApplyPaymentEvent { inbox_id })
        .collect();
    push(services, jobs, "unapplied webhooks").await
}

/// Paid seats no worker settled (it stopped first): into the tiers' stock.
/// Running beside the workers' settlers is harmless: each takes only rows
/// nobody else holds.
pub async fn unsettled_sales(services: &Services) -> Result<usize, SweepError> {
    let mut conn = services.db.get().await?;
    let seats = Tier::settle_sales(&mut conn).await?;
    Ok(usize::try_from(seats).unwrap_or_default())
}

/// Refunds not finished.
pub async fn open_refunds(
    services: &Services,
    grace: chrono::Duration,
) -> Result<usize, SweepError> {
    let mut conn = services.db.get().await?;
    let ids = Refund::open(&mut conn, grace, BATCH).await?;
    drop(conn);
    let jobs = ids
        .into_iter()
        .map(|refund_id| RefundJob::Send { refund_id })
        .collect();
    push(services, jobs, "open refunds").await
}
