//! Organizer (and admin) side of events: create, edit, publish, delete, list.

use axum::{
    extract::{Path, State},
    http::{StatusCode, header},
    response::IntoResponse,
};
use boxoffice_core::models::{Event, EventImage, EventStatus, NewEvent, Role, Tier};
use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    EventInput, NewEventInput, ensure_editable, load_managed,
    views::{Audience, EventView},
};
use crate::{
    error::{ApiError, ApiResult, FieldError},
    extract::{AuthUser, Json, Query},
    pagination::{self, Page},
    state::AppState,
};

/// The event with its tiers and images, as its managers see it.
pub async fn manager_view(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    event: &Event,
) -> ApiResult<EventView> {
    let tiers = Tier::for_event(conn, event.id).await?;
    let images = EventImage::for_event(conn, event.id).await?;
    Ok(EventView::new(
        event,
        &tiers,
        &images,
        Audience::Manager,
        &state.services.media,
    )
    .with_fee(&state.config().payments.platform_fee))
}

/// `POST /v1/events`: a draft, owned by the caller.
#[utoipa::path(
    post,
    path = "/v1/events",
    operation_id = "events_create",
    tag = "events",
    summary = "Create a draft event",
    request_body = NewEventInput,
    responses((status = 201, description = "The draft", body = EventView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::Unprocessable, crate::openapi::problems::BadRequest, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(input): Json<EventInput>,
) -> ApiResult<impl IntoResponse> {
    user.require(Role::Organizer)?;
    let mut conn = state.db().await?;
    let fields = input.into_fields(&mut conn, None).await?;
    let event = NewEvent {
        id: Uuid::now_v7(),
        organizer_id: user.id(),
        fields,
    }
    .insert(&mut conn)
    .await?;
    tracing::info!(event.id = %event.id, organizer.id = %user.id(), "event created");
    let view = manager_view(&state, &mut conn, &event).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/events/{}", event.id))],
        Json(view),
    ))
}

/// `PATCH /v1/events/{id}`: any subset of the fields; the merged result is
/// validated as a whole. The currency is fixed once anyone has ordered, and a
/// capacity cannot drop below the tiers' total.
#[utoipa::path(
    patch,
    path = "/v1/events/{id}",
    operation_id = "events_update",
    tag = "events",
    summary = "Edit an event",
    params(("id" = String, Path, description = "Event id")),
    request_body = EventInput,
    responses((status = 200, description = "The event", body = EventView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::Unprocessable, crate::openapi::problems::BadRequest, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(input): Json<EventInput>,
) -> ApiResult<Json<EventView>> {
    let mut conn = state.db().await?;
    let event = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let event = load_managed(conn, &user, &id).await?;
            // Tier writers take the same lock: the capacity check below
            // cannot race a tier being added.
            let event = Event::lock(conn, event.id).await?;
            ensure_editable(&event)?;
            let fields = input.into_fields(conn, Some(&event)).await?;
            if fields.currency != event.currency {
                if Event::has_orders(conn, event.id).await? {
                    return Err(ApiError::Conflict(
                        "currency_locked",
                        "The currency cannot change once the event has orders.".into(),
                    ));
                }
                Tier::set_currency(conn, event.id, &fields.currency).await?;
            }
            if let Some(capacity) = fields.capacity {
                let total = Tier::total_quantity(conn, event.id, None).await?;
                if total > i64::from(capacity) {
                    return Err(ApiError::validation(
                        "capacity",
                        &format!("must be at least {total}, the tiers' total quantity"),
                    ));
                }
            }
            Ok(Event::update_fields(conn, event.id, &fields).await?)
        })
        .await?;
    state.services.event_cache.invalidate_or_log(event.id).await;
    tracing::info!(event.id = %event.id, "event updated");
    Ok(Json(manager_view(&state, &mut conn, &event).await?))
}

