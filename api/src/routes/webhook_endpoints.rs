//! Organizers' outgoing webhook endpoints, their delivery log, redelivery
//! and a test ping. What is sent and how is in `boxoffice_core::webhooks`.

use std::time::Duration;

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use boxoffice_core::{
    jobs::{DeliverWebhook, enqueue_or_log},
    models::{
        Delivery, DeliveryRow, DeliveryStatus, EndpointChanges, NewEndpoint, Role, WebhookEndpoint,
    },
    queue::Schedule,
    webhooks,
};
use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult, FieldError},
    extract::{AuthUser, Json, Query},
    pagination::{self, Page},
    routes::events::parse_id,
    state::AppState,
};

/// Endpoints one organizer may have.
const MAX_ENDPOINTS: usize = 20;
const MAX_URL_LEN: usize = 2_048;
const MAX_DESCRIPTION_LEN: usize = 200;
/// How long a rotated-out secret keeps signing, unless the caller says.
const DEFAULT_OVERLAP_SECS: u64 = 24 * 3600;
const MAX_OVERLAP_SECS: u64 = 7 * 24 * 3600;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointRequest {
    /// Where deliveries are POSTed: `https://` (plain `http://` outside
    /// production), a public address.
    #[schema(format = "uri")]
    pub url: String,
    /// The event types to send: `order.created`, `order.paid`,
    /// `order.cancelled`, `order.expired`, `order.refunded`,
    /// `ticket.checked_in`, `event.published`, `event.cancelled`,
    /// `payout.paid`.
    #[schema(schema_with = crate::openapi::webhook_event_types)]
    pub event_types: Vec<String>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub description: Option<String>,
    /// Deliveries are made while active (default true).
    #[serde(default)]
    pub active: Option<bool>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    #[schema(format = "uri")]
    pub url: Option<String>,
    #[schema(schema_with = crate::openapi::webhook_event_types)]
    pub event_types: Option<Vec<String>>,
    #[schema(max_length = 200)]
    pub description: Option<String>,
    /// `true` enables a disabled endpoint and forgets its failures.
    pub active: Option<bool>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// How long the old secret keeps signing beside the new one (seconds,
    /// default a day, at most a week; 0 ends it at once).
    #[schema(maximum = 604800)]
    pub overlap_secs: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub active: bool,
    /// Why it was disabled (a 410 answer, days of failures), while it is.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Every delivery has failed since then.
    pub failing_since: Option<DateTime<Utc>>,
    /// While a rotation's overlap lasts, the old secret signs too.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// The signing secret (`whsec_…`): only in the answers to creation and
    /// rotation. Keep it; it is not shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EndpointView {
    fn new(e: WebhookEndpoint, with_secret: bool) -> Self {
        let now = Utc::now();
        Self {
            id: e.id,
            event_types: e.event_types(),
            previous_secret_expires_at: e.previous_secret_until.filter(|until| *until > now),
            secret: with_secret.then_some(e.secret),
            url: e.url,
            description: e.description,
            active: e.enabled,
            disabled_reason: e.disabled_reason,
            disabled_at: e.disabled_at,
            failing_since: e.failing_since,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: Uuid,
    /// The `webhook-id` header: the same on every attempt and redelivery.
    pub webhook_id: String,
    pub event_id: Uuid,
    pub event_type: String,
    /// `pending`, `sending`, `delivered`, `failed` (another attempt is
    /// planned) or `exhausted`.
    pub status: String,
    pub attempts: i32,
    /// The last attempt's HTTP status, if the receiver answered.
    pub response_status: Option<i32>,
    pub error: Option<String>,
    pub latency_ms: Option<i32>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(d: DeliveryRow) -> Self {
        Self {
            next_attempt_at: d.next_attempt(),
            id: d.id,
            webhook_id: webhooks::message_id(d.event_id),
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            response_status: d.last_status_code,
            error: d.last_error,
            latency_ms: d.last_latency_ms,
            delivered_at: d.delivered_at,
            created_at: d.created_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryListParams {
    /// Only deliveries in this status.
    #[param(pattern = "^(pending|sending|delivered|failed|exhausted)$")]
    pub status: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The URL, checked against the SSRF guard (its name resolved now; again
/// at every connection).
async fn checked_url(state: &AppState, raw: &str, errors: &mut Vec<FieldError>) -> String {
    let raw = raw.trim();
    if raw.len() > MAX_URL_LEN {
        errors.push(FieldError::new(
            "url",
            format!("must be at most {MAX_URL_LEN} characters"),
        ));
        return String::new();
    }
    match url::Url::parse(raw) {
        Err(_) => errors.push(FieldError::new("url", "must be an absolute URL")),
        Ok(url) => {
            let policy = state.services.config.webhooks.policy();
            if let Err(e) = policy.check_endpoint(&url).await {
                errors.push(FieldError::new("url", e.to_string()));
            }
        }
    }
    raw.to_owned()
}

fn checked_types(types: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    if types.is_empty() {
        errors.push(FieldError::new(
            "event_types",
            "must name at least one event type",
        ));
    }
    let mut kept: Vec<String> = Vec::new();
    for t in types {
        if !webhooks::EVENT_TYPES.contains(&t.as_str()) {
            errors.push(FieldError::new(
                "event_types",
                format!(
                    "unknown event type {t:?}; one of {}",
                    webhooks::EVENT_TYPES.join(", ")
                ),
            ));
        } else if !kept.contains(t) {
            kept.push(t.clone());
        }
    }
    kept
}

fn checked_description(raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<String> {
    let d = raw?.trim();
    if d.chars().count() > MAX_DESCRIPTION_LEN {
        errors.push(FieldError::new(
            "description",
            format!("must be at most {MAX_DESCRIPTION_LEN} characters"),
        ));
    }
    Some(d.to_owned())
}

/// The caller's endpoint `id`, or 404 (another organizer's is not found).
async fn owned(
    conn: &mut AsyncPgConnection,
    user: &AuthUser,
    raw_id: &str,
) -> ApiResult<WebhookEndpoint> {
    user.require(Role::Organizer)?;
    WebhookEndpoint::find_owned(conn, parse_id(raw_id)?, user.id())
        .await?
        .ok_or(ApiError::NotFound)
}

async fn push(state: &AppState, delivery_id: Uuid) {
    enqueue_or_log(
        &state.services.queues,
        &DeliverWebhook {
            delivery_id,
            busy: 0,
        },
        Schedule::now(),
    )
    .await;
}

/// `POST /v1/organizer/webhook-endpoints`
#[utoipa::path(
    post,
    path = "/v1/organizer/webhook-endpoints",
    operation_id = "webhook_endpoints_create",
    tag = "webhook-endpoints",
    summary = "Register an endpoint for outgoing webhooks",
    description = "Deliveries are POSTed as `{type, timestamp, data}` and signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`). The answer holds the signing `secret`, shown this once.",
    request_body = EndpointRequest,
    responses((status = 201, description = "Registered", body = EndpointView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::Unprocessable, crate::openapi::problems::BadRequest, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<EndpointRequest>,
) -> ApiResult<(StatusCode, Json<EndpointView>)> {
    user.require(Role::Organizer)?;
    let mut errors = Vec::new();
    let url = checked_url(&state, &req.url, &mut errors).await;
    let event_types = checked_types(&req.event_types, &mut errors);
    let description = checked_description(req.description.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut conn = state.db().await?;
    if WebhookEndpoint::list(&mut conn, user.id()).await?.len() >= MAX_ENDPOINTS {
        return Err(ApiError::Unprocessable(
            "too_many_endpoints",
            format!("An organizer may have at most {MAX_ENDPOINTS} webhook endpoints."),
        ));
    }
    let endpoint = WebhookEndpoint::create(
        &mut conn,
        &NewEndpoint {
            organizer_id: user.id(),
            url: &url,
            description: description.as_deref().unwrap_or(""),
            event_types: &event_types,
            enabled: req.active.unwrap_or(true),
        },
    )
    .await?;
    tracing::info!(endpoint.id = %endpoint.id, "webhook endpoint registered");
    Ok((StatusCode::CREATED, Json(EndpointView::new(endpoint, true))))
}

/// `GET /v1/organizer/webhook-endpoints/event-types`: what an endpoint can
/// subscribe to (the console offers them as choices).
#[utoipa::path(
    get,
    path = "/v1/organizer/webhook-endpoints/event-types",
    operation_id = "webhook_event_types",
    tag = "webhook-endpoints",
    summary = "The event types an endpoint can subscribe to",
    responses((status = 200, description = "Event types", body = Vec<String>), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn event_types(user: AuthUser) -> ApiResult<Json<&'static [&'static str]>> {
    user.require(Role::Organizer)?;
    Ok(Json(boxoffice_core::webhooks::EVENT_TYPES))
}

/// `GET /v1/organizer/webhook-endpoints`
#[utoipa::path(
    get,
    path = "/v1/organizer/webhook-endpoints",
    operation_id = "webhook_endpoints_list",
    tag = "webhook-endpoints",
    summary = "The caller's webhook endpoints",
    responses((status = 200, description = "Endpoints, oldest first", body = Vec<EndpointView>), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<Json<Vec<EndpointView>>> {
    user.require(Role::Organizer)?;
    let mut conn = state.db().await?;
    let endpoints = WebhookEndpoint::list(&mut conn, user.id()).await?;
    Ok(Json(
        endpoints
            .into_iter()
            .map(|e| EndpointView::new(e, false))
            .collect(),
    ))
}

/// `GET /v1/organizer/webhook-endpoints/{id}`
#[utoipa::path(
    get,
    path = "/v1/organizer/webhook-endpoints/{id}",
    operation_id = "webhook_endpoints_get",
    tag = "webhook-endpoints",
    summary = "One webhook endpoint",
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, description = "The endpoint", body = EndpointView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<EndpointView>> {
    let mut conn = state.db().await?;
    let endpoint = owned(&mut conn, &user, &id).await?;
    Ok(Json(EndpointView::new(endpoint, false)))
}

/// `PATCH /v1/organizer/webhook-endpoints/{id}`
#[utoipa::path(
    patch,
    path = "/v1/organizer/webhook-endpoints/{id}",
    operation_id = "webhook_endpoints_update",
    tag = "webhook-endpoints",
    summary = "Change an endpoint's URL, event types or description; disable or enable it",
    params(("id" = String, Path, description = "Endpoint id")),
    request_body = EndpointPatch,
    responses((status = 200, description = "The endpoint", body = EndpointView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Unprocessable, crate::openapi::problems::BadRequest, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<EndpointPatch>,
) -> ApiResult<Json<EndpointView>> {
    let mut errors = Vec::new();
    let url = match &req.url {
        Some(raw) => Some(checked_url(&state, raw, &mut errors).await),
        None => None,
    };
    let event_types = req
        .event_types
        .as_deref()
        .map(|t| checked_types(t, &mut errors));
    let description = checked_description(req.description.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut conn = state.db().await?;
    let endpoint = owned(&mut conn, &user, &id).await?;
    let endpoint = WebhookEndpoint::update(
        &mut conn,
        endpoint.id,
        &EndpointChanges {
            url: url.as_deref(),
            description: description.as_deref(),
            event_types: event_types.as_deref(),
            enabled: req.active,
        },
    )
    .await?;
    Ok(Json(EndpointView::new(endpoint, false)))
}

/// `DELETE /v1/organizer/webhook-endpoints/{id}`
#[utoipa::path(
    delete,
    path = "/v1/organizer/webhook-endpoints/{id}",
    operation_id = "webhook_endpoints_delete",
    tag = "webhook-endpoints",
    summary = "Remove an endpoint and its delivery log",
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 204, description = "Removed"), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut conn = state.db().await?;
    let endpoint = owned(&mut conn, &user, &id).await?;
    WebhookEndpoint::delete(&mut conn, endpoint.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/organizer/webhook-endpoints/{id}/rotate-secret`
#[utoipa::path(
    post,
    path = "/v1/organizer/webhook-endpoints/{id}/rotate-secret",
    operation_id = "webhook_endpoints_rotate_secret",
    tag = "webhook-endpoints",
    summary = "A new signing secret; the old one keeps signing beside it for the overlap",
    description = "During the overlap every delivery carries two `v1,` signatures, one per secret, so receivers can switch secrets without dropping a delivery.",
    params(("id" = String, Path, description = "Endpoint id")),
    request_body = RotateRequest,
    responses((status = 200, description = "The endpoint with its new secret", body = EndpointView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Unprocessable, crate::openapi::problems::BadRequest, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<RotateRequest>,
) -> ApiResult<Json<EndpointView>> {
    let overlap = req.overlap_secs.unwrap_or(DEFAULT_OVERLAP_SECS);
    if overlap > MAX_OVERLAP_SECS {
        return Err(ApiError::validation(
            "overlap_secs",
            "must be at most 604800 (a week)",
        ));
    }
    let mut conn = state.db().await?;
    let endpoint = owned(&mut conn, &user, &id).await?;
    let endpoint =
        WebhookEndpoint::rotate(&mut conn, endpoint.id, Duration::from_secs(overlap)).await?;
    tracing::info!(endpoint.id = %endpoint.id, overlap, "webhook secret rotated");
    Ok(Json(EndpointView::new(endpoint, true)))
}

/// `GET /v1/organizer/webhook-endpoints/{id}/deliveries`
#[utoipa::path(
    get,
    path = "/v1/organizer/webhook-endpoints/{id}/deliveries",
    operation_id = "webhook_deliveries_list",
    tag = "webhook-endpoints",
    summary = "The endpoint's deliveries, newest first",
    params(("id" = String, Path, description = "Endpoint id"), DeliveryListParams),
    responses((status = 200, description = "A page of deliveries", body = Page<DeliveryView>), crate::openapi::problems::BadRequest, crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn deliveries(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Query(params): Query<DeliveryListParams>,
) -> ApiResult<Json<Page<DeliveryView>>> {
    let status = match params.status.as_deref() {
        None => None,
        Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
            ApiError::validation(
                "status",
                "must be pending, sending, delivered, failed or exhausted",
            )
        })?),
    };
    let limit = pagination::limit_only(params.limit)?;
    let after = pagination::created_after(params.cursor.as_deref())?;
    let mut conn = state.db().await?;
    let endpoint = owned(&mut conn, &user, &id).await?;
    let rows = Delivery::list(&mut conn, endpoint.id, status, after, limit + 1).await?;
    let (rows, next_cursor) = pagination::created_page(rows, limit, |d| (d.created_at, d.id));
    Ok(Json(Page {
        items: rows.into_iter().map(DeliveryView::from).collect(),
        next_cursor,
    }))
}

/// `POST /v1/organizer/webhook-endpoints/{id}/deliveries/{delivery_id}/redeliver`
#[utoipa::path(
    post,
    path = "/v1/organizer/webhook-endpoints/{id}/deliveries/{delivery_id}/redeliver",
    operation_id = "webhook_deliveries_redeliver",
    tag = "webhook-endpoints",
    summary = "Send a delivery once more, now",
    description = "One more attempt with the same `webhook-id` and body. 409 while an attempt is in flight or the endpoint is disabled.",
    params(("id" = String, Path, description = "Endpoint id"), ("delivery_id" = String, Path, description = "Delivery id")),
    responses((status = 202, description = "Queued", body = DeliveryView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn redeliver(
    State(state): State<AppState>,
    user: AuthUser,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<DeliveryView>)> {
    let delivery_id = parse_id(&delivery_id)?;
    let mut conn = state.db().await?;
    let endpoint = owned(&mut conn, &user, &id).await?;
    if !endpoint.enabled {
        return Err(disabled());
    }
    if Delivery::find(&mut conn, endpoint.id, delivery_id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound);
    }
    let Some(row) = Delivery::redeliver(&mut conn, endpoint.id, delivery_id).await? else {
        return Err(ApiError::Conflict(
            "delivery_in_flight",
            "An attempt of this delivery is in flight; try again once it ends.".into(),
        ));
    };
    drop(conn);
    push(&state, row.id).await;
    Ok((StatusCode::ACCEPTED, Json(row.into())))
}

/// `POST /v1/organizer/webhook-endpoints/{id}/test`
#[utoipa::path(
    post,
    path = "/v1/organizer/webhook-endpoints/{id}/test",
    operation_id = "webhook_endpoints_test",
    tag = "webhook-endpoints",
    summary = "Send a `ping` event to the endpoint",
    description = "A delivery like any other (signed, retried, in the log) of type `ping` with `data: {endpoint_id}`.",
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 202, description = "Queued", body = DeliveryView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn test(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<DeliveryView>)> {
    let mut conn = state.db().await?;
    let endpoint = owned(&mut conn, &user, &id).await?;
    if !endpoint.enabled {
        return Err(disabled());
    }
    let row = Delivery::ping(&mut conn, &endpoint).await?;
    drop(conn);
    push(&state, row.id).await;
    Ok((StatusCode::ACCEPTED, Json(row.into())))
}

fn disabled() -> ApiError {
    ApiError::Conflict(
        "endpoint_disabled",
        "The endpoint is disabled; enable it first (PATCH with active: true).".into(),
    )
}
