pub mod admin_emails;
pub mod admin_users;
pub mod attendees;
pub mod auth;
pub mod banks;
pub mod board;
pub mod check_ins;
pub mod discounts;
pub mod event_images;
pub mod events;
pub mod health;
pub mod live;
pub mod media;
pub mod messages;
pub mod metrics;
pub mod ops;
pub mod orders;
pub mod payouts;
pub mod refunds;
pub mod sessions;
pub mod staff;
pub mod stats;
pub mod tickets;
pub mod tiers;
pub mod unsubscribe;
pub mod web;
pub mod webhook_endpoints;
pub mod webhooks;

/// A page or asset compiled into the binary, under its own CSP, revalidated
/// on every use (`no-cache`) so a new build is picked up at once.
pub(crate) fn static_asset(
    body: &'static str,
    content_type: &'static str,
    csp: &'static str,
) -> axum::response::Response {
    use axum::{
        http::{HeaderValue, header},
        response::IntoResponse,
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(csp),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}
