//! Door staff: users an organizer lets scan one event's tickets. Owners
//! and admins can always scan; staff can scan and see the check-ins, no
//! more.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use boxoffice_core::models::{Staff, User};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult, FieldError},
    extract::{AuthUser, Json},
    routes::events::{load_managed, parse_id},
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffRequest {
    /// The email of a registered user.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaffView {
    pub user_id: Uuid,
    pub email: String,
    pub granted_by: Uuid,
    pub granted_at: DateTime<Utc>,
}

impl StaffView {
    fn new(staff: Staff, email: String) -> Self {
        Self {
            user_id: staff.user_id,
            email,
            granted_by: staff.granted_by,
            granted_at: staff.created_at,
        }
    }
}

/// `POST /v1/events/{id}/staff`
#[utoipa::path(
    post,
    path = "/v1/events/{id}/staff",
    operation_id = "staff_grant",
    tag = "check-in",
    summary = "Let a user scan this event's tickets at the door",
    description = "Granting twice changes nothing.",
    params(("id" = String, Path, description = "Event id")),
    request_body = StaffRequest,
    responses((status = 201, description = "Granted", body = StaffView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Unprocessable, crate::openapi::problems::BadRequest, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn grant(
    State(state): State<AppState>,
    user: AuthUser,
    Path(event_id): Path<String>,
    Json(req): Json<StaffRequest>,
) -> ApiResult<(StatusCode, Json<StaffView>)> {
    let mut conn = state.db().await?;
    let event = load_managed(&mut conn, &user, &event_id).await?;
    let Some(member) = User::find_by_email(&mut conn, req.email.trim()).await? else {
        return Err(ApiError::Validation(vec![FieldError::new(
            "email",
            "no user is registered with this email",
        )]));
    };
    let staff = Staff::grant(&mut conn, event.id, member.id, user.id()).await?;
    tracing::info!(event.id = %event.id, staff.user_id = %member.id, "door staff granted");
    Ok((
        StatusCode::CREATED,
        Json(StaffView::new(staff, member.email)),
    ))
}

/// `GET /v1/events/{id}/staff`
#[utoipa::path(
    get,
    path = "/v1/events/{id}/staff",
    operation_id = "staff_list",
    tag = "check-in",
    summary = "The event's door staff",
    params(("id" = String, Path, description = "Event id")),
    responses((status = 200, description = "Staff", body = Vec<StaffView>), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(event_id): Path<String>,
) -> ApiResult<Json<Vec<StaffView>>> {
    let mut conn = state.db().await?;
    let event = load_managed(&mut conn, &user, &event_id).await?;
    let staff = Staff::for_event(&mut conn, event.id).await?;
    Ok(Json(
        staff
            .into_iter()
            .map(|(s, email)| StaffView::new(s, email))
            .collect(),
    ))
}

/// `DELETE /v1/events/{id}/staff/{user_id}`
#[utoipa::path(
    delete,
    path = "/v1/events/{id}/staff/{user_id}",
    operation_id = "staff_revoke",
    tag = "check-in",
    summary = "Take a user's door role for this event away",
    params(("id" = String, Path, description = "Event id"), ("user_id" = String, Path, description = "The staff member's user id")),
    responses((status = 204, description = "Revoked"), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let mut conn = state.db().await?;
    let event = load_managed(&mut conn, &user, &event_id).await?;
    if Staff::revoke(&mut conn, event.id, parse_id(&user_id)?).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}
