//! Accounts and tokens: register, login, refresh, logout, me, email
//! verification, password reset.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
};
use boxoffice_core::config::AppEnv;
use boxoffice_core::{
    auth::{jwt, password, tokens},
    jobs::SendEmail,
    models::{
        NewEmail, NewRefreshToken, NewUser, RefreshToken, Role, TokenPurpose, User, UserToken,
        refresh_token::Rotation,
    },
};
use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult, FieldError, on_constraint},
    extract::{AuthUser, ClientInfo, Json, JsonOrEmpty},
    rate_limit,
    state::AppState,
    validate,
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub email_verified: bool,
    pub created_at: chrono::DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            role: u.role(),
            email_verified: u.email_verified_at.is_some(),
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuthResponse {
    pub user: UserView,
    #[serde(flatten)]
    pub tokens: TokenPair,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 10 to 256 characters, at least 5 different ones, no common word.
    #[schema(min_length = 10, max_length = 256)]
    pub password: String,
    #[schema(min_length = 1, max_length = 100)]
    pub display_name: String,
    /// `attendee` (default) or `organizer`; admins are made from the CLI.
    #[serde(default)]
    #[schema(pattern = "^(attendee|organizer)$")]
    pub role: Option<String>,
}

/// `POST /v1/auth/register`
#[utoipa::path(
    post,
    path = "/v1/auth/register",
    operation_id = "auth_register",
    tag = "auth",
    summary = "Create an account (attendee or organizer)",
    request_body = RegisterRequest,
    responses((status = 201, description = "Signed in", body = AuthResponse), crate::openapi::problems::BadRequest, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited)
)]
pub async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<(
    StatusCode,
    [(HeaderName, HeaderValue); 1],
    Json<AuthResponse>,
)> {
    let mut errors = Vec::new();
    let email = req.email.trim().to_owned();
    validate::email("email", &email, &mut errors);
    validate::length("display_name", &req.display_name, 1, 100, &mut errors);
    if let Err(problem) = password::check_strength(&req.password) {
        errors.push(FieldError::new("password", problem));
    }
    let role = match req.role.as_deref() {
        None | Some("attendee") => Role::Attendee,
        Some("organizer") => Role::Organizer,
        Some(_) => {
            errors.push(FieldError::new("role", "must be `attendee` or `organizer`"));
            Role::Attendee
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let per_hour = state.config().auth.registrations_per_hour;
    let hour = std::time::Duration::from_secs(3600);
    let ip_bucket = format!("register:ip:{}", client.ip);
    rate_limit::hit(&state, &[(&ip_bucket, per_hour)], hour).await?;

    let hash = password::hash(req.password).await?;
    let secret = state.services.jwt_secret().to_vec();
    let token_ttl = state.config().auth.email_token_ttl;
    let display_name = req.display_name.trim().to_owned();
    let mut conn = state.db().await?;
    let (user, email_id) = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let user = NewUser {
                id: Uuid::now_v7(),
                email: &email,
                password_hash: &hash,
                display_name: &display_name,
                role: role.as_str(),
            }
            .insert(conn)
            .await
            .map_err(on_constraint(
                "users_email_key",
                "email",
                "is already registered",
            ))?;
            let email_id =
                record_token_email(conn, &secret, &user, TokenPurpose::VerifyEmail, token_ttl)
                    .await?;
            Ok((user, email_id))
        })
        .await?;
    if let Some(id) = email_id {
        SendEmail::enqueue(&state.services.queues, id).await;
    }
    let tokens = start_session(&state, &mut conn, &user, &client).await?;
    tracing::info!(user.id = %user.id, role = role.as_str(), "user registered");
    let cookie = refresh_cookie(&state, &tokens.refresh_token);
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, cookie)],
        Json(AuthResponse {
            user: UserView::from(&user),
            tokens,
        }),
    ))
}

