//! The one API error type, rendered as RFC 9457 `application/problem+json`
//! with a stable machine-readable `code`. Internal details are logged once,
//! here, and never sent.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {1}")]
    BadRequest(&'static str, String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("unauthorized: {1}")]
    Unauthorized(&'static str, &'static str),
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    /// No endpoint at this path (the router's fallback), told apart from a
    /// resource that does not exist.
    #[error("no route")]
    NoRoute,
    /// The request is valid but the resource's state forbids it (409).
    #[error("conflict: {1}")]
    Conflict(&'static str, String),
    /// Well-formed but refused for a reason with its own code (422).
    #[error("unprocessable: {1}")]
    Unprocessable(&'static str, String),
    /// The path exists but not with this method (405; axum adds `Allow`).
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType(&'static str),
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The request ran past `HTTP_REQUEST_TIMEOUT_SECS` (503: retryable).
    #[error("request timed out")]
    Timeout,
    /// The address is longer than any route needs (414).
    #[error("uri too long")]
    UriTooLong,
    #[error("internal: {0}")]
    Internal(String),
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    code: &'a str,
    detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

impl ApiError {
    pub fn validation(field: &str, message: &str) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str, String) {
        use ApiError::*;
        match self {
            BadRequest(code, detail) => {
                (StatusCode::BAD_REQUEST, code, "Bad request", detail.clone())
            }
            Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Validation failed",
                "One or more fields are invalid.".into(),
            ),
            Unauthorized(code, detail) => (
                StatusCode::UNAUTHORIZED,
                code,
                "Unauthorized",
                (*detail).into(),
            ),
            Forbidden => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "Forbidden",
                "Your role does not allow this.".into(),
            ),
            NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "Not found",
                "No such resource.".into(),
            ),
            NoRoute => (
                StatusCode::NOT_FOUND,
                "no_route",
                "Not found",
                "There is no endpoint at this path; see /docs.".into(),
            ),
            Conflict(code, detail) => (StatusCode::CONFLICT, code, "Conflict", detail.clone()),
            Unprocessable(code, detail) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                code,
                "Unprocessable request",
                detail.clone(),
            ),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
                "This method is not allowed on this path; `Allow` lists those that are.".into(),
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
                "The request body is too large.".into(),
            ),
            UnsupportedMediaType(detail) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                (*detail).into(),
            ),
            RateLimited { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests",
                format!("Slow down; retry in {retry_after_secs} s."),
            ),
            Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "Service unavailable",
                "A backing service is unavailable; retry shortly.".into(),
            ),
            Timeout => (
                StatusCode::SERVICE_UNAVAILABLE,
                "request_timeout",
                "Request timed out",
                "The request took too long to answer; retry shortly.".into(),
            ),
            UriTooLong => (
                StatusCode::URI_TOO_LONG,
                "uri_too_long",
                "URI too long",
                "The address is longer than any endpoint accepts.".into(),
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Internal server error",
                "Something went wrong on our side.".into(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, title, detail) = self.parts();
        match &self {
            ApiError::Internal(e) => tracing::error!(error = %e, "internal error"),
            ApiError::Unavailable(e) => tracing::warn!(error = %e, "backing service unavailable"),
            _ => {}
        }
        let retry_after = match &self {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            // Transient: a client may retry after a second.
            ApiError::Unavailable(_) | ApiError::Timeout => Some(1),
            _ => None,
        };
        let errors = match self {
            ApiError::Validation(errors) => errors,
            _ => Vec::new(),
        };
        let body = Problem {
            kind: format!("https://boxoffice.dev/problems/{}", code.replace('_', "-")),
            title,
            status: status.as_u16(),
            code,
            detail,
            errors,
        };
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => ApiError::NotFound,
            e if boxoffice_core::db::is_unavailable(&e) => {
                ApiError::Unavailable(format!("database: {e}"))
            }
            e => ApiError::Internal(format!("database: {e}")),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for ApiError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        ApiError::Unavailable(format!("database pool: {e}"))
    }
}

impl From<boxoffice_core::batch::BatchError> for ApiError {
    fn from(e: boxoffice_core::batch::BatchError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl From<boxoffice_core::auth::password::HashError> for ApiError {
    fn from(e: boxoffice_core::auth::password::HashError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// A payment provider call made while answering: unavailable (503) when it
/// is worth retrying; a refusal is said in general terms (the provider's
/// words may name our account) and logged in full.
impl From<boxoffice_core::payments::ProviderError> for ApiError {
    fn from(e: boxoffice_core::payments::ProviderError) -> Self {
        use boxoffice_core::payments::ProviderError::*;
        match e {
            Rejected(detail) => {
                tracing::info!(%detail, "payment provider refused");
                ApiError::Unprocessable(
                    "provider_refused",
                    "The payment provider refused the request.".into(),
                )
            }
            e @ (Transient(_) | CircuitOpen { .. } | RateLimited { .. }) => {
                ApiError::Unavailable(format!("payment provider: {e}"))
            }
        }
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        ApiError::Unavailable(format!("redis: {e}"))
    }
}

/// Maps a violation of `constraint` (unique or check) to a field error: the
/// database is the arbiter of invariants that concurrent requests could race.
pub fn on_constraint(
    constraint: &'static str,
    field: &'static str,
    message: &'static str,
) -> impl FnOnce(diesel::result::Error) -> ApiError {
    move |e| on_constraints(&[(constraint, field, message)])(e)
}

/// [`on_constraint`] for several constraints: `(constraint, field, message)`.
pub fn on_constraints<'a>(
    rules: &'a [(&'static str, &'static str, &'static str)],
) -> impl FnOnce(diesel::result::Error) -> ApiError + 'a {
    move |e| {
        if let diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation
            | diesel::result::DatabaseErrorKind::CheckViolation,
            info,
        ) = &e
            && let Some((_, field, message)) = rules
                .iter()
                .find(|(constraint, _, _)| info.constraint_name() == Some(constraint))
        {
            return ApiError::Validation(vec![FieldError::new(*field, *message)]);
        }
        e.into()
    }
}

/// The 415 detail for JSON endpoints.
pub const SEND_JSON: &str = "Send JSON with `Content-Type: application/json`.";

pub type ApiResult<T> = Result<T, ApiError>;
