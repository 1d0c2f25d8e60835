//! Scans at the door: a ticket is admitted once (until the check-in is
//! undone), by one statement whose row lock makes concurrent scanners of
//! one ticket agree on a single success.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Bool, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{AccessSession, OrderStatus, Role, TicketStatus, user::session_alive};
use crate::{prepared::Prepare, schema::event_staff};

/// What the scanner read: a ticket code, and the ticket id when it came
/// from a signed QR payload.
#[derive(Debug, Clone)]
pub struct Scanned {
    pub code: String,
    pub ticket_id: Option<Uuid>,
}

/// Who scanned, where, and for an offline door app's upload, when and
/// under which nonce.
#[derive(Debug, Clone, Copy)]
pub struct ScanBy<'a> {
    /// The scanner's access session; its user is the operator.
    pub session: AccessSession,
    pub device: Option<&'a str>,
    /// When it was scanned, if earlier than now (offline uploads).
    pub at: Option<DateTime<Utc>>,
    pub nonce: Option<&'a str>,
}

/// A ticket as door apps keep it offline.
#[derive(Debug, Clone, QueryableByName)]
pub struct DoorTicket {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub code: String,
    #[diesel(sql_type = SqlUuid)]
    pub tier_id: Uuid,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

/// A ticket let in.
#[derive(Debug, Clone)]
pub struct Admission {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub tier_id: Uuid,
    pub tier_name: String,
    pub attendee_name: String,
    pub created_at: DateTime<Utc>,
}

/// Why a scan let nobody in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No ticket has this code (or this id and code).
    Unknown,
    OtherEvent,
    /// Given back: its order was refunded.
    Refunded,
    /// Void for another reason (a cancelled event).
    Void,
    AlreadyIn {
        at: DateTime<Utc>,
        by: Option<String>,
        device: Option<String>,
    },
    /// The scanner's access session is over.
    SignedOut,
    /// No such event, or the scanner is not its owner, an admin or its
    /// door staff.
    NotScanner,
}

/// SQL: the scanned ticket (`$1` code, `$2` id or null) with its order's
/// status and its live check-in, to say why a scan was refused.
macro_rules! ticket_state {
    () => {
        ticket_state!("$1", "$2::uuid")
    };
    // The ticket of these SQL expressions' code and id.
    ($code:literal, $id:literal) => {
        concat!(
            "SELECT t.event_id, t.status, o.status AS order_status,
                    c.created_at AS checked_in_at, u.email AS scanned_by, c.device
               FROM tickets t JOIN orders o ON o.id = t.order_id
               LEFT JOIN check_ins c ON c.ticket_id = t.id AND c.undone_at IS NULL
               LEFT JOIN users u ON u.id = c.scanned_by
              WHERE t.code = ",
            $code,
            " AND (",
            $id,
            " IS NULL OR t.id = ",
            $id,
            ")"
        )
    };
}

#[derive(QueryableByName)]
struct TicketState {
    #[diesel(sql_type = SqlUuid)]
    event_id: Uuid,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Text)]
    order_status: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    checked_in_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    scanned_by: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    device: Option<String>,
}

/// A scan's one statement: whether the session and the permission held,
/// the admission if there was one, else the ticket's state.
#[derive(QueryableByName)]
struct Scan {
    #[diesel(sql_type = Bool)]
    signed_in: bool,
    #[diesel(sql_type = Bool)]
    scanner: bool,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    id: Option<Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    ticket_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    tier_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    tier_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    attendee_name: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    created_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    event_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    status: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    order_status: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    checked_in_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    scanned_by: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    device: Option<String>,
}

/// One check-in, for lists.
#[derive(Debug, Clone, QueryableByName)]
pub struct CheckInRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub ticket_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub tier_id: Uuid,
    #[diesel(sql_type = Text)]
    pub attendee_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub device: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub scanned_by: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

/// A tier's tickets and how many are in.
#[derive(Debug, Clone, QueryableByName)]
pub struct TierCount {
    #[diesel(sql_type = SqlUuid)]
    pub tier_id: Uuid,
    #[diesel(sql_type = Text)]
    pub name: String,
    /// Valid or checked in (void tickets do not come).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub tickets: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub checked_in: i64,
}

#[derive(QueryableByName)]
struct Undone {
    #[diesel(sql_type = SqlUuid)]
    #[allow(dead_code)]
    ticket_id: Uuid,
}

