//! `GET /v1/events/{id}`: the event page. The public page comes from the
//! Redis cache when it can (see `boxoffice_core::catalog::cache`); managers
//! and unlock-code holders get a fresh page from the database.

use axum::{
    extract::{Path, State},
    http::{HeaderName, HeaderValue, header},
    response::{IntoResponse, Response},
};
use boxoffice_core::models::{Event, EventImage, EventStatus, Tier};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    manage::manager_view,
    parse_id,
    views::{Audience, EventView},
};
use crate::{
    error::{ApiError, ApiResult},
    extract::{Json, MaybeUser, Query},
    state::AppState,
};

/// `hit` or `miss`: lets clients and tests see the cache at work.
static X_CACHE: HeaderName = HeaderName::from_static("x-cache");

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DetailParams {
    /// Reveals hidden tiers that carry this unlock code.
    pub unlock_code: Option<String>,
}

fn is_public(event: &Event) -> bool {
    event.status() != EventStatus::Draft
}

/// Public tiers, plus hidden ones whose code matches (case-insensitively).
fn visible_tiers(tiers: Vec<Tier>, unlock_code: Option<&str>) -> Vec<Tier> {
    let code = unlock_code.map(|c| c.trim().to_lowercase());
    tiers
        .into_iter()
        .filter(|t| {
            !t.hidden
                || t.unlock_code
                    .as_deref()
                    .is_some_and(|u| code.as_deref() == Some(u.to_lowercase().as_str()))
        })
        .collect()
}

fn json_page(page: String, cache: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (X_CACHE.clone(), HeaderValue::from_static(cache)),
        ],
        page,
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/v1/events/{id}",
    operation_id = "events_get",
    tag = "events",
    summary = "An event with its tiers and images",
    params(("id" = String, Path, description = "Event id"), DetailParams),
    responses((status = 200, description = "The event (public or, for its managers, full)", body = EventView), crate::openapi::problems::Unauthorized, crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited)
)]
pub async fn get(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Path(id): Path<String>,
    Query(params): Query<DetailParams>,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let cache = &state.services.event_cache;
    // Managers always read through to the database: they are editing and
    // must see their drafts and their own changes at once.
    let manages = |organizer_id: Uuid| user.as_ref().is_some_and(|u| u.can_manage(organizer_id));

    if params.unlock_code.is_none() {
        // A cache outage degrades to database reads, never to errors.
        let cached = match cache.get(id).await {
            Ok(cached) => Some(cached),
            Err(e) => {
                tracing::warn!(event.id = %id, error = %e, "event cache unreadable");
                None
            }
        };
        if let Some(entry) = cached.as_ref().and_then(|c| c.page.as_deref())
            && let Some((organizer_id, page)) = split_entry(entry)
            && !manages(organizer_id)
        {
            return Ok(json_page(page.to_owned(), "hit"));
        }
        let mut conn = state.db().await?;
        let event = Event::find(&mut conn, id).await?;
        if manages(event.organizer_id) {
            return Ok(Json(manager_view(&state, &mut conn, &event).await?).into_response());
        }
        if !is_public(&event) {
            return Err(ApiError::NotFound);
        }
        let view = public_view(&state, &mut conn, &event, None).await?;
        let page = serde_json::to_string(&view).map_err(|e| ApiError::Internal(e.to_string()))?;
        if let Some(cached) = cached {
            let entry = format!("{}\n{page}", event.organizer_id);
            if let Err(e) = cache.put(id, cached.generation, &entry).await {
                tracing::warn!(event.id = %id, error = %e, "event cache not written");
            }
        }
        return Ok(json_page(page, "miss"));
    }

    let mut conn = state.db().await?;
    let event = Event::find(&mut conn, id).await?;
    if manages(event.organizer_id) {
        return Ok(Json(manager_view(&state, &mut conn, &event).await?).into_response());
    }
    if !is_public(&event) {
        return Err(ApiError::NotFound);
    }
    let view = public_view(&state, &mut conn, &event, params.unlock_code.as_deref()).await?;
    Ok(Json(view).into_response())
}

/// A cache entry is `{organizer_id}\n{page}`: who manages the event is known
/// without parsing the page or asking the database.
fn split_entry(entry: &str) -> Option<(Uuid, &str)> {
    let (organizer, page) = entry.split_once('\n')?;
    Some((organizer.parse().ok()?, page))
}

async fn public_view(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    event: &Event,
    unlock_code: Option<&str>,
) -> ApiResult<EventView> {
    let tiers = visible_tiers(Tier::for_event(conn, event.id).await?, unlock_code);
    let images = EventImage::for_event(conn, event.id).await?;
    Ok(EventView::new(
        event,
        &tiers,
        &images,
        Audience::Public,
        &state.services.media,
    ))
}
