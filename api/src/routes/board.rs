//! `/ops/board`: the queue board, our own page over `/v1/ops/queues` (the
//! apalis-board of 1.0.0 shows wrong or no figures on Redis and cannot retry,
//! discard or pause). The page holds no data: it signs in as an admin and
//! reads the admin-only endpoints, so every figure is the API's. Its assets
//! are compiled into the binary.

use axum::response::Response;

use super::static_asset;

const HTML: &str = include_str!("../../assets/board.html");
const JS: &str = include_str!("../../assets/board.js");
const CSS: &str = include_str!("../../assets/board.css");

/// Scripts and styles from this origin only; data from this origin only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    static_asset(body, content_type, CSP)
}

#[utoipa::path(
    get,
    path = "/ops/board",
    operation_id = "board_page",
    tag = "ops",
    summary = "The queue board (HTML; data from /v1/ops/queues)",
    responses((status = 200, description = "HTML", content_type = "text/html"))
)]
pub async fn page() -> Response {
    asset(HTML, "text/html; charset=utf-8")
}

pub async fn script() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

pub async fn style() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}
