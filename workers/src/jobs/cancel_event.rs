//! `RefundJob::CancelEvent`: the paid orders of a cancelled event, a batch
//! at a time. Each run writes the next batch's refunds (the whole rest of
//! each order) in one transaction, pushes their `Send` jobs in one call, and
//! pushes itself again while a full batch was found. Free orders have
//! nothing to give back: they are cancelled, their tickets voided, their
//! buyers told.
//!
//! Idempotent: an order's cancellation refund has the key
//! `event_cancelled:<order>`, written once; an order it covers is not picked
//! again. A run cut short leaves the rest for the next one, or for the
//! `cancelled_events` sweep.

use std::{collections::HashMap, time::Duration};

use boxoffice_core::{
    jobs::RefundJob,
    models::{
        Event, EventStatus, NewEmail, Order, OrderItem, Payment, Refund, RefundKind, Ticket, User,
        order,
    },
    queue::Schedule,
    refunds::{self, Ask},
};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::JobError;
use crate::{WorkerCtx, fulfil::AfterCommit, selling::SALE_GAP};

/// Orders per run: one transaction and one push of this many refunds.
const BATCH: i64 = 500;

/// While another event sells (`Selling::sold_within`), runs are smaller: the
/// cancellation's refunds are sent at `REFUNDS_PER_SEC_WHILE_SELLING` then
/// anyway, and 500 refunds written and pushed at once, twenty times in a
/// row, were the slowest moment of that sale's buyers (its `POST /orders`
/// p99 tripled in the half second after a cancellation began;
/// docs/PERFORMANCE.md, "Event cancellation"). 100 every 200 ms keeps a
/// backlog queued for the moment the sale ends.
const BATCH_WHILE_SELLING: i64 = 100;
const GAP_WHILE_SELLING: Duration = Duration::from_millis(200);

/// One run: the next batch of orders past `past`, the last order the
/// previous run covered (the job's `after`; `None`: from the first).
pub(super) async fn fan_out(
    ctx: &WorkerCtx,
    event_id: Uuid,
    past: Option<Uuid>,
) -> Result<(), JobError> {
    let services = &ctx.services;
    let mut conn = services.db.get().await?;
    let event = Event::find(&mut conn, event_id).await?;
    if event.status() != EventStatus::Cancelled {
        return Ok(());
    }
    let selling = ctx.selling.sold_within(SALE_GAP);
    let batch = if selling { BATCH_WHILE_SELLING } else { BATCH };
    let (found, last, written, after) = conn
        .transaction::<_, JobError, _>(async |conn| {
            // One fan-out at a time per event (the job pushes itself, the
            // `cancelled_events` sweep pushes it too): a second would pick
            // the same orders and meet the first's refunds in the
            // over-refund trigger, and fail, until retried.
            Event::lock(conn, event_id).await?;
            let orders = Order::awaiting_cancellation_refund(conn, event_id, past, batch).await?;
            let ids: Vec<Uuid> = orders.iter().map(|o| o.id).collect();
            let payments = Payment::of_orders(conn, &ids).await?;
            let mut refunds_of: HashMap<Uuid, Vec<Refund>> = HashMap::new();
            for r in Refund::for_orders(conn, &ids).await? {
                refunds_of.entry(r.order_id).or_default().push(r);
            }
            let mut items_of: HashMap<Uuid, Vec<OrderItem>> = HashMap::new();
            for i in Order::items_of(conn, &ids).await? {
                items_of.entry(i.order_id).or_default().push(i);
            }
            let mut tickets_of: HashMap<Uuid, Vec<Ticket>> = HashMap::new();
            for t in Ticket::for_orders(conn, &ids).await? {
                tickets_of.entry(t.order_id).or_default().push(t);
            }
            let mut to_refund = Vec::new();
            let mut free = Vec::new();
            for order in &orders {
                let Some(payment) = payments.get(&order.id) else {
                    free.push(order.id);
                    continue;
                };
                let plan = refunds::plan(
                    payment,
                    refunds_of.get(&order.id).map_or(&[][..], Vec::as_slice),
                    items_of.get(&order.id).map_or(&[][..], Vec::as_slice),
                    tickets_of.get(&order.id).map_or(&[][..], Vec::as_slice),
                    &Ask::Whole,
                );
                match plan {
                    Ok(plan) => to_refund.push(
                        Refund::new(
                            payment,
                            plan.amount_minor,
                            order::EVENT_CANCELLED,
                            format!("event_cancelled:{}", order.id),
                        )
                        .with_request(
                            RefundKind::EventCancelled,
                            plan.ticket_ids,
                            None,
                            None,
                        ),
                    ),
                    // A refund in flight takes the rest: it finishes the order.
                    Err(refusal) => {
                        tracing::debug!(order.id = %order.id, %refusal, "nothing left to refund")
                    }
                }
            }
            let written = Refund::create_many(conn, &to_refund).await?;
            let mut after = AfterCommit::default();
            for order_id in free {
                let Some(order) =
                    Order::cancel_free(conn, order_id, order::EVENT_CANCELLED).await?
                else {
                    continue;
                };
                Ticket::void_for_order(conn, order.id).await?;
                let buyer = User::find(conn, order.buyer_id).await?;
                let dedupe = format!("event_cancelled:{}", order.id);
                let email = NewEmail {
                    id: Uuid::now_v7(),
                    dedupe_key: &dedupe,
                    template: "event_cancelled",
                    to_address: &buyer.email,
                    user_id: Some(buyer.id),
                    params: serde_json::json!({ "order_id": order.id }),
                };
                after.emails.extend(email.insert(conn).await?);
                after.published.push(order);
            }
            Ok((orders.len(), orders.last().map(|o| o.id), written, after))
        })
        .await?;
    drop(conn);
    let jobs: Vec<RefundJob> = written
        .iter()
        .map(|r| RefundJob::Send { refund_id: r.id })
        .collect();
    if !jobs.is_empty() {
        // A failed push leaves the refunds `requested`: the open-refunds
        // sweep sends them.
        if let Err(e) = services.queues.push_many(&jobs, Schedule::now()).await {
            tracing::warn!(error = %e, count = jobs.len(), "could not push cancellation refunds; the sweep will");
        }
    }
    after.run(ctx).await;
    tracing::info!(event.id = %event_id, orders = found, refunds = written.len(), "cancellation batch written");
    if found as i64 == batch {
        let next_run = RefundJob::CancelEvent {
            event_id,
            after: last,
        };
        let next = if selling {
            Schedule::after(GAP_WHILE_SELLING)
        } else {
            Schedule::now()
        };
        services
            .queues
            .push(&next_run, next)
            .await
            .map_err(|e| JobError::new(format!("push the next batch: {e}")))?;
    }
    Ok(())
}
