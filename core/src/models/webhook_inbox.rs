//! Inbound provider events, stored before they are applied. The provider's
//! event id is unique: a redelivery finds its row and is acknowledged without
//! being applied again.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{prepared::Prepare, schema::webhook_inbox};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = webhook_inbox, check_for_backend(diesel::pg::Pg))]
pub struct InboxEvent {
    pub id: Uuid,
    pub provider: String,
    pub provider_event_id: String,
    pub event_type: String,
    pub payload: serde_json::Value,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// A verified event to store.
#[derive(Debug, Clone)]
pub struct Arriving {
    pub row: InboxEvent,
    /// The refund it reports succeeded, if that is what it reports.
    pub refund_succeeded: Option<Uuid>,
}

/// An event stored now.
#[derive(Debug, QueryableByName)]
pub struct StoredRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    /// Stored processed: it reports what is recorded already.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub processed: bool,
}

impl InboxEvent {
    /// Stores events in one statement; returns those stored now, each with
    /// whether it was stored processed (a duplicate, of an earlier event or
    /// within the batch, is left out: the provider's event id is unique).
    ///
    /// An event reporting a refund that has succeeded already (usually the
    /// provider's answer to our call finished it, milliseconds before its
    /// webhook came) is stored processed: nothing is left to apply, and no
    /// job need read it to find that out. In an event cancellation that is
    /// every refund's webhook.
    pub async fn store_many(
        conn: &mut AsyncPgConnection,
        events: &[Arriving],
    ) -> QueryResult<Vec<StoredRow>> {
        use diesel::sql_types::{Array, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
        diesel::sql_query(
            "INSERT INTO webhook_inbox (id, provider, provider_event_id, event_type, payload, received_at, processed_at)
             SELECT v.id, v.provider, v.provider_event_id, v.event_type, v.payload, v.received_at,
                    CASE WHEN EXISTS (SELECT 1 FROM refunds r WHERE r.id = v.refund_id AND r.status = $8)
                         THEN now() END
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::timestamptz[], $7::uuid[])
                  AS v(id, provider, provider_event_id, event_type, payload, received_at, refund_id)
             ON CONFLICT (provider, provider_event_id) DO NOTHING
             RETURNING id, processed_at IS NOT NULL AS processed",
        )
        .bind::<Array<SqlUuid>, _>(events.iter().map(|e| e.row.id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(events.iter().map(|e| e.row.provider.as_str()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            events
                .iter()
                .map(|e| e.row.provider_event_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(
            events
                .iter()
                .map(|e| e.row.event_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Jsonb>, _>(events.iter().map(|e| &e.row.payload).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(
            events.iter().map(|e| e.row.received_at).collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<SqlUuid>>, _>(
            events
                .iter()
                .map(|e| e.refund_succeeded)
                .collect::<Vec<_>>(),
        )
        .bind::<Text, _>(super::RefundStatus::Succeeded.as_str())
        .prepared()
        .load(conn)
        .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<InboxEvent> {
        webhook_inbox::table
            .find(id)
            .select(InboxEvent::as_select())
            .first(conn)
            .await
    }

    pub async fn mark_processed(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<usize> {
        InboxEvent::mark_processed_many(conn, &[id]).await
    }

    pub async fn mark_processed_many(
        conn: &mut AsyncPgConnection,
        ids: &[Uuid],
    ) -> QueryResult<usize> {
        diesel::update(webhook_inbox::table.filter(webhook_inbox::id.eq_any(ids)))
            .set((
                webhook_inbox::processed_at.eq(diesel::dsl::now),
                webhook_inbox::last_error.eq(None::<String>),
            ))
            .execute(conn)
            .await
    }

    /// Marks a refund's "succeeded" event processed if the refund has
    /// succeeded already (usually the provider's answer to our call
    /// finished it): nothing more to apply, and no wait on the row lock of
    /// a refund being finished. `false`: it is still to be applied.
    pub async fn mark_processed_if_refund_succeeded(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        refund_id: Uuid,
    ) -> QueryResult<bool> {
        use crate::schema::refunds;
        let succeeded = refunds::table
            .filter(refunds::id.eq(refund_id))
            .filter(refunds::status.eq(super::RefundStatus::Succeeded.as_str()));
        let n = diesel::update(
            webhook_inbox::table
                .find(id)
                .filter(diesel::dsl::exists(succeeded)),
        )
        .set((
            webhook_inbox::processed_at.eq(diesel::dsl::now),
            webhook_inbox::last_error.eq(None::<String>),
        ))
        .execute(conn)
        .await?;
        Ok(n == 1)
    }

    pub async fn mark_error(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        error: &str,
    ) -> QueryResult<usize> {
        diesel::update(webhook_inbox::table.find(id))
            .set(webhook_inbox::last_error.eq(error))
            .execute(conn)
            .await
    }

    /// Events stored but not applied after `grace` (their job was lost).
    pub async fn unprocessed(
        conn: &mut AsyncPgConnection,
        grace: chrono::Duration,
        limit: i64,
    ) -> QueryResult<Vec<Uuid>> {
        webhook_inbox::table
            .filter(webhook_inbox::processed_at.is_null())
            .filter(webhook_inbox::received_at.lt(Utc::now() - grace))
            .select(webhook_inbox::id)
            .order(webhook_inbox::received_at)
            .limit(limit)
            .load(conn)
            .await
    }
}
