//! How an event sells: per tier, its money (orders for what buyers were
//! charged, the ledger for what was collected, given back, kept as fees
//! and owed), conversion, and sales over time. Aggregates, one statement
//! each, over indexed `event_id` columns.

use diesel::{
    prelude::*,
    sql_types::{BigInt, Text, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// Order statuses whose money was taken.
const CHARGED: &str = "('paid', 'refunded', 'partially_refunded')";

#[derive(Debug, Clone, QueryableByName)]
pub struct TierStats {
    #[diesel(sql_type = SqlUuid)]
    pub tier_id: Uuid,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub quantity: i64,
    #[diesel(sql_type = BigInt)]
    pub sold: i64,
    #[diesel(sql_type = BigInt)]
    pub held: i64,
    /// Ticket prices of charged orders, before discounts.
    #[diesel(sql_type = BigInt)]
    pub gross_minor: i64,
    #[diesel(sql_type = BigInt)]
    pub checked_in: i64,
}

#[derive(Debug, Clone, Default, QueryableByName)]
pub struct MoneyStats {
    /// Ticket prices of charged orders, before discounts.
    #[diesel(sql_type = BigInt)]
    pub gross_minor: i64,
    #[diesel(sql_type = BigInt)]
    pub discounts_minor: i64,
    /// Ledger: cash received for the event's orders.
    #[diesel(sql_type = BigInt)]
    pub collected_minor: i64,
    /// Ledger: cash given back.
    #[diesel(sql_type = BigInt)]
    pub refunded_minor: i64,
    /// Ledger: the platform's fees (net of fees given back).
    #[diesel(sql_type = BigInt)]
    pub fees_minor: i64,
    /// Ledger: what the organizer earned (before payouts).
    #[diesel(sql_type = BigInt)]
    pub net_minor: i64,
    /// Ledger: what of it was paid out.
    #[diesel(sql_type = BigInt)]
    pub paid_out_minor: i64,
}

#[derive(Debug, Clone, QueryableByName)]
pub struct StatusCount {
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = BigInt)]
    pub orders: i64,
}

#[derive(Debug, Clone, QueryableByName)]
pub struct SalesBucket {
    /// The bucket's start, local time in the event's time zone
    /// (`YYYY-MM-DDTHH:MM:SS`).
    #[diesel(sql_type = Text)]
    pub starts: String,
    #[diesel(sql_type = BigInt)]
    pub orders: i64,
    #[diesel(sql_type = BigInt)]
    pub tickets: i64,
    #[diesel(sql_type = BigInt)]
    pub amount_minor: i64,
}

pub async fn tiers(conn: &mut AsyncPgConnection, event_id: Uuid) -> QueryResult<Vec<TierStats>> {
    diesel::sql_query(format!(
        "SELECT tt.id AS tier_id, tt.name, s.quantity::bigint AS quantity,
                s.sold::bigint AS sold, s.held::bigint AS held,
                coalesce(g.gross, 0)::bigint AS gross_minor,
                coalesce(c.n, 0)::bigint AS checked_in
           FROM ticket_tiers tt
           JOIN tier_stock s ON s.tier_id = tt.id
           LEFT JOIN (SELECT oi.tier_id, sum(oi.quantity * oi.unit_price_minor) AS gross
                        FROM order_items oi JOIN orders o ON o.id = oi.order_id
                       WHERE o.event_id = $1 AND o.status IN {CHARGED}
                       GROUP BY oi.tier_id) g ON g.tier_id = tt.id
           LEFT JOIN (SELECT tier_id, count(*) AS n FROM tickets
                       WHERE event_id = $1 AND status = 'checked_in'
                       GROUP BY tier_id) c ON c.tier_id = tt.id
          WHERE tt.event_id = $1
          ORDER BY tt.sort_order, tt.id"
    ))
    .bind::<SqlUuid, _>(event_id)
    .load(conn)
    .await
}

pub async fn money(conn: &mut AsyncPgConnection, event_id: Uuid) -> QueryResult<MoneyStats> {
    // Cash legs are positive when money comes in; the organizer's and the
    // platform's accounts are credited (negative) with what they earn.
    diesel::sql_query(format!(
        "SELECT o.gross_minor, o.discounts_minor,
                l.collected_minor, l.refunded_minor, l.fees_minor, l.net_minor, l.paid_out_minor
           FROM (SELECT coalesce(sum(subtotal_minor), 0)::bigint AS gross_minor,
                        coalesce(sum(discount_minor), 0)::bigint AS discounts_minor
                   FROM orders WHERE event_id = $1 AND status IN {CHARGED}) o,
                (SELECT coalesce(sum(amount_minor) FILTER (WHERE account LIKE 'cash:%'
                                 AND payment_id IS NOT NULL AND refund_id IS NULL), 0)::bigint AS collected_minor,
                        coalesce(-sum(amount_minor) FILTER (WHERE account LIKE 'cash:%'
                                 AND refund_id IS NOT NULL), 0)::bigint AS refunded_minor,
                        coalesce(-sum(amount_minor) FILTER (WHERE account = 'platform:revenue'), 0)::bigint AS fees_minor,
                        coalesce(-sum(amount_minor) FILTER (WHERE account LIKE 'organizer:%'
                                 AND payout_id IS NULL), 0)::bigint AS net_minor,
                        coalesce(sum(amount_minor) FILTER (WHERE account LIKE 'organizer:%'
                                 AND payout_id IS NOT NULL), 0)::bigint AS paid_out_minor
                   FROM ledger_entries WHERE event_id = $1) l"
    ))
    .bind::<SqlUuid, _>(event_id)
    .get_result(conn)
    .await
}

