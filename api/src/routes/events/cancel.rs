//! Cancelling a published event: at once the event is `cancelled` (no new
//! orders), its unpaid orders are cancelled and their holds released; then
//! the refunds queue refunds every paid order in full and tells each buyer
//! (`RefundJob::CancelEvent`, batch by batch; the `cancelled_events` sweep
//! resumes it). `GET …/cancellation` shows how far it is.

use axum::{
    extract::{Path, State},
    http::{StatusCode, header},
    response::IntoResponse,
};
use boxoffice_core::{
    jobs::{OrderJob, RefundJob, enqueue_or_log},
    models::{Event, EventStatus, Order, Tier, order},
    queue::Schedule,
};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::load_managed;
use crate::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, Json, JsonOrEmpty},
    state::AppState,
    validate,
};

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// For the attendees, in their refund email (up to 2,000 characters).
    #[schema(max_length = 2000)]
    pub message: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CancellationView {
    pub event_id: Uuid,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub message: Option<String>,
    /// Orders that were paid.
    pub orders_total: i64,
    /// Refunded in full (or, free, cancelled).
    pub refunded: i64,
    /// With a refund the provider refused (ops retry it).
    pub failed: i64,
    pub remaining: i64,
    /// `in_progress` or `done` (nothing remaining; failed ones aside).
    pub state: String,
}

async fn view(conn: &mut AsyncPgConnection, event: &Event) -> ApiResult<CancellationView> {
    let progress = Order::cancellation_progress(conn, event.id).await?;
    let remaining = progress.total - progress.refunded - progress.failed;
    Ok(CancellationView {
        event_id: event.id,
        cancelled_at: event.cancelled_at,
        message: event.cancel_message.clone(),
        orders_total: progress.total,
        refunded: progress.refunded,
        failed: progress.failed,
        remaining,
        state: if remaining == 0 {
            "done"
        } else {
            "in_progress"
        }
        .into(),
    })
}

/// Cancels a published event the caller manages; shared by `POST …/cancel`
/// and the `DELETE` of a published event.
pub async fn cancel_event(
    state: &AppState,
    user: &AuthUser,
    raw_id: &str,
    message: &str,
) -> ApiResult<CancellationView> {
    let mut conn = state.db().await?;
    let (event, unpaid) = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let event = load_managed(conn, user, raw_id).await?;
            // Under the event's lock, as every reservation batch: none can
            // reserve for it after this commits.
            let event = Event::lock(conn, event.id).await?;
            match event.status() {
                EventStatus::Published => {}
                EventStatus::Draft => {
                    return Err(ApiError::Conflict(
                        "event_not_published",
                        "A draft is deleted, not cancelled.".into(),
                    ));
                }
                EventStatus::Cancelled => {
                    return Err(ApiError::Conflict(
                        "event_already_cancelled",
                        "The event is cancelled already; follow GET /v1/events/{id}/cancellation."
                            .into(),
                    ));
                }
                EventStatus::Completed => {
                    return Err(ApiError::Conflict(
                        "event_completed",
                        "The event is over; refund its orders one by one.".into(),
                    ));
                }
            }
            let cancelled = Event::cancel(conn, event.id, message)
                .await?
                .ok_or_else(|| {
                    ApiError::Internal("locked published event not cancellable".into())
                })?;
            let unpaid =
                Order::cancel_open_for_event(conn, event.id, order::EVENT_CANCELLED).await?;
            Ok((cancelled, unpaid))
        })
        .await?;
    let services = &state.services;
    let closing: Vec<OrderJob> = unpaid
        .iter()
        .filter(|o| o.provider_checkout_id.is_some())
        .map(|o| OrderJob::CloseCheckout { order_id: o.id })
        .collect();
    if !closing.is_empty()
        && let Err(e) = services.queues.push_many(&closing, Schedule::now()).await
    {
        // A checkout left open can still be paid: that payment is given back.
        tracing::warn!(error = %e, count = closing.len(), "could not push checkout closings");
    }
    enqueue_or_log(
        &services.queues,
        &RefundJob::cancel_event(event.id),
        Schedule::now(),
    )
    .await;
    services.event_cache.invalidate_or_log(event.id).await;
    state.snapshots.forget(event.id);
    for order in &unpaid {
        services.live.order_status(order).await;
    }
    let tiers = Tier::for_event(&mut conn, event.id).await?;
    services.live.availability(event.id, &tiers).await;
    tracing::info!(event.id = %event.id, unpaid = unpaid.len(), "event cancelled");
    view(&mut conn, &event).await
}

/// `POST /v1/events/{id}/cancel`
#[utoipa::path(
    post,
    path = "/v1/events/{id}/cancel",
    operation_id = "events_cancel",
    tag = "events",
    summary = "Cancel a published event: unpaid orders cancelled, paid ones refunded in full",
    params(("id" = String, Path, description = "Event id")),
    request_body(content = Option<CancelRequest>, description = "A message for the attendees"),
    responses(
        (status = 202, description = "Cancelled; refunds under way", body = CancellationView),
        crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited
    ),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    JsonOrEmpty(req): JsonOrEmpty<CancelRequest>,
) -> ApiResult<impl IntoResponse> {
    let message = req.message.unwrap_or_default();
    let mut errors = Vec::new();
    validate::length("message", &message, 0, 2_000, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let view = cancel_event(&state, &user, &id, message.trim()).await?;
    Ok(accepted(view))
}

/// 202 pointing at the progress.
pub fn accepted(view: CancellationView) -> impl IntoResponse {
    (
        StatusCode::ACCEPTED,
        [(
            header::LOCATION,
            format!("/v1/events/{}/cancellation", view.event_id),
        )],
        Json(view),
    )
}

/// `GET /v1/events/{id}/cancellation`
#[utoipa::path(
    get,
    path = "/v1/events/{id}/cancellation",
    operation_id = "events_cancellation",
    tag = "events",
    summary = "How far a cancellation's refunds are",
    params(("id" = String, Path, description = "Event id")),
    responses((status = 200, description = "Progress", body = CancellationView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn progress(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<CancellationView>> {
    let mut conn = state.db().await?;
    let event = load_managed(&mut conn, &user, &id).await?;
    if event.status() != EventStatus::Cancelled {
        return Err(ApiError::Conflict(
            "event_not_cancelled",
            format!("The event is {}.", event.status),
        ));
    }
    Ok(Json(view(&mut conn, &event).await?))
}
