//! `OrderJob`: place an order (reserve, open the checkout), expire it, or
//! close the checkout of a cancelled one.
//!
//! Idempotent: placing only decides orders that are still `pending` (taken
//! `FOR UPDATE SKIP LOCKED`); a reserved order without a checkout gets one,
//! and the provider returns the same checkout for the same order id; expiry is
//! a conditional UPDATE out of `awaiting_payment` that releases seats once;
//! closing a closed (or paid) checkout changes nothing at the provider.

use boxoffice_core::{
    jobs::{OrderJob, enqueue_or_log},
    models::{Event, Order, OrderStatus, User},
    payments::{CheckoutRequest, ProviderError},
    queue::Schedule,
};
use chrono::Utc;
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::{JobError, Perform};
use crate::{
    WorkerCtx,
    checkouts::NewCheckout,
    fulfil::{self, AfterCommit, Paid, Paying},
    reserve::Decision,
};

impl Perform for OrderJob {
    async fn perform(&self, ctx: &WorkerCtx, _attempt: u32) -> Result<(), JobError> {
        match *self {
            OrderJob::Place { order_id } => place(ctx, order_id).await,
            OrderJob::Expire { order_id } => expire(ctx, order_id).await,
            OrderJob::CloseCheckout { order_id } => close_checkout(ctx, order_id).await,
        }
    }
}

async fn place(ctx: &WorkerCtx, order_id: Uuid) -> Result<(), JobError> {
    let services = &ctx.services;
    match ctx.reserver.reserve(order_id).await? {
        Decision::Reserved(reserved) => {
            let order = &reserved.order;
            services.live.order_status(order).await;
            schedule_expiry(ctx, order).await;
            open_checkout(
                ctx,
                order,
                &reserved.buyer_email,
                &reserved.event_title,
                reserved.organizer_id,
                reserved.seats,
            )
            .await
        }
        Decision::Rejected { reason, order } => {
            tracing::info!(order.id = %order_id, reason, "order rejected");
            services.live.order_status(&order).await;
            Ok(())
        }
        Decision::NotPending => {
            // Decided before (a duplicate job) or recovering a lost checkout.
            let mut conn = services.db.get().await?;
            let order = Order::find(&mut conn, order_id).await?;
            if order.status() == OrderStatus::AwaitingPayment
                && order.provider_checkout_id.is_none()
            {
                let buyer = User::find(&mut conn, order.buyer_id).await?;
                let event = Event::find(&mut conn, order.event_id).await?;
                let seats = Order::items(&mut conn, order.id)
                    .await?
                    .iter()
                    .map(|i| i.quantity)
                    .sum();
                drop(conn);
                schedule_expiry(ctx, &order).await;
                open_checkout(
                    ctx,
                    &order,
                    &buyer.email,
                    &event.title,
                    event.organizer_id,
                    seats,
                )
                .await?;
            }
            Ok(())
        }
    }
}

async fn schedule_expiry(ctx: &WorkerCtx, order: &Order) {
    let Some(until) = order.reserved_until else {
        return;
    };
    let delay = (until - Utc::now()).to_std().unwrap_or_default();
    enqueue_or_log(
        &ctx.services.queues,
        &OrderJob::Expire { order_id: order.id },
        Schedule::after(delay),
    )
    .await;
}

/// Opens the provider checkout (or, for a free order, confirms it at once).
async fn open_checkout(
    ctx: &WorkerCtx,
    order: &Order,
    buyer_email: &str,
    event_title: &str,
    organizer_id: Uuid,
    seats: i32,
) -> Result<(), JobError> {
    let services = &ctx.services;
    if order.total_minor == 0 {
        return confirm_free(ctx, order.id).await;
    }
    // The organizer's own provider, if they chose one (read only when more
    // than one is set up: a drop on one provider costs no query for it).
    let provider = if services.payments.several() {
        let mut conn = services.db.get().await?;
        let chosen = User::payment_provider(&mut conn, organizer_id).await?;
        services.payments.for_organizer(chosen.as_deref())
    } else {
        services.payments.default_provider()
    };
    // Only a provider that shows them needs the tiers' lines: the sandbox's
    // checkout (a drop's) costs no query for them.
    let lines = if provider.itemizes() {
        let mut conn = services.db.get().await?;
        let lines = Order::checkout_lines(&mut conn, order.id).await?;
        drop(conn);
        lines
    } else {
        Vec::new()
    };
    let request = CheckoutRequest {
        order_id: order.id,
        event_id: order.event_id,
        lines,
        amount_minor: order.total_minor,
        currency: order.currency.clone(),
        description: format!(
            "{event_title} — {seats} ticket{}",
            if seats == 1 { "" } else { "s" }
        ),
        customer_email: buyer_email.into(),
        return_url: format!("{}/orders/{}", services.config.http.public_url, order.id),
        expires_at: order
            .reserved_until
            .map(|t| t.timestamp())
            .unwrap_or_default(),
    };
    let checkout = provider
        .create_checkout(&request)
        .await
        .map_err(|e| JobError::provider("create checkout", e))?;
    let written = ctx
        .checkouts
        .record(NewCheckout {
            order_id: order.id,
            provider: provider.name(),
            checkout_id: checkout.id,
            url: checkout.url,
        })
        .await?;
    let order = match written {
        Some(order) => order,
        // An earlier attempt's checkout stands.
        None => {
            let mut conn = services.db.get().await?;
            Order::find(&mut conn, order.id).await?
        }
    };
    services.live.order_status(&order).await;
    tracing::info!(order.id = %order.id, checkout = ?order.provider_checkout_id, "checkout opened");
    Ok(())
}

