//! Ops' view of what was emailed: every `email_log` row, searchable by
//! recipient, kind and status, and a resend of any email that ended (sent,
//! failed or skipped). Template parameters are never shown: some hold a
//! one-time token.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use boxoffice_core::{
    jobs::SendEmail,
    models::{EMAIL_STATUSES, EmailFilter, EmailRow},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult, FieldError},
    extract::{Json, Query, RequireAdmin},
    pagination::{self, Page},
    routes::events::parse_id,
    state::AppState,
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EmailView {
    pub id: Uuid,
    /// The template: `order_confirmation`, `guest_tickets`,
    /// `event_reminder`, `event_message`, `refund_notice`, …
    pub kind: String,
    pub to: String,
    /// `pending`, `sending`, `sent`, `failed` or `skipped`.
    pub status: String,
    pub attempts: i32,
    /// The `Message-ID` it went out with.
    pub message_id: Option<String>,
    /// The server's reply or why it was skipped.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl From<EmailRow> for EmailView {
    fn from(e: EmailRow) -> Self {
        Self {
            id: e.id,
            kind: e.template,
            to: e.to_address,
            status: e.status,
            attempts: e.attempts,
            message_id: e.message_id,
            last_error: e.last_error,
            created_at: e.created_at,
            sent_at: e.sent_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EmailListParams {
    /// The recipient (case-insensitive).
    pub to: Option<String>,
    /// The template, e.g. `event_reminder`.
    pub kind: Option<String>,
    /// `pending`, `sending`, `sent`, `failed` or `skipped`.
    #[param(pattern = "^(pending|sending|sent|failed|skipped)$")]
    pub status: Option<String>,
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// `GET /v1/admin/emails`
#[utoipa::path(
    get,
    path = "/v1/admin/emails",
    operation_id = "admin_emails_list",
    tag = "admin",
    summary = "Emails, newest first, by recipient, kind and status",
    params(EmailListParams),
    responses((status = 200, description = "A page of emails", body = Page<EmailView>), crate::openapi::problems::BadRequest, crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    RequireAdmin(_admin): RequireAdmin,
    Query(params): Query<EmailListParams>,
) -> ApiResult<Json<Page<EmailView>>> {
    let mut errors = Vec::new();
    let limit = pagination::limit(params.limit, &mut errors);
    if let Some(status) = &params.status
        && !EMAIL_STATUSES.contains(&status.as_str())
    {
        errors.push(FieldError::new(
            "status",
            format!("must be one of {}", EMAIL_STATUSES.join(", ")),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let after = pagination::created_after(params.cursor.as_deref())?;
    let filter = EmailFilter {
        to: params.to.as_deref(),
        kind: params.kind.as_deref(),
        status: params.status.as_deref(),
    };
    let mut conn = state.db().await?;
    let rows = EmailRow::list(&mut conn, &filter, after, limit + 1).await?;
    let (emails, next_cursor) = pagination::created_page(rows, limit, |e| (e.created_at, e.id));
    Ok(Json(Page {
        items: emails.into_iter().map(EmailView::from).collect(),
        next_cursor,
    }))
}

/// Sets an ended email `pending` again and pushes its job; 409 while it is
/// still on its way, so a second resend does not send it twice. Shared
/// with an attendee's resend of their tickets.
pub async fn resend_email(state: &AppState, id: Uuid) -> ApiResult<EmailRow> {
    let mut conn = state.db().await?;
    let Some(email) = EmailRow::resend(&mut conn, id).await? else {
        let email = EmailRow::find(&mut conn, id)
            .await?
            .ok_or(ApiError::NotFound)?;
        return Err(ApiError::Conflict(
            "email_in_flight",
            format!("The email is {} already: it will be sent.", email.status),
        ));
    };
    drop(conn);
    SendEmail::enqueue_again(&state.services.queues, email.id).await;
    tracing::info!(email.id = %email.id, kind = %email.template, "email to be sent again");
    Ok(email)
}

/// `POST /v1/admin/emails/{id}/resend`
#[utoipa::path(
    post,
    path = "/v1/admin/emails/{id}/resend",
    operation_id = "admin_emails_resend",
    tag = "admin",
    summary = "Send an email again (sent, failed or skipped ones)",
    params(("id" = String, Path, description = "Email id")),
    responses((status = 202, description = "Queued again", body = EmailView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn resend(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<EmailView>)> {
    let email = resend_email(&state, parse_id(&id)?).await?;
    tracing::info!(admin.id = %admin.id(), email.id = %email.id, "resend by an admin");
    Ok((StatusCode::ACCEPTED, Json(EmailView::from(email))))
}
