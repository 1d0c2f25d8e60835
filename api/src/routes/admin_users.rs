//! Admin-only user management.

use axum::extract::{Path, State};
use boxoffice_core::models::{RefreshToken, Role, User};
use diesel_async::AsyncConnection;
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult},
    extract::{Json, RequireAdmin},
    routes::auth::UserView,
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    pub role: String,
}

/// `PATCH /v1/admin/users/{id}`: changes a user's role. Their tokens stop
/// working (token version bump) and their sessions end, so the new role
/// applies from their next sign-in.
#[utoipa::path(
    patch,
    path = "/v1/admin/users/{id}",
    operation_id = "admin_users_update",
    tag = "admin",
    summary = "Change a user's role",
    params(("id" = String, Path, description = "User id")),
    request_body = UpdateUserRequest,
    responses((status = 200, description = "Updated", body = crate::routes::auth::UserView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Unprocessable, crate::openapi::problems::BadRequest, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    Path(id): Path<String>,
    Json(req): Json<UpdateUserRequest>,
) -> ApiResult<Json<UserView>> {
    let id: Uuid = id.parse().map_err(|_| ApiError::NotFound)?;
    let role: Role = req
        .role
        .parse()
        .map_err(|_| ApiError::validation("role", "must be `attendee`, `organizer` or `admin`"))?;
    let mut conn = state.db().await?;
    let user = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let user = User::set_role(conn, id, role).await?;
            RefreshToken::revoke_all(conn, id).await?;
            Ok(user)
        })
        .await?;
    tracing::info!(admin.id = %admin.id(), user.id = %user.id, role = role.as_str(), "role changed");
    Ok(Json(UserView::from(&user)))
}