/// A free order (zero total, e.g. a 100 % code) needs no provider: it is paid.
async fn confirm_free(ctx: &WorkerCtx, order_id: Uuid) -> Result<(), JobError> {
    let mut conn = ctx.services.db.get().await?;
    let mut after = AfterCommit::default();
    conn.transaction::<_, JobError, _>(async |conn| {
        let order = Order::lock(conn, order_id).await?;
        if order.status() != OrderStatus::AwaitingPayment || order.total_minor != 0 {
            return Ok(());
        }
        let items = Order::items(conn, order.id).await?;
        let buyer = User::find(conn, order.buyer_id).await?;
        let paying = Paying {
            order: &order,
            items: &items,
            buyer: &buyer,
            held: true,
        };
        for Paid { order, emails } in fulfil::pay(conn, &[paying]).await? {
            after.emails.extend(emails);
            after.published.push(order);
        }
        after.sales = true;
        Ok(())
    })
    .await?;
    drop(conn);
    after.run(ctx).await;
    Ok(())
}

async fn expire(ctx: &WorkerCtx, order_id: Uuid) -> Result<(), JobError> {
    let services = &ctx.services;
    let mut conn = services.db.get().await?;
    let released = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            Order::release(
                conn,
                order_id,
                OrderStatus::Expired,
                "reservation_expired",
                true,
            )
            .await
        })
        .await?;
    match released {
        Some(order) => {
            drop(conn);
            tracing::info!(order.id = %order_id, "reservation expired; seats released");
            AfterCommit {
                orders: vec![order.id],
                stock_changed: vec![order.event_id],
                ..Default::default()
            }
            .run(ctx)
            .await;
        }
        None => {
            // Paid, cancelled, or not due yet (the job ran early): in the last
            // case, come back when it is.
            let order = Order::find(&mut conn, order_id).await?;
            if order.status() == OrderStatus::AwaitingPayment
                && let Some(until) = order.reserved_until
                && until > Utc::now()
            {
                let delay = (until - Utc::now()).to_std().unwrap_or_default();
                enqueue_or_log(
                    &services.queues,
                    &OrderJob::Expire { order_id },
                    Schedule {
                        delay: Some(delay),
                        ignore_idempotency_key: true,
                    },
                )
                .await;
            }
        }
    }
    Ok(())
}

/// The checkout of a cancelled order can no longer be paid. A checkout paid
/// meanwhile is refused by the provider: that payment's webhook is on its
/// way and is given back (`pay`).
async fn close_checkout(ctx: &WorkerCtx, order_id: Uuid) -> Result<(), JobError> {
    let services = &ctx.services;
    let mut conn = services.db.get().await?;
    let order = Order::find(&mut conn, order_id).await?;
    drop(conn);
    let Some(checkout_id) = order.provider_checkout_id.as_deref() else {
        return Ok(());
    };
    if order.status() != OrderStatus::Cancelled {
        return Ok(());
    }
    let provider = services
        .payments
        .for_row(order.provider.as_deref().unwrap_or_default())
        .map_err(|e| JobError::provider("close checkout", e))?;
    match provider.expire_checkout(checkout_id).await {
        Ok(()) => {
            tracing::info!(order.id = %order_id, "checkout closed");
            Ok(())
        }
        Err(ProviderError::Rejected(e)) => {
            tracing::info!(order.id = %order_id, reason = %e, "checkout not closed (paid or gone)");
            Ok(())
        }
        Err(e) => Err(JobError::provider("close checkout", e)),
    }
}
