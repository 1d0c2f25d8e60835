//! `GET /v1/events/{id}/calendar.ics`: the event as a calendar file, for an
//! "add to calendar" link (the confirmation email attaches the same).

use axum::{
    extract::{Path, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use boxoffice_core::{
    ics,
    models::{Event, EventStatus},
};

use super::parse_id;
use crate::{
    error::{ApiError, ApiResult},
    state::AppState,
};

#[utoipa::path(
    get,
    path = "/v1/events/{id}/calendar.ics",
    operation_id = "events_calendar",
    tag = "events",
    summary = "The event as an iCalendar file",
    params(("id" = String, Path, description = "Event id")),
    responses((status = 200, description = "An iCalendar (RFC 5545) file", content_type = "text/calendar"), crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited)
)]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let mut conn = state.db().await?;
    let event = Event::find(&mut conn, parse_id(&id)?).await?;
    if event.status() == EventStatus::Draft {
        return Err(ApiError::NotFound);
    }
    let url = format!("{}/events/{}", state.config().http.public_url, event.id);
    let body = ics::render(&ics::Invite::event(
        &event,
        format!("{}@boxoffice", event.id),
        &event.description,
        &url,
    ));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/calendar; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"event.ics\""),
            ),
        ],
        body,
    )
        .into_response())
}
