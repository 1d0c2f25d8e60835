//! What happens to an order when money arrives or goes back: the `paid`
//! transition (tickets, confirmation email, seats recorded as sold), a late
//! payment taking its seats again, and a finished refund (voided tickets,
//! seats back on sale, the order's refunded state). Used by the
//! payments batch (`pay`), free orders (`jobs::order_job`) and refunds.
//!
//! Every function here is safe to run twice: orders are paid by a
//! conditional UPDATE out of the payable states, tickets are issued once per
//! (item, seat), emails once per dedupe key, refunds finished once.

use std::collections::HashMap;

use boxoffice_core::{
    jobs::{RefundJob, SendEmail, enqueue_or_log},
    models::{
        Discount, Event, Movement, NewEmail, Order, OrderItem, OrderStatus, Payment, Refund,
        RefundKind, RefundStatus, Ticket, TicketStatus, Tier, User, ledger,
    },
    prepared::Prepare,
    queue::Schedule,
    schema::ticket_tiers,
    tickets,
};
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use uuid::Uuid;

use crate::{WorkerCtx, jobs::JobError};

/// What to do once the transaction has committed.
#[derive(Default)]
pub struct AfterCommit {
    pub emails: Vec<Uuid>,
    pub refunds: Vec<Uuid>,
    /// Orders to read again and publish.
    pub orders: Vec<Uuid>,
    /// Orders as committed, published without being read again.
    pub published: Vec<Order>,
    pub stock_changed: Vec<Uuid>,
    /// Refunds whose state changed, as committed, for the order's live
    /// stream.
    pub refunds_changed: Vec<Refund>,
    /// Sales were recorded for the settler.
    pub sales: bool,
}

impl AfterCommit {
    pub async fn run(self, ctx: &WorkerCtx) {
        let services = &ctx.services;
        if self.sales {
            ctx.settler.poke();
        }
        SendEmail::enqueue_many(&services.queues, &self.emails).await;
        for refund_id in self.refunds {
            enqueue_or_log(
                &services.queues,
                &RefundJob::Send { refund_id },
                Schedule::now(),
            )
            .await;
        }
        // A refund's state before its order's: a client sees "refund
        // succeeded", then "order refunded".
        for refund in &self.refunds_changed {
            services.live.refund_status(refund).await;
        }
        for order in &self.published {
            services.live.order_status(order).await;
        }
        if self.orders.is_empty() && self.stock_changed.is_empty() {
            return;
        }
        if let Ok(mut conn) = services.db.get().await {
            for order_id in self.orders {
                if let Ok(order) = Order::find(&mut conn, order_id).await {
                    services.live.order_status(&order).await;
                }
            }
            for event_id in self.stock_changed {
                services.event_cache.invalidate_or_log(event_id).await;
                if let Ok(tiers) = Tier::for_event(&mut conn, event_id).await {
                    services.live.availability(event_id, &tiers).await;
                }
            }
        }
    }
}

/// One order being paid, with what its tickets and email need.
pub struct Paying<'a> {
    pub order: &'a Order,
    pub items: &'a [OrderItem],
    pub buyer: &'a User,
    /// Its seats are held (a payment in time): recorded as sales for the
    /// settler. A late payment's seats were taken as sold already.
    pub held: bool,
}

/// An order marked paid.
pub struct Paid {
    /// As written.
    pub order: Order,
    /// Its confirmation and its guests' ticket emails, those written now.
    pub emails: Vec<Uuid>,
}

#[derive(Deserialize)]
struct Attendee {
    name: Option<String>,
    email: Option<String>,
}

