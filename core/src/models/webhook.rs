//! Organizers' webhook endpoints and their deliveries (see
//! [`crate::webhooks`] for the life of a delivery).

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Array, BigInt, Int4, Interval, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::IdRow;
use crate::{prepared::Prepare, schema::webhook_endpoints, webhooks};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints, check_for_backend(diesel::pg::Pg))]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub organizer_id: Uuid,
    pub url: String,
    pub secret: String,
    pub event_types: Vec<Option<String>>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub description: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A registration, validated by the caller.
pub struct NewEndpoint<'a> {
    pub organizer_id: Uuid,
    pub url: &'a str,
    pub description: &'a str,
    pub event_types: &'a [String],
    pub enabled: bool,
}

/// A `PATCH`: `None` leaves a field as it is.
#[derive(Default)]
pub struct EndpointChanges<'a> {
    pub url: Option<&'a str>,
    pub description: Option<&'a str>,
    pub event_types: Option<&'a [String]>,
    pub enabled: Option<bool>,
}

fn interval(d: Duration) -> diesel::data_types::PgInterval {
    diesel::data_types::PgInterval::from_microseconds(d.as_micros() as i64)
}

impl WebhookEndpoint {
    pub fn event_types(&self) -> Vec<String> {
        self.event_types.iter().flatten().cloned().collect()
    }

    /// The secrets that sign at `now`: the current one, and the one a
    /// rotation replaced until its overlap ends.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(old), Some(until)) = (&self.previous_secret, self.previous_secret_until)
            && until > now
        {
            secrets.push(old);
        }
        secrets
    }

    pub async fn create(conn: &mut AsyncPgConnection, new: &NewEndpoint<'_>) -> QueryResult<Self> {
        diesel::insert_into(webhook_endpoints::table)
            .values((
                webhook_endpoints::id.eq(Uuid::now_v7()),
                webhook_endpoints::organizer_id.eq(new.organizer_id),
                webhook_endpoints::url.eq(new.url),
                webhook_endpoints::description.eq(new.description),
                webhook_endpoints::secret.eq(webhooks::new_secret()),
                webhook_endpoints::event_types.eq(new
                    .event_types
                    .iter()
                    .cloned()
                    .map(Some)
                    .collect::<Vec<_>>()),
                webhook_endpoints::enabled.eq(new.enabled),
            ))
            .returning(Self::as_returning())
            .get_result(conn)
            .await
    }

    /// The organizer's endpoints, oldest first.
    pub async fn list(conn: &mut AsyncPgConnection, organizer_id: Uuid) -> QueryResult<Vec<Self>> {
        webhook_endpoints::table
            .filter(webhook_endpoints::organizer_id.eq(organizer_id))
            .order(webhook_endpoints::id)
            .select(Self::as_select())
            .load(conn)
            .await
    }

    /// One endpoint, if it is the organizer's.
    pub async fn find_owned(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        organizer_id: Uuid,
    ) -> QueryResult<Option<Self>> {
        webhook_endpoints::table
            .find(id)
            .filter(webhook_endpoints::organizer_id.eq(organizer_id))
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Applies a `PATCH`. Enabling a disabled endpoint starts it afresh: its
    /// run of failures is forgotten.
    pub async fn update(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        changes: &EndpointChanges<'_>,
    ) -> QueryResult<Self> {
        let types: Option<Vec<Option<String>>> = changes
            .event_types
            .map(|t| t.iter().cloned().map(Some).collect());
        diesel::sql_query(
            "UPDATE webhook_endpoints SET
                 url = coalesce($2, url),
                 description = coalesce($3, description),
                 event_types = coalesce($4, event_types),
                 enabled = coalesce($5, enabled),
                 disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END,
                 disabled_at = CASE WHEN $5 THEN NULL
                                    WHEN $5 = false AND enabled THEN now()
                                    ELSE disabled_at END,
                 failing_since = CASE WHEN $5 AND NOT enabled THEN NULL ELSE failing_since END
              WHERE id = $1
          RETURNING *",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<Nullable<Text>, _>(changes.url)
        .bind::<Nullable<Text>, _>(changes.description)
        .bind::<Nullable<Array<Nullable<Text>>>, _>(types)
        .bind::<Nullable<diesel::sql_types::Bool>, _>(changes.enabled)
        .get_result::<EndpointRow>(conn)
        .await
        .map(Into::into)
    }

    pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
        diesel::delete(webhook_endpoints::table.find(id))
            .execute(conn)
            .await
            .map(drop)
    }

    /// A new secret; the old one keeps signing beside it for `overlap`, so
    /// receivers can switch without dropping a delivery.
    pub async fn rotate(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        overlap: Duration,
    ) -> QueryResult<Self> {
        diesel::sql_query(
            "UPDATE webhook_endpoints
                SET previous_secret = secret, previous_secret_until = now() + $2, secret = $3
              WHERE id = $1
          RETURNING *",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<Interval, _>(interval(overlap))
        .bind::<Text, _>(webhooks::new_secret())
        .get_result::<EndpointRow>(conn)
        .await
        .map(Into::into)
    }
}

/// `RETURNING *` of `webhook_endpoints`, by name.
#[derive(QueryableByName)]
#[diesel(table_name = webhook_endpoints, check_for_backend(diesel::pg::Pg))]
struct EndpointRow {
    id: Uuid,
    organizer_id: Uuid,
    url: String,
    secret: String,
    event_types: Vec<Option<String>>,
    enabled: bool,
    disabled_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    description: String,
    previous_secret: Option<String>,
    previous_secret_until: Option<DateTime<Utc>>,
    failing_since: Option<DateTime<Utc>>,
    disabled_at: Option<DateTime<Utc>>,
}

impl From<EndpointRow> for WebhookEndpoint {
    fn from(r: EndpointRow) -> Self {
        Self {
            id: r.id,
            organizer_id: r.organizer_id,
            url: r.url,
            secret: r.secret,
            event_types: r.event_types,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
            description: r.description,
            previous_secret: r.previous_secret,
            previous_secret_until: r.previous_secret_until,
            failing_since: r.failing_since,
            disabled_at: r.disabled_at,
        }
    }
}

text_status!(
    DeliveryStatus {
        Pending => "pending",
        Sending => "sending",
        Delivered => "delivered",
        Failed => "failed",
        Exhausted => "exhausted",
    }
);

/// A delivery as its endpoint's log shows it.
#[derive(Debug, Clone, QueryableByName)]
pub struct DeliveryRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub event_id: Uuid,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Int4)]
    pub attempts: i32,
    #[diesel(sql_type = Nullable<Int4>)]
    pub last_status_code: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
    #[diesel(sql_type = Nullable<Int4>)]
    pub last_latency_ms: Option<i32>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub delivered_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

