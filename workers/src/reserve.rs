//! Seat reservation, batched: the purchases jobs of one worker process hand
//! their order ids to one task that decides a whole batch in one transaction.
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
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use boxoffice_core::{
    Services, batch,
    models::{Discount, Event, Order, OrderItem, OrderStatus, Tier},
    prepared::Prepare,
    schema::{discount_codes, events, orders, ticket_tiers, users},
};
use chrono::{DateTime, Utc};
use diesel::{prelude::*, sql_types};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Orders decided per transaction at most.
const MAX_BATCH: usize = 512;

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
    pub seats: i32,
}

type Reply = oneshot::Sender<Result<Decision, String>>;

#[derive(Clone)]
pub struct Reserver {
    tx: mpsc::Sender<(Uuid, Reply)>,
}

impl Reserver {
    /// Starts the batching task for this process. It has connections of its
    /// own: in a drop the shared pool is busy with HTTP requests, and the one
    /// task every seat decision waits on must never queue behind them.
    pub fn start(services: Services) -> Self {
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        let own = batch::own_pool(&services, batch::Planning::ByKey, batch::Commit::Durable);
        tokio::spawn(run(services, own, rx));
        Self { tx }
    }

    pub async fn reserve(&self, order_id: Uuid) -> Result<Decision, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((order_id, reply))
            .await
            .map_err(|_| "reserver stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "reserver dropped the request".to_owned())?
    }
}

/// Batches decided at once, one per connection of the batcher's pool. Safe
/// for the reason every worker process's batches are: each takes its
/// orders `SKIP LOCKED` and decides them under its events' locks. The next
/// batch reads its orders while one waits for the event lock or commits.
const IN_FLIGHT: usize = batch::OWN_CONNECTIONS;

