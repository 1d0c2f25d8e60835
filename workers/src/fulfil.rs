//! What happens to an order when money arrives or goes back: the `paid`
//! transition (stock from held to sold, tickets, confirmation email), late
//! payments, and refunds. Shared by the payments, purchases and refunds jobs.
//!
//! Every function here is safe to run twice: payments are recorded once per
//! provider payment id, tickets once per (item, seat), emails once per dedupe
//! key, refunds once per cause, and each order transition is a conditional
//! UPDATE out of one state.

use std::collections::HashMap;

use boxoffice_core::{
    jobs::{RefundPayment, SendEmail, enqueue_or_log},
    models::{
        Event, InboxEvent, LedgerRefs, Leg, NewEmail, Order, OrderItem, OrderStatus, Payment,
        Refund, Ticket, Tier, User, post_ledger,
    },
    prepared::Prepare,
    queue::Schedule,
    schema::{discount_codes, orders, ticket_tiers},
    tickets,
};
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use uuid::Uuid;

use crate::{WorkerCtx, jobs::JobError};

/// What to do once the transaction has committed.
#[derive(Default)]
pub struct AfterCommit {
    pub emails: Vec<Uuid>,
    pub refunds: Vec<Uuid>,
    pub orders: Vec<Uuid>,
    /// Orders as committed, published without being read again.
    pub published: Vec<Order>,
    pub stock_changed: Vec<Uuid>,
    /// Sales were recorded for the settler.
    pub sales: bool,
}