impl DeliveryRow {
    /// The next attempt, while one is planned.
    pub fn next_attempt(&self) -> Option<DateTime<Utc>> {
        matches!(
            DeliveryStatus::parse(&self.status),
            Some(DeliveryStatus::Pending | DeliveryStatus::Failed)
        )
        .then_some(self.next_attempt_at)
        .flatten()
    }
}

/// One attempt, claimed: what to send and where.
#[derive(Debug, Clone, QueryableByName)]
pub struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub endpoint_id: Uuid,
    #[diesel(sql_type = Int4)]
    pub attempts: i32,
    #[diesel(sql_type = SqlUuid)]
    pub event_id: Uuid,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    pub data: serde_json::Value,
    #[diesel(sql_type = Timestamptz)]
    pub event_at: DateTime<Utc>,
}

/// What a claim found.
#[derive(Debug)]
pub enum Claim {
    /// Send this attempt, to this endpoint.
    Ready(Box<(Claimed, WebhookEndpoint)>),
    /// Nothing to do: delivered, exhausted, gone, not due yet, or another
    /// worker's attempt is in flight.
    Nothing,
    /// The endpoint has its fill of attempts in flight: try again later.
    Busy,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: i32,
    /// The receiver's `Retry-After`, on a 429 or 503.
    pub retry_after: Option<Duration>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// What recording an attempt decided.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Push the next attempt after this long.
    pub retry_in: Option<Duration>,
    /// The endpoint was disabled by this attempt: the email telling its
    /// owner, written in the same transaction.
    pub email: Option<Uuid>,
}

/// A delivery's columns for its log, from `d` joined to its event `e`.
const DELIVERY_COLUMNS: &str = "d.id, d.event_id, e.type AS event_type, d.status, d.attempts,
    d.last_status_code, d.last_error, d.last_latency_ms, d.next_attempt_at, d.delivered_at,
    d.created_at";