/// Admits the scanned ticket if `by`'s session is alive and its user may
/// scan the event (its owner, an admin or its door staff): one statement
/// on the way in, a second only to say why a ticket was refused.
pub async fn admit(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    scanned: &Scanned,
    by: ScanBy<'_>,
) -> QueryResult<Result<Admission, Refusal>> {
    // The UPDATE locks the ticket: a second scanner waits for the first
    // to commit, then finds it no longer `valid`.
    let scan: Scan = diesel::sql_query(concat!(
        "WITH who AS (
             SELECT u.id, u.role
               FROM users u, (SELECT $9::int AS token_version, $10::uuid AS session_id) v
              WHERE u.id = $5 AND ",
        session_alive!(),
        "
         ), ev AS (
             SELECT e.id FROM events e, who
              WHERE e.id = $3
                AND (e.organizer_id = who.id OR who.role = $11
                     OR EXISTS (SELECT 1 FROM event_staff s WHERE s.event_id = e.id AND s.user_id = who.id))
         ), t AS (
             UPDATE tickets SET status = 'checked_in'
              WHERE code = $1 AND ($2::uuid IS NULL OR id = $2)
                AND event_id = (SELECT id FROM ev) AND status = 'valid'
          RETURNING id, tier_id, attendee_name
         ), c AS (
             INSERT INTO check_ins (id, ticket_id, event_id, scanned_by, device, created_at, client_nonce)
             SELECT $4, t.id, $3, $5, $6, least(coalesce($7, now()), now()), $8 FROM t
          RETURNING id, ticket_id, created_at
         )
         SELECT EXISTS (SELECT 1 FROM who) AS signed_in, EXISTS (SELECT 1 FROM ev) AS scanner,
                a.id, a.ticket_id, a.tier_id, a.tier_name, a.attendee_name, a.created_at,
                s.event_id, s.status, s.order_status, s.checked_in_at, s.scanned_by, s.device
           FROM (SELECT) one
           LEFT JOIN (SELECT c.id, c.ticket_id, t.tier_id, tt.name AS tier_name, t.attendee_name, c.created_at
                        FROM c JOIN t ON t.id = c.ticket_id JOIN ticket_tiers tt ON tt.id = t.tier_id) a ON true
           LEFT JOIN (",
        ticket_state!(),
        " AND NOT EXISTS (SELECT 1 FROM t) AND EXISTS (SELECT 1 FROM ev)) s ON true",
    ))
    .bind::<Text, _>(&scanned.code)
    .bind::<Nullable<SqlUuid>, _>(scanned.ticket_id)
    .bind::<SqlUuid, _>(event_id)
    .bind::<SqlUuid, _>(Uuid::now_v7())
    .bind::<SqlUuid, _>(by.session.user_id)
    .bind::<Nullable<Text>, _>(by.device)
    .bind::<Nullable<Timestamptz>, _>(by.at)
    .bind::<Nullable<Text>, _>(by.nonce)
    .bind::<Integer, _>(by.session.token_version)
    .bind::<SqlUuid, _>(by.session.session_id)
    .bind::<Text, _>(Role::Admin.as_str())
    .prepared()
    .get_result(conn)
    .await?;
    decide(conn, event_id, scanned, scan).await
}

