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

impl InboxEvent {
    /// Stores events in one statement; returns the ids of those stored now
    /// (a duplicate, of an earlier event or within the batch, is left out:
    /// the provider's event id is unique).
    pub async fn store_many(
        conn: &mut AsyncPgConnection,
        events: &[InboxEvent],
    ) -> QueryResult<Vec<Uuid>> {
        use diesel::sql_types::{Array, Jsonb, Text, Timestamptz, Uuid as SqlUuid};
        let stored: Vec<super::IdRow> = diesel::sql_query(
            "INSERT INTO webhook_inbox (id, provider, provider_event_id, event_type, payload, received_at)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::timestamptz[])
             ON CONFLICT (provider, provider_event_id) DO NOTHING
             RETURNING id",
        )
        .bind::<Array<SqlUuid>, _>(events.iter().map(|e| e.id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(events.iter().map(|e| e.provider.as_str()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            events
                .iter()
                .map(|e| e.provider_event_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
        .bind::<Array<Jsonb>, _>(events.iter().map(|e| &e.payload).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(events.iter().map(|e| e.received_at).collect::<Vec<_>>())
        .prepared()
        .load(conn)
        .await?;
        Ok(stored.into_iter().map(|s| s.id).collect())
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