/// Deliveries: the relay, the claim of an attempt, its outcome, the log.
pub struct Delivery;

impl Delivery {
    /// New deliveries not yet pushed, marked pushed (the caller pushes
    /// their jobs; one lost is found by [`Delivery::lost`]).
    pub async fn relay(conn: &mut AsyncPgConnection, limit: i64) -> QueryResult<Vec<Uuid>> {
        let rows: Vec<IdRow> = diesel::sql_query(
            "UPDATE webhook_deliveries SET queued_at = now()
              WHERE id IN (SELECT id FROM webhook_deliveries WHERE queued_at IS NULL
                            ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED)
          RETURNING id",
        )
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    /// Deliveries whose job is lost: due more than `grace` ago and not
    /// started, or an attempt in flight past its lease (its worker died; the
    /// attempt counts as failed). Marked due now, for the caller to push.
    pub async fn lost(
        conn: &mut AsyncPgConnection,
        grace: Duration,
        limit: i64,
    ) -> QueryResult<Vec<Uuid>> {
        let rows: Vec<IdRow> = diesel::sql_query(
            "UPDATE webhook_deliveries
                SET status = CASE WHEN status = 'sending' THEN 'failed' ELSE status END,
                    last_error = CASE WHEN status = 'sending'
                                      THEN 'the attempt was lost (its worker stopped)'
                                      ELSE last_error END,
                    next_attempt_at = now(), queued_at = now()
              WHERE id IN (SELECT id FROM webhook_deliveries
                            WHERE status IN ('pending', 'sending', 'failed')
                              AND next_attempt_at < now() - $1 AND queued_at IS NOT NULL
                            ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
          RETURNING id",
        )
        .bind::<Interval, _>(interval(grace))
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    /// Claims the due attempt of a delivery for `lease`, unless its
    /// endpoint has `cap` attempts in flight already. The endpoint's row is
    /// locked before counting (the count, a statement of its own, sees every
    /// claim committed until then), so two workers cannot both take the
    /// last slot.
    pub async fn claim(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        lease: Duration,
        cap: i64,
    ) -> QueryResult<Claim> {
        use crate::schema::webhook_deliveries as d;
        conn.transaction(async |conn| {
            // A job pushed early (a duplicate, a redelivery's) finds its row
            // not due, and the row's own job comes at its time; a `sending`
            // row past its lease was held by a worker that stopped.
            let Some(endpoint) = d::table
                .inner_join(webhook_endpoints::table)
                .filter(d::id.eq(id))
                .filter(d::status.eq_any([
                    DeliveryStatus::Pending.as_str(),
                    DeliveryStatus::Failed.as_str(),
                    DeliveryStatus::Sending.as_str(),
                ]))
                .filter(d::next_attempt_at.le(diesel::dsl::now))
                .select(WebhookEndpoint::as_select())
                .for_update()
                .get_result::<WebhookEndpoint>(conn)
                .await
                .optional()?
            else {
                return Ok(Claim::Nothing);
            };
            if !endpoint.enabled {
                diesel::sql_query(
                    "UPDATE webhook_deliveries
                        SET status = 'exhausted', next_attempt_at = NULL,
                            last_error = 'the endpoint is disabled'
                      WHERE id = $1",
                )
                .bind::<SqlUuid, _>(id)
                .execute(conn)
                .await?;
                return Ok(Claim::Nothing);
            }
            let claimed: Option<Claimed> = diesel::sql_query(
                "UPDATE webhook_deliveries d
                    SET status = 'sending', attempts = attempts + 1, next_attempt_at = now() + $2
                   FROM webhook_events e
                  WHERE d.id = $1 AND e.id = d.event_id
                    AND (SELECT count(*) FROM webhook_deliveries f
                          WHERE f.endpoint_id = d.endpoint_id AND f.status = 'sending'
                            AND f.next_attempt_at > now()) < $3
              RETURNING d.id, d.endpoint_id, d.attempts, e.id AS event_id, e.type AS event_type,
                        e.data, e.created_at AS event_at",
            )
            .bind::<SqlUuid, _>(id)
            .bind::<Interval, _>(interval(lease))
            .bind::<BigInt, _>(cap)
            .prepared()
            .get_result(conn)
            .await
            .optional()?;
            Ok(match claimed {
                Some(claimed) => Claim::Ready(Box::new((claimed, endpoint))),
                None => Claim::Busy,
            })
        })
        .await
    }

    /// Records how the claimed attempt ended, unless the claim was lost
    /// meanwhile (its lease ran out and another worker took the delivery).
    /// A success clears the endpoint's run of failures; a 410 disables the
    /// endpoint; another failure plans the next attempt from `schedule`, and
    /// disables the endpoint once it has failed for `disable_after`.
    pub async fn record(
        conn: &mut AsyncPgConnection,
        claimed: &Claimed,
        attempt: &Attempt,
        schedule: &[Duration],
        disable_after: Duration,
    ) -> QueryResult<Recorded> {
        let code = attempt.status_code.map(i32::from);
        if attempt.succeeded() {
            // One statement: the delivery, and the endpoint's run of
            // failures ended (only if the claim still held).
            diesel::sql_query(
                "WITH d AS (
                    UPDATE webhook_deliveries
                       SET status = 'delivered', delivered_at = now(), next_attempt_at = NULL,
                           last_status_code = $3, last_error = NULL, last_latency_ms = $4
                     WHERE id = $1 AND status = 'sending' AND attempts = $2
                 RETURNING endpoint_id)
                 UPDATE webhook_endpoints SET failing_since = NULL
                  WHERE id IN (SELECT endpoint_id FROM d) AND failing_since IS NOT NULL",
            )
            .bind::<SqlUuid, _>(claimed.id)
            .bind::<Int4, _>(claimed.attempts)
            .bind::<Nullable<Int4>, _>(code)
            .bind::<Int4, _>(attempt.latency_ms)
            .prepared()
            .execute(conn)
            .await?;
            return Ok(Recorded::default());
        }
        conn.transaction(async |conn| {
            let mut recorded = Recorded::default();
            let gone = attempt.status_code == Some(410);
            let retry_in = if gone {
                None
            } else {
                webhooks::next_attempt_in(schedule, claimed.attempts as u32, attempt.retry_after)
            };
            let n = diesel::sql_query(
                "UPDATE webhook_deliveries
                    SET status = CASE WHEN $5::interval IS NULL THEN 'exhausted' ELSE 'failed' END,
                        next_attempt_at = now() + $5, queued_at = now(),
                        last_status_code = $3, last_error = $6, last_latency_ms = $4
                  WHERE id = $1 AND status = 'sending' AND attempts = $2",
            )
            .bind::<SqlUuid, _>(claimed.id)
            .bind::<Int4, _>(claimed.attempts)
            .bind::<Nullable<Int4>, _>(code)
            .bind::<Int4, _>(attempt.latency_ms)
            .bind::<Nullable<Interval>, _>(retry_in.map(interval))
            .bind::<Nullable<Text>, _>(attempt.error.as_deref())
            .execute(conn)
            .await?;
            if n == 0 {
                return Ok(recorded);
            }
            recorded.retry_in = retry_in;
            let reason = if gone {
                Some("the endpoint answered 410 Gone".to_owned())
            } else {
                None
            };
            // Starts the run of failures, or ends the endpoint if the run
            // has lasted long enough.
            let disabled: Option<EnabledRow> = diesel::sql_query(
                "UPDATE webhook_endpoints
                    SET failing_since = coalesce(failing_since, now()),
                        enabled = CASE WHEN $2::text IS NOT NULL
                                         OR coalesce(failing_since, now()) <= now() - $3
                                       THEN false ELSE enabled END,
                        disabled_at = CASE WHEN $2::text IS NOT NULL
                                             OR coalesce(failing_since, now()) <= now() - $3
                                           THEN now() ELSE disabled_at END,
                        disabled_reason = CASE
                            WHEN $2::text IS NOT NULL THEN $2
                            WHEN coalesce(failing_since, now()) <= now() - $3
                            THEN 'every delivery failed since '
                                 || to_char(failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
                                 || ' UTC'
                            ELSE disabled_reason END
                  WHERE id = $1 AND enabled
              RETURNING id, organizer_id, enabled, coalesce(disabled_at, now()) AS disabled_at",
            )
            .bind::<SqlUuid, _>(claimed.endpoint_id)
            .bind::<Nullable<Text>, _>(reason)
            .bind::<Interval, _>(interval(disable_after))
            .get_result::<EnabledRow>(conn)
            .await
            .optional()?;
            if let Some(endpoint) = disabled.filter(|r| !r.enabled) {
                let owner = super::User::find(conn, endpoint.organizer_id).await?;
                let dedupe = format!(
                    "webhook_endpoint_disabled:{}:{}",
                    endpoint.id,
                    endpoint.disabled_at.timestamp_micros()
                );
                recorded.email = super::NewEmail {
                    id: Uuid::now_v7(),
                    dedupe_key: &dedupe,
                    template: "webhook_endpoint_disabled",
                    to_address: &owner.email,
                    user_id: Some(owner.id),
                    params: serde_json::json!({ "endpoint_id": endpoint.id }),
                }
                .insert(conn)
                .await?;
            }
            Ok(recorded)
        })
        .await
    }

    /// An endpoint's deliveries, newest first, after the keyset `after`
    /// (`created_at`, `id`) of the previous page.
    pub async fn list(
        conn: &mut AsyncPgConnection,
        endpoint_id: Uuid,
        status: Option<DeliveryStatus>,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> QueryResult<Vec<DeliveryRow>> {
        diesel::sql_query(format!(
            "SELECT {DELIVERY_COLUMNS}
               FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
              WHERE d.endpoint_id = $1 AND ($2::text IS NULL OR d.status = $2)
                AND ($3::timestamptz IS NULL OR (d.created_at, d.id) < ($3, $4))
              ORDER BY d.created_at DESC, d.id DESC LIMIT $5"
        ))
        .bind::<SqlUuid, _>(endpoint_id)
        .bind::<Nullable<Text>, _>(status.map(|s| s.as_str()))
        .bind::<Nullable<Timestamptz>, _>(after.map(|a| a.0))
        .bind::<Nullable<SqlUuid>, _>(after.map(|a| a.1))
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await
    }

    pub async fn find(
        conn: &mut AsyncPgConnection,
        endpoint_id: Uuid,
        id: Uuid,
    ) -> QueryResult<Option<DeliveryRow>> {
        diesel::sql_query(format!(
            "SELECT {DELIVERY_COLUMNS}
               FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
              WHERE d.endpoint_id = $1 AND d.id = $2"
        ))
        .bind::<SqlUuid, _>(endpoint_id)
        .bind::<SqlUuid, _>(id)
        .get_result(conn)
        .await
        .optional()
    }

    /// Makes a delivery due now for one more attempt (the same id, so the
    /// receiver can tell it is a repeat). `None` while an attempt is in
    /// flight.
    pub async fn redeliver(
        conn: &mut AsyncPgConnection,
        endpoint_id: Uuid,
        id: Uuid,
    ) -> QueryResult<Option<DeliveryRow>> {
        let touched: Option<IdRow> = diesel::sql_query(
            "UPDATE webhook_deliveries
                SET status = 'pending', next_attempt_at = now(), queued_at = now()
              WHERE endpoint_id = $1 AND id = $2 AND status <> 'sending'
          RETURNING id",
        )
        .bind::<SqlUuid, _>(endpoint_id)
        .bind::<SqlUuid, _>(id)
        .get_result(conn)
        .await
        .optional()?;
        match touched {
            Some(_) => Self::find(conn, endpoint_id, id).await,
            None => Ok(None),
        }
    }

    /// A `ping` to one endpoint: its event and delivery, queued (the caller
    /// pushes the job).
    pub async fn ping(
        conn: &mut AsyncPgConnection,
        endpoint: &WebhookEndpoint,
    ) -> QueryResult<DeliveryRow> {
        let row: IdRow = diesel::sql_query(
            "WITH e AS (
                 INSERT INTO webhook_events (organizer_id, type, data)
                 VALUES ($1, $3, jsonb_build_object('endpoint_id', $2::uuid))
              RETURNING id
             )
             INSERT INTO webhook_deliveries (endpoint_id, event_id, queued_at)
             SELECT $2, e.id, now() FROM e
          RETURNING id",
        )
        .bind::<SqlUuid, _>(endpoint.organizer_id)
        .bind::<SqlUuid, _>(endpoint.id)
        .bind::<Text, _>(webhooks::PING)
        .get_result(conn)
        .await?;
        Self::find(conn, endpoint.id, row.id)
            .await?
            .ok_or(diesel::result::Error::NotFound)
    }
}

#[derive(QueryableByName)]
struct EnabledRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    organizer_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    enabled: bool,
    #[diesel(sql_type = Timestamptz)]
    disabled_at: DateTime<Utc>,
}