async fn run(
    services: Services,
    db: boxoffice_core::db::DbPool,
    rx: mpsc::Receiver<(Uuid, Reply)>,
) {
    let snapshots = Arc::new(Snapshots::default());
    let linger = batch::WORKER_LINGER;
    batch::drain(rx, MAX_BATCH, linger, IN_FLIGHT, move |batch| {
        let (services, db, snapshots) = (services.clone(), db.clone(), snapshots.clone());
        async move { decide_batch(&services, &db, &snapshots, batch).await }
    })
    .await;
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

async fn decide_batch(
    services: &Services,
    db: &boxoffice_core::db::DbPool,
    snapshots: &Snapshots,
    batch: Vec<(Uuid, Reply)>,
) {
    let ids: Vec<Uuid> = batch.iter().map(|(id, _)| *id).collect();
    let started = std::time::Instant::now();
    match decide(services, db, &snapshots.taken, &ids).await {
        Ok(outcome) => {
            tracing::debug!(
                orders = ids.len(),
                ms = started.elapsed().as_millis() as u64,
                "reservation batch"
            );
            after_commit(services, snapshots, &outcome).await;
            let mut decisions = outcome.decisions;
            for (id, reply) in batch {
                let decision = decisions.remove(&id).unwrap_or(Decision::NotPending);
                let _ = reply.send(Ok(decision));
            }
        }
        Err(e) => {
            tracing::warn!(orders = ids.len(), error = %e, "reservation batch failed");
            for (_, reply) in batch {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// Stock moved: drop cached event pages and stream the new availability,
/// unless a newer picture of it already went out.
async fn after_commit(services: &Services, snapshots: &Snapshots, outcome: &Outcome) {
    if outcome.tiers_by_event.is_empty() {
        return;
    }
    let mut sent = snapshots.sent.lock().await;
    for (event_id, tiers) in &outcome.tiers_by_event {
        services.event_cache.invalidate_or_log(*event_id).await;
        let newest = sent.entry(*event_id).or_default();
        if outcome.snapshot > *newest {
            *newest = outcome.snapshot;
            services.live.availability(*event_id, tiers).await;
        }
    }
}

struct Outcome {
    decisions: HashMap<Uuid, Decision>,
    tiers_by_event: HashMap<Uuid, Vec<Tier>>,
    /// The stock picture's number (see `Snapshots`).
    snapshot: u64,
}

#[derive(QueryableByName)]
struct Holding {
    #[diesel(sql_type = sql_types::Uuid)]
    buyer_id: Uuid,
    #[diesel(sql_type = sql_types::Uuid)]
    key_id: Uuid,
    #[diesel(sql_type = sql_types::BigInt)]
    n: i64,
}

/// Per (buyer, key) totals from `sql`, whose `$1` is the keys and `$2` the
/// buyers, over orders that hold seats (reserved or paid).
async fn holdings(
    conn: &mut AsyncPgConnection,
    sql: &str,
    keys: &[Uuid],
    buyer_ids: &[Uuid],
) -> QueryResult<HashMap<(Uuid, Uuid), i64>> {
    let rows: Vec<Holding> = diesel::sql_query(sql)
        .bind::<sql_types::Array<sql_types::Uuid>, _>(keys)
        .bind::<sql_types::Array<sql_types::Uuid>, _>(buyer_ids)
        .prepared()
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| ((r.buyer_id, r.key_id), r.n))
        .collect())
}

/// Tickets each buyer already holds per event.
const TICKETS_HELD: &str = "SELECT o.buyer_id, o.event_id AS key_id, sum(i.quantity)::bigint AS n
       FROM orders o JOIN order_items i ON i.order_id = o.id
      WHERE o.event_id = ANY($1) AND o.buyer_id = ANY($2)
        AND o.status IN ('awaiting_payment', 'paid')
      GROUP BY 1, 2";

/// Orders each buyer already placed with each code.
const CODES_USED: &str = "SELECT buyer_id, discount_code_id AS key_id, count(*)::bigint AS n
       FROM orders
      WHERE discount_code_id = ANY($1) AND buyer_id = ANY($2)
        AND status IN ('awaiting_payment', 'paid')
      GROUP BY 1, 2";

/// The new state of a decided order, written in one statement for the batch.
struct Written {
    id: Uuid,
    status: &'static str,
    reason: Option<&'static str>,
    subtotal: i64,
    discount: i64,
    reserved_until: Option<DateTime<Utc>>,
}

async fn decide(
    services: &Services,
    db: &boxoffice_core::db::DbPool,
    snapshots: &AtomicU64,
    ids: &[Uuid],
) -> Result<Outcome, String> {
    let ttl = chrono::Duration::from_std(services.config.orders.reservation_ttl)
        .map_err(|e| e.to_string())?;
    let mut conn = db.get().await.map_err(|e| e.to_string())?;
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        let pending: Vec<Order> = orders::table
            .filter(orders::id.eq_any(ids))
            .filter(orders::status.eq(OrderStatus::Pending.as_str()))
            .order((orders::created_at, orders::id))
            .select(Order::as_select())
            .for_no_key_update()
            .skip_locked()
            .load(conn)
            .await?;
        let mut decisions = HashMap::new();
        if pending.is_empty() {
            return Ok(Outcome {
                decisions,
                tiers_by_event: HashMap::new(),
                snapshot: 0,
            });
        }
        let order_ids: Vec<Uuid> = pending.iter().map(|o| o.id).collect();
        let items = Order::items_of(conn, &order_ids).await?;
        let event_ids: Vec<Uuid> = sorted_unique(pending.iter().map(|o| o.event_id));
        let tier_ids: Vec<Uuid> = sorted_unique(items.iter().map(|i| i.tier_id));
        let code_ids: Vec<Uuid> = sorted_unique(pending.iter().filter_map(|o| o.discount_code_id));
        let buyer_ids: Vec<Uuid> = sorted_unique(pending.iter().map(|o| o.buyer_id));

        // The events' locks serialize every stock increase (see above).
        let events: HashMap<Uuid, Event> = events::table
            .filter(events::id.eq_any(&event_ids))
            .order(events::id)
            .select(Event::as_select())
            .for_no_key_update()
            .load(conn)
            .await?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        let mut tiers: HashMap<Uuid, Tier> = Tier::with_stock()
            .filter(ticket_tiers::id.eq_any(&tier_ids))
            .select(Tier::as_select())
            .prepared()
            .load(conn)
            .await?
            .into_iter()
            .map(|t| (t.id, t))
            .collect();
        let mut codes: HashMap<Uuid, Discount> = if code_ids.is_empty() {
            HashMap::new()
        } else {
            discount_codes::table
                .filter(discount_codes::id.eq_any(&code_ids))
                .select(Discount::as_select())
                .load(conn)
                .await?
                .into_iter()
                .map(|d| (d.id, d))
                .collect()
        };
        let limited_events: Vec<Uuid> = events
            .values()
            .filter(|e| e.max_tickets_per_buyer.is_some())
            .map(|e| e.id)
            .collect();
        let mut held_by_buyer = if limited_events.is_empty() {
            HashMap::new()
        } else {
            holdings(conn, TICKETS_HELD, &limited_events, &buyer_ids).await?
        };
        let limited_codes: Vec<Uuid> = codes
            .values()
            .filter(|d| d.per_buyer_limit.is_some())
            .map(|d| d.id)
            .collect();
        let mut code_uses = if limited_codes.is_empty() {
            HashMap::new()
        } else {
            holdings(conn, CODES_USED, &limited_codes, &buyer_ids).await?
        };
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
        let reserved_until = now + ttl;
        let mut written = Vec::with_capacity(pending.len());
        let mut prices: Vec<(Uuid, i64)> = Vec::new();
        let mut held_delta: HashMap<Uuid, i32> = HashMap::new();
        let mut redeemed: HashMap<Uuid, i32> = HashMap::new();

        for order in &pending {
            let order_items = items_by_order.remove(&order.id).unwrap_or_default();
            let verdict = judge(
                order,
                &order_items,
                events.get(&order.event_id),
                &tiers,
                order.discount_code_id.and_then(|id| codes.get(&id)),
                &held_by_buyer,
                &code_uses,
                now,
            );
            match verdict {
                Err(reason) => {
                    written.push(Written {
                        id: order.id,
                        status: OrderStatus::Rejected.as_str(),
                        reason: Some(reason),
                        subtotal: 0,
                        discount: 0,
                        reserved_until: None,
                    });
                    let mut rejected = order.clone();
                    rejected.status = OrderStatus::Rejected.as_str().into();
                    rejected.reject_reason = Some(reason.into());
                    decisions.insert(
                        order.id,
                        Decision::Rejected {
                            reason,
                            order: Box::new(rejected),
                        },
                    );
                }
                Ok((subtotal, discount)) => {
                    let seats: i64 = order_items.iter().map(|i| i64::from(i.quantity)).sum();
                    for item in &order_items {
                        let tier = tiers.get_mut(&item.tier_id).expect("judged");
                        tier.held += item.quantity;
                        *held_delta.entry(item.tier_id).or_default() += item.quantity;
                        prices.push((item.id, tier.price_minor));
                    }
                    *held_by_buyer
                        .entry((order.buyer_id, order.event_id))
                        .or_default() += seats;
                    if let Some(code) = order.discount_code_id.and_then(|id| codes.get_mut(&id)) {
                        code.redemptions += 1;
                        *redeemed.entry(code.id).or_default() += 1;
                        *code_uses.entry((order.buyer_id, code.id)).or_default() += 1;
                    }
                    written.push(Written {
                        id: order.id,
                        status: OrderStatus::AwaitingPayment.as_str(),
                        reason: None,
                        subtotal,
                        discount,
                        reserved_until: Some(reserved_until),
                    });
                    let mut reserved = order.clone();
                    reserved.status = OrderStatus::AwaitingPayment.as_str().into();
                    reserved.subtotal_minor = subtotal;
                    reserved.discount_minor = discount;
                    reserved.total_minor = subtotal - discount;
                    reserved.reserved_until = Some(reserved_until);
                    let event = &events[&order.event_id];
                    decisions.insert(
                        order.id,
                        Decision::Reserved(Box::new(Reserved {
                            order: reserved,
                            buyer_email: emails.get(&order.buyer_id).cloned().unwrap_or_default(),
                            event_title: event.title.clone(),
                            seats: seats as i32,
                        })),
                    );
                }
            }
        }

        write_orders(conn, &written).await?;
        if !prices.is_empty() {
            let (item_ids, unit): (Vec<Uuid>, Vec<i64>) = prices.into_iter().unzip();
            diesel::sql_query(
                "UPDATE order_items i SET unit_price_minor = v.price
                   FROM unnest($1::uuid[], $2::bigint[]) AS v(id, price)
                  WHERE i.id = v.id",
            )
            .bind::<sql_types::Array<sql_types::Uuid>, _>(item_ids)
            .bind::<sql_types::Array<sql_types::BigInt>, _>(unit)
            .prepared()
            .execute(conn)
            .await?;
        }
        // Last, in id order: the hot rows.
        let mut changed: Vec<(&Uuid, &i32)> = held_delta.iter().collect();
        changed.sort();
        for (tier_id, delta) in changed {
            Tier::move_stock(conn, *tier_id, *delta, 0).await?;
        }
        let mut redeemed: Vec<(&Uuid, &i32)> = redeemed.iter().collect();
        redeemed.sort();
        for (code_id, n) in redeemed {
            diesel::update(discount_codes::table.find(code_id))
                .set(discount_codes::redemptions.eq(discount_codes::redemptions + n))
                .execute(conn)
                .await?;
        }
        let mut tiers_by_event: HashMap<Uuid, Vec<Tier>> = HashMap::new();
        if !held_delta.is_empty() {
            for tier in tiers.into_values() {
                if held_delta.contains_key(&tier.id) {
                    tiers_by_event.entry(tier.event_id).or_default().push(tier);
                }
            }
        }
        Ok(Outcome {
            decisions,
            tiers_by_event,
            // Still under the events' locks: a later batch of these events
            // gets a higher number.
            snapshot: snapshots.fetch_add(1, Ordering::SeqCst) + 1,
        })
    })
    .await
    .map_err(|e| format!("database: {e}"))
}

/// One UPDATE for the whole batch.
async fn write_orders(conn: &mut AsyncPgConnection, written: &[Written]) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE orders o SET status = v.status, reject_reason = v.reason,
                subtotal_minor = v.subtotal, discount_minor = v.discount,
                total_minor = v.subtotal - v.discount, reserved_until = v.reserved_until
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::timestamptz[])
                AS v(id, status, reason, subtotal, discount, reserved_until)
          WHERE o.id = v.id",
    )
    .bind::<sql_types::Array<sql_types::Uuid>, _>(written.iter().map(|w| w.id).collect::<Vec<_>>())
    .bind::<sql_types::Array<sql_types::Text>, _>(written.iter().map(|w| w.status).collect::<Vec<_>>())
    .bind::<sql_types::Array<sql_types::Nullable<sql_types::Text>>, _>(
        written.iter().map(|w| w.reason).collect::<Vec<_>>(),
    )
    .bind::<sql_types::Array<sql_types::BigInt>, _>(written.iter().map(|w| w.subtotal).collect::<Vec<_>>())
    .bind::<sql_types::Array<sql_types::BigInt>, _>(written.iter().map(|w| w.discount).collect::<Vec<_>>())
    .bind::<sql_types::Array<sql_types::Nullable<sql_types::Timestamptz>>, _>(
        written.iter().map(|w| w.reserved_until).collect::<Vec<_>>(),
    )
    .prepared()
    .execute(conn)
    .await
}

