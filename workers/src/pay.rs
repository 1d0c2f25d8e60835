//! The one payment path: the payments jobs of one worker process hand their
//! verified provider events (paid, declined) to one batcher, and [`apply`]
//! sorts each into its case in one transaction, with one statement per kind
//! of row for the whole batch:
//!
//! - **plain**: a reserved order paid in full, the first payment for it;
//! - **late, seats free**: paid in full after it expired or was cancelled,
//!   and its seats (and code use) are still free: it is paid;
//! - **late, sold out** (or its code used up): refunded in full;
//! - **cancelled** by the buyer, or of a cancelled event (the payment raced
//!   the checkout's closing): refunded in full;
//! - **duplicate**: a second payment of a paid order: refunded;
//! - **amount mismatch**, or an order that cannot be paid: refunded;
//! - **declined**: the hold is released (`cancelled`);
//! - a provider payment applied before, or an unknown order: nothing more.
//!
//! Each applied event's webhook is marked processed in the same
//! transaction. A batch that fails whole is applied event by event, through
//! the same function.
//!
//! Why batched: in a drop the payments arrive in a burst while the machine
//! is busy with new orders, and a payment applied on its own costs a dozen
//! round trips, each waiting its turn for a CPU.
//!
//! Its commits are deferred (`batch::Commit::Deferred`): everything a batch
//! writes follows from webhook events stored durably before the provider
//! was answered, so one lost in a database crash is applied again by the
//! inbox sweep. A confirmation email is claimed, and a refund marked
//! `processing`, in a durable commit before anything leaves the process,
//! which makes the batch before it durable too: no ticket is emailed and no
//! refund sent that a crash could take back.

use std::collections::{HashMap, HashSet};

use boxoffice_core::{
    Services,
    batch::{self, Answers, Batcher, Commit, Linger, Planning, Pool, Settings, Write},
    fees::PlatformFee,
    models::{
        EventStatus, InboxEvent, Movement, Order, OrderItem, OrderStatus, Payment, Refund, User,
        ledger, order,
    },
    schema::{events, users},
};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    fulfil::{self, AfterCommit, Paid, Paying},
    jobs::JobError,
};

/// A verified provider event about an order's payment, owned (it crosses
/// tasks).
#[derive(Debug, Clone)]
pub struct PaymentEvent {
    pub inbox_id: Uuid,
    pub provider: String,
    pub order_id: Uuid,
    pub kind: PaymentKind,
}

#[derive(Debug, Clone)]
pub enum PaymentKind {
    Paid {
        payment_id: String,
        amount_minor: i64,
        currency: String,
    },
    Declined,
}

#[derive(Clone)]
pub struct Payer(Batcher<Pay>);

pub struct Pay {
    /// The platform's fee, posted with each payment.
    fee: PlatformFee,
}

impl Payer {
    /// Starts the batching task for this process, on connections of its own.
    pub fn start(services: &Services) -> Self {
        let settings = Settings {
            name: "payments",
            max: 256,
            linger: Linger::WhenBusy(batch::WORKER_LINGER),
            // A one-payment batch took 460 ms in a drop, and the 200 payments
            // behind it waited for it. Two batches never both apply one
            // payment: each locks its orders (`FOR UPDATE`, in id order)
            // before reading their status. Neither waits on a hot row: sales
            // go in as rows of their own (`pending_sales`).
            in_flight: batch::OWN_CONNECTIONS,
            pool: Pool::Own(Planning::ByKey, Commit::Deferred),
        };
        let pay = Pay {
            fee: services.config.payments.platform_fee.clone(),
        };
        Self(Batcher::start(services, settings, pay))
    }

    /// Applies the event with the others of the moment; what to do after
    /// the commit. `Err` for an event to retry later (its order is not
    /// decided yet) or a batch that could not be written.
    pub async fn apply(&self, event: PaymentEvent) -> Result<AfterCommit, JobError> {
        self.0.write(event).await
    }
}

impl Write for Pay {
    type Item = PaymentEvent;
    type Done = AfterCommit;
    type Error = JobError;

    async fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        events: &[PaymentEvent],
    ) -> Answers<AfterCommit, JobError> {
        conn.transaction::<_, JobError, _>(async |conn| apply(conn, events, &self.fee).await)
            .await
    }
}

