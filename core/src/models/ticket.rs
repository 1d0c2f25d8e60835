//! Tickets: one per seat of a paid order, with an unguessable code.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{prepared::Prepare, schema::tickets};

text_status!(
    /// `valid` until scanned at the door (`checked_in`) or voided (a refund,
    /// a cancelled event).
    TicketStatus {
        Valid => "valid",
        Void => "void",
        CheckedIn => "checked_in",
    }
);

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = tickets, check_for_backend(diesel::pg::Pg))]
pub struct Ticket {
    pub id: Uuid,
    pub order_id: Uuid,
    pub order_item_id: Uuid,
    pub event_id: Uuid,
    pub tier_id: Uuid,
    pub owner_id: Uuid,
    pub code: String,
    pub seat_index: i32,
    pub attendee_name: String,
    pub attendee_email: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Ticket {
    pub fn status(&self) -> TicketStatus {
        TicketStatus::parse(&self.status).unwrap_or(TicketStatus::Void)
    }

    /// Inserts the tickets of an order. Idempotent: (item, seat) is unique, so
    /// a second issuance for the same order inserts nothing. One statement
    /// text for any number of tickets (arrays, not a `VALUES` row each), so
    /// it is parsed once per connection.
    pub async fn issue(conn: &mut AsyncPgConnection, tickets: &[Ticket]) -> QueryResult<usize> {
        use diesel::sql_types::{Array, Integer, Text, Timestamptz, Uuid as SqlUuid};
        let uuids = |f: fn(&Ticket) -> Uuid| tickets.iter().map(f).collect::<Vec<_>>();
        let texts = |f: fn(&Ticket) -> &str| tickets.iter().map(f).collect::<Vec<_>>();
        let times = |f: fn(&Ticket) -> DateTime<Utc>| tickets.iter().map(f).collect::<Vec<_>>();
        diesel::sql_query(
            "INSERT INTO tickets (id, order_id, order_item_id, event_id, tier_id, owner_id, code,
                                  seat_index, attendee_name, attendee_email, status, created_at, updated_at)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[],
                                  $7::text[], $8::int[], $9::text[], $10::text[], $11::text[],
                                  $12::timestamptz[], $13::timestamptz[])
             ON CONFLICT (order_item_id, seat_index) DO NOTHING",
        )
        .bind::<Array<SqlUuid>, _>(uuids(|t| t.id))
        .bind::<Array<SqlUuid>, _>(uuids(|t| t.order_id))
        .bind::<Array<SqlUuid>, _>(uuids(|t| t.order_item_id))
        .bind::<Array<SqlUuid>, _>(uuids(|t| t.event_id))
        .bind::<Array<SqlUuid>, _>(uuids(|t| t.tier_id))
        .bind::<Array<SqlUuid>, _>(uuids(|t| t.owner_id))
        .bind::<Array<Text>, _>(texts(|t| &t.code))
        .bind::<Array<Integer>, _>(tickets.iter().map(|t| t.seat_index).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(texts(|t| &t.attendee_name))
        .bind::<Array<Text>, _>(texts(|t| &t.attendee_email))
        .bind::<Array<Text>, _>(texts(|t| &t.status))
        .bind::<Array<Timestamptz>, _>(times(|t| t.created_at))
        .bind::<Array<Timestamptz>, _>(times(|t| t.updated_at))
        .prepared()
        .execute(conn)
        .await
    }

    pub async fn for_order(
        conn: &mut AsyncPgConnection,
        order_id: Uuid,
    ) -> QueryResult<Vec<Ticket>> {
        Ticket::for_orders(conn, &[order_id]).await
    }

    /// The orders' tickets, by order item and seat.
    pub async fn for_orders(
        conn: &mut AsyncPgConnection,
        order_ids: &[Uuid],
    ) -> QueryResult<Vec<Ticket>> {
        tickets::table
            .filter(tickets::order_id.eq_any(order_ids))
            .select(Ticket::as_select())
            .order((tickets::order_item_id, tickets::seat_index))
            .load(conn)
            .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Ticket> {
        tickets::table
            .find(id)
            .select(Ticket::as_select())
            .first(conn)
            .await
    }

    /// An owner's tickets, newest first, keyset-paginated on (created_at, id).
    pub async fn for_owner(
        conn: &mut AsyncPgConnection,
        owner_id: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> QueryResult<Vec<Ticket>> {
        let mut query = tickets::table
            .filter(tickets::owner_id.eq(owner_id))
            .select(Ticket::as_select())
            .order((tickets::created_at.desc(), tickets::id.desc()))
            .limit(limit)
            .into_boxed();
        if let Some((created_at, id)) = after {
            query = query.filter(
                tickets::created_at
                    .lt(created_at)
                    .or(tickets::created_at.eq(created_at).and(tickets::id.lt(id))),
            );
        }
        query.load(conn).await
    }

    /// These tickets, where still valid (or scanned: a refund takes the
    /// seat back either way), are void. Returns those voided now, so a
    /// retried refund voids and gives back nothing twice.
    pub async fn void_many(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Vec<Ticket>> {
        diesel::update(
            tickets::table
                .filter(tickets::id.eq_any(ids))
                .filter(tickets::status.ne(TicketStatus::Void.as_str())),
        )
        .set(tickets::status.eq(TicketStatus::Void.as_str()))
        .returning(Ticket::as_returning())
        .get_results(conn)
        .await
    }

    /// The order's valid tickets are void (they no longer validate).
    pub async fn void_for_order(
        conn: &mut AsyncPgConnection,
        order_id: Uuid,
    ) -> QueryResult<usize> {
        diesel::update(
            tickets::table
                .filter(tickets::order_id.eq(order_id))
                .filter(tickets::status.eq(TicketStatus::Valid.as_str())),
        )
        .set(tickets::status.eq(TicketStatus::Void.as_str()))
        .execute(conn)
        .await
    }
}
