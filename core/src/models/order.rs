//! Orders and their items: the order state machine lives in the conditional
//! UPDATEs below. Each moves an order out of exactly one state, so two
//! concurrent transitions (expiry and payment, say) can never both happen.
//!
//! ```text
//! pending --(reserve ok)--> awaiting_payment --(paid)--> paid --> partially_refunded
//!    |                                        |                 \            |
//!    |                                        |                  +--> refunded <+
//!    +--(sold out / invalid)--> rejected      +--(expiry)--> expired
//!    +--(cancel / event cancelled)----------> +--(cancel / declined / event cancelled)--> cancelled
//! ```

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    models::{AccessSession, Discount, Tier, user::session_alive},
    prepared::Prepare,
    schema::{order_items, orders},
};

text_status!(
    OrderStatus {
        Pending => "pending",
        AwaitingPayment => "awaiting_payment",
        Paid => "paid",
        Rejected => "rejected",
        Expired => "expired",
        Cancelled => "cancelled",
        Refunded => "refunded",
        PartiallyRefunded => "partially_refunded",
    }
);

/// The reason an order its buyer cancelled carries: a payment for it that
/// still arrives is given back.
pub const CANCELLED_BY_BUYER: &str = "cancelled_by_buyer";
/// The reason of orders cancelled with their event.
pub const EVENT_CANCELLED: &str = "event_cancelled";

impl OrderStatus {
    /// No further transition but refunds.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::AwaitingPayment)
    }
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = orders, check_for_backend(diesel::pg::Pg))]
pub struct Order {
    pub id: Uuid,
    pub event_id: Uuid,
    pub buyer_id: Uuid,
    pub idempotency_key: String,
    pub request_hash: Vec<u8>,
    pub status: String,
    pub reject_reason: Option<String>,
    pub discount_code_id: Option<Uuid>,
    pub currency: String,
    pub subtotal_minor: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
    pub provider: Option<String>,
    pub provider_checkout_id: Option<String>,
    pub checkout_url: Option<String>,
    pub reserved_until: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = order_items, check_for_backend(diesel::pg::Pg))]
pub struct OrderItem {
    pub id: Uuid,
    pub order_id: Uuid,
    pub tier_id: Uuid,
    pub quantity: i32,
    /// The tier's price when the order was placed; the purchases worker
    /// re-prices when it reserves.
    pub unit_price_minor: i64,
    /// `[{name, email}]`, one per seat (missing seats default to the buyer).
    pub attendees: serde_json::Value,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = orders)]
pub struct NewOrder {
    pub id: Uuid,
    pub event_id: Uuid,
    pub buyer_id: Uuid,
    pub idempotency_key: String,
    pub request_hash: Vec<u8>,
    pub currency: String,
    pub discount_code_id: Option<Uuid>,
}

/// What placing an order found.
pub enum Placed {
    Created(Order),
    /// The same key was used before; the caller compares request hashes.
    Existing(Order),
}

/// What a reservation batch decided for a `pending` order.
#[derive(Debug, Clone)]
pub struct Decided {
    pub id: Uuid,
    pub verdict: Verdict,
}

#[derive(Debug, Clone)]
pub enum Verdict {
    /// Seats held until `until`, at these totals.
    Reserved {
        subtotal_minor: i64,
        discount_minor: i64,
        until: DateTime<Utc>,
    },
    Rejected(&'static str),
}

impl Decided {
    fn status(&self) -> OrderStatus {
        match self.verdict {
            Verdict::Reserved { .. } => OrderStatus::AwaitingPayment,
            Verdict::Rejected(_) => OrderStatus::Rejected,
        }
    }

    fn reject_reason(&self) -> Option<&'static str> {
        match self.verdict {
            Verdict::Reserved { .. } => None,
            Verdict::Rejected(reason) => Some(reason),
        }
    }

    /// (subtotal, discount)
    fn totals(&self) -> (i64, i64) {
        match self.verdict {
            Verdict::Reserved {
                subtotal_minor,
                discount_minor,
                ..
            } => (subtotal_minor, discount_minor),
            Verdict::Rejected(_) => (0, 0),
        }
    }

    fn reserved_until(&self) -> Option<DateTime<Utc>> {
        match self.verdict {
            Verdict::Reserved { until, .. } => Some(until),
            Verdict::Rejected(_) => None,
        }
    }

