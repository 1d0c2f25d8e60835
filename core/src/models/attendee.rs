//! An event's ticket holders as organizers list and export them: every
//! ticket that admits (valid or checked in), with its tier, order and
//! check-in, by name.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

#[derive(Debug, Clone, QueryableByName)]
pub struct Attendee {
    #[diesel(sql_type = SqlUuid)]
    pub ticket_id: Uuid,
    #[diesel(sql_type = Text)]
    pub attendee_name: String,
    #[diesel(sql_type = Text)]
    pub attendee_email: String,
    #[diesel(sql_type = SqlUuid)]
    pub tier_id: Uuid,
    #[diesel(sql_type = Text)]
    pub tier_name: String,
    #[diesel(sql_type = SqlUuid)]
    pub order_id: Uuid,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub checked_in_at: Option<DateTime<Utc>>,
    /// The sort key: `lower(attendee_name)`.
    #[diesel(sql_type = Text)]
    pub name_key: String,
}

/// Which holders: a substring of name or email, a tier, checked in or not.
#[derive(Debug, Clone, Default)]
pub struct AttendeeFilter {
    pub q: Option<String>,
    pub tier_id: Option<Uuid>,
    pub checked_in: Option<bool>,
}

/// A page of holders after `(name_key, ticket id)`, by name.
pub async fn page(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    filter: &AttendeeFilter,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> QueryResult<Vec<Attendee>> {
    let (after_name, after_id) = after.unzip();
    let pattern = filter.q.as_deref().map(super::contains_pattern);
    diesel::sql_query(
        "SELECT t.id AS ticket_id, t.attendee_name, t.attendee_email, t.tier_id,
                tt.name AS tier_name, t.order_id, t.status, c.created_at AS checked_in_at,
                lower(t.attendee_name) AS name_key
           FROM tickets t
           JOIN ticket_tiers tt ON tt.id = t.tier_id
           LEFT JOIN check_ins c ON c.ticket_id = t.id AND c.undone_at IS NULL
          WHERE t.event_id = $1 AND t.status <> 'void'
            AND ($2::text IS NULL OR lower(t.attendee_name || ' ' || t.attendee_email) LIKE $2)
            AND ($3::uuid IS NULL OR t.tier_id = $3)
            AND ($4::bool IS NULL OR (t.status = 'checked_in') = $4)
            AND ($5::text IS NULL OR (lower(t.attendee_name), t.id) > ($5, $6))
          ORDER BY lower(t.attendee_name), t.id
          LIMIT $7",
    )
    .bind::<SqlUuid, _>(event_id)
    .bind::<Nullable<Text>, _>(pattern)
    .bind::<Nullable<SqlUuid>, _>(filter.tier_id)
    .bind::<Nullable<Bool>, _>(filter.checked_in)
    .bind::<Nullable<Text>, _>(after_name)
    .bind::<Nullable<SqlUuid>, _>(after_id)
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .load(conn)
    .await
}
