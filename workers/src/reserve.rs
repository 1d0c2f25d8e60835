//! Seat reservation, batched: the purchases jobs of one worker process hand
//! their order ids to one batcher that decides a whole batch in one
//! transaction.
//!
//! Why: a tier is one hot row. One transaction per order caps a tier at the
//! database's single-row commit rate (~2.5k/s on two cores); a batch pays for
//! one lock wait and one commit per batch instead. While a batch commits the
//! next one fills, so batches grow with load and stay at one order when idle
//! (no added latency).
//!
//! Correctness does not rest on the batching: the transaction locks the
//! events it touches (in id order, so no deadlocks; `FOR NO KEY UPDATE`, so
//! new orders referencing them are not blocked). Every increase of a tier's
//! stock or a code's redemptions happens under that lock (here, in a late
//! payment, in an organizer's edit), so the counters read after it can only
//! have gone down meanwhile (a payment, expiry or cancel); the batch decides
//! every order against them in memory, in arrival order, and adds its deltas
//! to the rows as the last statements before the commit, which keeps the
//! drop's hottest row locked for as short as possible. `held + sold <=
//! quantity` and `redemptions <= max_redemptions` are CHECK constraints
//! besides. Orders are taken `FOR NO KEY UPDATE SKIP LOCKED` and only while
//! `pending`, so a duplicated job finds nothing to do.

use std::{
    collections::{HashMap, HashSet},
    sync::atomic::{AtomicU64, Ordering},
};

use boxoffice_core::{
    Services,
    batch::{self, Answers, Batcher, Commit, Linger, Planning, Pool, Settings, Write},
    models::{Decided, Discount, Event, EventStatus, Order, OrderItem, OrderStatus, Tier, Verdict},
    prepared::Prepare,
    schema::{discount_codes, events, orders, ticket_tiers, users},
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::jobs::JobError;

/// What the batch decided for one order.
#[derive(Debug, Clone)]
pub enum Decision {
    Reserved(Box<Reserved>),
    Rejected {
        reason: &'static str,
        order: Box<Order>,
    },
    /// Not `pending` any more (decided before, cancelled, or another worker
    /// holds it right now).
    NotPending,
}

/// A reserved order: what the checkout needs, without another query.
#[derive(Debug, Clone)]
pub struct Reserved {
    pub order: Order,
    pub buyer_email: String,
    pub event_title: String,
    pub organizer_id: Uuid,
    pub seats: i32,
}

#[derive(Clone)]
pub struct Reserver(Batcher<Reserve>);

pub struct Reserve {
    services: Services,
    snapshots: Snapshots,
}

impl Reserver {
    /// Starts the batching task for this process. It has connections of its
    /// own: in a drop the shared pool is busy with HTTP requests, and the one
    /// task every seat decision waits on must never queue behind them.
    pub fn start(services: Services) -> Self {
        let settings = Settings {
            name: "reservations",
            max: 512,
            linger: Linger::WhenBusy(batch::WORKER_LINGER),
            // Safe for the reason every worker process's batches are: each
            // takes its orders `SKIP LOCKED` and decides them under its
            // events' locks. The next batch reads its orders while one waits
            // for the event lock or commits.
            in_flight: batch::OWN_CONNECTIONS,
            pool: Pool::Own(Planning::ByKeyReplanned, Commit::Durable),
        };
        let reserve = Reserve {
            services: services.clone(),
            snapshots: Snapshots::default(),
        };
        Self(Batcher::start(&services, settings, reserve))
    }

    pub async fn reserve(&self, order_id: Uuid) -> Result<Decision, JobError> {
        self.0.write(order_id).await
    }
}

impl Write for Reserve {
    type Item = Uuid;
    type Done = Decision;
    type Error = JobError;

    async fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        ids: &[Uuid],
    ) -> Answers<Decision, JobError> {
        let ttl = chrono::Duration::from_std(self.services.config.orders.reservation_ttl)
            .map_err(|e| JobError::permanent(format!("reservation ttl: {e}")))?;
        let outcome = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                decide(conn, &self.snapshots.taken, ids, ttl).await
            })
            .await?;
        self.after_commit(&outcome).await;
        let mut decisions = outcome.decisions;
        Ok(ids
            .iter()
            .map(|id| Ok(decisions.remove(id).unwrap_or(Decision::NotPending)))
            .collect())
    }
}

