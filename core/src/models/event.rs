//! Events: what organizers publish and attendees search for.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::{events, orders};

text_status!(
    EventStatus {
        Draft => "draft",
        Published => "published",
        Cancelled => "cancelled",
        Completed => "completed",
    }
);

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = events, check_for_backend(diesel::pg::Pg))]
pub struct Event {
    pub id: Uuid,
    pub organizer_id: Uuid,
    pub title: String,
    pub description: String,
    pub category: String,
    pub venue_name: String,
    pub address: String,
    pub city: String,
    pub country: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub timezone: String,
    pub capacity: Option<i32>,
    pub cover_image_url: Option<String>,
    pub refund_until_hours: Option<i32>,
    pub currency: String,
    pub max_tickets_per_buyer: Option<i32>,
    pub status: String,
    pub published_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub min_price_minor: Option<i64>,
    pub cancel_message: Option<String>,
    /// Ticket holders get a reminder before the start.
    pub reminders: bool,
    /// The start whose reminders have all been written (see `reminders`).
    pub reminded_for: Option<DateTime<Utc>>,
    /// Named guests get their own ticket email.
    pub guest_emails: bool,
}

/// Everything an organizer sets. Written whole on create and on update (the
/// API merges a PATCH into the current row and validates the result), so
/// `None` means NULL.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = events, treat_none_as_null = true)]
pub struct EventFields {
    pub title: String,
    pub description: String,
    pub category: String,
    pub venue_name: String,
    pub address: String,
    pub city: String,
    pub country: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub timezone: String,
    pub capacity: Option<i32>,
    pub cover_image_url: Option<String>,
    pub refund_until_hours: Option<i32>,
    pub currency: String,
    pub max_tickets_per_buyer: Option<i32>,
    pub reminders: bool,
    pub guest_emails: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = events)]
pub struct NewEvent {
    pub id: Uuid,
    pub organizer_id: Uuid,
    #[diesel(embed)]
    pub fields: EventFields,
}

impl NewEvent {
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<Event> {
        diesel::insert_into(events::table)
            .values(self)
            .returning(Event::as_returning())
            .get_result(conn)
            .await
    }
}

