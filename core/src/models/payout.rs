//! Payouts: what the platform owes an organizer in one currency, for the
//! events that ended more than `PAYOUT_DELAY_SECS` ago, sent to their
//! payout account by the provider. An organizer's balance per event is the
//! sum of its `organizer:<id>:payable` ledger entries: payments in, fees
//! and refunds out, payouts out. A refund after a payout leaves an event
//! owing; that line is carried, negative, into the next payout.
//!
//! ```text
//! pending --(sent)--> processing --(provider: paid)--> paid
//!                                \--(refused)--> failed (ledger reversed)
//! ```

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    models::{EventStatus, ledger},
    schema::{payout_lines, payouts},
};

text_status!(
    PayoutStatus {
        Pending => "pending",
        Processing => "processing",
        Paid => "paid",
        Failed => "failed",
    }
);

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = payouts, check_for_backend(diesel::pg::Pg))]
pub struct Payout {
    pub id: Uuid,
    pub organizer_id: Uuid,
    pub amount_minor: i64,
    pub currency: String,
    pub status: String,
    pub provider_transfer_id: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub provider: String,
    pub destination: String,
    pub paid_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = payout_lines, check_for_backend(diesel::pg::Pg))]
pub struct PayoutLine {
    pub payout_id: Uuid,
    pub event_id: Uuid,
    pub amount_minor: i64,
}

/// An event's balance with its organizer in one currency (positive: owed
/// to the organizer).
#[derive(Debug, Clone, QueryableByName)]
pub struct EventBalance {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub event_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub title: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub currency: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub owed_minor: i64,
    /// When its money can be paid out.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub payable_from: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct Due {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    organizer_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    currency: String,
}

/// When an event's money may leave: its end (or its cancellation) plus the
/// delay. `$1` is the delay in seconds.
const PAYABLE_FROM: &str = "CASE WHEN e.status = $2 THEN least(e.cancelled_at, e.ends_at) ELSE e.ends_at END \
     + make_interval(secs => $1)";

impl Payout {
    pub fn status(&self) -> PayoutStatus {
        PayoutStatus::parse(&self.status).unwrap_or(PayoutStatus::Pending)
    }

    /// Every event balance of an organizer, per currency (events whose
    /// entries sum to zero left out).
    pub async fn balances(
        conn: &mut AsyncPgConnection,
        organizer_id: Uuid,
        delay: std::time::Duration,
    ) -> QueryResult<Vec<EventBalance>> {
        use diesel::sql_types::{Double, Text};
        diesel::sql_query(format!(
            "SELECT e.id AS event_id, e.title, l.currency::text AS currency,
                    (-sum(l.amount_minor))::bigint AS owed_minor,
                    {PAYABLE_FROM} AS payable_from
               FROM ledger_entries l JOIN events e ON e.id = l.event_id
              WHERE l.account = $3
              GROUP BY e.id, l.currency
             HAVING sum(l.amount_minor) <> 0
              ORDER BY payable_from, e.id"
        ))
        .bind::<Double, _>(delay.as_secs_f64())
        .bind::<Text, _>(EventStatus::Cancelled.as_str())
        .bind::<Text, _>(ledger::payable(organizer_id))
        .load(conn)
        .await
    }