    /// `order` (read `pending`) as this decision writes it.
    pub fn applied_to(&self, order: &Order) -> Order {
        let mut decided = order.clone();
        decided.status = self.status().as_str().into();
        decided.reject_reason = self.reject_reason().map(Into::into);
        let (subtotal, discount) = self.totals();
        decided.subtotal_minor = subtotal;
        decided.discount_minor = discount;
        decided.total_minor = subtotal - discount;
        decided.reserved_until = self.reserved_until();
        decided
    }
}

impl Order {
    pub fn status(&self) -> OrderStatus {
        OrderStatus::parse(&self.status).unwrap_or(OrderStatus::Pending)
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Order> {
        orders::table
            .find(id)
            .select(Order::as_select())
            .first(conn)
            .await
    }

    pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Order> {
        orders::table
            .find(id)
            .select(Order::as_select())
            .for_update()
            .first(conn)
            .await
    }

    /// An order's items, in id order.
    pub async fn items(
        conn: &mut AsyncPgConnection,
        order_id: Uuid,
    ) -> QueryResult<Vec<OrderItem>> {
        Order::items_of(conn, &[order_id]).await
    }

    /// The order's lines as a provider's checkout shows them: tier, unit
    /// price, quantity.
    pub async fn checkout_lines(
        conn: &mut AsyncPgConnection,
        order_id: Uuid,
    ) -> QueryResult<Vec<crate::payments::CheckoutLine>> {
        use crate::schema::ticket_tiers;
        let rows: Vec<(String, i64, i32)> = order_items::table
            .inner_join(ticket_tiers::table)
            .filter(order_items::order_id.eq(order_id))
            .order(order_items::id)
            .select((
                ticket_tiers::name,
                order_items::unit_price_minor,
                order_items::quantity,
            ))
            .load(conn)
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(name, unit_amount_minor, quantity)| crate::payments::CheckoutLine {
                    name,
                    unit_amount_minor,
                    quantity,
                },
            )
            .collect())
    }

    /// The orders' items, in id order. Sorted here, not by the statement:
    /// with `ORDER BY id` the planner walked the whole primary key of
    /// `order_items` in order and filtered the batch's orders in (34,000
    /// rows read for 345 wanted, 45 ms a payment batch in a stadium drop),
    /// whenever its estimate of items per order was stale.
    pub async fn items_of(
        conn: &mut AsyncPgConnection,
        order_ids: &[Uuid],
    ) -> QueryResult<Vec<OrderItem>> {
        let mut items: Vec<OrderItem> = order_items::table
            .filter(order_items::order_id.eq_any(order_ids))
            .select(OrderItem::as_select())
            .load(conn)
            .await?;
        items.sort_unstable_by_key(|i| i.id);
        Ok(items)
    }

    /// Writes a `pending` order and its items for the buyer's session, unless
    /// the buyer already used this idempotency key: then the existing order
    /// is returned. Check the session first (`User::find_for_access_token`):
    /// an existing order is returned whether or not it is still alive.
    pub async fn place(
        conn: &mut AsyncPgConnection,
        order: &NewOrder,
        items: &[OrderItem],
        session: AccessSession,
    ) -> QueryResult<Placed> {
        let mut created = Order::place_many(conn, &[(order, items, session)]).await?;
        match created.pop() {
            Some(created) => Ok(Placed::Created(created)),
            None => orders::table
                .filter(orders::buyer_id.eq(order.buyer_id))
                .filter(orders::idempotency_key.eq(&order.idempotency_key))
                .select(Order::as_select())
                .first(conn)
                .await
                .map(Placed::Existing),
        }
    }

    /// Writes many `pending` orders with their items in one statement (a CTE
    /// inserting both): one round trip and one commit for a whole batch of
    /// requests, the hot path of a ticket drop. Returns the orders written;
    /// left out are those whose buyer already used the idempotency key and
    /// those whose access session is no longer good (the same check as
    /// `User::find_for_access_token`, made here so that an order request
    /// costs no query of its own for it). The session's user is the buyer.
    pub async fn place_many(
        conn: &mut AsyncPgConnection,
        batch: &[(&NewOrder, &[OrderItem], AccessSession)],
    ) -> QueryResult<Vec<Order>> {
        use diesel::sql_types::{
            Array, BigInt, Binary, Integer, Jsonb, Nullable, Text, Uuid as SqlUuid,
        };
        let orders = || batch.iter().map(|(o, _, _)| *o);
        let items = || {
            batch
                .iter()
                .flat_map(|(o, items, _)| items.iter().map(|i| (o.id, i)))
        };
        debug_assert!(batch.iter().all(|(o, _, s)| o.buyer_id == s.user_id));
        diesel::sql_query(concat!(
            "WITH o AS (
                INSERT INTO orders (id, event_id, buyer_id, idempotency_key, request_hash, currency, discount_code_id)
                SELECT v.id, v.event_id, v.buyer_id, v.key, v.hash, v.currency, v.code
                  FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::bytea[], $6::text[], $7::uuid[], $14::int[], $15::uuid[])
                       AS v(id, event_id, buyer_id, key, hash, currency, code, token_version, session_id)
                 -- Per row, by key: as a semi-join the planner would hash
                 -- both whole tables for every batch.
                 CROSS JOIN LATERAL (
                       SELECT 1 FROM users u
                        WHERE u.id = v.buyer_id AND ",
            session_alive!(),
            "
                        LIMIT 1) AS signed_in
                ON CONFLICT (buyer_id, idempotency_key) DO NOTHING
                RETURNING *
             ), i AS (
                INSERT INTO order_items (id, order_id, tier_id, quantity, unit_price_minor, attendees)
                SELECT v.id, v.order_id, v.tier_id, v.quantity, v.price, v.attendees
                  FROM unnest($8::uuid[], $9::uuid[], $10::uuid[], $11::int[], $12::bigint[], $13::jsonb[])
                       AS v(id, order_id, tier_id, quantity, price, attendees)
                  JOIN o ON o.id = v.order_id
             )
             SELECT * FROM o",
        ))
        .bind::<Array<SqlUuid>, _>(orders().map(|o| o.id).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(orders().map(|o| o.event_id).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(orders().map(|o| o.buyer_id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(orders().map(|o| o.idempotency_key.as_str()).collect::<Vec<_>>())
        .bind::<Array<Binary>, _>(orders().map(|o| o.request_hash.as_slice()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(orders().map(|o| o.currency.as_str()).collect::<Vec<_>>())
        .bind::<Array<Nullable<SqlUuid>>, _>(orders().map(|o| o.discount_code_id).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(items().map(|(_, i)| i.id).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(items().map(|(order_id, _)| order_id).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(items().map(|(_, i)| i.tier_id).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(items().map(|(_, i)| i.quantity).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(items().map(|(_, i)| i.unit_price_minor).collect::<Vec<_>>())
        .bind::<Array<Jsonb>, _>(items().map(|(_, i)| i.attendees.clone()).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(batch.iter().map(|(_, _, s)| s.token_version).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(batch.iter().map(|(_, _, s)| s.session_id).collect::<Vec<_>>())
        .prepared()
        .load(conn)
        .await
    }

    /// Writes the reservation batch's decisions, `pending` → `awaiting_payment`
    /// or `rejected`, in one statement; each order's items get their prices
    /// as reserved. Only orders still `pending` change (the batch holds them
    /// locked, so all do).
    pub async fn decide_many(
        conn: &mut AsyncPgConnection,
        decided: &[Decided],
        prices: &[(Uuid, i64)],
    ) -> QueryResult<usize> {
        use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
        let written = diesel::sql_query(
            "UPDATE orders o SET status = v.status, reject_reason = v.reason,
                    subtotal_minor = v.subtotal, discount_minor = v.discount,
                    total_minor = v.subtotal - v.discount, reserved_until = v.reserved_until
               FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::timestamptz[])
                    AS v(id, status, reason, subtotal, discount, reserved_until)
              WHERE o.id = v.id AND o.status = $7",
        )
        .bind::<Array<SqlUuid>, _>(decided.iter().map(|d| d.id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(decided.iter().map(|d| d.status().as_str()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(
            decided.iter().map(|d| d.reject_reason()).collect::<Vec<_>>(),
        )
        .bind::<Array<BigInt>, _>(decided.iter().map(|d| d.totals().0).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(decided.iter().map(|d| d.totals().1).collect::<Vec<_>>())
        .bind::<Array<Nullable<Timestamptz>>, _>(
            decided.iter().map(|d| d.reserved_until()).collect::<Vec<_>>(),
        )
        // A parameter, not a literal: with the literal, a generic plan may
        // walk the partial index of pending orders (`orders_pending_idx`)
        // for every row of the batch, which a drop's backlog of pending
        // orders made 1.5 s a batch; a parameter cannot match that index's
        // predicate, so the plan looks each order up by its key.
        .bind::<Text, _>(OrderStatus::Pending.as_str())
        .prepared()
        .execute(conn)
        .await?;
        if !prices.is_empty() {
            let (item_ids, unit): (Vec<Uuid>, Vec<i64>) = prices.iter().copied().unzip();
            diesel::sql_query(
                "UPDATE order_items i SET unit_price_minor = v.price
                   FROM unnest($1::uuid[], $2::bigint[]) AS v(id, price)
                  WHERE i.id = v.id",
            )
            .bind::<Array<SqlUuid>, _>(item_ids)
            .bind::<Array<BigInt>, _>(unit)
            .prepared()
            .execute(conn)
            .await?;
        }
        Ok(written)
    }

    /// Seats each buyer holds (reserved or paid) at each event, by (buyer,
    /// event), for the events given.
    pub async fn seats_by_buyer(
        conn: &mut AsyncPgConnection,
        event_ids: &[Uuid],
        buyer_ids: &[Uuid],
    ) -> QueryResult<HashMap<(Uuid, Uuid), i64>> {
        holdings(
            conn,
            "SELECT o.buyer_id, o.event_id AS key_id, sum(i.quantity)::bigint AS n
               FROM orders o JOIN order_items i ON i.order_id = o.id
              WHERE o.event_id = ANY($1) AND o.buyer_id = ANY($2) AND o.status = ANY($3)
              GROUP BY 1, 2",
            event_ids,
            buyer_ids,
        )
        .await
    }

    /// Orders holding seats that each buyer placed with each code, by
    /// (buyer, code), for the codes given.
    pub async fn code_uses_by_buyer(
        conn: &mut AsyncPgConnection,
        code_ids: &[Uuid],
        buyer_ids: &[Uuid],
    ) -> QueryResult<HashMap<(Uuid, Uuid), i64>> {
        holdings(
            conn,
            "SELECT buyer_id, discount_code_id AS key_id, count(*)::bigint AS n
               FROM orders
              WHERE discount_code_id = ANY($1) AND buyer_id = ANY($2) AND status = ANY($3)
              GROUP BY 1, 2",
            code_ids,
            buyer_ids,
        )
        .await
    }

    /// A buyer's orders, newest first, keyset-paginated on (created_at, id).
    pub async fn for_buyer(
        conn: &mut AsyncPgConnection,
        buyer_id: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> QueryResult<Vec<Order>> {
        let mut query = orders::table
            .filter(orders::buyer_id.eq(buyer_id))
            .select(Order::as_select())
            .order((orders::created_at.desc(), orders::id.desc()))
            .limit(limit)
            .into_boxed();
        if let Some((created_at, id)) = after {
            query = query.filter(
                orders::created_at
                    .lt(created_at)
                    .or(orders::created_at.eq(created_at).and(orders::id.lt(id))),
            );
        }
        query.load(conn).await
    }

    /// Records the provider checkouts of reserved orders, in one statement:
    /// `(order, provider, checkout id, url)`. Returns the orders written; one
    /// whose checkout was recorded already is left as it is and not returned
    /// (first write wins: a retried job finds it set and reuses it).
    pub async fn set_checkouts(
        conn: &mut AsyncPgConnection,
        checkouts: &[(Uuid, &str, &str, &str)],
    ) -> QueryResult<Vec<Order>> {
        use diesel::sql_types::{Array, Text, Uuid as SqlUuid};
        diesel::sql_query(
            "UPDATE orders o
                SET provider = v.provider, provider_checkout_id = v.checkout_id, checkout_url = v.url
               FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[])
                    AS v(id, provider, checkout_id, url)
              WHERE o.id = v.id AND o.provider_checkout_id IS NULL
          RETURNING o.*",
        )
        .bind::<Array<SqlUuid>, _>(checkouts.iter().map(|c| c.0).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(checkouts.iter().map(|c| c.1).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(checkouts.iter().map(|c| c.2).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(checkouts.iter().map(|c| c.3).collect::<Vec<_>>())
        .prepared()
        .load(conn)
        .await
    }

    /// `awaiting_payment` → `to` (expired / cancelled), releasing the held
    /// seats and the discount code's use, in the caller's transaction. `None` if the order had already
    /// left `awaiting_payment`: the release happens exactly once.
    /// `only_if_due` makes expiry refuse an order whose time is not up.
    pub async fn release(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        to: OrderStatus,
        reason: &str,
        only_if_due: bool,
    ) -> QueryResult<Option<Order>> {
        let mut query = diesel::update(orders::table)
            .filter(orders::id.eq(id))
            .filter(orders::status.eq(OrderStatus::AwaitingPayment.as_str()))
            .into_boxed();
        if only_if_due {
            query = query.filter(orders::reserved_until.le(diesel::dsl::now));
        }
        let Some(order) = query
            .set((
                orders::status.eq(to.as_str()),
                orders::reject_reason.eq(reason),
            ))
            .returning(Order::as_returning())
            .get_result(conn)
            .await
            .optional()?
        else {
            return Ok(None);
        };
        for item in Order::items(conn, id).await? {
            Tier::move_stock(conn, item.tier_id, -item.quantity, 0).await?;
        }
        // The discount code's use goes back too: a capped code is not used up
        // by reservations that were never paid.
        if let Some(code_id) = order.discount_code_id {
            Discount::redeem(conn, code_id, -1).await?;
        }
        Ok(Some(order))
    }

    /// The batch's orders, locked for update in id order (so two batches
    /// never deadlock), by id.
    pub async fn lock_many(
        conn: &mut AsyncPgConnection,
        ids: &[Uuid],
    ) -> QueryResult<HashMap<Uuid, Order>> {
        Ok(orders::table
            .filter(orders::id.eq_any(ids))
            .order(orders::id)
            .select(Order::as_select())
            .for_update()
            .load(conn)
            .await?
            .into_iter()
            .map(|o: Order| (o.id, o))
            .collect())
    }

    /// Payable orders are paid: `awaiting_payment` (a payment in time), or
    /// `expired` / `cancelled` (a late payment whose seats were taken
    /// again). Returns those written.
    pub async fn mark_paid_many(
        conn: &mut AsyncPgConnection,
        ids: &[Uuid],
    ) -> QueryResult<Vec<Order>> {
        diesel::update(
            orders::table
                .filter(orders::id.eq_any(ids))
                .filter(orders::status.eq_any([
                    OrderStatus::AwaitingPayment.as_str(),
                    OrderStatus::Expired.as_str(),
                    OrderStatus::Cancelled.as_str(),
                ])),
        )
        .set((
            orders::status.eq(OrderStatus::Paid.as_str()),
            orders::paid_at.eq(diesel::dsl::now),
            orders::reject_reason.eq(None::<String>),
        ))
        .returning(Order::as_returning())
        .get_results(conn)
        .await
    }

    /// Orders that were never fulfilled (`expired`, `cancelled`,
    /// `rejected`) and whose payment went back: `refunded`. Returns those
    /// written (an order in another state is left as it is).
    pub async fn mark_refunded(
        conn: &mut AsyncPgConnection,
        ids: &[Uuid],
    ) -> QueryResult<Vec<Order>> {
        diesel::update(
            orders::table
                .filter(orders::id.eq_any(ids))
                .filter(orders::status.eq_any([
                    OrderStatus::Expired.as_str(),
                    OrderStatus::Cancelled.as_str(),
                    OrderStatus::Rejected.as_str(),
                ])),
        )
        .set(orders::status.eq(OrderStatus::Refunded.as_str()))
        .returning(Order::as_returning())
        .get_results(conn)
        .await
    }

    /// Refunds of the orders' tickets or amounts have succeeded: `paid` or
    /// `partially_refunded` → `refunded` (`fully`) or `partially_refunded`.
    /// Returns those written (an order in neither state is left as it is).
    pub async fn mark_refunded_part(
        conn: &mut AsyncPgConnection,
        ids: &[Uuid],
        fully: bool,
    ) -> QueryResult<Vec<Order>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let to = if fully {
            OrderStatus::Refunded
        } else {
            OrderStatus::PartiallyRefunded
        };
        diesel::update(
            orders::table
                .filter(orders::id.eq_any(ids))
                .filter(orders::status.eq_any([
                    OrderStatus::Paid.as_str(),
                    OrderStatus::PartiallyRefunded.as_str(),
                ])),
        )
        .set(orders::status.eq(to.as_str()))
        .returning(Order::as_returning())
        .get_results(conn)
        .await
    }

    /// A free order of a cancelled event: `paid` → `cancelled` (there is
    /// nothing to give back). `None` if it was not paid.
    pub async fn cancel_free(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        reason: &str,
    ) -> QueryResult<Option<Order>> {
        diesel::update(
            orders::table
                .find(id)
                .filter(orders::status.eq(OrderStatus::Paid.as_str()))
                .filter(orders::total_minor.eq(0)),
        )
        .set((
            orders::status.eq(OrderStatus::Cancelled.as_str()),
            orders::reject_reason.eq(reason),
        ))
        .returning(Order::as_returning())
        .get_result(conn)
        .await
        .optional()
    }

    /// Every unpaid order of an event is cancelled at once (the event was
    /// cancelled; the caller holds its lock): `pending` ones hold nothing,
    /// `awaiting_payment` ones give their seats and code uses back. Returns
    /// the orders as written.
    pub async fn cancel_open_for_event(
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
        reason: &str,
    ) -> QueryResult<Vec<Order>> {
        use diesel::sql_types::{Text, Uuid as SqlUuid};
        // Locked in id order first, as every batch locks orders.
        let open: Vec<(Uuid, String)> = orders::table
            .filter(orders::event_id.eq(event_id))
            .filter(orders::status.eq_any([
                OrderStatus::Pending.as_str(),
                OrderStatus::AwaitingPayment.as_str(),
            ]))
            .order(orders::id)
            .select((orders::id, orders::status))
            .for_update()
            .load(conn)
            .await?;
        if open.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = open.iter().map(|o| o.0).collect();
        let holding: Vec<Uuid> = open
            .iter()
            .filter(|o| o.1 == OrderStatus::AwaitingPayment.as_str())
            .map(|o| o.0)
            .collect();
        let cancelled: Vec<Order> = diesel::sql_query(
            "UPDATE orders SET status = $2, reject_reason = $3
              WHERE id = ANY($1) RETURNING *",
        )
        .bind::<diesel::sql_types::Array<SqlUuid>, _>(&ids)
        .bind::<Text, _>(OrderStatus::Cancelled.as_str())
        .bind::<Text, _>(reason)
        .load(conn)
        .await?;
        // The holds go back: seats per tier (in tier order), a use per code.
        let mut seats = std::collections::BTreeMap::<Uuid, i32>::new();
        for item in Order::items_of(conn, &holding).await? {
            *seats.entry(item.tier_id).or_default() += item.quantity;
        }
        for (tier_id, n) in seats {
            Tier::move_stock(conn, tier_id, -n, 0).await?;
        }
        let mut uses = std::collections::BTreeMap::<Uuid, i32>::new();
        for order in cancelled.iter().filter(|o| holding.contains(&o.id)) {
            if let Some(code_id) = order.discount_code_id {
                *uses.entry(code_id).or_default() += 1;
            }
        }
        for (code_id, n) in uses {
            Discount::redeem(conn, code_id, -n).await?;
        }
        Ok(cancelled)
    }

    /// Paid orders of a cancelled event that no cancellation refund covers
    /// yet (free ones too: they are cancelled without one), by id, past
    /// `after`.
    pub async fn awaiting_cancellation_refund(
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> QueryResult<Vec<Order>> {
        use crate::{models::RefundKind, schema::refunds};
        let covered = refunds::table
            .filter(refunds::order_id.eq(orders::id))
            .filter(refunds::kind.eq(RefundKind::EventCancelled.as_str()));
        orders::table
            .filter(orders::event_id.eq(event_id))
            .filter(orders::status.eq_any([
                OrderStatus::Paid.as_str(),
                OrderStatus::PartiallyRefunded.as_str(),
            ]))
            .filter(diesel::dsl::not(diesel::dsl::exists(covered)))
            .filter(orders::id.gt(after.unwrap_or(Uuid::nil())))
            .order(orders::id)
            .limit(limit)
            .select(Order::as_select())
            .load(conn)
            .await
    }

    /// How far an event's cancellation is: of the orders that were paid,
    /// how many are refunded (or, free, cancelled) and how many have a
    /// cancellation refund that failed.
    pub async fn cancellation_progress(
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
    ) -> QueryResult<CancellationProgress> {
        use crate::models::{RefundKind, RefundStatus};
        use diesel::sql_types::{Text, Uuid as SqlUuid};
        diesel::sql_query(
            "SELECT count(*) AS total,
                    count(*) FILTER (WHERE o.status IN ($2, $3)) AS refunded,
                    count(*) FILTER (WHERE o.status NOT IN ($2, $3) AND EXISTS (
                        SELECT 1 FROM refunds r
                         WHERE r.order_id = o.id AND r.kind = $4 AND r.status = $5)) AS failed
               FROM orders o
              WHERE o.event_id = $1 AND o.paid_at IS NOT NULL",
        )
        .bind::<SqlUuid, _>(event_id)
        .bind::<Text, _>(OrderStatus::Refunded.as_str())
        .bind::<Text, _>(OrderStatus::Cancelled.as_str())
        .bind::<Text, _>(RefundKind::EventCancelled.as_str())
        .bind::<Text, _>(RefundStatus::Failed.as_str())
        .get_result(conn)
        .await
    }

    /// `pending` → `cancelled` (the buyer cancelled before the purchases
    /// worker got to it: nothing is held yet).
    pub async fn cancel_pending(
        conn: &mut AsyncPgConnection,
        id: Uuid,
    ) -> QueryResult<Option<Order>> {
        diesel::update(
            orders::table
                .find(id)
                .filter(orders::status.eq(OrderStatus::Pending.as_str())),
        )
        .set((
            orders::status.eq(OrderStatus::Cancelled.as_str()),
            orders::reject_reason.eq(CANCELLED_BY_BUYER),
        ))
        .returning(Order::as_returning())
        .get_result(conn)
        .await
        .optional()
    }

    /// Orders still `pending` after `grace`: their purchases job was lost.
    pub async fn stuck_pending(
        conn: &mut AsyncPgConnection,
        grace: chrono::Duration,
        limit: i64,
    ) -> QueryResult<Vec<Uuid>> {
        orders::table
            .filter(orders::status.eq(OrderStatus::Pending.as_str()))
            .filter(orders::created_at.lt(Utc::now() - grace))
            .select(orders::id)
            .order(orders::created_at)
            .limit(limit)
            .load(conn)
            .await
    }

    /// Reserved orders whose hold is over (their expiry job may be lost).
    pub async fn overdue(conn: &mut AsyncPgConnection, limit: i64) -> QueryResult<Vec<Uuid>> {
        orders::table
            .filter(orders::status.eq(OrderStatus::AwaitingPayment.as_str()))
            .filter(orders::reserved_until.le(diesel::dsl::now))
            .select(orders::id)
            .order(orders::reserved_until)
            .limit(limit)
            .load(conn)
            .await
    }

    /// Reserved orders without a checkout after `grace` (the provider call
    /// failed or its job was lost).
    pub async fn without_checkout(
        conn: &mut AsyncPgConnection,
        grace: chrono::Duration,
        limit: i64,
    ) -> QueryResult<Vec<Uuid>> {
        orders::table
            .filter(orders::status.eq(OrderStatus::AwaitingPayment.as_str()))
            .filter(orders::provider_checkout_id.is_null())
            .filter(orders::updated_at.lt(Utc::now() - grace))
            .select(orders::id)
            .limit(limit)
            .load(conn)
            .await
    }
}

/// See [`Order::cancellation_progress`].
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct CancellationProgress {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub total: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub refunded: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub failed: i64,
}

#[derive(QueryableByName)]
struct Holding {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    buyer_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    key_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Per (buyer, key) totals from `sql`, whose `$1` is the keys, `$2` the
/// buyers and `$3` the statuses of orders that hold seats. Nothing to read
/// without keys.
async fn holdings(
    conn: &mut AsyncPgConnection,
    sql: &str,
    keys: &[Uuid],
    buyer_ids: &[Uuid],
) -> QueryResult<HashMap<(Uuid, Uuid), i64>> {
    use diesel::sql_types::{Array, Text, Uuid as SqlUuid};
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let holding = [
        OrderStatus::AwaitingPayment.as_str(),
        OrderStatus::Paid.as_str(),
        OrderStatus::PartiallyRefunded.as_str(),
    ];
    let rows: Vec<Holding> = diesel::sql_query(sql)
        .bind::<Array<SqlUuid>, _>(keys)
        .bind::<Array<SqlUuid>, _>(buyer_ids)
        .bind::<Array<Text>, _>(&holding[..])
        .prepared()
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| ((r.buyer_id, r.key_id), r.n))
        .collect())
}