/// Writes a one-time token and the email that carries it, in the caller's
/// transaction. The email job derives the token from the row id.
async fn record_token_email(
    conn: &mut AsyncPgConnection,
    secret: &[u8],
    user: &User,
    purpose: TokenPurpose,
    ttl: std::time::Duration,
) -> Result<Option<Uuid>, ApiError> {
    let token_id = UserToken::create(conn, secret, user.id, purpose, ttl).await?;
    let dedupe_key = format!("{}:{token_id}", purpose.as_str());
    Ok(NewEmail {
        id: Uuid::now_v7(),
        dedupe_key: &dedupe_key,
        template: purpose.as_str(),
        to_address: &user.email,
        user_id: Some(user.id),
        params: serde_json::json!({ "token_id": token_id, "display_name": user.display_name }),
    }
    .insert(conn)
    .await?)
}

/// Starts a new session (refresh-token family) and returns its first tokens.
async fn start_session(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    user: &User,
    client: &ClientInfo,
) -> ApiResult<TokenPair> {
    issue_tokens(state, conn, user, Uuid::now_v7(), client).await
}

async fn issue_tokens(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    user: &User,
    family_id: Uuid,
    client: &ClientInfo,
) -> ApiResult<TokenPair> {
    let auth = &state.config().auth;
    let refresh = tokens::random_token();
    let ip = client.ip.to_string();
    NewRefreshToken {
        id: Uuid::now_v7(),
        user_id: user.id,
        family_id,
        token_hash: tokens::hash(&refresh),
        user_agent: client.user_agent.as_deref(),
        ip: Some(&ip),
        expires_at: Utc::now()
            + chrono::Duration::from_std(auth.refresh_token_ttl)
                .unwrap_or(chrono::Duration::days(30)),
    }
    .insert(conn)
    .await?;
    let now = Utc::now().timestamp();
    let claims = jwt::Claims {
        sub: user.id,
        role: user.role.clone(),
        sid: family_id,
        ver: user.token_version,
        iat: now,
        exp: now + auth.access_token_ttl.as_secs() as i64,
    };
    Ok(TokenPair {
        access_token: jwt::encode(&claims, state.services.jwt_secret()),
        token_type: "Bearer",
        expires_in: auth.access_token_ttl.as_secs(),
        refresh_token: refresh,
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// `POST /v1/auth/login`. Unknown email and wrong password answer the same,
/// in the same time.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    operation_id = "auth_login",
    tag = "auth",
    summary = "Sign in",
    request_body = LoginRequest,
    responses((status = 200, description = "Signed in", body = AuthResponse), crate::openapi::problems::BadRequest, crate::openapi::problems::Unauthorized, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited, crate::openapi::problems::UnsupportedMediaType)
)]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(req): Json<LoginRequest>,
) -> ApiResult<([(HeaderName, HeaderValue); 1], Json<AuthResponse>)> {
    let email = req.email.trim().to_lowercase();
    let auth = &state.config().auth;
    let (ip_bucket, account_bucket) = (
        format!("login:ip:{}", client.ip),
        format!("login:account:{email}"),
    );
    let per_account = auth.login_attempts_per_window;
    // An IP may carry several people (NAT); an account gets the tighter limit.
    rate_limit::hit(
        &state,
        &[
            (&ip_bucket, per_account * 5),
            (&account_bucket, per_account),
        ],
        auth.login_window,
    )
    .await?;
    let mut conn = state.db().await?;
    let user = User::find_by_email(&mut conn, &email).await?;
    let ok = password::verify(req.password, user.as_ref().map(|u| u.password_hash.clone())).await;
    let (true, Some(user)) = (ok, user) else {
        return Err(ApiError::Unauthorized(
            "invalid_credentials",
            "Wrong email or password.",
        ));
    };
    let tokens = start_session(&state, &mut conn, &user, &client).await?;
    tracing::info!(user.id = %user.id, "login");
    let cookie = refresh_cookie(&state, &tokens.refresh_token);
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(AuthResponse {
            user: UserView::from(&user),
            tokens,
        }),
    ))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// Omitted (or an empty body): the `boxoffice_refresh` cookie's, sent
    /// by a browser from the web app's own origin.
    pub refresh_token: Option<String>,
}

/// The refresh token's cookie, for the web app: `HttpOnly` (no script
/// reads it), `SameSite=Strict`, sent to the refresh endpoint alone, and
/// `Secure` outside development. It authenticates nothing but a refresh,
/// and a refresh by cookie checks `Origin`, so no other site can use it.
const REFRESH_COOKIE: &str = "boxoffice_refresh";