/// Availability goes out to the live streams in the order the batches
/// moved the stock. Two batches of one event commit in turn (the event's
/// lock), but what follows each commit may finish in either order, and an
/// older picture sent last would show stale stock until the next change.
#[derive(Default)]
struct Snapshots {
    /// Numbers the stock pictures, taken under the event's lock.
    taken: AtomicU64,
    /// The newest picture sent, per event.
    sent: tokio::sync::Mutex<HashMap<Uuid, u64>>,
}

impl Reserve {
    /// Stock moved: drop cached event pages and stream the new availability,
    /// unless a newer picture of it already went out.
    async fn after_commit(&self, outcome: &Outcome) {
        if outcome.tiers_by_event.is_empty() {
            return;
        }
        let services = &self.services;
        let mut sent = self.snapshots.sent.lock().await;
        for (event_id, tiers) in &outcome.tiers_by_event {
            services.event_cache.invalidate_or_log(*event_id).await;
            let newest = sent.entry(*event_id).or_default();
            if outcome.snapshot > *newest {
                *newest = outcome.snapshot;
                services.live.availability(*event_id, tiers).await;
            }
        }
    }
}

struct Outcome {
    decisions: HashMap<Uuid, Decision>,
    tiers_by_event: HashMap<Uuid, Vec<Tier>>,
    /// The stock picture's number (see `Snapshots`).
    snapshot: u64,
}

fn by_id<T>(rows: Vec<T>, id: impl Fn(&T) -> Uuid) -> HashMap<Uuid, T> {
    rows.into_iter().map(|row| (id(&row), row)).collect()
}

fn sorted_unique(ids: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
    let mut v: Vec<Uuid> = ids.collect::<HashSet<_>>().into_iter().collect();
    v.sort();
    v
}

