//! A session is one refresh-token family: one sign-in on one device.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use boxoffice_core::models::RefreshToken;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, Json},
    state::AppState,
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    /// The session the calling access token belongs to.
    pub current: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// `GET /v1/auth/sessions`
#[utoipa::path(
    get,
    path = "/v1/auth/sessions",
    operation_id = "sessions_list",
    tag = "auth",
    summary = "The caller's sessions",
    responses((status = 200, description = "Sessions", body = SessionList), crate::openapi::problems::Unauthorized, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn list(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<SessionList>> {
    let mut conn = state.db().await?;
    let sessions = RefreshToken::sessions(&mut conn, user.id())
        .await?
        .into_iter()
        .map(|s| SessionView {
            id: s.family_id,
            current: s.family_id == user.session_id,
            user_agent: s.user_agent,
            ip: s.ip,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
        })
        .collect();
    Ok(Json(SessionList { sessions }))
}

/// `DELETE /v1/auth/sessions/{id}`: signs that device out. Another user's
/// session id is simply not found.
#[utoipa::path(
    delete,
    path = "/v1/auth/sessions/{id}",
    operation_id = "sessions_revoke",
    tag = "auth",
    summary = "Revoke a session",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Revoked"), crate::openapi::problems::Unauthorized, crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: Uuid = id.parse().map_err(|_| ApiError::NotFound)?;
    let mut conn = state.db().await?;
    match RefreshToken::revoke_family(&mut conn, user.id(), id).await? {
        0 => Err(ApiError::NotFound),
        _ => Ok(StatusCode::NO_CONTENT),
    }
}