impl Event {
    /// Venue, address and city, as one line.
    pub fn place(&self) -> String {
        [&self.venue_name, &self.address, &self.city]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn status(&self) -> EventStatus {
        EventStatus::parse(&self.status).unwrap_or(EventStatus::Draft)
    }

    /// Until when a buyer may ask for a refund: `refund_until_hours` before
    /// the start; never without a policy.
    pub fn refundable_until(&self) -> Option<DateTime<Utc>> {
        self.refund_until_hours
            .map(|h| self.starts_at - chrono::Duration::hours(i64::from(h)))
    }

    /// Whether refunded seats can be sold again.
    pub fn is_on_sale(&self, now: DateTime<Utc>) -> bool {
        self.status() == EventStatus::Published && self.ends_at > now
    }

    /// Only drafts and published events can still be changed.
    pub fn is_editable(&self) -> bool {
        matches!(self.status(), EventStatus::Draft | EventStatus::Published)
    }

    pub fn fields(&self) -> EventFields {
        EventFields {
            title: self.title.clone(),
            description: self.description.clone(),
            category: self.category.clone(),
            venue_name: self.venue_name.clone(),
            address: self.address.clone(),
            city: self.city.clone(),
            country: self.country.clone(),
            latitude: self.latitude,
            longitude: self.longitude,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            timezone: self.timezone.clone(),
            capacity: self.capacity,
            cover_image_url: self.cover_image_url.clone(),
            refund_until_hours: self.refund_until_hours,
            currency: self.currency.clone(),
            max_tickets_per_buyer: self.max_tickets_per_buyer,
            reminders: self.reminders,
            guest_emails: self.guest_emails,
        }
    }

    /// Published events with reminders on, starting after `now` and within
    /// `window` of it, whose reminders for their current start are not all
    /// written (none yet, or the start moved since): soonest first.
    pub async fn due_for_reminders(
        conn: &mut AsyncPgConnection,
        now: DateTime<Utc>,
        window: chrono::Duration,
        limit: i64,
    ) -> QueryResult<Vec<Event>> {
        events::table
            .filter(events::status.eq(EventStatus::Published.as_str()))
            .filter(events::starts_at.gt(now))
            .filter(events::starts_at.le(now + window))
            .filter(events::reminders.eq(true))
            .filter(events::reminded_for.is_distinct_from(events::starts_at.nullable()))
            .order(events::starts_at)
            .limit(limit)
            .select(Event::as_select())
            .load(conn)
            .await
    }

    /// Every reminder for the start `starts_at` is written; a start moved
    /// meanwhile is not marked (its reminders are still to write).
    pub async fn mark_reminded(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        starts_at: DateTime<Utc>,
    ) -> QueryResult<usize> {
        diesel::update(
            events::table
                .find(id)
                .filter(events::starts_at.eq(starts_at)),
        )
        .set(events::reminded_for.eq(starts_at))
        .execute(conn)
        .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Event> {
        events::table
            .find(id)
            .select(Event::as_select())
            .first(conn)
            .await
    }

    /// The row, locked until the transaction ends: every writer of an event's
    /// tiers and every increase of their stock takes this lock, so checks
    /// across tiers (the capacity sum, a reservation batch's arithmetic)
    /// cannot race. `NO KEY UPDATE`: orders being placed (whose foreign key
    /// takes `KEY SHARE` on this row) are not held up.
    pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Event> {
        events::table
            .find(id)
            .select(Event::as_select())
            .for_no_key_update()
            .first(conn)
            .await
    }

    pub async fn update_fields(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        fields: &EventFields,
    ) -> QueryResult<Event> {
        diesel::update(events::table.find(id))
            .set(fields)
            .returning(Event::as_returning())
            .get_result(conn)
            .await
    }

    /// Draft → published. `None` if it was not a draft.
    pub async fn publish(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Event>> {
        diesel::update(
            events::table
                .find(id)
                .filter(events::status.eq(EventStatus::Draft.as_str())),
        )
        .set((
            events::status.eq(EventStatus::Published.as_str()),
            events::published_at.eq(diesel::dsl::now),
        ))
        .returning(Event::as_returning())
        .get_result(conn)
        .await
        .optional()
    }

    /// Published → cancelled, with the message for the attendees. `None`
    /// if it was not published (a draft, or cancelled or over already).
    pub async fn cancel(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        message: &str,
    ) -> QueryResult<Option<Event>> {
        diesel::update(
            events::table
                .find(id)
                .filter(events::status.eq(EventStatus::Published.as_str())),
        )
        .set((
            events::status.eq(EventStatus::Cancelled.as_str()),
            events::cancelled_at.eq(diesel::dsl::now),
            events::cancel_message.eq(message),
        ))
        .returning(Event::as_returning())
        .get_result(conn)
        .await
        .optional()
    }

    /// Cancelled events with a paid order no cancellation refund covers yet
    /// (their fan-out job was lost or cut short): for the sweep. An event
    /// cancelled, or whose fan-out wrote a refund, within `grace` is left
    /// to its live fan-out: a second one beside it is harmless but takes
    /// turns with it at the event's lock, reading the same orders.
    pub async fn cancelled_with_unrefunded_orders(
        conn: &mut AsyncPgConnection,
        grace: chrono::Duration,
    ) -> QueryResult<Vec<Uuid>> {
        use crate::{
            models::{OrderStatus, RefundKind},
            schema::refunds,
        };
        let since = Utc::now() - grace;
        let covered = refunds::table
            .filter(refunds::order_id.eq(orders::id))
            .filter(refunds::kind.eq(RefundKind::EventCancelled.as_str()));
        let fanned = diesel::alias!(orders as fanned);
        let fanning = refunds::table
            .inner_join(fanned.on(fanned.field(orders::id).eq(refunds::order_id)))
            .filter(fanned.field(orders::event_id).eq(events::id))
            .filter(refunds::kind.eq(RefundKind::EventCancelled.as_str()))
            .filter(refunds::created_at.gt(since));
        events::table
            .inner_join(orders::table)
            .filter(events::status.eq(EventStatus::Cancelled.as_str()))
            .filter(events::cancelled_at.lt(since))
            .filter(diesel::dsl::not(diesel::dsl::exists(fanning)))
            .filter(orders::status.eq_any([
                OrderStatus::Paid.as_str(),
                OrderStatus::PartiallyRefunded.as_str(),
            ]))
            .filter(diesel::dsl::not(diesel::dsl::exists(covered)))
            .select(events::id)
            .distinct()
            .load(conn)
            .await
    }

    /// Deletes a draft (with its tiers, codes and images). Returns whether a
    /// row went: published events are cancelled, never deleted, and the
    /// orders' foreign key refuses the delete of an event anyone bought into.
    pub async fn delete_draft(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
        let n = diesel::delete(
            events::table
                .find(id)
                .filter(events::status.eq(EventStatus::Draft.as_str())),
        )
        .execute(conn)
        .await?;
        Ok(n == 1)
    }

    /// Published events whose end has passed become `completed` (what payouts
    /// wait for). Returns the ids, so their cached pages can be dropped.
    pub async fn complete_ended(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Uuid>> {
        diesel::update(
            events::table
                .filter(events::status.eq(EventStatus::Published.as_str()))
                .filter(events::ends_at.lt(diesel::dsl::now)),
        )
        .set(events::status.eq(EventStatus::Completed.as_str()))
        .returning(events::id)
        .get_results(conn)
        .await
    }

    pub async fn has_orders(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(
            orders::table.filter(orders::event_id.eq(id)),
        ))
        .get_result(conn)
        .await
    }

    /// An organizer's events (all of them for `None`: admins), newest first,
    /// keyset-paginated on (created_at, id).
    pub async fn list_for_organizer(
        conn: &mut AsyncPgConnection,
        organizer_id: Option<Uuid>,
        status: Option<EventStatus>,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> QueryResult<Vec<Event>> {
        let mut query = events::table
            .select(Event::as_select())
            .order((events::created_at.desc(), events::id.desc()))
            .limit(limit)
            .into_boxed();
        if let Some(organizer_id) = organizer_id {
            query = query.filter(events::organizer_id.eq(organizer_id));
        }
        if let Some(status) = status {
            query = query.filter(events::status.eq(status.as_str()));
        }
        if let Some((created_at, id)) = after {
            query = query.filter(
                events::created_at
                    .lt(created_at)
                    .or(events::created_at.eq(created_at).and(events::id.lt(id))),
            );
        }
        query.load(conn).await
    }
}