fn refresh_cookie(state: &AppState, token: &str) -> HeaderValue {
    cookie_with(
        state,
        token,
        state.config().auth.refresh_token_ttl.as_secs(),
    )
}

/// The cookie's removal (a sign-out).
fn cleared_cookie(state: &AppState) -> HeaderValue {
    cookie_with(state, "", 0)
}

fn cookie_with(state: &AppState, token: &str, max_age: u64) -> HeaderValue {
    let secure = if state.config().env == AppEnv::Development {
        ""
    } else {
        "; Secure"
    };
    HeaderValue::from_str(&format!(
        "{REFRESH_COOKIE}={token}; Path=/v1/auth/refresh; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    // Tokens are URL-safe base64.
    .expect("a header-safe cookie")
}

/// The refresh cookie's value, if the request carries one.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

/// A refresh by cookie must come from the web app's own pages: the
/// browser's `Origin` equals `PUBLIC_URL`'s.
fn from_own_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let own = url::Url::parse(&state.config().http.public_url)
        .map(|u| u.origin().ascii_serialization())
        .ok();
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    own.is_some() && origin == own.as_deref()
}

/// `POST /v1/auth/refresh`: rotates the refresh token. A token used twice
/// revokes its whole session.
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    operation_id = "auth_refresh",
    tag = "auth",
    summary = "Rotate a refresh token",
    request_body = RefreshRequest,
    responses((status = 200, description = "New tokens", body = AuthResponse), crate::openapi::problems::BadRequest, crate::openapi::problems::Unauthorized, crate::openapi::problems::Unprocessable, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::RateLimited)
)]
pub async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    JsonOrEmpty(req): JsonOrEmpty<RefreshRequest>,
) -> ApiResult<([(HeaderName, HeaderValue); 1], Json<AuthResponse>)> {
    const INVALID: ApiError = ApiError::Unauthorized(
        "invalid_refresh_token",
        "The refresh token is invalid or expired.",
    );
    let token = match req.refresh_token {
        Some(token) => token,
        None => {
            let token = cookie_token(&headers).ok_or(INVALID)?;
            if !from_own_origin(&state, &headers) {
                return Err(ApiError::Unauthorized(
                    "origin_rejected",
                    "A refresh by cookie must come from the web app's own pages.",
                ));
            }
            token
        }
    };
    let mut conn = state.db().await?;
    let hash = tokens::hash(token.trim());
    let cookie_state = state.clone();
    let result = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let (state, client) = (&state, &client);

                match RefreshToken::rotate(conn, &hash).await? {
                    Rotation::Rotated(old) => {
                        let user = User::find(conn, old.user_id).await?;
                        let tokens = issue_tokens(state, conn, &user, old.family_id, client).await?;
                        Ok(Some(AuthResponse { user: UserView::from(&user), tokens }))
                    }
                    Rotation::Reused { user_id, family_id } => {
                        tracing::warn!(user.id = %user_id, session.id = %family_id, "refresh token reused; session revoked");
                        Ok(None)
                    }
                    Rotation::Invalid => Ok(None),
                }
            })
        .await?;
    let response = result.ok_or(INVALID)?;
    let cookie = refresh_cookie(&cookie_state, &response.tokens.refresh_token);
    Ok(([(header::SET_COOKIE, cookie)], Json(response)))
}

/// `POST /v1/auth/logout`: ends the caller's session.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    operation_id = "auth_logout",
    tag = "auth",
    summary = "End this session",
    responses((status = 204, description = "Signed out"), crate::openapi::problems::Unauthorized, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn logout(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<(StatusCode, [(HeaderName, HeaderValue); 1])> {
    let mut conn = state.db().await?;
    RefreshToken::revoke_family(&mut conn, user.id(), user.session_id).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, cleared_cookie(&state))],
    ))
}