pub async fn conversion(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
) -> QueryResult<Vec<StatusCount>> {
    diesel::sql_query(
        "SELECT status, count(*) AS orders FROM orders WHERE event_id = $1
          GROUP BY status ORDER BY status",
    )
    .bind::<SqlUuid, _>(event_id)
    .load(conn)
    .await
}

/// Paid orders per `hour` or `day` of the event's time zone.
pub async fn sales(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    bucket: &str,
) -> QueryResult<Vec<SalesBucket>> {
    diesel::sql_query(
        "SELECT to_char(date_trunc($2, o.paid_at AT TIME ZONE e.timezone), 'YYYY-MM-DD\"T\"HH24:MI:SS') AS starts,
                count(*)::bigint AS orders,
                coalesce(sum((SELECT sum(quantity) FROM order_items WHERE order_id = o.id)), 0)::bigint AS tickets,
                coalesce(sum(o.total_minor), 0)::bigint AS amount_minor
           FROM orders o JOIN events e ON e.id = o.event_id
          WHERE o.event_id = $1 AND o.paid_at IS NOT NULL
          GROUP BY 1 ORDER BY 1",
    )
    .bind::<SqlUuid, _>(event_id)
    .bind::<Text, _>(bucket)
    .load(conn)
    .await
}

/// One event of an organizer's, summed.
#[derive(Debug, Clone, QueryableByName)]
pub struct EventSummary {
    #[diesel(sql_type = SqlUuid)]
    pub event_id: Uuid,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = BigInt)]
    pub sold: i64,
    #[diesel(sql_type = BigInt)]
    pub collected_minor: i64,
    #[diesel(sql_type = BigInt)]
    pub refunded_minor: i64,
    #[diesel(sql_type = BigInt)]
    pub net_minor: i64,
}

/// Every event of the organizer's, newest start first; money from the
/// ledger, as in [`money`].
pub async fn organizer(
    conn: &mut AsyncPgConnection,
    organizer_id: Uuid,
) -> QueryResult<Vec<EventSummary>> {
    diesel::sql_query(
        "SELECT e.id AS event_id, e.title, e.status, e.currency::text AS currency,
                coalesce(s.sold, 0)::bigint AS sold,
                coalesce(l.collected, 0)::bigint AS collected_minor,
                coalesce(l.refunded, 0)::bigint AS refunded_minor,
                coalesce(l.net, 0)::bigint AS net_minor
           FROM events e
           LEFT JOIN (SELECT tt.event_id, sum(ts.sold) AS sold
                        FROM tier_stock ts JOIN ticket_tiers tt ON tt.id = ts.tier_id
                        JOIN events o ON o.id = tt.event_id AND o.organizer_id = $1
                       GROUP BY tt.event_id) s ON s.event_id = e.id
           LEFT JOIN (SELECT l.event_id,
                             sum(l.amount_minor) FILTER (WHERE l.account LIKE 'cash:%'
                                 AND l.payment_id IS NOT NULL AND l.refund_id IS NULL) AS collected,
                             -sum(l.amount_minor) FILTER (WHERE l.account LIKE 'cash:%'
                                 AND l.refund_id IS NOT NULL) AS refunded,
                             -sum(l.amount_minor) FILTER (WHERE l.account LIKE 'organizer:%'
                                 AND l.payout_id IS NULL) AS net
                        FROM ledger_entries l JOIN events o ON o.id = l.event_id AND o.organizer_id = $1
                       GROUP BY l.event_id) l ON l.event_id = e.id
          WHERE e.organizer_id = $1
          ORDER BY e.starts_at DESC, e.id",
    )
    .bind::<SqlUuid, _>(organizer_id)
    .load(conn)
    .await
}

/// The platform's money per currency, from the ledger.
#[derive(Debug, Clone, QueryableByName)]
pub struct CurrencyRevenue {
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = BigInt)]
    pub collected_minor: i64,
    #[diesel(sql_type = BigInt)]
    pub refunded_minor: i64,
    #[diesel(sql_type = BigInt)]
    pub fees_minor: i64,
}

pub async fn platform_revenue(conn: &mut AsyncPgConnection) -> QueryResult<Vec<CurrencyRevenue>> {
    diesel::sql_query(
        "SELECT currency::text AS currency,
                coalesce(sum(amount_minor) FILTER (WHERE account LIKE 'cash:%'
                         AND payment_id IS NOT NULL AND refund_id IS NULL), 0)::bigint AS collected_minor,
                coalesce(-sum(amount_minor) FILTER (WHERE account LIKE 'cash:%'
                         AND refund_id IS NOT NULL), 0)::bigint AS refunded_minor,
                coalesce(-sum(amount_minor) FILTER (WHERE account = 'platform:revenue'), 0)::bigint AS fees_minor
           FROM ledger_entries GROUP BY currency ORDER BY currency",
    )
    .load(conn)
    .await
}

/// Orders per status, platform-wide.
pub async fn platform_orders(conn: &mut AsyncPgConnection) -> QueryResult<Vec<StatusCount>> {
    diesel::sql_query(
        "SELECT status, count(*) AS orders FROM orders GROUP BY status ORDER BY status",
    )
    .load(conn)
    .await
}
