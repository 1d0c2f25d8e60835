//! Payments, batched: the payments jobs of one worker process hand their
//! "buyer paid" events to one task that applies every one that is plain (a
//! reserved order, paid in full, once) in one transaction, with one
//! statement per kind of row for the whole batch.
//!
//! Why: in a drop the payments arrive in a burst while the machine is busy
//! with new orders, and a payment applied on its own costs a dozen round
//! trips, each waiting its turn for a CPU. Anything not plain (a late or
//! duplicate payment, a wrong amount, an order the batch cannot lock as
//! expected) and any batch that fails is handed back: the job then applies
//! it alone through `fulfil::apply_payment`, which knows every case.
//!
//! Its commits are deferred (`batch::Commit::Deferred`): everything a batch
//! writes follows from webhook events stored durably before the provider
//! was answered, so one lost in a database crash is applied again by the
//! inbox sweep. A confirmation email is claimed in a durable commit first,
//! which makes the batch before it durable too: no ticket is emailed that a
//! crash could take back.

use std::collections::{HashMap, HashSet};

use boxoffice_core::{
    Services,
    batch::{self, Answers, Batcher, Commit, Linger, Planning, Pool, Settings, Write},
    models::{LedgerRefs, Leg, Order, OrderItem, OrderStatus, Payment, User, post_ledgers},
    schema::{events, orders, users, webhook_inbox},
};
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    fulfil::{AfterCommit, Paid, Paying, pay_reserved_many},
    jobs::JobError,
};

/// A verified "the buyer paid", owned (it crosses tasks).
#[derive(Debug, Clone)]
pub struct PaymentIn {
    pub inbox_id: Uuid,
    pub provider: String,
    pub order_id: Uuid,
    pub payment_id: String,
    pub amount_minor: i64,
    pub currency: String,
}

#[derive(Clone)]
pub struct Payer(Batcher<Pay>);

pub struct Pay;

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
        Self(Batcher::start(services, settings, Pay))
    }

    /// Applies the payment with others. `Some`: applied and its webhook
    /// marked processed; what to do after the commit. `None`: apply it alone.
    pub async fn pay(&self, payment: PaymentIn) -> Result<Option<AfterCommit>, JobError> {
        self.0.write(payment).await
    }
}

impl Write for Pay {
    type Item = PaymentIn;
    type Done = Option<AfterCommit>;
    type Error = JobError;

    async fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        payments: &[PaymentIn],
    ) -> Answers<Option<AfterCommit>, JobError> {
        let mut applied = apply(conn, payments).await?;
        Ok(payments
            .iter()
            .map(|p| Ok(applied.remove(&p.inbox_id)))
            .collect())
    }

    /// Of a batch that failed: the job applies it alone, through the path
    /// that knows every case.
    async fn one(
        &self,
        _: &mut AsyncPgConnection,
        _: &PaymentIn,
    ) -> Result<Option<AfterCommit>, JobError> {
        Ok(None)
    }
}

