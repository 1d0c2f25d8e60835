//! Admin-only user management.

use axum::extract::{Path, State};
use boxoffice_core::models::{RefreshToken, Role, User};
use diesel_async::AsyncConnection;
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult, FieldError},
    extract::{Json, Query, RequireAdmin},
    pagination::{self, Page},
    routes::auth::UserView,
    state::AppState,
};

/// A role as the API spells it, or the field error that says which.
fn parse_role(raw: &str) -> Result<Role, FieldError> {
    raw.parse()
        .map_err(|_| FieldError::new("role", "must be `attendee`, `organizer` or `admin`"))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Part of the email or the name, any case (1–100 characters).
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// `attendee`, `organizer` or `admin`.
    #[param(pattern = "^(attendee|organizer|admin)$")]
    pub role: Option<String>,
    pub cursor: Option<String>,
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// `GET /v1/admin/users`: finds users, newest first, for the id that
/// `PATCH /v1/admin/users/{id}` needs.
#[utoipa::path(
    get,
    path = "/v1/admin/users",
    operation_id = "admin_users_list",
    tag = "admin",
    summary = "Find users by email or name",
    params(ListParams),
    responses((status = 200, description = "A page of users, newest first", body = Page<UserView>), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::Unprocessable, crate::openapi::problems::BadRequest, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    RequireAdmin(_admin): RequireAdmin,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Page<UserView>>> {
    let mut errors = Vec::new();
    let limit = pagination::limit(params.limit, &mut errors);
    let q = params.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > 100) {
        errors.push(FieldError::new("q", "must be at most 100 characters"));
    }
    let role = match params.role.as_deref().map(parse_role).transpose() {
        Ok(role) => role,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let after = pagination::created_after(params.cursor.as_deref())?;
    let mut conn = state.db().await?;
    let users = User::search(&mut conn, q, role, after, limit + 1).await?;
    let (users, next_cursor) = pagination::created_page(users, limit, |u| (u.created_at, u.id));
    Ok(Json(Page {
        items: users.iter().map(UserView::from).collect(),
        next_cursor,
    }))
}

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
    let role = parse_role(&req.role).map_err(|e| ApiError::Validation(vec![e]))?;
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
