//! Payments received and refunds sent (their ledger legs: `ledger`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    prepared::Prepare,
    schema::{payments, refunds},
};

text_status!(
    /// A recorded payment (only successful ones are recorded today).
    PaymentStatus {
        Succeeded => "succeeded",
        Failed => "failed",
    }
);

text_status!(
    /// `requested` (written) → `processing` (sent to the provider) →
    /// `succeeded` or `failed` (a failed one may be sent again).
    RefundStatus {
        Requested => "requested",
        Processing => "processing",
        Succeeded => "succeeded",
        Failed => "failed",
    }
);

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
    /// A successful payment of `order_id` to record.
    pub fn succeeded(
        order_id: Uuid,
        provider: &str,
        provider_payment_id: &str,
        amount_minor: i64,
        currency: &str,
    ) -> Payment {
        Payment {
            id: Uuid::now_v7(),
            order_id,
            provider: provider.into(),
            provider_payment_id: provider_payment_id.into(),
            amount_minor,
            currency: currency.into(),
            status: PaymentStatus::Succeeded.as_str().into(),
            created_at: Utc::now(),
        }
    }

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

    /// Payments by id.
    pub async fn find_many(
        conn: &mut AsyncPgConnection,
        ids: &[Uuid],
    ) -> QueryResult<std::collections::HashMap<Uuid, Payment>> {
        Ok(payments::table
            .filter(payments::id.eq_any(ids))
            .select(Payment::as_select())
            .load(conn)
            .await?
            .into_iter()
            .map(|p: Payment| (p.id, p))
            .collect())
    }

    /// The payment that paid an order: its first one not given back as a
    /// duplicate or a late payment. `None` for a free or unpaid order.
    pub async fn of_order(
        conn: &mut AsyncPgConnection,
        order_id: Uuid,
    ) -> QueryResult<Option<Payment>> {
        Ok(Payment::of_orders(conn, &[order_id])
            .await?
            .remove(&order_id))
    }

    /// `of_order` for several orders at once, by order.
    pub async fn of_orders(
        conn: &mut AsyncPgConnection,
        order_ids: &[Uuid],
    ) -> QueryResult<std::collections::HashMap<Uuid, Payment>> {
        let returned = refunds::table
            .filter(refunds::payment_id.eq(payments::id))
            .filter(refunds::kind.eq(RefundKind::Returned.as_str()));
        let found: Vec<Payment> = payments::table
            .filter(payments::order_id.eq_any(order_ids))
            .filter(payments::status.eq(PaymentStatus::Succeeded.as_str()))
            .filter(diesel::dsl::not(diesel::dsl::exists(returned)))
            .order(payments::created_at.desc())
            .select(Payment::as_select())
            .load(conn)
            .await?;
        // Newest first, so each order keeps its first.
        Ok(found.into_iter().map(|p| (p.order_id, p)).collect())
    }
}

text_status!(
    /// What a refund does to its order.
    RefundKind {
        /// Gives back a payment that could not be applied (late, duplicate,
        /// mismatched): a paid order stays paid, an unfulfilled one becomes
        /// `refunded`.
        Returned => "returned",
        /// Asked for by the buyer, the organizer or an admin: voids its
        /// tickets; the order becomes `refunded` or `partially_refunded`.
        Order => "order",
        /// The event was cancelled: the whole rest of the order, as `Order`.
        EventCancelled => "event_cancelled",
    }
);

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable, Insertable)]
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
    pub kind: String,
    pub ticket_ids: Vec<Uuid>,
    pub requested_by: Option<Uuid>,
    pub request_hash: Option<Vec<u8>>,
}

/// The name of the trigger (and the constraint it raises) that refuses a
/// refund beyond what its payment has left.
pub const WITHIN_PAYMENT: &str = "refunds_within_payment";

impl Refund {
    /// A refund of `payment` to write, once per `idempotency_key` (its
    /// cause), of kind `Returned`: `with_request` makes it an asked-for one.
    pub fn new(
        payment: &Payment,
        amount_minor: i64,
        reason: &str,
        idempotency_key: String,
    ) -> Refund {
        Refund {
            id: Uuid::now_v7(),
            order_id: payment.order_id,
            payment_id: payment.id,
            amount_minor,
            currency: payment.currency.clone(),
            reason: reason.into(),
            status: RefundStatus::Requested.as_str().into(),
            provider_refund_id: None,
            last_error: None,
            idempotency_key,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            kind: RefundKind::Returned.as_str().into(),
            ticket_ids: Vec::new(),
            requested_by: None,
            request_hash: None,
        }
    }

    /// Of `kind`, voiding `ticket_ids`, asked for by `requested_by`.
    pub fn with_request(
        mut self,
        kind: RefundKind,
        ticket_ids: Vec<Uuid>,
        requested_by: Option<Uuid>,
        request_hash: Option<Vec<u8>>,
    ) -> Refund {
        self.kind = kind.as_str().into();
        self.ticket_ids = ticket_ids;
        self.requested_by = requested_by;
        self.request_hash = request_hash;
        self
    }

    pub fn status(&self) -> RefundStatus {
        RefundStatus::parse(&self.status).unwrap_or(RefundStatus::Requested)
    }

    pub fn kind(&self) -> RefundKind {
        RefundKind::parse(&self.kind).unwrap_or(RefundKind::Returned)
    }

    /// Whether a database error is the refusal of a refund beyond its
    /// payment (the trigger's constraint).
    pub fn exceeds_payment(e: &diesel::result::Error) -> bool {
        matches!(
            e,
            diesel::result::Error::DatabaseError(_, info) if info.constraint_name() == Some(WITHIN_PAYMENT)
        )
    }

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