impl AfterCommit {
    pub async fn run(self, ctx: &WorkerCtx) {
        let services = &ctx.services;
        if self.sales {
            ctx.settler.poke();
        }
        for email_id in self.emails {
            SendEmail::enqueue(&services.queues, email_id).await;
        }
        for refund_id in self.refunds {
            enqueue_or_log(
                &services.queues,
                &RefundPayment { refund_id },
                Schedule::now(),
            )
            .await;
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

/// A verified "the buyer paid" from a provider.
pub struct PaymentReceived<'a> {
    pub provider: &'a str,
    pub order_id: Uuid,
    pub payment_id: &'a str,
    pub amount_minor: i64,
    pub currency: &'a str,
}

/// `awaiting_payment` → `paid`, or a late payment confirmed if seats are still
/// free, or refunded in full if not (or if the order cannot take it). The
/// webhook it came from is marked processed in the same transaction.
pub async fn apply_payment(
    conn: &mut AsyncPgConnection,
    paid: &PaymentReceived<'_>,
    inbox_id: Uuid,
) -> Result<AfterCommit, JobError> {
    let mut after = AfterCommit::default();
    conn.transaction::<_, JobError, _>(async |conn| {
        InboxEvent::mark_processed(conn, inbox_id).await?;
        let order = match Order::lock(conn, paid.order_id).await {
            Ok(order) => order,
            Err(diesel::result::Error::NotFound) => {
                // Not ours (a forged reference cannot reach here: it is signed).
                tracing::error!(order.id = %paid.order_id, payment = paid.payment_id, "payment for an unknown order");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        if order.status() == OrderStatus::Pending {
            // Cannot happen in order (checkouts exist only once reserved):
            // retry later rather than guess.
            return Err(JobError::new("payment for an order still pending; retrying"));
        }
        let Some(payment) = Payment::record(
            conn,
            &Payment {
                id: Uuid::now_v7(),
                order_id: order.id,
                provider: paid.provider.into(),
                provider_payment_id: paid.payment_id.into(),
                amount_minor: paid.amount_minor,
                currency: paid.currency.into(),
                status: "succeeded".into(),
                created_at: Utc::now(),
            },
        )
        .await?
        else {
            tracing::info!(order.id = %order.id, payment = paid.payment_id, "payment already applied");
            return Ok(());
        };
        let event = Event::find(conn, order.event_id).await?;
        let cash = format!("cash:{}", paid.provider);
        let payable = format!("organizer:{}:payable", event.organizer_id);
        post_ledger(
            conn,
            paid.currency,
            &[
                Leg { account: &cash, amount_minor: paid.amount_minor },
                Leg { account: &payable, amount_minor: -paid.amount_minor },
            ],
            LedgerRefs { order_id: Some(order.id), payment_id: Some(payment.id), ..Default::default() },
        )
        .await?;
        after.orders.push(order.id);

        let amount_ok = paid.amount_minor == order.total_minor && paid.currency == order.currency;
        let items = Order::items(conn, order.id).await?;
        let refund_reason = match order.status() {
            OrderStatus::AwaitingPayment if amount_ok => {
                pay_reserved(conn, &order, &items, &mut after).await?;
                None
            }
            OrderStatus::Expired | OrderStatus::Cancelled if amount_ok => {
                match take_seats_again(conn, &order, &items).await? {
                    Ok(()) => {
                        after.stock_changed.push(order.event_id);
                        finalize_paid(conn, &order, &items, &mut after).await?;
                        tracing::info!(order.id = %order.id, "late payment confirmed: seats were still free");
                        None
                    }
                    Err(reason) => Some(reason),
                }
            }
            OrderStatus::Paid => Some("duplicate_payment"),
            _ if !amount_ok => Some("amount_mismatch"),
            _ => Some("order_not_payable"),
        };
        if let Some(reason) = refund_reason {
            let refund = Refund::create_once(
                conn,
                &Refund {
                    id: Uuid::now_v7(),
                    order_id: order.id,
                    payment_id: payment.id,
                    amount_minor: paid.amount_minor,
                    currency: paid.currency.into(),
                    reason: reason.into(),
                    status: "pending".into(),
                    provider_refund_id: None,
                    last_error: None,
                    idempotency_key: format!("payment:{}", payment.id),
                    created_at: Utc::now(),
                    updated_at: Utc::now(),
                },
            )
            .await?;
            tracing::warn!(order.id = %order.id, refund.id = %refund.id, reason, "payment will be refunded");
            after.refunds.push(refund.id);
        }
        Ok(())
    })
    .await?;
    Ok(after)
}

/// A reserved order is paid: tickets, confirmation, and its seats recorded
/// as sold (see `pay_reserved_many`).
pub async fn pay_reserved(
    conn: &mut AsyncPgConnection,
    order: &Order,
    items: &[OrderItem],
    after: &mut AfterCommit,
) -> Result<(), JobError> {
    finalize_paid(conn, order, items, after).await?;
    Tier::record_sales(conn, &sales_of(items)).await?;
    after.sales = true;
    Ok(())
}

/// `(order item, tier, seats)` of the items, as `Tier::record_sales` takes them.
fn sales_of<'a>(items: impl IntoIterator<Item = &'a OrderItem>) -> Vec<(Uuid, Uuid, i32)> {
    items
        .into_iter()
        .map(|i| (i.id, i.tier_id, i.quantity))
        .collect()
}

/// One order being paid, with what its tickets and email need.
pub struct Paying<'a> {
    pub order: &'a Order,
    pub items: &'a [OrderItem],
    pub buyer: &'a User,
}

/// Reserved orders are paid (in the caller's transaction): tickets,
/// confirmations, and their seats recorded as sold for the settler to move
/// from held to sold (that row is the drop's hottest; a lock on it per
/// payment would make a drop's payments commit one at a time). Returns each
/// order as paid, with its new confirmation email id (`None` if it existed
/// already).
pub async fn pay_reserved_many(
    conn: &mut AsyncPgConnection,
    paying: &[Paying<'_>],
) -> Result<Vec<Paid>, JobError> {
    let paid = finalize_paid_many(conn, paying).await?;
    Tier::record_sales(conn, &sales_of(paying.iter().flat_map(|p| p.items))).await?;
    Ok(paid)
}

/// An order marked paid.
pub struct Paid {
    /// As written.
    pub order: Order,
    /// Its confirmation, if written now.
    pub email: Option<Uuid>,
}

/// A late payment takes seats again if all of them are still free, and its
/// discount code's use if the code has one left. The event is locked first,
/// as the reservation batches lock it: they judge stock and redemptions
/// under that lock alone, so every increase of either must hold it. The rest
/// is read and changed all or nothing. `Err` is the refund's reason.
async fn take_seats_again(
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
    if let Some(code_id) = order.discount_code_id {
        let has_use_left = discount_codes::max_redemptions
            .is_null()
            .or(discount_codes::redemptions.lt(discount_codes::max_redemptions.assume_not_null()));
        let taken = diesel::update(discount_codes::table.find(code_id).filter(has_use_left))
            .set(discount_codes::redemptions.eq(discount_codes::redemptions + 1))
            .execute(conn)
            .await?;
        if taken == 0 {
            return Ok(Err("discount_used_up_after_expiry"));
        }
    }
    for item in items {
        Tier::move_stock(conn, item.tier_id, 0, item.quantity).await?;
    }
    Ok(Ok(()))
}

#[derive(Deserialize)]
struct Attendee {
    name: Option<String>,
    email: Option<String>,
}

/// Marks the order paid, issues one ticket per seat and writes the
/// confirmation email row, in the caller's transaction.
async fn finalize_paid(
    conn: &mut AsyncPgConnection,
    order: &Order,
    items: &[OrderItem],
    after: &mut AfterCommit,
) -> Result<(), JobError> {
    let buyer = User::find(conn, order.buyer_id).await?;
    let paid = finalize_paid_many(
        conn,
        &[Paying {
            order,
            items,
            buyer: &buyer,
        }],
    )
    .await?;
    for Paid { order, email } in paid {
        after.emails.extend(email);
        after.published.push(order);
    }
    Ok(())
}

/// `finalize_paid` for many orders, one statement per kind of row. Returns
/// them in the same order.
async fn finalize_paid_many(
    conn: &mut AsyncPgConnection,
    paying: &[Paying<'_>],
) -> Result<Vec<Paid>, JobError> {
    let ids: Vec<Uuid> = paying.iter().map(|p| p.order.id).collect();
    let mut written: HashMap<Uuid, Order> =
        diesel::update(orders::table.filter(orders::id.eq_any(&ids)))
            .set((
                orders::status.eq(OrderStatus::Paid.as_str()),
                orders::paid_at.eq(diesel::dsl::now),
                orders::reject_reason.eq(None::<String>),
            ))
            .returning(Order::as_returning())
            .get_results(conn)
            .await?
            .into_iter()
            .map(|o| (o.id, o))
            .collect();
    let mut issued = Vec::new();
    for Paying {
        order,
        items,
        buyer,
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
                    status: "valid".into(),
                    created_at: Utc::now(),
                    updated_at: Utc::now(),
                });
            }
        }
    }
    Ticket::issue(conn, &issued).await?;
    let dedupe: Vec<String> = paying
        .iter()
        .map(|p| format!("order_confirmation:{}", p.order.id))
        .collect();
    let emails: Vec<NewEmail<'_>> = paying
        .iter()
        .zip(&dedupe)
        .map(|(p, dedupe_key)| NewEmail {
            id: Uuid::now_v7(),
            dedupe_key,
            template: "order_confirmation",
            to_address: &p.buyer.email,
            user_id: Some(p.buyer.id),
            params: serde_json::json!({ "order_id": p.order.id }),
        })
        .collect();
    let new_emails = NewEmail::insert_many(conn, &emails).await?;
    paying
        .iter()
        .zip(&emails)
        .map(|(p, e)| {
            Ok(Paid {
                order: written
                    .remove(&p.order.id)
                    .ok_or_else(|| JobError::new("an order being paid was not updated"))?,
                email: new_emails.contains(&e.id).then_some(e.id),
            })
        })
        .collect()
}