/// The batch's pending orders, locked, in arrival order.
async fn lock_pending(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Vec<Order>> {
    orders::table
        .filter(orders::id.eq_any(ids))
        .filter(orders::status.eq(OrderStatus::Pending.as_str()))
        .order((orders::created_at, orders::id))
        .select(Order::as_select())
        .for_no_key_update()
        .skip_locked()
        .load(conn)
        .await
}

/// Everything the batch's orders are judged against, read under the
/// events' locks: the counters can only have gone down since.
struct Counters {
    events: HashMap<Uuid, Event>,
    tiers: HashMap<Uuid, Tier>,
    codes: HashMap<Uuid, Discount>,
    /// Seats each (buyer, event) holds, for events with a per-buyer limit.
    held_by_buyer: HashMap<(Uuid, Uuid), i64>,
    /// Orders each (buyer, code) placed, for codes with a per-buyer limit.
    code_uses: HashMap<(Uuid, Uuid), i64>,
}

impl Counters {
    async fn load(
        conn: &mut AsyncPgConnection,
        pending: &[Order],
        items: &[OrderItem],
    ) -> QueryResult<Self> {
        let event_ids = sorted_unique(pending.iter().map(|o| o.event_id));
        let tier_ids = sorted_unique(items.iter().map(|i| i.tier_id));
        let code_ids = sorted_unique(pending.iter().filter_map(|o| o.discount_code_id));
        let buyer_ids = sorted_unique(pending.iter().map(|o| o.buyer_id));
        // The events' locks serialize every stock increase (see above).
        let events = events::table
            .filter(events::id.eq_any(&event_ids))
            .order(events::id)
            .select(Event::as_select())
            .for_no_key_update()
            .load(conn)
            .await?;
        let tiers = Tier::with_stock()
            .filter(ticket_tiers::id.eq_any(&tier_ids))
            .select(Tier::as_select())
            .prepared()
            .load(conn)
            .await?;
        let codes = if code_ids.is_empty() {
            Vec::new()
        } else {
            discount_codes::table
                .filter(discount_codes::id.eq_any(&code_ids))
                .select(Discount::as_select())
                .load(conn)
                .await?
        };
        let limited_events: Vec<Uuid> = events
            .iter()
            .filter(|e: &&Event| e.max_tickets_per_buyer.is_some())
            .map(|e| e.id)
            .collect();
        let limited_codes: Vec<Uuid> = codes
            .iter()
            .filter(|d: &&Discount| d.per_buyer_limit.is_some())
            .map(|d| d.id)
            .collect();
        Ok(Self {
            held_by_buyer: Order::seats_by_buyer(conn, &limited_events, &buyer_ids).await?,
            code_uses: Order::code_uses_by_buyer(conn, &limited_codes, &buyer_ids).await?,
            events: by_id(events, |e| e.id),
            tiers: by_id(tiers, |t| t.id),
            codes: by_id(codes, |d| d.id),
        })
    }

    /// Decides one order against the counters as they stand: `(subtotal,
    /// discount)` if it can be reserved, else the reason it cannot.
    fn judge(
        &self,
        order: &Order,
        items: &[OrderItem],
        now: DateTime<Utc>,
    ) -> Result<(i64, i64), &'static str> {
        let event = self.events.get(&order.event_id).ok_or("event_not_found")?;
        if event.status() != EventStatus::Published || event.ends_at <= now {
            return Err("event_not_on_sale");
        }
        if items.is_empty() {
            return Err("no_items");
        }
        let mut seats = 0i64;
        let mut subtotal = 0i64;
        for item in items {
            let tier = self.tiers.get(&item.tier_id).ok_or("tier_not_found")?;
            if tier.event_id != event.id {
                return Err("tier_not_found");
            }
            if tier.sales_start_at.is_some_and(|t| now < t)
                || tier.sales_end_at.is_some_and(|t| now >= t)
            {
                return Err("tier_not_on_sale");
            }
            if item.quantity < tier.min_per_order || item.quantity > tier.max_per_order {
                return Err("quantity_out_of_range");
            }
            if tier.remaining() < item.quantity {
                return Err("sold_out");
            }
            seats += i64::from(item.quantity);
            subtotal += tier.price_minor * i64::from(item.quantity);
        }
        if let Some(limit) = event.max_tickets_per_buyer {
            let already = self.held_by_buyer.get(&(order.buyer_id, event.id));
            if already.copied().unwrap_or(0) + seats > i64::from(limit) {
                return Err("buyer_limit_reached");
            }
        }
        let Some(code) = order.discount_code_id.and_then(|id| self.codes.get(&id)) else {
            return Ok((subtotal, 0));
        };
        if code.check_usable(now).is_err() {
            return Err("discount_unavailable");
        }
        if let Some(limit) = code.per_buyer_limit {
            let used = self.code_uses.get(&(order.buyer_id, code.id));
            if used.copied().unwrap_or(0) >= i64::from(limit) {
                return Err("discount_limit_reached");
            }
        }
        if code.min_order_total_minor.is_some_and(|min| subtotal < min) {
            return Err("discount_minimum_not_met");
        }
        let applicable: i64 = items
            .iter()
            .filter(|i| code.applies_to(i.tier_id))
            .map(|i| self.tiers[&i.tier_id].price_minor * i64::from(i.quantity))
            .sum();
        Ok((subtotal, code.amount_off().off(applicable)))
    }

    /// A reserved order's seats and code use, counted for the orders after
    /// it in the batch and in `moved` for the stock rows.
    fn hold(&mut self, order: &Order, items: &[OrderItem], moved: &mut Moved) {
        let mut seats = 0i64;
        for item in items {
            let tier = self.tiers.get_mut(&item.tier_id).expect("judged");
            tier.held += item.quantity;
            seats += i64::from(item.quantity);
            *moved.held.entry(item.tier_id).or_default() += item.quantity;
            moved.prices.push((item.id, tier.price_minor));
        }
        *self
            .held_by_buyer
            .entry((order.buyer_id, order.event_id))
            .or_default() += seats;
        if let Some(code) = order
            .discount_code_id
            .and_then(|id| self.codes.get_mut(&id))
        {
            code.redemptions += 1;
            *moved.redeemed.entry(code.id).or_default() += 1;
            *self.code_uses.entry((order.buyer_id, code.id)).or_default() += 1;
        }
    }
}

