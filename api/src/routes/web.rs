//! The web app at `/`: the storefront (events, buying, the buyer's orders
//! and tickets) and the pages the emailed links open (`/verify-email`,
//! `/reset-password`, `/orders/{id}`). One HTML shell for
//! every page, routed in the browser; plain ES modules and CSS compiled
//! into the binary, no build step. A client of the public API like any
//! other: it reads nothing but `/v1`.

use axum::{
    extract::{Path, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};

use super::static_asset;
use crate::{error::ApiError, state::AppState};

const HTML: &str = include_str!("../../assets/web/index.html");
const CSS: &str = include_str!("../../assets/web/app.css");

/// The app's ES modules, by file name under `/app/`.
const MODULES: [(&str, &str); 3] = [
    ("app.js", include_str!("../../assets/web/app.js")),
    ("lib.js", include_str!("../../assets/web/lib.js")),
    ("console.js", include_str!("../../assets/web/console.js")),
];

/// Scripts, styles and data from this origin only, no inline script;
/// images also from `blob:` (ticket QR codes fetched with the token).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The pages the app routes, each served the same shell.
pub const PAGES: [&str; 14] = [
    "/",
    "/events/{id}",
    "/verify-email",
    "/forgot-password",
    "/reset-password",
    "/sign-in",
    "/register",
    "/orders",
    "/orders/{id}",
    "/tickets",
    "/console",
    "/console/{section}",
    "/console/events/{id}",
    "/console/events/{id}/{section}",
];

/// The shell. Event images may be served from another origin (a CDN or a
/// bucket: `MEDIA_PUBLIC_URL`); the page's CSP then allows images from it.
pub async fn page(State(state): State<AppState>) -> Response {
    let mut page = static_asset(HTML, "text/html; charset=utf-8", CSP);
    let media = url::Url::parse(&state.config().media.public_url)
        .ok()
        .map(|u| u.origin())
        .filter(|origin| origin.is_tuple())
        .map(|origin| origin.ascii_serialization());
    if let Some(media) = media
        && let Ok(csp) = HeaderValue::from_str(&CSP.replace(
            "img-src 'self' data: blob:",
            &format!("img-src 'self' data: blob: {media}"),
        ))
    {
        page.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    page
}

/// `/app/{module}`: one of `MODULES`.
pub async fn script(Path(module): Path<String>) -> Response {
    match MODULES.iter().find(|(name, _)| *name == module) {
        Some((_, body)) => static_asset(body, "text/javascript; charset=utf-8", CSP),
        None => ApiError::NoRoute.into_response(),
    }
}

pub async fn style() -> Response {
    static_asset(CSS, "text/css; charset=utf-8", CSP)
}