/// A refund the provider confirmed: recorded once, posted to the ledger, the
/// unfulfilled order marked refunded, the buyer told why.
pub async fn finish_refund(
    conn: &mut AsyncPgConnection,
    refund_id: Uuid,
    provider_refund_id: &str,
) -> Result<AfterCommit, JobError> {
    let mut after = AfterCommit::default();
    conn.transaction::<_, JobError, _>(async |conn| {
        let refund = Refund::lock(conn, refund_id).await?;
        if !Refund::mark_succeeded(conn, refund.id, provider_refund_id).await? {
            return Ok(());
        }
        let order = Order::lock(conn, refund.order_id).await?;
        let event = Event::find(conn, order.event_id).await?;
        let payment = Payment::find(conn, refund.payment_id).await?;
        let cash = format!("cash:{}", payment.provider);
        let payable = format!("organizer:{}:payable", event.organizer_id);
        post_ledger(
            conn,
            &refund.currency,
            &[
                Leg {
                    account: &payable,
                    amount_minor: refund.amount_minor,
                },
                Leg {
                    account: &cash,
                    amount_minor: -refund.amount_minor,
                },
            ],
            LedgerRefs {
                order_id: Some(order.id),
                payment_id: Some(payment.id),
                refund_id: Some(refund.id),
                ..Default::default()
            },
        )
        .await?;
        if matches!(
            order.status(),
            OrderStatus::Expired | OrderStatus::Cancelled | OrderStatus::Rejected
        ) {
            diesel::update(orders::table.find(order.id))
                .set(orders::status.eq(OrderStatus::Refunded.as_str()))
                .execute(conn)
                .await?;
            after.orders.push(order.id);
        }
        let buyer = User::find(conn, order.buyer_id).await?;
        let dedupe = format!("refund_notice:{}", refund.id);
        if let Some(email_id) = (NewEmail {
            id: Uuid::now_v7(),
            dedupe_key: &dedupe,
            template: "refund_notice",
            to_address: &buyer.email,
            user_id: Some(buyer.id),
            params: serde_json::json!({ "refund_id": refund.id }),
        })
        .insert(conn)
        .await?
        {
            after.emails.push(email_id);
        }
        Ok(())
    })
    .await?;
    Ok(after)
}
