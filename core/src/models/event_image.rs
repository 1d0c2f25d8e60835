//! Event images: the row describes an object in the media store.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::event_images;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = event_images, check_for_backend(diesel::pg::Pg))]
pub struct EventImage {
    pub id: Uuid,
    pub event_id: Uuid,
    pub object_key: String,
    pub content_type: String,
    pub width: i32,
    pub height: i32,
    pub size_bytes: i64,
    pub created_at: DateTime<Utc>,
}

impl EventImage {
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<EventImage> {
        diesel::insert_into(event_images::table)
            .values(self)
            .returning(EventImage::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn for_event(
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
    ) -> QueryResult<Vec<EventImage>> {
        event_images::table
            .filter(event_images::event_id.eq(event_id))
            .select(EventImage::as_select())
            .order((event_images::created_at, event_images::id))
            .load(conn)
            .await
    }

    pub async fn for_events(
        conn: &mut AsyncPgConnection,
        event_ids: &[Uuid],
    ) -> QueryResult<Vec<EventImage>> {
        event_images::table
            .filter(event_images::event_id.eq_any(event_ids))
            .select(EventImage::as_select())
            .order((event_images::created_at, event_images::id))
            .load(conn)
            .await
    }

    pub async fn count_for_event(conn: &mut AsyncPgConnection, event_id: Uuid) -> QueryResult<i64> {
        event_images::table
            .filter(event_images::event_id.eq(event_id))
            .count()
            .get_result(conn)
            .await
    }

    /// Deletes the row and returns it (its object is deleted after commit).
    pub async fn delete(
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
        id: Uuid,
    ) -> QueryResult<Option<EventImage>> {
        diesel::delete(
            event_images::table
                .find(id)
                .filter(event_images::event_id.eq(event_id)),
        )
        .returning(EventImage::as_returning())
        .get_result(conn)
        .await
        .optional()
    }
}