/// Applies the plain payments of the batch in one transaction; returns, by
/// inbox id, what to do after the commit for each one applied.
async fn apply(
    conn: &mut AsyncPgConnection,
    payments: &[PaymentIn],
) -> Result<HashMap<Uuid, AfterCommit>, JobError> {
    conn.transaction::<_, JobError, _>(async |conn| {
        let order_ids: Vec<Uuid> = payments.iter().map(|p| p.order_id).collect();
        let orders: HashMap<Uuid, Order> = orders::table
            .filter(orders::id.eq_any(&order_ids))
            .order(orders::id)
            .select(Order::as_select())
            .for_update()
            .load(conn)
            .await?
            .into_iter()
            .map(|o| (o.id, o))
            .collect();
        // Plain: a reserved order, the exact amount, the first payment of
        // the batch for it.
        let mut seen = HashSet::new();
        let plain: Vec<(&PaymentIn, &Order)> = payments
            .iter()
            .filter_map(|p| {
                let order = orders.get(&p.order_id)?;
                (order.status() == OrderStatus::AwaitingPayment
                    && p.amount_minor == order.total_minor
                    && p.currency == order.currency
                    && seen.insert(order.id))
                .then_some((p, order))
            })
            .collect();
        if plain.is_empty() {
            return Ok(HashMap::new());
        }
        let recorded = Payment::record_many(
            conn,
            &plain
                .iter()
                .map(|(p, order)| Payment {
                    id: Uuid::now_v7(),
                    order_id: order.id,
                    provider: p.provider.clone(),
                    provider_payment_id: p.payment_id.clone(),
                    amount_minor: p.amount_minor,
                    currency: p.currency.clone(),
                    status: "succeeded".into(),
                    created_at: Utc::now(),
                })
                .collect::<Vec<_>>(),
        )
        .await?;
        // A payment id seen before goes the single way ("already applied").
        let recorded: HashMap<Uuid, Payment> =
            recorded.into_iter().map(|p| (p.order_id, p)).collect();
        let paid: Vec<(&PaymentIn, &Order, &Payment)> = plain
            .into_iter()
            .filter_map(|(p, order)| Some((p, order, recorded.get(&order.id)?)))
            .collect();
        if paid.is_empty() {
            return Ok(HashMap::new());
        }

        let event_ids: Vec<Uuid> = paid.iter().map(|(_, o, _)| o.event_id).collect();
        let organizers: HashMap<Uuid, Uuid> = events::table
            .filter(events::id.eq_any(&event_ids))
            .select((events::id, events::organizer_id))
            .load::<(Uuid, Uuid)>(conn)
            .await?
            .into_iter()
            .collect();
        let accounts: Vec<(String, String)> = paid
            .iter()
            .map(|(p, order, _)| {
                (
                    format!("cash:{}", p.provider),
                    format!("organizer:{}:payable", organizers[&order.event_id]),
                )
            })
            .collect();
        let legs: Vec<[Leg<'_>; 2]> = paid
            .iter()
            .zip(&accounts)
            .map(|((p, _, _), (cash, payable))| {
                [
                    Leg {
                        account: cash,
                        amount_minor: p.amount_minor,
                    },
                    Leg {
                        account: payable,
                        amount_minor: -p.amount_minor,
                    },
                ]
            })
            .collect();
        let transactions: Vec<(&str, &[Leg<'_>], LedgerRefs)> = paid
            .iter()
            .zip(&legs)
            .map(|((p, order, payment), legs)| {
                (
                    p.currency.as_str(),
                    legs.as_slice(),
                    LedgerRefs {
                        order_id: Some(order.id),
                        payment_id: Some(payment.id),
                        ..Default::default()
                    },
                )
            })
            .collect();
        post_ledgers(conn, &transactions).await?;

        let paid_ids: Vec<Uuid> = paid.iter().map(|(_, o, _)| o.id).collect();
        let mut items: HashMap<Uuid, Vec<OrderItem>> = HashMap::new();
        for item in Order::items_of(conn, &paid_ids).await? {
            items.entry(item.order_id).or_default().push(item);
        }
        let buyer_ids: Vec<Uuid> = paid.iter().map(|(_, o, _)| o.buyer_id).collect();
        let buyers: HashMap<Uuid, User> = users::table
            .filter(users::id.eq_any(&buyer_ids))
            .select(User::as_select())
            .load(conn)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let paying: Vec<Paying<'_>> = paid
            .iter()
            .map(|(_, order, _)| Paying {
                order,
                items: items.get(&order.id).map_or(&[], Vec::as_slice),
                buyer: &buyers[&order.buyer_id],
            })
            .collect();
        let paid_now = pay_reserved_many(conn, &paying).await?;

        let inbox_ids: Vec<Uuid> = paid.iter().map(|(p, _, _)| p.inbox_id).collect();
        diesel::update(webhook_inbox::table.filter(webhook_inbox::id.eq_any(&inbox_ids)))
            .set((
                webhook_inbox::processed_at.eq(diesel::dsl::now),
                webhook_inbox::last_error.eq(None::<String>),
            ))
            .execute(conn)
            .await?;
        Ok(paid
            .iter()
            .zip(paid_now)
            .map(|((p, _, _), Paid { order, email })| {
                let after = AfterCommit {
                    emails: email.into_iter().collect(),
                    published: vec![order],
                    sales: true,
                    ..Default::default()
                };
                (p.inbox_id, after)
            })
            .collect())
    })
    .await
}
