//! Payments received, refunds sent, and the double-entry ledger they post to.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    prepared::Prepare,
    schema::{payments, refunds},
};

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable, Insertable)]
#[diesel(table_name = payments, check_for_backend(diesel::pg::Pg))]
pub struct Payment {
    pub id: Uuid,
    pub order_id: Uuid,
    pub provider: String,
    pub provider_payment_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

impl Payment {
    /// Records a payment once: `None` if this provider payment was already
    /// recorded (a redelivered event).
    pub async fn record(
        conn: &mut AsyncPgConnection,
        payment: &Payment,
    ) -> QueryResult<Option<Payment>> {
        Ok(Payment::record_many(conn, std::slice::from_ref(payment))
            .await?
            .pop())
    }

    /// Records payments; returns those that were new (a provider payment id
    /// is recorded once).
    pub async fn record_many(
        conn: &mut AsyncPgConnection,
        payments: &[Payment],
    ) -> QueryResult<Vec<Payment>> {
        use diesel::sql_types::{Array, BigInt, Text, Timestamptz, Uuid as SqlUuid};
        let texts = |f: fn(&Payment) -> &str| payments.iter().map(f).collect::<Vec<_>>();
        diesel::sql_query(
            "INSERT INTO payments (id, order_id, provider, provider_payment_id, amount_minor, currency, status, created_at)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::text[],
                                  $7::text[], $8::timestamptz[])
             ON CONFLICT (provider, provider_payment_id) DO NOTHING
             RETURNING *",
        )
        .bind::<Array<SqlUuid>, _>(payments.iter().map(|p| p.id).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(payments.iter().map(|p| p.order_id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(texts(|p| &p.provider))
        .bind::<Array<Text>, _>(texts(|p| &p.provider_payment_id))
        .bind::<Array<BigInt>, _>(payments.iter().map(|p| p.amount_minor).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(texts(|p| &p.currency))
        .bind::<Array<Text>, _>(texts(|p| &p.status))
        .bind::<Array<Timestamptz>, _>(payments.iter().map(|p| p.created_at).collect::<Vec<_>>())
        .prepared()
        .load(conn)
        .await
    }

    pub async fn find_by_provider_id(
        conn: &mut AsyncPgConnection,
        provider: &str,
        provider_payment_id: &str,
    ) -> QueryResult<Payment> {
        payments::table
            .filter(payments::provider.eq(provider))
            .filter(payments::provider_payment_id.eq(provider_payment_id))
            .select(Payment::as_select())
            .first(conn)
            .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Payment> {
        payments::table
            .find(id)
            .select(Payment::as_select())
            .first(conn)
            .await
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = refunds, check_for_backend(diesel::pg::Pg))]
pub struct Refund {
    pub id: Uuid,
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
    pub status: String,
    pub provider_refund_id: Option<String>,
    pub last_error: Option<String>,
    pub idempotency_key: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Refund {
    /// Creates the refund for a cause once: the idempotency key (e.g.
    /// `late_payment:<payment id>`) is unique, so a retried job gets the
    /// existing row back instead of a second refund.
    pub async fn create_once(conn: &mut AsyncPgConnection, refund: &Refund) -> QueryResult<Refund> {
        let inserted = diesel::insert_into(refunds::table)
            .values(refund)
            .on_conflict(refunds::idempotency_key)
            .do_nothing()
            .returning(Refund::as_returning())
            .get_result(conn)
            .await
            .optional()?;
        match inserted {
            Some(r) => Ok(r),
            None => {
                refunds::table
                    .filter(refunds::idempotency_key.eq(&refund.idempotency_key))
                    .select(Refund::as_select())
                    .first(conn)
                    .await
            }
        }
    }

    pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Refund> {
        refunds::table
            .find(id)
            .select(Refund::as_select())
            .for_update()
            .first(conn)
            .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Refund> {
        refunds::table
            .find(id)
            .select(Refund::as_select())
            .first(conn)
            .await
    }

    pub async fn for_order(
        conn: &mut AsyncPgConnection,
        order_id: Uuid,
    ) -> QueryResult<Vec<Refund>> {
        refunds::table
            .filter(refunds::order_id.eq(order_id))
            .select(Refund::as_select())
            .order(refunds::created_at)
            .load(conn)
            .await
    }

    /// `pending`/`processing` → `succeeded`; `false` if it already was.
    pub async fn mark_succeeded(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        provider_refund_id: &str,
    ) -> QueryResult<bool> {
        let n = diesel::update(refunds::table.find(id).filter(refunds::status.eq_any([
            "pending",
            "processing",
            "failed",
        ])))
        .set((
            refunds::status.eq("succeeded"),
            refunds::provider_refund_id.eq(provider_refund_id),
            refunds::last_error.eq(None::<String>),
        ))
        .execute(conn)
        .await?;
        Ok(n == 1)
    }

    pub async fn mark(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        status: &str,
        provider_refund_id: Option<&str>,
        error: Option<&str>,
    ) -> QueryResult<usize> {
        diesel::update(
            refunds::table
                .find(id)
                .filter(refunds::status.ne("succeeded")),
        )
        .set((
            refunds::status.eq(status),
            refunds::provider_refund_id.eq(provider_refund_id),
            refunds::last_error.eq(error),
        ))
        .execute(conn)
        .await
    }

    /// Refunds not finished after `grace` (their job was lost or gave up).
    pub async fn open(
        conn: &mut AsyncPgConnection,
        grace: chrono::Duration,
        limit: i64,
    ) -> QueryResult<Vec<Uuid>> {
        refunds::table
            .filter(refunds::status.eq_any(["pending", "processing"]))
            .filter(refunds::updated_at.lt(Utc::now() - grace))
            .select(refunds::id)
            .limit(limit)
            .load(conn)
            .await
    }
}

/// One leg of a ledger transaction.
pub struct Leg<'a> {
    pub account: &'a str,
    pub amount_minor: i64,
}

#[derive(Default, Clone, Copy)]
pub struct LedgerRefs {
    pub order_id: Option<Uuid>,
    pub payment_id: Option<Uuid>,
    pub refund_id: Option<Uuid>,
    pub payout_id: Option<Uuid>,
}

/// Posts a balanced transaction (the legs must sum to zero; a deferred
/// trigger refuses the commit otherwise). Zero legs are skipped.
pub async fn post_ledger(
    conn: &mut AsyncPgConnection,
    currency: &str,
    legs: &[Leg<'_>],
    refs: LedgerRefs,
) -> QueryResult<Uuid> {
    let ids = post_ledgers(conn, &[(currency, legs, refs)]).await?;
    Ok(ids[0])
}

/// Posts several balanced transactions in one statement (of one text for any
/// number of entries: parsed once per connection); returns their ids in
/// order.
pub async fn post_ledgers(
    conn: &mut AsyncPgConnection,
    transactions: &[(&str, &[Leg<'_>], LedgerRefs)],
) -> QueryResult<Vec<Uuid>> {
    use diesel::sql_types::{Array, BigInt, Nullable, Text, Uuid as SqlUuid};
    let ids: Vec<Uuid> = transactions.iter().map(|_| Uuid::now_v7()).collect();
    // (transaction, currency, leg, refs) per entry.
    let rows: Vec<_> = transactions
        .iter()
        .zip(&ids)
        .flat_map(|((currency, legs, refs), transaction_id)| {
            legs.iter()
                .filter(|l| l.amount_minor != 0)
                .map(move |l| (*transaction_id, *currency, l, refs))
        })
        .collect();
    if rows.is_empty() {
        return Ok(ids);
    }
    let refs = |f: fn(&LedgerRefs) -> Option<Uuid>| rows.iter().map(|r| f(r.3)).collect::<Vec<_>>();
    diesel::sql_query(
        "INSERT INTO ledger_entries (id, transaction_id, account, amount_minor, currency,
                                     order_id, payment_id, refund_id, payout_id)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::text[],
                              $6::uuid[], $7::uuid[], $8::uuid[], $9::uuid[])",
    )
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|r| r.0).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.2.account).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.2.amount_minor).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.1).collect::<Vec<_>>())
    .bind::<Array<Nullable<SqlUuid>>, _>(refs(|r| r.order_id))
    .bind::<Array<Nullable<SqlUuid>>, _>(refs(|r| r.payment_id))
    .bind::<Array<Nullable<SqlUuid>>, _>(refs(|r| r.refund_id))
    .bind::<Array<Nullable<SqlUuid>>, _>(refs(|r| r.payout_id))
    .prepared()
    .execute(conn)
    .await?;
    Ok(ids)
}