    /// Organizers and currencies whose payable events owe them something
    /// in total now.
    pub async fn due(
        conn: &mut AsyncPgConnection,
        delay: std::time::Duration,
    ) -> QueryResult<Vec<(Uuid, String)>> {
        use diesel::sql_types::{Double, Text};
        let rows: Vec<Due> = diesel::sql_query(format!(
            "SELECT e.organizer_id, l.currency::text AS currency
               FROM ledger_entries l JOIN events e ON e.id = l.event_id
              WHERE l.account = 'organizer:' || e.organizer_id || ':payable'
                AND {PAYABLE_FROM} <= now()
              GROUP BY e.organizer_id, l.currency
             HAVING sum(l.amount_minor) < 0"
        ))
        .bind::<Double, _>(delay.as_secs_f64())
        .bind::<Text, _>(EventStatus::Cancelled.as_str())
        .load(conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.organizer_id, r.currency))
            .collect())
    }

    /// Writes a payout of what the organizer's payable events owe in
    /// `currency`, with its lines and its ledger movement, in the caller's
    /// transaction. `None` when they owe nothing in total (a negative
    /// balance waits for more sales) or a payout is already in flight.
    pub async fn create_due(
        conn: &mut AsyncPgConnection,
        organizer_id: Uuid,
        currency: &str,
        provider: &str,
        destination: &str,
        delay: std::time::Duration,
    ) -> QueryResult<Option<Payout>> {
        let now = Utc::now();
        let lines: Vec<(Uuid, i64)> = Payout::balances(conn, organizer_id, delay)
            .await?
            .into_iter()
            .filter(|b| b.currency == currency && b.payable_from <= now)
            .map(|b| (b.event_id, b.owed_minor))
            .collect();
        let total: i64 = lines.iter().map(|l| l.1).sum();
        if total <= 0 {
            return Ok(None);
        }
        let payout = Payout {
            id: Uuid::now_v7(),
            organizer_id,
            amount_minor: total,
            currency: currency.to_owned(),
            status: PayoutStatus::Pending.as_str().into(),
            provider_transfer_id: None,
            last_error: None,
            created_at: now,
            updated_at: now,
            provider: provider.to_owned(),
            destination: destination.to_owned(),
            paid_at: None,
        };
        // One in flight per organizer and currency (a unique index): a
        // second tick finds it and writes nothing.
        let written = diesel::insert_into(payouts::table)
            .values(&payout)
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        if written == 0 {
            return Ok(None);
        }
        let rows: Vec<PayoutLine> = lines
            .iter()
            .map(|&(event_id, amount_minor)| PayoutLine {
                payout_id: payout.id,
                event_id,
                amount_minor,
            })
            .collect();
        diesel::insert_into(payout_lines::table)
            .values(&rows)
            .execute(conn)
            .await?;
        ledger::post(
            conn,
            &[ledger::Movement::Payout {
                provider,
                organizer_id,
                currency,
                payout_id: payout.id,
                lines: &lines,
            }],
        )
        .await?;
        Ok(Some(payout))
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Payout> {
        payouts::table
            .find(id)
            .select(Payout::as_select())
            .first(conn)
            .await
    }

    pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Payout> {
        payouts::table
            .find(id)
            .select(Payout::as_select())
            .for_update()
            .first(conn)
            .await
    }

    pub async fn lines_of(
        conn: &mut AsyncPgConnection,
        ids: &[Uuid],
    ) -> QueryResult<Vec<PayoutLine>> {
        payout_lines::table
            .filter(payout_lines::payout_id.eq_any(ids))
            .select(PayoutLine::as_select())
            .order((payout_lines::payout_id, payout_lines::event_id))
            .load(conn)
            .await
    }

    /// An organizer's payouts, newest first, keyset-paginated.
    pub async fn for_organizer(
        conn: &mut AsyncPgConnection,
        organizer_id: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> QueryResult<Vec<Payout>> {
        let mut query = payouts::table
            .filter(payouts::organizer_id.eq(organizer_id))
            .select(Payout::as_select())
            .order((payouts::created_at.desc(), payouts::id.desc()))
            .limit(limit)
            .into_boxed();
        if let Some((created_at, id)) = after {
            query = query.filter(
                payouts::created_at
                    .lt(created_at)
                    .or(payouts::created_at.eq(created_at).and(payouts::id.lt(id))),
            );
        }
        query.load(conn).await
    }

    /// `pending` → `processing`: a durable mark before the provider hears of
    /// it. `false` if it is over already.
    pub async fn mark_processing(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
        let n = diesel::update(payouts::table.find(id).filter(Self::in_flight()))
            .set(payouts::status.eq(PayoutStatus::Processing.as_str()))
            .execute(conn)
            .await?;
        Ok(n == 1)
    }

    /// The transfer went through: `paid`, once. `false` if it was over.
    pub async fn mark_paid(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        transfer_id: &str,
    ) -> QueryResult<bool> {
        let n = diesel::update(payouts::table.find(id).filter(Self::in_flight()))
            .set((
                payouts::status.eq(PayoutStatus::Paid.as_str()),
                payouts::provider_transfer_id.eq(transfer_id),
                payouts::paid_at.eq(diesel::dsl::now),
                payouts::last_error.eq(None::<String>),
            ))
            .execute(conn)
            .await?;
        Ok(n == 1)
    }

    /// The provider refused it: `failed`, its ledger movement reversed (the
    /// balance is owed again and paid out by a later payout), once.
    pub async fn fail(conn: &mut AsyncPgConnection, id: Uuid, error: &str) -> QueryResult<bool> {
        let n = diesel::update(payouts::table.find(id).filter(Self::in_flight()))
            .set((
                payouts::status.eq(PayoutStatus::Failed.as_str()),
                payouts::last_error.eq(error),
            ))
            .execute(conn)
            .await?;
        if n == 0 {
            return Ok(false);
        }
        let payout = Payout::find(conn, id).await?;
        let lines: Vec<(Uuid, i64)> = Payout::lines_of(conn, &[id])
            .await?
            .into_iter()
            .map(|l| (l.event_id, l.amount_minor))
            .collect();
        ledger::post(
            conn,
            &[ledger::Movement::PayoutReversal {
                provider: &payout.provider,
                organizer_id: payout.organizer_id,
                currency: &payout.currency,
                payout_id: id,
                lines: &lines,
            }],
        )
        .await?;
        Ok(true)
    }

    fn in_flight() -> diesel::dsl::EqAny<payouts::status, [&'static str; 2]> {
        payouts::status.eq_any([
            PayoutStatus::Pending.as_str(),
            PayoutStatus::Processing.as_str(),
        ])
    }

    /// Payouts in flight after `grace` (their job was lost or gave up).
    pub async fn open(
        conn: &mut AsyncPgConnection,
        grace: chrono::Duration,
        limit: i64,
    ) -> QueryResult<Vec<Uuid>> {
        payouts::table
            .filter(Self::in_flight())
            .filter(payouts::updated_at.lt(Utc::now() - grace))
            .select(payouts::id)
            .limit(limit)
            .load(conn)
            .await
    }
}