fn sorted_unique(ids: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
    let mut v: Vec<Uuid> = ids.collect::<HashSet<_>>().into_iter().collect();
    v.sort();
    v
}

/// Decides one order against the batch's current counters: `(subtotal,
/// discount)` if it can be reserved, else the reason it cannot.
#[allow(clippy::too_many_arguments)]
fn judge(
    order: &Order,
    items: &[OrderItem],
    event: Option<&Event>,
    tiers: &HashMap<Uuid, Tier>,
    code: Option<&Discount>,
    held_by_buyer: &HashMap<(Uuid, Uuid), i64>,
    code_uses: &HashMap<(Uuid, Uuid), i64>,
    now: DateTime<Utc>,
) -> Result<(i64, i64), &'static str> {
    let event = event.ok_or("event_not_found")?;
    if event.status != "published" || event.ends_at <= now {
        return Err("event_not_on_sale");
    }
    if items.is_empty() {
        return Err("no_items");
    }
    let mut seats = 0i64;
    let mut subtotal = 0i64;
    for item in items {
        let tier = tiers.get(&item.tier_id).ok_or("tier_not_found")?;
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
        if tier.quantity - tier.held - tier.sold < item.quantity {
            return Err("sold_out");
        }
        seats += i64::from(item.quantity);
        subtotal += tier.price_minor * i64::from(item.quantity);
    }
    if let Some(limit) = event.max_tickets_per_buyer {
        let already = held_by_buyer
            .get(&(order.buyer_id, event.id))
            .copied()
            .unwrap_or(0);
        if already + seats > i64::from(limit) {
            return Err("buyer_limit_reached");
        }
    }
    let mut discount = 0;
    if let Some(code) = code {
        if code.check_usable(now).is_err() {
            return Err("discount_unavailable");
        }
        if let Some(limit) = code.per_buyer_limit
            && code_uses
                .get(&(order.buyer_id, code.id))
                .copied()
                .unwrap_or(0)
                >= i64::from(limit)
        {
            return Err("discount_limit_reached");
        }
        if code.min_order_total_minor.is_some_and(|min| subtotal < min) {
            return Err("discount_minimum_not_met");
        }
        let applicable: i64 = items
            .iter()
            .filter(|i| code.applies_to(i.tier_id))
            .map(|i| tiers[&i.tier_id].price_minor * i64::from(i.quantity))
            .sum();
        discount = code.amount_off().off(applicable);
    }
    Ok((subtotal, discount))
}
