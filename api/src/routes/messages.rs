//! Organizers' messages to their attendees: a subject and plain text to
//! every ticket holder of an event, or to the holders of chosen tiers. The
//! request writes the message; the scheduler fans it out into one email per
//! holder (the `emails` queue sends them) and its progress is read from
//! those emails. Plain text only: the HTML part escapes it.

use std::collections::HashMap;

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use boxoffice_core::models::{Event, EventMessage, EventStatus, MessageProgress, Tier};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult, FieldError},
    extract::{AuthUser, Json, Query},
    pagination::{self, Page},
    rate_limit,
    routes::events::{load_managed, parse_id},
    state::AppState,
    validate,
};

/// Messages one organizer may send per hour, across their events.
const MESSAGES_PER_HOUR: u32 = 10;
const SUBJECT_MAX: usize = 200;
const BODY_MAX: usize = 10_000;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    /// 1–200 characters, one line.
    #[schema(min_length = 1, max_length = 200)]
    pub subject: String,
    /// Plain text, 1–10,000 characters; blank lines separate paragraphs.
    #[schema(min_length = 1, max_length = 10000)]
    pub body: String,
    /// Only the holders of these tiers of the event; absent: every holder.
    pub tier_ids: Option<Vec<Uuid>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: Uuid,
    pub event_id: Uuid,
    pub subject: String,
    pub body: String,
    pub tier_ids: Option<Vec<Uuid>>,
    /// `queued` (emails still being written), `sending`, or `done` (every
    /// email sent, failed or skipped).
    pub status: &'static str,
    /// Holders written an email so far (final once not `queued`).
    pub recipients: i64,
    pub sent: i64,
    pub failed: i64,
    /// Not sent: unsubscribed since, or tickets refunded since.
    pub skipped: i64,
    pub created_at: DateTime<Utc>,
}

impl MessageView {
    fn new(m: EventMessage, p: MessageProgress) -> Self {
        let status = if m.fanned_out_at.is_none() {
            "queued"
        } else if p.sent + p.failed + p.skipped < p.recipients {
            "sending"
        } else {
            "done"
        };
        Self {
            id: m.id,
            event_id: m.event_id,
            subject: m.subject,
            body: m.body,
            tier_ids: m.tier_ids,
            status,
            recipients: p.recipients,
            sent: p.sent,
            failed: p.failed,
            skipped: p.skipped,
            created_at: m.created_at,
        }
    }
}