/// `POST /v1/events/{id}/publish`: draft → published. Needs at least one
/// tier and a start in the future. Publishing a published event is a no-op.
#[utoipa::path(
    post,
    path = "/v1/events/{id}/publish",
    operation_id = "events_publish",
    tag = "events",
    summary = "Publish a draft",
    params(("id" = String, Path, description = "Event id")),
    responses((status = 200, description = "Published", body = EventView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn publish(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<EventView>> {
    let mut conn = state.db().await?;
    let event = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let event = load_managed(conn, &user, &id).await?;
            let event = Event::lock(conn, event.id).await?;
            match event.status() {
                EventStatus::Published => return Ok(event),
                EventStatus::Draft => {}
                _ => ensure_editable(&event)?,
            }
            if Tier::for_event(conn, event.id).await?.is_empty() {
                return Err(ApiError::Conflict(
                    "event_has_no_tiers",
                    "Add at least one ticket tier before publishing.".into(),
                ));
            }
            if event.starts_at <= Utc::now() {
                return Err(ApiError::Conflict(
                    "event_started",
                    "An event that has already started cannot be published.".into(),
                ));
            }
            Event::publish(conn, event.id)
                .await?
                .ok_or_else(|| ApiError::Internal("locked draft was not publishable".into()))
        })
        .await?;
    state.services.event_cache.invalidate_or_log(event.id).await;
    let live = &state.services.live;
    live.publish(
        &live.feed_channel(),
        &serde_json::json!({
            "type": "event.published",
            "event_id": event.id,
            "title": event.title,
            "category": event.category,
            "city": event.city,
            "starts_at": event.starts_at,
            "url": format!("/v1/events/{}", event.id),
        }),
    )
    .await;
    tracing::info!(event.id = %event.id, "event published");
    Ok(Json(manager_view(&state, &mut conn, &event).await?))
}

/// `DELETE /v1/events/{id}`: a draft is deleted, with its images; a
/// published event is cancelled (`POST /v1/events/{id}/cancel` without a
/// message): its buyers are refunded and told.
#[utoipa::path(
    delete,
    path = "/v1/events/{id}",
    operation_id = "events_delete",
    tag = "events",
    summary = "Delete a draft, or cancel a published event",
    params(("id" = String, Path, description = "Event id")),
    responses((status = 204, description = "Draft deleted"), (status = 202, description = "Published event cancelled; refunds under way", body = super::cancel::CancellationView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    let mut conn = state.db().await?;
    let event = load_managed(&mut conn, &user, &id).await?;
    if event.status() == EventStatus::Published {
        drop(conn);
        let view = super::cancel::cancel_event(&state, &user, &id, "").await?;
        return Ok(super::cancel::accepted(view).into_response());
    }
    if event.status() != EventStatus::Draft {
        return Err(ApiError::Conflict(
            "event_not_draft",
            "Only drafts can be deleted; cancel a published event instead.".into(),
        ));
    }
    let images = EventImage::for_event(&mut conn, event.id).await?;
    let deleted = Event::delete_draft(&mut conn, event.id)
        .await
        .map_err(|e| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            ) => ApiError::Conflict(
                "event_has_orders",
                "The event has orders and cannot be deleted.".into(),
            ),
            e => e.into(),
        })?;
    if !deleted {
        // Published between our read and the delete.
        return Err(ApiError::Conflict(
            "event_not_draft",
            "Only drafts can be deleted; cancel a published event instead.".into(),
        ));
    }
    for image in images {
        if let Err(e) = state.services.media.delete(&image.object_key).await {
            tracing::warn!(key = %image.object_key, error = %e, "orphaned image object");
        }
    }
    state.services.event_cache.invalidate_or_log(event.id).await;
    tracing::info!(event.id = %event.id, "draft event deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OrganizerListParams {
    #[param(pattern = "^(draft|published|cancelled|completed)$")]
    pub status: Option<String>,
    /// Admins only: one organizer's events (default: everyone's).
    pub organizer_id: Option<Uuid>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// `GET /v1/organizer/events`: the caller's events in every status, newest
/// first (admins see everyone's).
#[utoipa::path(
    get,
    path = "/v1/organizer/events",
    operation_id = "events_list_mine",
    tag = "events",
    summary = "The caller's events in every status",
    params(OrganizerListParams),
    responses((status = 200, description = "A page of events", body = crate::pagination::Page<EventView>), crate::openapi::problems::BadRequest, crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn list_mine(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<OrganizerListParams>,
) -> ApiResult<Json<Page<EventView>>> {
    user.require(Role::Organizer)?;
    let mut errors = Vec::new();
    let limit = pagination::limit(params.limit, &mut errors);
    let status = match params.status.as_deref() {
        None => None,
        Some(status) if EventStatus::parse(status).is_some() => EventStatus::parse(status),
        Some(_) => {
            errors.push(FieldError::new(
                "status",
                "must be draft, published, cancelled or completed",
            ));
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let organizer = if user.is_admin() {
        params.organizer_id
    } else {
        Some(user.id())
    };
    let after = pagination::created_after(params.cursor.as_deref())?;
    let mut conn = state.db().await?;
    let rows = Event::list_for_organizer(&mut conn, organizer, status, after, limit + 1).await?;
    let (events, next_cursor) = pagination::created_page(rows, limit, |e| (e.created_at, e.id));
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let tiers = Tier::for_events(&mut conn, &ids).await?;
    let images = EventImage::for_events(&mut conn, &ids).await?;
    let items = events
        .iter()
        .map(|e| {
            let tiers: Vec<Tier> = tiers
                .iter()
                .filter(|t| t.event_id == e.id)
                .cloned()
                .collect();
            let images: Vec<EventImage> = images
                .iter()
                .filter(|i| i.event_id == e.id)
                .cloned()
                .collect();
            EventView::new(e, &tiers, &images, Audience::Manager, &state.services.media)
                .with_fee(&state.config().payments.platform_fee)
        })
        .collect();
    Ok(Json(Page { items, next_cursor }))
}