/// Orders are paid (in the caller's transaction), one statement per kind
/// of row: marked paid, one ticket per seat, the confirmation email row, and
/// the held seats recorded as sold for the settler to move from held to sold
/// (that row is the drop's hottest; a lock on it per payment would make a
/// drop's payments commit one at a time). Returns them in the same order.
pub async fn pay(
    conn: &mut AsyncPgConnection,
    paying: &[Paying<'_>],
) -> Result<Vec<Paid>, JobError> {
    if paying.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = paying.iter().map(|p| p.order.id).collect();
    let mut written: HashMap<Uuid, Order> = Order::mark_paid_many(conn, &ids)
        .await?
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
    let mut issued = Vec::new();
    for Paying {
        order,
        items,
        buyer,
        ..
    } in paying
    {
        for item in *items {
            let attendees: Vec<Attendee> =
                serde_json::from_value(item.attendees.clone()).unwrap_or_default();
            for seat in 0..item.quantity {
                let who = attendees.get(seat as usize);
                issued.push(Ticket {
                    id: Uuid::now_v7(),
                    order_id: order.id,
                    order_item_id: item.id,
                    event_id: order.event_id,
                    tier_id: item.tier_id,
                    owner_id: order.buyer_id,
                    code: tickets::new_code(),
                    seat_index: seat,
                    attendee_name: who
                        .and_then(|a| a.name.clone())
                        .unwrap_or_else(|| buyer.display_name.clone()),
                    attendee_email: who
                        .and_then(|a| a.email.clone())
                        .unwrap_or_else(|| buyer.email.clone()),
                    status: TicketStatus::Valid.as_str().into(),
                    created_at: Utc::now(),
                    updated_at: Utc::now(),
                });
            }
        }
    }
    Ticket::issue(conn, &issued).await?;
    // The buyer's confirmation (every ticket), and each named guest's own
    // email (their tickets only), once per order and address.
    let mut guests_of: HashMap<Uuid, Vec<String>> = HashMap::new();
    for t in &issued {
        guests_of
            .entry(t.order_id)
            .or_default()
            .push(t.attendee_email.to_lowercase());
    }
    let mut to_write: Vec<(usize, &str, String, String, serde_json::Value)> = Vec::new();
    for (i, p) in paying.iter().enumerate() {
        to_write.push((
            i,
            "order_confirmation",
            format!("order_confirmation:{}", p.order.id),
            p.buyer.email.clone(),
            serde_json::json!({ "order_id": p.order.id }),
        ));
        let buyer = p.buyer.email.to_lowercase();
        let mut guests = guests_of.remove(&p.order.id).unwrap_or_default();
        guests.retain(|a| *a != buyer);
        guests.sort();
        guests.dedup();
        for address in guests {
            to_write.push((
                i,
                "guest_tickets",
                format!("guest_tickets:{}:{address}", p.order.id),
                address.clone(),
                serde_json::json!({ "order_id": p.order.id, "address": address }),
            ));
        }
    }
    let emails: Vec<NewEmail<'_>> = to_write
        .iter()
        .map(|(i, template, dedupe_key, to, params)| NewEmail {
            id: Uuid::now_v7(),
            dedupe_key,
            template,
            to_address: to,
            user_id: (*template == "order_confirmation").then_some(paying[*i].buyer.id),
            params: params.clone(),
        })
        .collect();
    let new_emails: std::collections::HashSet<Uuid> = NewEmail::insert_many(conn, &emails)
        .await?
        .into_iter()
        .collect();
    let mut written_emails: Vec<Vec<Uuid>> = vec![Vec::new(); paying.len()];
    for ((i, ..), e) in to_write.iter().zip(&emails) {
        if new_emails.contains(&e.id) {
            written_emails[*i].push(e.id);
        }
    }
    let sales: Vec<(Uuid, Uuid, i32)> = paying
        .iter()
        .filter(|p| p.held)
        .flat_map(|p| p.items)
        .map(|i| (i.id, i.tier_id, i.quantity))
        .collect();
    if !sales.is_empty() {
        Tier::record_sales(conn, &sales).await?;
    }
    paying
        .iter()
        .zip(written_emails)
        .map(|(p, emails)| {
            Ok(Paid {
                order: written
                    .remove(&p.order.id)
                    .ok_or_else(|| JobError::new("an order being paid was not payable"))?,
                emails,
            })
        })
        .collect()
}

/// A late payment takes seats again if all of them are still free, and its
/// discount code's use if the code has one left. The event is locked first,
/// as the reservation batches lock it: they judge stock and redemptions
/// under that lock alone, so every increase of either must hold it. The rest
/// is read and changed all or nothing. `Err` is the refund's reason.
pub async fn take_seats_again(
    conn: &mut AsyncPgConnection,
    order: &Order,
    items: &[OrderItem],
) -> QueryResult<Result<(), &'static str>> {
    Event::lock(conn, order.event_id).await?;
    let ids: Vec<Uuid> = items.iter().map(|i| i.tier_id).collect();
    let tiers: Vec<Tier> = Tier::with_stock()
        .filter(ticket_tiers::id.eq_any(&ids))
        .select(Tier::as_select())
        .prepared()
        .load(conn)
        .await?;
    let fits = items.iter().all(|item| {
        tiers
            .iter()
            .find(|t| t.id == item.tier_id)
            .is_some_and(|t| t.remaining() >= item.quantity)
    });
    if !fits {
        return Ok(Err("sold_out_after_expiry"));
    }
    if let Some(code_id) = order.discount_code_id
        && !Discount::redeem_if_left(conn, code_id).await?
    {
        return Ok(Err("discount_used_up_after_expiry"));
    }
    for item in items {
        Tier::move_stock(conn, item.tier_id, 0, item.quantity).await?;
    }
    Ok(Ok(()))
}