/// Refuses a message with an empty or oversized part, a subject of several
/// lines, or tiers of another event.
fn check(req: &MessageRequest, tiers: &[Tier]) -> ApiResult<()> {
    let mut errors = Vec::new();
    validate::length("subject", req.subject.trim(), 1, SUBJECT_MAX, &mut errors);
    if req.subject.chars().any(char::is_control) {
        errors.push(FieldError::new("subject", "must be one line"));
    }
    validate::length("body", req.body.trim(), 1, BODY_MAX, &mut errors);
    if let Some(ids) = &req.tier_ids {
        if ids.is_empty() {
            errors.push(FieldError::new(
                "tier_ids",
                "must name at least one tier (leave it out for every holder)",
            ));
        }
        for id in ids {
            if !tiers.iter().any(|t| t.id == *id) {
                errors.push(FieldError::new(
                    "tier_ids",
                    format!("{id} is not a tier of this event"),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Only a published or past event's holders can be written to.
fn ensure_reachable(event: &Event) -> ApiResult<()> {
    match event.status() {
        EventStatus::Published | EventStatus::Completed => Ok(()),
        EventStatus::Draft => Err(ApiError::Conflict(
            "event_not_published",
            "The event is a draft: it has no ticket holders to write to.".into(),
        )),
        EventStatus::Cancelled => Err(ApiError::Conflict(
            "event_cancelled",
            "The event is cancelled: its tickets are void, and its holders were told.".into(),
        )),
    }
}

/// `POST /v1/events/{id}/messages`
#[utoipa::path(
    post,
    path = "/v1/events/{id}/messages",
    operation_id = "messages_create",
    tag = "messages",
    summary = "Write to the event's ticket holders (all, or those of some tiers)",
    description = "Queued: the emails go out within seconds, one per holder. Rate limited per organizer. Holders who unsubscribed are left out.",
    params(("id" = String, Path, description = "Event id")),
    request_body = MessageRequest,
    responses((status = 202, description = "Queued", body = MessageView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::Unprocessable, crate::openapi::problems::BadRequest, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Path(event_id): Path<String>,
    Json(req): Json<MessageRequest>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    let mut conn = state.db().await?;
    let event = load_managed(&mut conn, &user, &event_id).await?;
    ensure_reachable(&event)?;
    let tiers = Tier::for_event(&mut conn, event.id).await?;
    check(&req, &tiers)?;
    rate_limit::hit(
        &state,
        &[(&format!("messages:{}", user.id()), MESSAGES_PER_HOUR)],
        std::time::Duration::from_secs(3600),
    )
    .await?;
    let message = EventMessage {
        id: Uuid::now_v7(),
        event_id: event.id,
        sender_id: user.id(),
        subject: req.subject.trim().to_owned(),
        body: req.body.trim().to_owned(),
        tier_ids: req.tier_ids,
        fanned_out_at: None,
        created_at: Utc::now(),
    }
    .insert(&mut conn)
    .await?;
    tracing::info!(event.id = %event.id, message.id = %message.id, "organizer message queued");
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageView::new(message, MessageProgress::default())),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// `GET /v1/events/{id}/messages`: newest first, with their progress.
#[utoipa::path(
    get,
    path = "/v1/events/{id}/messages",
    operation_id = "messages_list",
    tag = "messages",
    summary = "The event's messages with their progress, newest first",
    params(("id" = String, Path, description = "Event id"), ListParams),
    responses((status = 200, description = "A page of messages", body = Page<MessageView>), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::BadRequest, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(event_id): Path<String>,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Page<MessageView>>> {
    let limit = pagination::limit_only(params.limit)?;
    let after = pagination::created_after(params.cursor.as_deref())?;
    let mut conn = state.db().await?;
    let event = load_managed(&mut conn, &user, &event_id).await?;
    let rows = EventMessage::for_event(&mut conn, event.id, after, limit + 1).await?;
    let (messages, next_cursor) = pagination::created_page(rows, limit, |m| (m.created_at, m.id));
    let ids: Vec<Uuid> = messages.iter().map(|m| m.id).collect();
    let mut progress: HashMap<Uuid, MessageProgress> =
        EventMessage::progress(&mut conn, &ids).await?;
    let items = messages
        .into_iter()
        .map(|m| {
            let p = progress.remove(&m.id).unwrap_or_default();
            MessageView::new(m, p)
        })
        .collect();
    Ok(Json(Page { items, next_cursor }))
}

/// `GET /v1/events/{id}/messages/{mid}`
#[utoipa::path(
    get,
    path = "/v1/events/{id}/messages/{mid}",
    operation_id = "messages_get",
    tag = "messages",
    summary = "A message and its progress: recipients, sent, failed, skipped",
    params(("id" = String, Path, description = "Event id"), ("mid" = String, Path, description = "Message id")),
    responses((status = 200, description = "The message", body = MessageView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, message_id)): Path<(String, String)>,
) -> ApiResult<Json<MessageView>> {
    let mut conn = state.db().await?;
    let event = load_managed(&mut conn, &user, &event_id).await?;
    let message = EventMessage::find(&mut conn, parse_id(&message_id)?).await?;
    if message.event_id != event.id {
        return Err(ApiError::NotFound);
    }
    let p = EventMessage::progress(&mut conn, &[message.id])
        .await?
        .remove(&message.id)
        .unwrap_or_default();
    Ok(Json(MessageView::new(message, p)))
}