/// The case a recorded payment falls into.
enum Case {
    /// Paid now; `held`: its seats were reserved (a payment in time).
    Pay {
        held: bool,
    },
    Refund(&'static str),
}

/// Applies the events in the caller's transaction, in their order: an answer
/// per event.
async fn apply(
    conn: &mut AsyncPgConnection,
    events: &[PaymentEvent],
    fee: &PlatformFee,
) -> Result<Vec<Result<AfterCommit, JobError>>, JobError> {
    let order_ids: Vec<Uuid> = events.iter().map(|e| e.order_id).collect();
    let mut orders = Order::lock_many(conn, &order_ids).await?;
    let mut answers: Vec<Result<AfterCommit, JobError>> =
        events.iter().map(|_| Ok(AfterCommit::default())).collect();
    let mut processed = Vec::with_capacity(events.len());

    // Declines, orders not ours or not decided yet; the rest are payments.
    let mut paying: Vec<usize> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let Some(order) = orders.get(&event.order_id) else {
            // A forged reference cannot reach here: it is signed.
            tracing::error!(order.id = %event.order_id, inbox.id = %event.inbox_id, "payment event for an unknown order");
            processed.push(event.inbox_id);
            continue;
        };
        if order.status() == OrderStatus::Pending {
            // Cannot happen in order (checkouts exist only once reserved):
            // retry later rather than guess.
            answers[i] = Err(JobError::new(
                "payment event for an order still pending; retrying",
            ));
            continue;
        }
        match event.kind {
            PaymentKind::Paid { .. } => paying.push(i),
            PaymentKind::Declined => {
                processed.push(event.inbox_id);
                let released = Order::release(
                    conn,
                    order.id,
                    OrderStatus::Cancelled,
                    "payment_declined",
                    false,
                )
                .await?;
                if let Some(released) = released {
                    answers[i] = Ok(AfterCommit {
                        stock_changed: vec![released.event_id],
                        published: vec![released.clone()],
                        ..AfterCommit::default()
                    });
                    orders.insert(released.id, released);
                }
            }
        }
    }
    if paying.is_empty() {
        InboxEvent::mark_processed_many(conn, &processed).await?;
        return Ok(answers);
    }

    // Each provider payment is recorded once; one seen before was applied.
    let candidates: Vec<Payment> = paying
        .iter()
        .map(|&i| {
            let event = &events[i];
            let PaymentKind::Paid {
                payment_id,
                amount_minor,
                currency,
            } = &event.kind
            else {
                unreachable!("only payments are paying")
            };
            Payment::succeeded(
                event.order_id,
                &event.provider,
                payment_id,
                *amount_minor,
                currency,
            )
        })
        .collect();
    let recorded: HashMap<String, Payment> = Payment::record_many(conn, &candidates)
        .await?
        .into_iter()
        .map(|p| (p.provider_payment_id.clone(), p))
        .collect();
    let mut payments: Vec<(usize, Payment)> = Vec::with_capacity(paying.len());
    for (i, candidate) in paying.into_iter().zip(candidates) {
        processed.push(events[i].inbox_id);
        match recorded.get(&candidate.provider_payment_id) {
            Some(payment) if payment.id == candidate.id => payments.push((i, payment.clone())),
            _ => {
                tracing::info!(order.id = %candidate.order_id, payment = %candidate.provider_payment_id, "payment already applied");
            }
        }
    }

    // What the recorded payments need: organizers, items, buyers.
    let event_ids: Vec<Uuid> = payments
        .iter()
        .map(|(_, p)| orders[&p.order_id].event_id)
        .collect();
    let (organizers, cancelled_events): (HashMap<Uuid, Uuid>, HashSet<Uuid>) = {
        let rows = events::table
            .filter(events::id.eq_any(&event_ids))
            .select((events::id, events::organizer_id, events::status))
            .load::<(Uuid, Uuid, String)>(conn)
            .await?;
        let cancelled = rows
            .iter()
            .filter(|r| r.2 == EventStatus::Cancelled.as_str())
            .map(|r| r.0)
            .collect();
        (rows.into_iter().map(|r| (r.0, r.1)).collect(), cancelled)
    };
    let paid_ids: Vec<Uuid> = payments.iter().map(|(_, p)| p.order_id).collect();
    let mut items: HashMap<Uuid, Vec<OrderItem>> = HashMap::new();
    for item in Order::items_of(conn, &paid_ids).await? {
        items.entry(item.order_id).or_default().push(item);
    }