/// `GET /v1/auth/me`
#[utoipa::path(
    get,
    path = "/v1/auth/me",
    operation_id = "auth_me",
    tag = "auth",
    summary = "The signed-in user",
    responses((status = 200, description = "The user", body = UserView), crate::openapi::problems::Unauthorized, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn me(user: AuthUser) -> Json<UserView> {
    Json(UserView::from(&user.user))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub token: String,
}

/// `POST /v1/auth/verify-email`
#[utoipa::path(
    post,
    path = "/v1/auth/verify-email",
    operation_id = "auth_verify_email",
    tag = "auth",
    summary = "Confirm an email address with the emailed token",
    request_body = TokenRequest,
    responses((status = 200, description = "Verified", body = UserView), crate::openapi::problems::BadRequest, crate::openapi::problems::Unauthorized, crate::openapi::problems::Unprocessable, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::RateLimited)
)]
pub async fn verify_email(
    State(state): State<AppState>,
    Json(req): Json<TokenRequest>,
) -> ApiResult<Json<UserView>> {
    let mut conn = state.db().await?;
    let user = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let user_id = UserToken::consume(conn, req.token.trim(), TokenPurpose::VerifyEmail)
                .await?
                .ok_or(invalid_email_token())?;
            User::mark_verified(conn, user_id).await?;
            Ok(User::find(conn, user_id).await?)
        })
        .await?;
    Ok(Json(UserView::from(&user)))
}

fn invalid_email_token() -> ApiError {
    ApiError::BadRequest(
        "invalid_token",
        "The token is invalid, expired or already used.".into(),
    )
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

/// `POST /v1/auth/forgot-password`: always 202, whether or not the account
/// exists, so the endpoint does not reveal who has an account.
#[utoipa::path(
    post,
    path = "/v1/auth/forgot-password",
    operation_id = "auth_forgot_password",
    tag = "auth",
    summary = "Email a password-reset link (always 202)",
    request_body = ForgotPasswordRequest,
    responses((status = 202, description = "Accepted"), crate::openapi::problems::BadRequest, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited, crate::openapi::problems::UnsupportedMediaType)
)]
pub async fn forgot_password(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(req): Json<ForgotPasswordRequest>,
) -> ApiResult<StatusCode> {
    let email = req.email.trim().to_lowercase();
    let mut errors = Vec::new();
    validate::email("email", &email, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let window = std::time::Duration::from_secs(3600);
    let (ip_bucket, account_bucket) = (
        format!("forgot:ip:{}", client.ip),
        format!("forgot:account:{email}"),
    );
    rate_limit::hit(&state, &[(&ip_bucket, 20), (&account_bucket, 5)], window).await?;
    let secret = state.services.jwt_secret().to_vec();
    let ttl = std::time::Duration::from_secs(3600);
    let mut conn = state.db().await?;
    let email_id = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            match User::find_by_email(conn, &email).await? {
                Some(user) => {
                    record_token_email(conn, &secret, &user, TokenPurpose::ResetPassword, ttl).await
                }
                None => Ok(None),
            }
        })
        .await?;
    if let Some(id) = email_id {
        SendEmail::enqueue(&state.services.queues, id).await;
    }
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    pub token: String,
    pub password: String,
}

/// `POST /v1/auth/reset-password`: sets the new password and signs the
/// account out everywhere.
#[utoipa::path(
    post,
    path = "/v1/auth/reset-password",
    operation_id = "auth_reset_password",
    tag = "auth",
    summary = "Set a new password with the emailed token",
    request_body = ResetPasswordRequest,
    responses((status = 204, description = "Password changed; all sessions ended"), crate::openapi::problems::BadRequest, crate::openapi::problems::Unauthorized, crate::openapi::problems::Unprocessable, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::RateLimited)
)]
pub async fn reset_password(
    State(state): State<AppState>,
    Json(req): Json<ResetPasswordRequest>,
) -> ApiResult<StatusCode> {
    if let Err(problem) = password::check_strength(&req.password) {
        return Err(ApiError::validation("password", problem));
    }
    let hash = password::hash(req.password).await?;
    let mut conn = state.db().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let user_id = UserToken::consume(conn, req.token.trim(), TokenPurpose::ResetPassword)
            .await?
            .ok_or(invalid_email_token())?;
        User::set_password(conn, user_id, &hash).await?;
        UserToken::invalidate_all(conn, user_id, TokenPurpose::ResetPassword).await?;
        RefreshToken::revoke_all(conn, user_id).await?;
        // Receiving the email proved the address.
        User::mark_verified(conn, user_id).await?;
        tracing::info!(user.id = %user_id, "password reset");
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
