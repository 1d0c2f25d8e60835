//! Bearer access tokens → the calling user, with role checks.

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts},
};
use boxoffice_core::{
    auth::jwt,
    models::{AccessSession, Role, User},
};
use uuid::Uuid;

use crate::{error::ApiError, state::AppState};

/// A signed-in user. The token is checked against the database: a password
/// reset or role change (token version) or a revoked session ends it at once.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: User,
    pub session_id: Uuid,
}

impl AuthUser {
    pub fn id(&self) -> Uuid {
        self.user.id
    }

    pub fn role(&self) -> Role {
        self.user.role()
    }

    /// The access session the request's token names.
    pub fn session(&self) -> AccessSession {
        AccessSession {
            user_id: self.user.id,
            token_version: self.user.token_version,
            session_id: self.session_id,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role() == Role::Admin
    }

    /// Owners and admins may manage an event.
    pub fn can_manage(&self, organizer_id: Uuid) -> bool {
        self.id() == organizer_id || self.is_admin()
    }

    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role() >= role {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

const MISSING_TOKEN: ApiError = ApiError::Unauthorized(
    "missing_token",
    "Send `Authorization: Bearer <access token>`.",
);
pub const INVALID_TOKEN: ApiError =
    ApiError::Unauthorized("invalid_token", "The access token is invalid or expired.");

/// The caller as a well-signed, unexpired access token names them, before
/// its session is checked against the database. Only for a handler whose
/// own statement makes that check: placing an order checks it in the insert
/// (`Order::place_many`), which saves the hottest request a query.
#[derive(Debug, Clone, Copy)]
pub struct Bearer(pub AccessSession);

/// The token of `Authorization: Bearer <token>`; the scheme is
/// case-insensitive (RFC 9110 §11.1), so every reader of the header (this
/// extractor, the rate limiter keyed on the user) sees the same caller.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let (scheme, token) = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl FromRequestParts<AppState> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers).ok_or(MISSING_TOKEN)?;
        let now = chrono::Utc::now().timestamp();
        let claims =
            jwt::decode(token, state.services.jwt_secret(), now).map_err(|_| INVALID_TOKEN)?;
        Ok(Bearer(AccessSession {
            user_id: claims.sub,
            token_version: claims.ver,
            session_id: claims.sid,
        }))
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Bearer(session) = Bearer::from_request_parts(parts, state).await?;
        let mut conn = state.db().await?;
        let user = User::find_for_access_token(&mut conn, session)
            .await?
            .ok_or(INVALID_TOKEN)?;
        Ok(AuthUser {
            user,
            session_id: session.session_id,
        })
    }
}

/// An admin, or 403.
pub struct RequireAdmin(pub AuthUser);

impl FromRequestParts<AppState> for RequireAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        user.require(Role::Admin)?;
        Ok(RequireAdmin(user))
    }
}

/// A signed-in user if the request carries a token, else nobody. A token that
/// is present but bad is still a 401: silently treating it as anonymous would
/// hide the caller's own drafts and confuse them.
pub struct MaybeUser(pub Option<AuthUser>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            Ok(MaybeUser(Some(
                AuthUser::from_request_parts(parts, state).await?,
            )))
        } else {
            Ok(MaybeUser(None))
        }
    }
}