/// What a scan's row says: the admission, or why not (reading the ticket's
/// state again if the row's snapshot predates a twin scan's commit).
async fn decide(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    scanned: &Scanned,
    scan: Scan,
) -> QueryResult<Result<Admission, Refusal>> {
    if !scan.signed_in {
        return Ok(Err(Refusal::SignedOut));
    }
    if !scan.scanner {
        return Ok(Err(Refusal::NotScanner));
    }
    if let (
        Some(id),
        Some(ticket_id),
        Some(tier_id),
        Some(tier_name),
        Some(attendee_name),
        Some(created_at),
    ) = (
        scan.id,
        scan.ticket_id,
        scan.tier_id,
        scan.tier_name,
        scan.attendee_name,
        scan.created_at,
    ) {
        return Ok(Ok(Admission {
            id,
            ticket_id,
            tier_id,
            tier_name,
            attendee_name,
            created_at,
        }));
    }
    let state = match (scan.event_id, scan.status, scan.order_status) {
        // Still `valid` in the statement's snapshot, yet not admitted: a
        // concurrent scanner took it. Its check-in is visible to a new
        // statement.
        (Some(ticket_event), Some(status), _)
            if ticket_event == event_id
                && TicketStatus::parse(&status) == Some(TicketStatus::Valid) =>
        {
            diesel::sql_query(ticket_state!())
                .bind::<Text, _>(&scanned.code)
                .bind::<Nullable<SqlUuid>, _>(scanned.ticket_id)
                .prepared()
                .get_result(conn)
                .await
                .optional()?
        }
        (Some(event_id), Some(status), Some(order_status)) => Some(TicketState {
            event_id,
            status,
            order_status,
            checked_in_at: scan.checked_in_at,
            scanned_by: scan.scanned_by,
            device: scan.device,
        }),
        _ => None,
    };
    Ok(Err(match state {
        None => Refusal::Unknown,
        Some(s) if s.event_id != event_id => Refusal::OtherEvent,
        Some(s) if TicketStatus::parse(&s.status) == Some(TicketStatus::CheckedIn) => {
            Refusal::AlreadyIn {
                at: s.checked_in_at.unwrap_or_default(),
                by: s.scanned_by,
                device: s.device,
            }
        }
        Some(s)
            if matches!(
                OrderStatus::parse(&s.order_status),
                Some(OrderStatus::Refunded | OrderStatus::PartiallyRefunded)
            ) =>
        {
            Refusal::Refunded
        }
        // A `valid` ticket here was voided between the statements.
        Some(_) => Refusal::Void,
    }))
}

/// A scan made at the door now, for [`admit_many`].
#[derive(Debug, Clone)]
pub struct DoorScan {
    pub event_id: Uuid,
    pub scanned: Scanned,
    /// The scanner's access session; its user is the operator.
    pub session: AccessSession,
    pub device: Option<String>,
}

#[derive(QueryableByName)]
struct NumberedScan {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
    #[diesel(embed)]
    scan: Scan,
}

