//! The OpenAPI 3.1 document, generated from the handlers' annotations, at
//! `/openapi.json`; Swagger UI (vendored into the binary) at `/docs`.

use axum::{
    Json,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{error::FieldError, routes};

/// An RFC 9457 problem: every error answer has this shape.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// `https://boxoffice.dev/problems/<code>`
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable and machine-readable, e.g. `validation_failed`, `sold_out`, `rate_limited`.
    pub code: String,
    pub detail: String,
    /// Per-field errors (422 `validation_failed` only; absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// The error answers operations share, one type per status, so every
/// operation lists them by name instead of repeating them.
pub mod problems {
    use utoipa::IntoResponses;

    use super::Problem;

    macro_rules! problem {
        ($name:ident, $status:literal, $description:literal) => {
            #[derive(IntoResponses)]
            #[response(
                                                    status = $status,
                                                    description = $description,
                                                    content_type = "application/problem+json"
                                                )]
            #[allow(dead_code)]
            pub struct $name(Problem);
        };
    }

    problem!(
        BadRequest,
        400,
        "Malformed request (`malformed_json`, a missing header …)"
    );
    problem!(Unauthorized, 401, "Not signed in or bad token");
    problem!(Forbidden, 403, "Role not allowed");
    problem!(NotFound, 404, "Not found");
    problem!(Conflict, 409, "Conflicts with the current state");
    problem!(PayloadTooLarge, 413, "Body too large");
    problem!(
        UnsupportedMediaType,
        415,
        "Unsupported media type (send `application/json`)"
    );
    problem!(
        Unprocessable,
        422,
        "Invalid fields (`validation_failed` with `errors`) or refused with its own code"
    );
    problem!(
        RateLimited,
        429,
        "Rate limited (`Retry-After` says when to retry)"
    );
    problem!(
        Unavailable,
        503,
        "A backing service is unavailable; retry shortly"
    );
}

/// Multipart body of an image upload.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ImageUpload {
    /// JPEG, PNG, WebP or GIF.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("Access token from /v1/auth/login (15 min)"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Boxoffice API",
        description = "Event ticketing built around job queues. Errors are RFC 9457 problem+json with a stable `code`.",
        version = env!("CARGO_PKG_VERSION"),
    ),
    paths(
        routes::auth::register,
        routes::auth::login,
        routes::auth::refresh,
        routes::auth::logout,
        routes::auth::me,
        routes::auth::verify_email,
        routes::auth::forgot_password,
        routes::auth::reset_password,
        routes::sessions::list,
        routes::sessions::revoke,
        routes::admin_users::update,
        routes::health::healthz,
        routes::health::readyz,
        routes::events::search::list,
        routes::events::manage::create,
        routes::events::detail::get,
        routes::events::manage::update,
        routes::events::manage::delete,
        routes::events::manage::publish,
        routes::events::manage::list_mine,
        routes::tiers::create,
        routes::tiers::update,
        routes::tiers::delete,
        routes::discounts::create,
        routes::discounts::list,
        routes::discounts::update,
        routes::discounts::check,
        routes::event_images::upload,
        routes::event_images::delete,
        routes::media::get,
        routes::orders::place,
        routes::orders::get,
        routes::orders::cancel,
        routes::orders::list_mine,
        routes::tickets::list_mine,
        routes::tickets::get,
        routes::tickets::qr,
        routes::webhooks::receive,
        routes::live::order,
        routes::live::event,
        routes::live::feed,
        routes::ops::list,
        routes::ops::get,
        routes::ops::jobs,
        routes::ops::retry,
        routes::ops::discard,
        routes::ops::pause,
        routes::ops::resume,
        routes::metrics::get,
        routes::board::page,
    ),
    components(schemas(Problem, FieldError, ImageUpload)),
    modifiers(&Bearer),
    tags(
        (name = "auth", description = "Accounts, sign-in, sessions"),
        (name = "events", description = "Events, images and search"),
        (name = "tiers", description = "Ticket tiers"),
        (name = "discounts", description = "Discount codes"),
        (name = "orders", description = "Placing and following orders"),
        (name = "tickets", description = "Tickets and QR codes"),
        (name = "live", description = "Server-sent event streams"),
        (name = "webhooks", description = "Inbound payment provider events"),
        (name = "ops", description = "Queues, metrics, board (admin)"),
        (name = "admin", description = "User administration"),
        (name = "health", description = "Liveness and readiness"),
    ),
)]
pub struct ApiDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Boxoffice API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script></body></html>"#;
const DOCS_INIT: &str =
    "window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui' });";
const BUNDLE: &str = include_str!("../assets/swagger-ui/swagger-ui-bundle.js");
const CSS: &str = include_str!("../assets/swagger-ui/swagger-ui.css");
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
        ],
        body,
    )
        .into_response()
}

pub async fn docs() -> Response {
    asset(DOCS_HTML, "text/html; charset=utf-8")
}

pub async fn docs_init() -> Response {
    asset(DOCS_INIT, "text/javascript; charset=utf-8")
}

pub async fn docs_bundle() -> Response {
    asset(BUNDLE, "text/javascript; charset=utf-8")
}

pub async fn docs_css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}
