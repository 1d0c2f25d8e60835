//! The web app at `/`: the storefront (events, buying, the buyer's orders
//! and tickets) and the pages the emailed links open (`/verify-email`,
//! `/reset-password`, `/orders/{id}`). One HTML shell for
//! every page, routed in the browser; plain ES modules and CSS compiled
//! into the binary, no build step. A client of the public API like any
//! other: it reads nothing but `/v1`.

use axum::response::Response;

use super::static_asset;

const HTML: &str = include_str!("../../assets/web/index.html");
const JS: &str = include_str!("../../assets/web/app.js");
const CSS: &str = include_str!("../../assets/web/app.css");

/// Scripts, styles and data from this origin only, no inline script;
/// images also from `blob:` (ticket QR codes fetched with the token).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The pages the app routes, each served the same shell.
pub const PAGES: [&str; 10] = [
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
];

pub async fn page() -> Response {
    static_asset(HTML, "text/html; charset=utf-8", CSP)
}

pub async fn script() -> Response {
    static_asset(JS, "text/javascript; charset=utf-8", CSP)
}

pub async fn style() -> Response {
    static_asset(CSS, "text/css; charset=utf-8", CSP)
}
