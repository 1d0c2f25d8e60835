use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::{email_log, event_messages};

/// An organizer's message to the ticket holders of an event (all of them,
/// or those of `tier_ids`), fanned out into one email per holder.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = event_messages, check_for_backend(diesel::pg::Pg))]
pub struct EventMessage {
    pub id: Uuid,
    pub event_id: Uuid,
    pub sender_id: Uuid,
    pub subject: String,
    pub body: String,
    pub tier_ids: Option<Vec<Uuid>>,
    /// When every holder's email was written; `None` while fanning out.
    pub fanned_out_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Where a message's emails stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageProgress {
    /// Emails written (one per holder).
    pub recipients: i64,
    pub sent: i64,
    pub failed: i64,
    /// Not sent: the address unsubscribed or its tickets were refunded.
    pub skipped: i64,
}

impl EventMessage {
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<EventMessage> {
        diesel::insert_into(event_messages::table)
            .values(self)
            .returning(EventMessage::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<EventMessage> {
        event_messages::table
            .find(id)
            .select(EventMessage::as_select())
            .first(conn)
            .await
    }

    /// The event's messages, newest first, after the `(created_at, id)`
    /// cursor.
    pub async fn for_event(
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> QueryResult<Vec<EventMessage>> {
        let mut query = event_messages::table
            .filter(event_messages::event_id.eq(event_id))
            .into_boxed();
        if let Some((at, id)) = after {
            query = query.filter(
                event_messages::created_at
                    .lt(at)
                    .or(event_messages::created_at
                        .eq(at)
                        .and(event_messages::id.lt(id))),
            );
        }
        query
            .order((event_messages::created_at.desc(), event_messages::id.desc()))
            .limit(limit)
            .select(EventMessage::as_select())
            .load(conn)
            .await
    }

    /// Messages whose fan-out is not finished, oldest first.
    pub async fn fanning_out(
        conn: &mut AsyncPgConnection,
        limit: i64,
    ) -> QueryResult<Vec<EventMessage>> {
        event_messages::table
            .filter(event_messages::fanned_out_at.is_null())
            .order(event_messages::created_at)
            .limit(limit)
            .select(EventMessage::as_select())
            .load(conn)
            .await
    }

    /// Writes up to `limit` of the message's emails, one per holder (the
    /// attendee address of their valid tickets, of the chosen tiers) not
    /// written yet and not unsubscribed; returns the ids written. One short
    /// statement per batch, exactly once per holder by the dedupe key.
    pub async fn write_emails(
        &self,
        conn: &mut AsyncPgConnection,
        limit: i64,
    ) -> QueryResult<Vec<Uuid>> {
        use diesel::sql_types::{Array, BigInt, Nullable, Uuid as SqlUuid};
        let written: Vec<super::IdRow> = diesel::sql_query(
            "INSERT INTO email_log (id, dedupe_key, template, to_address, params, event_message_id)
             SELECT gen_random_uuid(), h.key, 'event_message', h.address,
                    jsonb_build_object('message_id', $1, 'address', h.address), $1
               FROM (SELECT DISTINCT lower(attendee_email) AS address,
                            'event_message:' || $1 || ':' || lower(attendee_email) AS key
                       FROM tickets
                      WHERE event_id = $2 AND status <> 'void'
                        AND ($3::uuid[] IS NULL OR tier_id = ANY($3))) h
              WHERE NOT EXISTS (SELECT 1 FROM email_log e WHERE e.dedupe_key = h.key)
                AND NOT EXISTS (SELECT 1 FROM email_suppressions s WHERE s.address = h.address)
              ORDER BY h.address
              LIMIT $4
             ON CONFLICT (dedupe_key) DO NOTHING
             RETURNING id",
        )
        .bind::<SqlUuid, _>(self.id)
        .bind::<SqlUuid, _>(self.event_id)
        .bind::<Nullable<Array<SqlUuid>>, _>(&self.tier_ids)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?;
        Ok(written.into_iter().map(|r| r.id).collect())
    }

    pub async fn mark_fanned_out(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<usize> {
        diesel::update(
            event_messages::table
                .find(id)
                .filter(event_messages::fanned_out_at.is_null()),
        )
        .set(event_messages::fanned_out_at.eq(diesel::dsl::now))
        .execute(conn)
        .await
    }

    /// How many of each message's emails are written, sent, failed and
    /// skipped, in one query.
    pub async fn progress(
        conn: &mut AsyncPgConnection,
        ids: &[Uuid],
    ) -> QueryResult<std::collections::HashMap<Uuid, MessageProgress>> {
        let counts: Vec<(Option<Uuid>, String, i64)> = email_log::table
            .filter(email_log::event_message_id.eq_any(ids))
            .group_by((email_log::event_message_id, email_log::status))
            .select((
                email_log::event_message_id,
                email_log::status,
                diesel::dsl::count_star(),
            ))
            .load(conn)
            .await?;
        let mut all: std::collections::HashMap<Uuid, MessageProgress> = ids
            .iter()
            .map(|&id| (id, MessageProgress::default()))
            .collect();
        for (id, status, n) in counts {
            let Some(progress) = id.and_then(|id| all.get_mut(&id)) else {
                continue;
            };
            progress.recipients += n;
            match status.as_str() {
                "sent" => progress.sent += n,
                "failed" => progress.failed += n,
                "skipped" => progress.skipped += n,
                _ => {}
            }
        }
        Ok(all)
    }
}