    /// The refund written for a cause (an `Idempotency-Key`, a payment).
    pub async fn find_by_key(
        conn: &mut AsyncPgConnection,
        idempotency_key: &str,
    ) -> QueryResult<Option<Refund>> {
        refunds::table
            .filter(refunds::idempotency_key.eq(idempotency_key))
            .select(Refund::as_select())
            .first(conn)
            .await
            .optional()
    }

    pub async fn for_order(
        conn: &mut AsyncPgConnection,
        order_id: Uuid,
    ) -> QueryResult<Vec<Refund>> {
        Refund::for_orders(conn, &[order_id]).await
    }

    /// The orders' refunds, oldest first.
    pub async fn for_orders(
        conn: &mut AsyncPgConnection,
        order_ids: &[Uuid],
    ) -> QueryResult<Vec<Refund>> {
        refunds::table
            .filter(refunds::order_id.eq_any(order_ids))
            .select(Refund::as_select())
            .order((refunds::created_at, refunds::id))
            .load(conn)
            .await
    }

    /// Writes refunds, each once per idempotency key; returns those written
    /// now.
    pub async fn create_many(
        conn: &mut AsyncPgConnection,
        refunds: &[Refund],
    ) -> QueryResult<Vec<Refund>> {
        if refunds.is_empty() {
            return Ok(Vec::new());
        }
        diesel::insert_into(refunds::table)
            .values(refunds)
            .on_conflict(refunds::idempotency_key)
            .do_nothing()
            .returning(Refund::as_returning())
            .get_results(conn)
            .await
    }

    /// `requested`/`processing`/`failed` → `succeeded`, for the refunds the
    /// provider confirmed, `(refund, provider's refund id)`, in one
    /// statement: returns those that moved now (locked until the commit), so
    /// a refund confirmed twice (its answer and its webhook) is finished
    /// once. Found by primary key alone (`= ANY`), each with its provider id
    /// picked from the array by position: no join for a plan to get wrong.
    pub async fn mark_succeeded_many(
        conn: &mut AsyncPgConnection,
        done: &[(Uuid, &str)],
    ) -> QueryResult<Vec<Refund>> {
        use diesel::sql_types::{Array, Text, Uuid as SqlUuid};
        if done.is_empty() {
            return Ok(Vec::new());
        }
        diesel::sql_query(
            "UPDATE refunds
                SET status = 'succeeded', last_error = NULL,
                    provider_refund_id = ($2::text[])[array_position($1::uuid[], id)]
              WHERE id = ANY($1::uuid[]) AND status IN ('requested', 'processing', 'failed')
          RETURNING *",
        )
        .bind::<Array<SqlUuid>, _>(done.iter().map(|d| d.0).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(done.iter().map(|d| d.1).collect::<Vec<_>>())
        .prepared()
        .load(conn)
        .await
    }

    /// About to be sent to the provider: `processing`, as written; those
    /// that had succeeded already (or are unknown) are left out.
    pub async fn start_sending_many(
        conn: &mut AsyncPgConnection,
        ids: &[Uuid],
    ) -> QueryResult<Vec<Refund>> {
        diesel::update(
            refunds::table
                .filter(refunds::id.eq_any(ids))
                .filter(Self::unfinished()),
        )
        .set((
            refunds::status.eq(RefundStatus::Processing.as_str()),
            refunds::provider_refund_id.eq(None::<String>),
            refunds::last_error.eq(None::<String>),
        ))
        .returning(Refund::as_returning())
        .get_results(conn)
        .await
    }

    /// Sent to the provider (with its refund id once it gave one); `false`
    /// if it had succeeded already.
    pub async fn mark_processing(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        provider_refund_id: Option<&str>,
    ) -> QueryResult<bool> {
        let n = diesel::update(refunds::table.find(id).filter(Self::unfinished()))
            .set((
                refunds::status.eq(RefundStatus::Processing.as_str()),
                refunds::provider_refund_id.eq(provider_refund_id),
                refunds::last_error.eq(None::<String>),
            ))
            .execute(conn)
            .await?;
        Ok(n == 1)
    }

    /// Refused or failed at the provider; `false` if it had succeeded already.
    pub async fn mark_failed(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        provider_refund_id: Option<&str>,
        error: &str,
    ) -> QueryResult<bool> {
        let n = diesel::update(refunds::table.find(id).filter(Self::unfinished()))
            .set((
                refunds::status.eq(RefundStatus::Failed.as_str()),
                refunds::provider_refund_id.eq(provider_refund_id),
                refunds::last_error.eq(error),
            ))
            .execute(conn)
            .await?;
        Ok(n == 1)
    }

    /// Every state a refund can still move out of.
    fn unfinished() -> diesel::dsl::EqAny<refunds::status, [&'static str; 3]> {
        refunds::status.eq_any([
            RefundStatus::Requested.as_str(),
            RefundStatus::Processing.as_str(),
            RefundStatus::Failed.as_str(),
        ])
    }

    /// Refunds not finished after `grace` (their job was lost or gave up).
    pub async fn open(
        conn: &mut AsyncPgConnection,
        grace: chrono::Duration,
        limit: i64,
    ) -> QueryResult<Vec<Uuid>> {
        refunds::table
            .filter(refunds::status.eq_any([
                RefundStatus::Requested.as_str(),
                RefundStatus::Processing.as_str(),
            ]))
            .filter(refunds::updated_at.lt(Utc::now() - grace))
            .select(refunds::id)
            .limit(limit)
            .load(conn)
            .await
    }
}