    // Each payment's case, in order: a second payment of one order in the
    // same batch finds it paid by the first.
    let mut paid_now: HashSet<Uuid> = HashSet::new();
    let mut cases = Vec::with_capacity(payments.len());
    for (_, payment) in &payments {
        let order = &orders[&payment.order_id];
        let amount_ok =
            payment.amount_minor == order.total_minor && payment.currency == order.currency;
        let status = if paid_now.contains(&order.id) {
            OrderStatus::Paid
        } else {
            order.status()
        };
        let case = match status {
            // Cancelled on purpose (its checkout was closed; this payment
            // raced the closing): given back, never taken as a late payment.
            OrderStatus::Paid => Case::Refund("duplicate_payment"),
            _ if cancelled_events.contains(&order.event_id) => Case::Refund(order::EVENT_CANCELLED),
            OrderStatus::Cancelled
                if order.reject_reason.as_deref() == Some(order::CANCELLED_BY_BUYER) =>
            {
                Case::Refund("order_cancelled")
            }
            OrderStatus::AwaitingPayment if amount_ok => Case::Pay { held: true },
            status if fulfil::is_late(status) && amount_ok => {
                let order_items = items.get(&order.id).map_or(&[][..], Vec::as_slice);
                match fulfil::take_seats_again(conn, order, order_items).await? {
                    Ok(()) => {
                        tracing::info!(order.id = %order.id, "late payment confirmed: seats were still free");
                        Case::Pay { held: false }
                    }
                    Err(reason) => Case::Refund(reason),
                }
            }
            _ if !amount_ok => Case::Refund("amount_mismatch"),
            _ => Case::Refund("order_not_payable"),
        };
        if let Case::Pay { .. } = case {
            paid_now.insert(order.id);
        }
        cases.push(case);
    }

    // Every recorded payment is cash in; the paid ones pay the platform's fee.
    let mut movements: Vec<Movement<'_>> = Vec::with_capacity(payments.len() * 2);
    for ((_, p), case) in payments.iter().zip(&cases) {
        let order = &orders[&p.order_id];
        let organizer_id = organizers[&order.event_id];
        movements.push(Movement::Payment {
            provider: &p.provider,
            organizer_id,
            event_id: order.event_id,
            amount_minor: p.amount_minor,
            currency: &p.currency,
            order_id: p.order_id,
            payment_id: p.id,
        });
        if let Case::Pay { .. } = case {
            let tickets: i64 = items
                .get(&order.id)
                .map_or(0, |i| i.iter().map(|i| i64::from(i.quantity)).sum());
            movements.push(Movement::PlatformFee {
                organizer_id,
                event_id: order.event_id,
                amount_minor: fee.fee(p.amount_minor, tickets, &p.currency),
                currency: &p.currency,
                order_id: p.order_id,
                payment_id: p.id,
            });
        }
    }
    ledger::post(conn, &movements).await?;

    // Paid: one statement per kind of row for all of them.
    let buyer_ids: Vec<Uuid> = payments
        .iter()
        .map(|(_, p)| orders[&p.order_id].buyer_id)
        .collect();
    let buyers: HashMap<Uuid, User> = users::table
        .filter(users::id.eq_any(&buyer_ids))
        .select(User::as_select())
        .load(conn)
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    let to_pay: Vec<(usize, Paying<'_>)> = payments
        .iter()
        .zip(&cases)
        .filter_map(|((i, p), case)| match case {
            Case::Pay { held } => {
                let order = &orders[&p.order_id];
                Some((
                    *i,
                    Paying {
                        order,
                        items: items.get(&order.id).map_or(&[][..], Vec::as_slice),
                        buyer: &buyers[&order.buyer_id],
                        held: *held,
                    },
                ))
            }
            Case::Refund(_) => None,
        })
        .collect();
    let (indices, paying): (Vec<usize>, Vec<Paying<'_>>) = to_pay.into_iter().unzip();
    let paid = fulfil::pay(conn, &paying).await?;
    for ((i, paying), Paid { order, emails }) in indices.into_iter().zip(&paying).zip(paid) {
        let after = answers[i].as_mut().expect("a payment's answer");
        after.emails.extend(emails);
        after.sales |= paying.held;
        if !paying.held {
            after.stock_changed.push(order.event_id);
        }
        after.published.push(order);
    }

    // Refunded: in full, once per payment.
    for ((i, payment), case) in payments.iter().zip(&cases) {
        let Case::Refund(reason) = case else { continue };
        let refund = Refund::new(
            payment,
            payment.amount_minor,
            reason,
            format!("payment:{}", payment.id),
        );
        let refund = Refund::create_once(conn, &refund).await?;
        tracing::warn!(order.id = %payment.order_id, refund.id = %refund.id, reason, "payment will be refunded");
        let after = answers[*i].as_mut().expect("a payment's answer");
        after.refunds.push(refund.id);
        after.orders.push(payment.order_id);
    }

    InboxEvent::mark_processed_many(conn, &processed).await?;
    Ok(answers)
}