/// Refunds the provider confirmed, `(refund, provider's refund id)`, each
/// recorded once, in the caller's transaction with one statement per kind
/// of row: posted to the ledger; for a returned payment, the unfulfilled
/// order marked refunded; for a refund of the order, its tickets voided (all
/// of them once nothing is left paid), their seats back on sale while the
/// event sells, the order `refunded` or `partially_refunded`; the buyer
/// told. A refund confirmed twice (its answer and its webhook, in one batch
/// or two) is finished by the first and skipped by the second.
pub async fn finish_refunds(
    conn: &mut AsyncPgConnection,
    done: &[(Uuid, &str)],
) -> Result<AfterCommit, JobError> {
    let mut after = AfterCommit::default();
    let refunds = Refund::mark_succeeded_many(conn, done).await?;
    if refunds.is_empty() {
        return Ok(after);
    }
    after.refunds_changed = refunds.clone();
    let order_ids = distinct(refunds.iter().map(|r| r.order_id));
    let orders = Order::lock_many(conn, &order_ids).await?;
    let payments =
        Payment::find_many(conn, &distinct(refunds.iter().map(|r| r.payment_id))).await?;
    let mut events = HashMap::new();
    for event_id in distinct(orders.values().map(|o| o.event_id)) {
        events.insert(event_id, Event::find(conn, event_id).await?);
    }
    let found = |r: &Refund| -> Result<(&Order, &Event, &Payment), JobError> {
        let order = orders
            .get(&r.order_id)
            .ok_or_else(|| JobError::new("a refund's order is gone"))?;
        let payment = payments
            .get(&r.payment_id)
            .ok_or_else(|| JobError::new("a refund's payment is gone"))?;
        Ok((order, &events[&order.event_id], payment))
    };
    let mut movements = Vec::with_capacity(refunds.len());
    for refund in &refunds {
        let (order, event, payment) = found(refund)?;
        movements.push(Movement::Refund {
            provider: &payment.provider,
            organizer_id: event.organizer_id,
            event_id: event.id,
            amount_minor: refund.amount_minor,
            currency: &refund.currency,
            order_id: order.id,
            payment_id: payment.id,
            refund_id: refund.id,
        });
    }
    ledger::post(conn, &movements).await?;

    // Returned payments: their unfulfilled orders are refunded.
    let returned = distinct(
        refunds
            .iter()
            .filter(|r| r.kind() == RefundKind::Returned)
            .map(|r| r.order_id),
    );
    after
        .published
        .extend(Order::mark_refunded(conn, &returned).await?);

    // Refunds of orders: what each order has been given back in all (these
    // refunds included) says whether it is refunded in full.
    let of_orders: Vec<&Refund> = refunds
        .iter()
        .filter(|r| r.kind() != RefundKind::Returned)
        .collect();
    if !of_orders.is_empty() {
        let ids = distinct(of_orders.iter().map(|r| r.order_id));
        let mut given_back = HashMap::<Uuid, i64>::new();
        for r in Refund::for_orders(conn, &ids).await? {
            if r.kind() != RefundKind::Returned && r.status() == RefundStatus::Succeeded {
                *given_back.entry(r.order_id).or_default() += r.amount_minor;
            }
        }
        let (mut fully, mut partly) = (Vec::new(), Vec::new());
        let mut to_void: Vec<Uuid> = Vec::new();
        for refund in &of_orders {
            let (order, _, payment) = found(refund)?;
            if given_back.get(&order.id).copied().unwrap_or(0) >= payment.amount_minor {
                fully.push(order.id);
            } else {
                partly.push(order.id);
                to_void.extend(&refund.ticket_ids);
            }
        }
        let (fully, partly) = (distinct(fully), distinct(partly));
        // An order refunded in full in this batch is not also partly.
        let partly: Vec<Uuid> = partly
            .into_iter()
            .filter(|id| !fully.contains(id))
            .collect();
        to_void.extend(Ticket::for_orders(conn, &fully).await?.iter().map(|t| t.id));
        let voided = Ticket::void_many(conn, &distinct(to_void)).await?;
        let mut seats = HashMap::<(Uuid, Uuid), i32>::new();
        let now = Utc::now();
        for ticket in &voided {
            if events
                .get(&ticket.event_id)
                .is_some_and(|e| e.is_on_sale(now))
            {
                *seats
                    .entry((ticket.order_item_id, ticket.tier_id))
                    .or_default() += 1;
                if !after.stock_changed.contains(&ticket.event_id) {
                    after.stock_changed.push(ticket.event_id);
                }
            }
        }
        if !seats.is_empty() {
            let seats: Vec<(Uuid, Uuid, i32)> =
                seats.into_iter().map(|((i, t), n)| (i, t, n)).collect();
            Tier::return_seats(conn, &seats).await?;
        }
        after
            .published
            .extend(Order::mark_refunded_part(conn, &fully, true).await?);
        after
            .published
            .extend(Order::mark_refunded_part(conn, &partly, false).await?);
    }

    let buyers = User::find_many(conn, &distinct(orders.values().map(|o| o.buyer_id))).await?;
    let dedupe: Vec<String> = refunds
        .iter()
        .map(|r| format!("refund_notice:{}", r.id))
        .collect();
    let mut emails = Vec::with_capacity(refunds.len());
    for (refund, dedupe_key) in refunds.iter().zip(&dedupe) {
        let (order, _, _) = found(refund)?;
        let buyer = buyers
            .get(&order.buyer_id)
            .ok_or_else(|| JobError::new("a refund's buyer is gone"))?;
        emails.push(NewEmail {
            id: Uuid::now_v7(),
            dedupe_key,
            template: "refund_notice",
            to_address: &buyer.email,
            user_id: Some(buyer.id),
            params: serde_json::json!({ "refund_id": refund.id }),
        });
    }
    after.emails = NewEmail::insert_many(conn, &emails).await?;
    Ok(after)
}

/// Each id once, in a stable order (locks are taken in id order).
fn distinct(ids: impl IntoIterator<Item = Uuid>) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Whether an order's status leaves it payable by a late payment.
pub fn is_late(status: OrderStatus) -> bool {
    matches!(status, OrderStatus::Expired | OrderStatus::Cancelled)
}
