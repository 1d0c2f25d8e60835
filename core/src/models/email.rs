use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    prepared::Prepare,
    schema::{email_log, email_suppressions},
};

/// How long a claimed ("sending") email may stay claimed without its worker
/// renewing the claim before another worker may take it over. The live
/// worker renews it every third of this (`renew_claim`), so the lease only
/// runs out when the worker died: then the email goes again within seconds,
/// not minutes, however long an SMTP conversation may take. 15 s: at 30 s
/// the confirmations a `kill -9` of every worker cut went out 33 s after
/// the workers were back (RELIABILITY.md), over the 30 s target.
pub const SENDING_LEASE_SECS: i64 = 15;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = email_log, check_for_backend(diesel::pg::Pg))]
pub struct EmailRow {
    pub id: Uuid,
    pub dedupe_key: String,
    pub template: String,
    pub to_address: String,
    pub user_id: Option<Uuid>,
    pub params: serde_json::Value,
    pub status: String,
    pub attempts: i32,
    pub message_id: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = email_log)]
pub struct NewEmail<'a> {
    pub id: Uuid,
    pub dedupe_key: &'a str,
    pub template: &'a str,
    pub to_address: &'a str,
    pub user_id: Option<Uuid>,
    pub params: serde_json::Value,
}

impl NewEmail<'_> {
    /// Records an email to send. Returns its id, or `None` when an email with
    /// the same dedupe key exists already (the cause was already handled).
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<Option<Uuid>> {
        Ok(NewEmail::insert_many(conn, std::slice::from_ref(self))
            .await?
            .pop())
    }

    /// Records several emails; returns the ids of those that were new.
    pub async fn insert_many(
        conn: &mut AsyncPgConnection,
        emails: &[NewEmail<'_>],
    ) -> QueryResult<Vec<Uuid>> {
        use diesel::sql_types::{Array, Jsonb, Nullable, Text, Uuid as SqlUuid};
        let written: Vec<super::IdRow> = diesel::sql_query(
            "INSERT INTO email_log (id, dedupe_key, template, to_address, user_id, params)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::jsonb[])
             ON CONFLICT (dedupe_key) DO NOTHING
             RETURNING id",
        )
        .bind::<Array<SqlUuid>, _>(emails.iter().map(|e| e.id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(emails.iter().map(|e| e.dedupe_key).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(emails.iter().map(|e| e.template).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(emails.iter().map(|e| e.to_address).collect::<Vec<_>>())
        .bind::<Array<Nullable<SqlUuid>>, _>(emails.iter().map(|e| e.user_id).collect::<Vec<_>>())
        .bind::<Array<Jsonb>, _>(emails.iter().map(|e| &e.params).collect::<Vec<_>>())
        .prepared()
        .load(conn)
        .await?;
        Ok(written.into_iter().map(|w| w.id).collect())
    }

    /// Writes up to `limit` reminders of the event's start `starts_at`, one
    /// per ticket holder (the attendee's address on each of their tickets
    /// still valid), skipping holders reminded of this start already and
    /// suppressed addresses; returns the ids written. One statement, so a
    /// fan-out is many short ones: nothing holds a transaction for a whole
    /// event. Exactly once per (event, start, holder) through the dedupe key,
    /// whoever runs it and however often.
    pub async fn write_reminders(
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
        starts_at: DateTime<Utc>,
        limit: i64,
    ) -> QueryResult<Vec<Uuid>> {
        use diesel::sql_types::{BigInt, Timestamptz, Uuid as SqlUuid};
        let written: Vec<super::IdRow> = diesel::sql_query(
            "INSERT INTO email_log (id, dedupe_key, template, to_address, params)
             SELECT gen_random_uuid(), h.key, 'event_reminder', h.address,
                    jsonb_build_object('event_id', $1, 'starts_at', $2, 'address', h.address)
               FROM (SELECT DISTINCT lower(attendee_email) AS address,
                            'event_reminder:' || $1 || ':' || extract(epoch FROM $2)::bigint
                                || ':' || lower(attendee_email) AS key
                       FROM tickets
                      WHERE event_id = $1 AND status <> 'void') h
              WHERE NOT EXISTS (SELECT 1 FROM email_log e WHERE e.dedupe_key = h.key)
                AND NOT EXISTS (SELECT 1 FROM email_suppressions s WHERE s.address = h.address)
              ORDER BY h.address
              LIMIT $3
             ON CONFLICT (dedupe_key) DO NOTHING
             RETURNING id",
        )
        .bind::<SqlUuid, _>(event_id)
        .bind::<Timestamptz, _>(starts_at)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?;
        Ok(written.into_iter().map(|r| r.id).collect())
    }
}

/// Which emails ops want to see (`None`: any).
#[derive(Debug, Default)]
pub struct EmailFilter<'a> {
    /// The recipient, case-insensitively.
    pub to: Option<&'a str>,
    /// The template.
    pub kind: Option<&'a str>,
    pub status: Option<&'a str>,
}

/// The statuses of `email_log`.
pub const EMAIL_STATUSES: [&str; 5] = ["pending", "sending", "sent", "failed", "skipped"];

impl EmailRow {
    /// Emails matching `filter`, newest first, after the `(created_at, id)`
    /// cursor.
    pub async fn list(
        conn: &mut AsyncPgConnection,
        filter: &EmailFilter<'_>,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> QueryResult<Vec<EmailRow>> {
        let mut query = email_log::table.into_boxed();
        if let Some(to) = filter.to {
            query = query.filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>("lower(email_log.to_address) = ")
                    .bind::<diesel::sql_types::Text, _>(to.to_lowercase()),
            );
        }
        if let Some(kind) = filter.kind {
            query = query.filter(email_log::template.eq(kind));
        }
        if let Some(status) = filter.status {
            query = query.filter(email_log::status.eq(status));
        }
        if let Some((at, id)) = after {
            query = query.filter(
                email_log::created_at
                    .lt(at)
                    .or(email_log::created_at.eq(at).and(email_log::id.lt(id))),
            );
        }
        query
            .order((email_log::created_at.desc(), email_log::id.desc()))
            .limit(limit)
            .select(EmailRow::as_select())
            .load(conn)
            .await
    }

    pub async fn find_by_key(
        conn: &mut AsyncPgConnection,
        dedupe_key: &str,
    ) -> QueryResult<Option<EmailRow>> {
        email_log::table
            .filter(email_log::dedupe_key.eq(dedupe_key))
            .select(EmailRow::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Sends an ended email (sent, failed or skipped) again: `pending`
    /// once more, for a new job. `None` if it is still on its way
    /// (`pending` or `sending`): a second resend does not send it twice.
    pub async fn resend(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<EmailRow>> {
        diesel::update(
            email_log::table
                .find(id)
                .filter(email_log::status.eq_any(["sent", "failed", "skipped"])),
        )
        .set((
            email_log::status.eq("pending"),
            email_log::last_error.eq(None::<String>),
        ))
        .returning(EmailRow::as_returning())
        .get_result(conn)
        .await
        .optional()
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<EmailRow>> {
        email_log::table
            .find(id)
            .select(EmailRow::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Claims emails for sending; returns those claimed. One left out is
    /// held by another worker, already sent, or ended (`failed`,
    /// `skipped`): its caller must not send it. A claim older than the
    /// lease is taken over (its worker died mid-send).
    pub async fn claim_many(
        conn: &mut AsyncPgConnection,
        ids: &[Uuid],
    ) -> QueryResult<Vec<EmailRow>> {
        let stale = Utc::now() - chrono::Duration::seconds(SENDING_LEASE_SECS);
        diesel::update(
            email_log::table.filter(email_log::id.eq_any(ids)).filter(
                email_log::status.eq("pending").or(email_log::status
                    .eq("sending")
                    .and(email_log::updated_at.lt(stale))),
            ),
        )
        .set((
            email_log::status.eq("sending"),
            email_log::attempts.eq(email_log::attempts + 1),
        ))
        .returning(EmailRow::as_returning())
        .prepared()
        .get_results(conn)
        .await
    }

    /// Renews the claim on an email still being sent (see
    /// `SENDING_LEASE_SECS`); `false` if it is no longer ours to send.
    pub async fn renew_claim(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
        // The `updated_at` trigger stamps the renewal.
        let n = diesel::update(
            email_log::table
                .find(id)
                .filter(email_log::status.eq("sending")),
        )
        .set(email_log::status.eq("sending"))
        .execute(conn)
        .await?;
        Ok(n == 1)
    }

    /// Marks emails sent, each with the `Message-ID` it went out with.
    pub async fn mark_sent_many(
        conn: &mut AsyncPgConnection,
        sent: &[(Uuid, String)],
    ) -> QueryResult<usize> {
        let (ids, message_ids): (Vec<Uuid>, Vec<&str>) =
            sent.iter().map(|(id, m)| (*id, m.as_str())).unzip();
        diesel::sql_query(
            "UPDATE email_log
                SET status = 'sent', sent_at = now(), message_id = m.message_id, last_error = NULL
               FROM unnest($1::uuid[], $2::text[]) AS m(id, message_id)
              WHERE email_log.id = m.id",
        )
        .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(ids)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(message_ids)
        .prepared()
        .execute(conn)
        .await
    }

    /// Failed for good (refused by the server, or it cannot be built):
    /// `failed`, with why. Nothing sends it again unless ops resend it.
    pub async fn mark_failed(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        error: &str,
    ) -> QueryResult<usize> {
        Self::end_claim(conn, id, "failed", error).await
    }

    /// Not sent this time (the server or the network failed): `pending`
    /// again with the error, due `after` from now (the sweep takes it up
    /// only if its job is then overdue).
    pub async fn mark_for_retry(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        error: &str,
        after: chrono::Duration,
    ) -> QueryResult<usize> {
        diesel::update(
            email_log::table
                .find(id)
                .filter(email_log::status.eq("sending")),
        )
        .set((
            email_log::status.eq("pending"),
            email_log::last_error.eq(error),
            email_log::due_at.eq(Utc::now() + after),
        ))
        .prepared()
        .execute(conn)
        .await
    }

    /// No longer had a reason to go when its turn came: `skipped`, with why.
    pub async fn mark_skipped(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        why: &str,
    ) -> QueryResult<usize> {
        Self::end_claim(conn, id, "skipped", why).await
    }

    async fn end_claim(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        status: &str,
        error: &str,
    ) -> QueryResult<usize> {
        diesel::update(
            email_log::table
                .find(id)
                .filter(email_log::status.eq("sending")),
        )
        .set((
            email_log::status.eq(status),
            email_log::last_error.eq(error),
        ))
        .prepared()
        .execute(conn)
        .await
    }

    /// Emails written but not sent after `older_than`: their job was lost
    /// (Redis down at enqueue time, a worker crash) and must be pushed again.
    pub async fn unsent(
        conn: &mut AsyncPgConnection,
        older_than: chrono::Duration,
        limit: i64,
    ) -> QueryResult<Vec<Uuid>> {
        let cutoff = Utc::now() - older_than;
        let stale_claim = Utc::now() - chrono::Duration::seconds(SENDING_LEASE_SECS);
        email_log::table
            .filter(
                email_log::status
                    .eq("pending")
                    .and(email_log::due_at.lt(cutoff))
                    .or(email_log::status
                        .eq("sending")
                        .and(email_log::updated_at.lt(stale_claim))),
            )
            .order(email_log::due_at)
            .limit(limit)
            .select(email_log::id)
            .load(conn)
            .await
    }
}

/// Addresses that unsubscribed from reminders and organizers' messages
/// (never from transactional email).
pub struct Suppression;

impl Suppression {
    /// Adds the address; `false` if it was there already.
    pub async fn add(conn: &mut AsyncPgConnection, address: &str) -> QueryResult<bool> {
        let n = diesel::insert_into(email_suppressions::table)
            .values(email_suppressions::address.eq(address))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        Ok(n == 1)
    }

    pub async fn contains(conn: &mut AsyncPgConnection, address: &str) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(
            email_suppressions::table.filter(email_suppressions::address.eq(address)),
        ))
        .get_result(conn)
        .await
    }
}