/// What the batch changes besides its orders.
#[derive(Default)]
struct Moved {
    /// Seats newly held per tier.
    held: HashMap<Uuid, i32>,
    /// Uses newly taken per code.
    redeemed: HashMap<Uuid, i32>,
    /// (order item, unit price) of the reserved orders.
    prices: Vec<(Uuid, i64)>,
}

/// Decides the pending orders among `ids`, in the caller's transaction.
async fn decide(
    conn: &mut AsyncPgConnection,
    snapshots: &AtomicU64,
    ids: &[Uuid],
    ttl: chrono::Duration,
) -> QueryResult<Outcome> {
    let pending = lock_pending(conn, ids).await?;
    if pending.is_empty() {
        return Ok(Outcome {
            decisions: HashMap::new(),
            tiers_by_event: HashMap::new(),
            snapshot: 0,
        });
    }
    let order_ids: Vec<Uuid> = pending.iter().map(|o| o.id).collect();
    let items = Order::items_of(conn, &order_ids).await?;
    let mut counters = Counters::load(conn, &pending, &items).await?;
    let buyer_ids = sorted_unique(pending.iter().map(|o| o.buyer_id));
    let emails: HashMap<Uuid, String> = users::table
        .filter(users::id.eq_any(&buyer_ids))
        .select((users::id, users::email))
        .load::<(Uuid, String)>(conn)
        .await?
        .into_iter()
        .collect();
    let mut items_by_order: HashMap<Uuid, Vec<OrderItem>> = HashMap::new();
    for item in items {
        items_by_order.entry(item.order_id).or_default().push(item);
    }

    let now = Utc::now();
    let until = now + ttl;
    let mut decided = Vec::with_capacity(pending.len());
    let mut decisions = HashMap::new();
    let mut moved = Moved::default();
    for order in &pending {
        let items = items_by_order.remove(&order.id).unwrap_or_default();
        let verdict = match counters.judge(order, &items, now) {
            Ok((subtotal_minor, discount_minor)) => {
                counters.hold(order, &items, &mut moved);
                Verdict::Reserved {
                    subtotal_minor,
                    discount_minor,
                    until,
                }
            }
            Err(reason) => Verdict::Rejected(reason),
        };
        let decision = Decided {
            id: order.id,
            verdict,
        };
        let written = decision.applied_to(order);
        decisions.insert(
            order.id,
            match &decision.verdict {
                Verdict::Rejected(reason) => Decision::Rejected {
                    reason,
                    order: Box::new(written),
                },
                Verdict::Reserved { .. } => Decision::Reserved(Box::new(Reserved {
                    buyer_email: emails.get(&order.buyer_id).cloned().unwrap_or_default(),
                    event_title: counters.events[&order.event_id].title.clone(),
                    organizer_id: counters.events[&order.event_id].organizer_id,
                    seats: items.iter().map(|i| i.quantity).sum(),
                    order: written,
                })),
            },
        );
        decided.push(decision);
    }

    Order::decide_many(conn, &decided, &moved.prices).await?;
    // Last, in id order: the hot rows.
    let mut held: Vec<(Uuid, i32)> = moved.held.iter().map(|(k, v)| (*k, *v)).collect();
    held.sort();
    for (tier_id, delta) in &held {
        Tier::move_stock(conn, *tier_id, *delta, 0).await?;
    }
    let mut redeemed: Vec<(Uuid, i32)> = moved.redeemed.into_iter().collect();
    redeemed.sort();
    for (code_id, n) in redeemed {
        Discount::redeem(conn, code_id, n).await?;
    }
    let mut tiers_by_event: HashMap<Uuid, Vec<Tier>> = HashMap::new();
    for tier in counters.tiers.into_values() {
        if moved.held.contains_key(&tier.id) {
            tiers_by_event.entry(tier.event_id).or_default().push(tier);
        }
    }
    Ok(Outcome {
        decisions,
        tiers_by_event,
        // Still under the events' locks: a later batch of these events
        // gets a higher number.
        snapshot: snapshots.fetch_add(1, Ordering::SeqCst) + 1,
    })
}