/// [`admit`] for many scans in one statement (the door's scans of one
/// process, batched): each is decided as it would be alone. Two scans of
/// one ticket in the batch admit it once, the first; the other is told it
/// is already in. Tickets are locked in id order, so two batches scanning
/// the same tickets wait for each other instead of deadlocking.
pub async fn admit_many(
    conn: &mut AsyncPgConnection,
    scans: &[DoorScan],
) -> QueryResult<Vec<Result<Admission, Refusal>>> {
    use diesel::sql_types::Array;
    let codes: Vec<&str> = scans.iter().map(|s| s.scanned.code.as_str()).collect();
    let ticket_ids: Vec<Option<Uuid>> = scans.iter().map(|s| s.scanned.ticket_id).collect();
    let event_ids: Vec<Uuid> = scans.iter().map(|s| s.event_id).collect();
    let ids: Vec<Uuid> = scans.iter().map(|_| Uuid::now_v7()).collect();
    let users: Vec<Uuid> = scans.iter().map(|s| s.session.user_id).collect();
    let devices: Vec<Option<&str>> = scans.iter().map(|s| s.device.as_deref()).collect();
    let versions: Vec<i32> = scans.iter().map(|s| s.session.token_version).collect();
    let sessions: Vec<Uuid> = scans.iter().map(|s| s.session.session_id).collect();
    let rows: Vec<NumberedScan> = diesel::sql_query(concat!(
        "WITH input AS (
             SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[],
                                  $6::text[], $7::int[], $8::uuid[])
                      WITH ORDINALITY AS i(code, ticket_id, event_id, check_in_id, user_id,
                                           device, token_version, session_id, n)
         ), who AS (
             SELECT v.n, u.id, u.role FROM input v JOIN users u ON u.id = v.user_id
              WHERE ",
        session_alive!(),
        "
         ), ev AS (
             SELECT who.n FROM who JOIN input i ON i.n = who.n JOIN events e ON e.id = i.event_id
              WHERE e.organizer_id = who.id OR who.role = $9
                 OR EXISTS (SELECT 1 FROM event_staff s WHERE s.event_id = e.id AND s.user_id = who.id)
         ), first AS (
             SELECT DISTINCT ON (i.code, i.event_id) i.*
               FROM input i JOIN ev ON ev.n = i.n
              ORDER BY i.code, i.event_id, i.n
         ), locked AS (
             SELECT tk.id, f.n FROM tickets tk JOIN first f
                 ON tk.code = f.code AND (f.ticket_id IS NULL OR tk.id = f.ticket_id)
                AND tk.event_id = f.event_id
              WHERE tk.status = 'valid'
              ORDER BY tk.id FOR UPDATE OF tk
         ), t AS (
             UPDATE tickets SET status = 'checked_in' FROM locked
              WHERE tickets.id = locked.id AND tickets.status = 'valid'
          RETURNING tickets.id, tickets.tier_id, tickets.attendee_name, locked.n
         ), c AS (
             INSERT INTO check_ins (id, ticket_id, event_id, scanned_by, device, created_at)
             SELECT i.check_in_id, t.id, i.event_id, i.user_id, i.device, now()
               FROM t JOIN input i ON i.n = t.n
          RETURNING id, ticket_id, created_at
         )
         SELECT i.n,
                EXISTS (SELECT 1 FROM who WHERE who.n = i.n) AS signed_in,
                EXISTS (SELECT 1 FROM ev WHERE ev.n = i.n) AS scanner,
                a.id, a.ticket_id, a.tier_id, a.tier_name, a.attendee_name, a.created_at,
                s.event_id, s.status, s.order_status, s.checked_in_at, s.scanned_by, s.device
           FROM input i
           LEFT JOIN (SELECT t.n, c.id, c.ticket_id, t.tier_id, tt.name AS tier_name,
                             t.attendee_name, c.created_at
                        FROM c JOIN t ON t.id = c.ticket_id JOIN ticket_tiers tt ON tt.id = t.tier_id) a
                  ON a.n = i.n
           LEFT JOIN LATERAL (",
        ticket_state!("i.code", "i.ticket_id"),
        ") s ON a.n IS NULL AND EXISTS (SELECT 1 FROM ev WHERE ev.n = i.n)
          ORDER BY i.n",
    ))
    .bind::<Array<Text>, _>(&codes)
    .bind::<Array<Nullable<SqlUuid>>, _>(&ticket_ids)
    .bind::<Array<SqlUuid>, _>(&event_ids)
    .bind::<Array<SqlUuid>, _>(&ids)
    .bind::<Array<SqlUuid>, _>(&users)
    .bind::<Array<Nullable<Text>>, _>(&devices)
    .bind::<Array<Integer>, _>(&versions)
    .bind::<Array<SqlUuid>, _>(&sessions)
    .bind::<Text, _>(Role::Admin.as_str())
    .prepared()
    .load(conn)
    .await?;
    // Every input row is one output row (left joins only), in order.
    assert_eq!(rows.len(), scans.len(), "a row per scan");
    let mut answers = Vec::with_capacity(scans.len());
    for (row, scan) in rows.into_iter().zip(scans) {
        assert_eq!(
            row.n as usize,
            answers.len() + 1,
            "rows in the scans' order"
        );
        answers.push(decide(conn, scan.event_id, &scan.scanned, row.scan).await?);
    }
    Ok(answers)
}

/// The ticket an offline scan with this nonce admitted, if it was
/// uploaded before.
pub async fn by_nonce(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    nonce: &str,
) -> QueryResult<Option<Uuid>> {
    crate::schema::check_ins::table
        .filter(crate::schema::check_ins::event_id.eq(event_id))
        .filter(crate::schema::check_ins::client_nonce.eq(nonce))
        .select(crate::schema::check_ins::ticket_id)
        .first(conn)
        .await
        .optional()
}

/// The event's tickets changed after `(updated_at, id)` and at least
/// `settle` ago (so a transaction still committing cannot slip in behind
/// a door app's cursor), oldest change first.
pub async fn door_list(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    settle: std::time::Duration,
    limit: i64,
) -> QueryResult<Vec<DoorTicket>> {
    let (at, id) = after.unzip();
    diesel::sql_query(
        "SELECT id, code, tier_id, status, updated_at FROM tickets
          WHERE event_id = $1
            AND ($2::timestamptz IS NULL OR (updated_at, id) > ($2, $3))
            AND updated_at < now() - make_interval(secs => $4)
          ORDER BY updated_at, id
          LIMIT $5",
    )
    .bind::<SqlUuid, _>(event_id)
    .bind::<Nullable<Timestamptz>, _>(at)
    .bind::<Nullable<SqlUuid>, _>(id)
    .bind::<diesel::sql_types::Double, _>(settle.as_secs_f64())
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .load(conn)
    .await
}

