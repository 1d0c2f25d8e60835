//! `POST /v1/webhooks/payments/{provider}`: the provider tells us about
//! payments and refunds. Verified on the raw body, stored in the inbox (the
//! provider's event id is unique; stored and enqueued with the other webhooks
//! of the moment, see `inbox_writer`), acknowledged fast. Applying it is
//! the payments worker's job.

use axum::{
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
};
use boxoffice_core::models::InboxEvent;
use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult},
    extract::Json,
    inbox_writer::Stored,
    state::AppState,
};

/// Provider events are small; anything bigger is not one.
pub const MAX_WEBHOOK_BYTES: usize = 64 * 1024;

#[utoipa::path(
    post,
    path = "/v1/webhooks/payments/{provider}",
    operation_id = "webhooks_receive",
    tag = "webhooks",
    summary = "Payment provider events (Standard Webhooks signature)",
    params(("provider" = String, Path, description = "sandbox"), ("webhook-id" = String, Header, description = "Event id"), ("webhook-timestamp" = String, Header, description = "Unix seconds"), ("webhook-signature" = String, Header, description = "v1,<base64 HMAC-SHA256>")),
    request_body = Object,
    responses((status = 200, description = "Accepted or duplicate", body = Object), crate::openapi::problems::BadRequest, crate::openapi::problems::Unauthorized, crate::openapi::problems::NotFound, crate::openapi::problems::PayloadTooLarge)
)]
pub async fn receive(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let services = &state.services;
    // Every provider set up takes its webhooks, the default or not.
    let Some(adapter) = services.payments.named(&provider) else {
        return Err(ApiError::NotFound);
    };
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest("unreadable_body", e.body_text())
        }
    })?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let event = adapter
        .verify_webhook(&header, &body, Utc::now().timestamp())
        .map_err(|e| {
            tracing::warn!(provider = %provider, error = %e, "webhook refused");
            if matches!(e, boxoffice_core::payments::WebhookError::Signature(_)) {
                boxoffice_core::metrics::metrics()
                    .webhook_signature_failures
                    .get_or_create(&boxoffice_core::metrics::labels([("provider", &provider)]))
                    .inc();
            }
            match e {
                boxoffice_core::payments::WebhookError::Signature(_) => ApiError::Unauthorized(
                    "invalid_signature",
                    "The webhook signature is missing, wrong or too old.",
                ),
                boxoffice_core::payments::WebhookError::Payload(p) => {
                    ApiError::BadRequest("invalid_event", p)
                }
            }
        })?;
    let raw: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let row = InboxEvent {
        id: Uuid::now_v7(),
        provider: provider.clone(),
        provider_event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        payload: json!({ "event": event, "raw": raw }),
        received_at: Utc::now(),
        processed_at: None,
        last_error: None,
    };
    if let Stored::Duplicate = state.inbox.store(row).await? {
        tracing::info!(provider = %provider, event = %event.id, "duplicate webhook acknowledged");
        return Ok((StatusCode::OK, Json(json!({ "status": "duplicate" }))));
    }
    tracing::info!(provider = %provider, event = %event.id, kind = %event.event_type, "webhook accepted");
    Ok((StatusCode::OK, Json(json!({ "status": "accepted" }))))
}