/// Undoes a ticket's check-in: it may be scanned again. `false` if it was
/// not checked in.
pub async fn undo(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    ticket_id: Uuid,
    by: Uuid,
) -> QueryResult<bool> {
    let undone: Option<Undone> = diesel::sql_query(
        "WITH c AS (
             UPDATE check_ins SET undone_at = now(), undone_by = $3
              WHERE ticket_id = $1 AND event_id = $2 AND undone_at IS NULL
          RETURNING ticket_id
         ), t AS (
             UPDATE tickets SET status = 'valid'
              WHERE id IN (SELECT ticket_id FROM c) AND status = 'checked_in'
         )
         SELECT ticket_id FROM c",
    )
    .bind::<SqlUuid, _>(ticket_id)
    .bind::<SqlUuid, _>(event_id)
    .bind::<SqlUuid, _>(by)
    .get_result(conn)
    .await
    .optional()?;
    Ok(undone.is_some())
}

/// Tickets and check-ins per tier of the event.
pub async fn counts(conn: &mut AsyncPgConnection, event_id: Uuid) -> QueryResult<Vec<TierCount>> {
    diesel::sql_query(
        "SELECT tt.id AS tier_id, tt.name,
                count(t.id) FILTER (WHERE t.status <> 'void') AS tickets,
                count(t.id) FILTER (WHERE t.status = 'checked_in') AS checked_in
           FROM ticket_tiers tt LEFT JOIN tickets t ON t.tier_id = tt.id
          WHERE tt.event_id = $1
          GROUP BY tt.id, tt.name, tt.sort_order
          ORDER BY tt.sort_order, tt.id",
    )
    .bind::<SqlUuid, _>(event_id)
    .load(conn)
    .await
}

/// The event's standing check-ins, newest first, after `(created_at, id)`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> QueryResult<Vec<CheckInRow>> {
    let (at, id) = after.unzip();
    diesel::sql_query(
        "SELECT c.id, c.ticket_id, t.tier_id, t.attendee_name, c.device,
                u.email AS scanned_by, c.created_at
           FROM check_ins c JOIN tickets t ON t.id = c.ticket_id
           LEFT JOIN users u ON u.id = c.scanned_by
          WHERE c.event_id = $1 AND c.undone_at IS NULL
            AND ($2::timestamptz IS NULL OR (c.created_at, c.id) < ($2, $3))
          ORDER BY c.created_at DESC, c.id DESC
          LIMIT $4",
    )
    .bind::<SqlUuid, _>(event_id)
    .bind::<Nullable<Timestamptz>, _>(at)
    .bind::<Nullable<SqlUuid>, _>(id)
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .load(conn)
    .await
}

/// A user an organizer lets scan one event's tickets.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = event_staff, check_for_backend(diesel::pg::Pg))]
pub struct Staff {
    pub event_id: Uuid,
    pub user_id: Uuid,
    pub granted_by: Uuid,
    pub created_at: DateTime<Utc>,
}

impl Staff {
    /// Grants the door role (again: no change).
    pub async fn grant(
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
        user_id: Uuid,
        granted_by: Uuid,
    ) -> QueryResult<Staff> {
        diesel::insert_into(event_staff::table)
            .values((
                event_staff::event_id.eq(event_id),
                event_staff::user_id.eq(user_id),
                event_staff::granted_by.eq(granted_by),
            ))
            .on_conflict((event_staff::event_id, event_staff::user_id))
            .do_nothing()
            .execute(conn)
            .await?;
        event_staff::table
            .find((event_id, user_id))
            .select(Staff::as_select())
            .get_result(conn)
            .await
    }

    pub async fn revoke(
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
        user_id: Uuid,
    ) -> QueryResult<bool> {
        let n = diesel::delete(event_staff::table.find((event_id, user_id)))
            .execute(conn)
            .await?;
        Ok(n > 0)
    }

    pub async fn is_staff(
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
        user_id: Uuid,
    ) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(
            event_staff::table.find((event_id, user_id)),
        ))
        .get_result(conn)
        .await
    }

    /// The event's staff with their emails, oldest grant first.
    pub async fn for_event(
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
    ) -> QueryResult<Vec<(Staff, String)>> {
        event_staff::table
            .inner_join(
                crate::schema::users::table.on(crate::schema::users::id.eq(event_staff::user_id)),
            )
            .filter(event_staff::event_id.eq(event_id))
            .order(event_staff::created_at)
            .select((Staff::as_select(), crate::schema::users::email))
            .load(conn)
            .await
    }
}
