//! Every route in one screen.

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, Request},
    routing::{delete, get, patch, post},
};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::{error::ApiError, middleware, routes::*, state::AppState};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let http = &state.config().http;
    let v1 = Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route("/auth/verify-email", post(auth::verify_email))
        .route("/auth/forgot-password", post(auth::forgot_password))
        .route("/auth/reset-password", post(auth::reset_password))
        .route("/auth/sessions", get(sessions::list))
        .route("/auth/sessions/{id}", delete(sessions::revoke))
        .route("/admin/users/{id}", patch(admin_users::update))
        .route(
            "/events",
            get(events::search::list).post(events::manage::create),
        )
        .route(
            "/events/{id}",
            get(events::detail::get)
                .patch(events::manage::update)
                .delete(events::manage::delete),
        )
        .route("/events/{id}/publish", post(events::manage::publish))
        .route("/events/{id}/tiers", post(tiers::create))
        .route(
            "/events/{id}/tiers/{tier_id}",
            patch(tiers::update).delete(tiers::delete),
        )
        .route(
            "/events/{id}/discounts",
            get(discounts::list).post(discounts::create),
        )
        .route(
            "/events/{id}/discounts/{code}",
            get(discounts::check).patch(discounts::update),
        )
        .route(
            "/events/{id}/images",
            // Images are the one body bigger than the JSON limit.
            post(event_images::upload).layer(DefaultBodyLimit::max(
                state.config().media.max_image_bytes + 64 * 1024,
            )),
        )
        .route(
            "/events/{id}/images/{image_id}",
            delete(event_images::delete),
        )
        .route("/organizer/events", get(events::manage::list_mine))
        .route("/events/live", get(live::feed))
        .route("/events/{id}/live", get(live::event))
        .route("/events/{id}/orders", post(orders::place))
        .route("/orders/{id}", get(orders::get))
        .route("/orders/{id}/cancel", post(orders::cancel))
        .route("/orders/{id}/live", get(live::order))
        .route("/users/me/orders", get(orders::list_mine))
        .route("/users/me/tickets", get(tickets::list_mine))
        .route("/tickets/{id}", get(tickets::get))
        .route("/tickets/{id}/qr.png", get(tickets::qr))
        .route(
            "/webhooks/payments/{provider}",
            post(webhooks::receive).layer(DefaultBodyLimit::max(webhooks::MAX_WEBHOOK_BYTES)),
        )
        .route("/ops/queues", get(ops::list))
        .route("/ops/queues/{queue}", get(ops::get))
        .route("/ops/queues/{queue}/jobs", get(ops::jobs))
        .route("/ops/queues/{queue}/jobs/{id}/retry", post(ops::retry))
        .route("/ops/queues/{queue}/jobs/{id}/discard", post(ops::discard))
        .route("/ops/queues/{queue}/pause", post(ops::pause))
        .route("/ops/queues/{queue}/resume", post(ops::resume))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::limit,
        ));

    Router::new()
        .nest("/v1", v1)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/media/{*key}", get(media::get))
        .route("/metrics", get(metrics::get))
        .route("/openapi.json", get(crate::openapi::openapi_json))
        .route("/docs", get(crate::openapi::docs))
        .route("/docs/init.js", get(crate::openapi::docs_init))
        .route("/docs/swagger-ui-bundle.js", get(crate::openapi::docs_bundle))
        .route("/docs/swagger-ui.css", get(crate::openapi::docs_css))
        .route("/ops/board", get(board::page))
        .route("/ops/board.js", get(board::script))
        .route("/ops/board.css", get(board::style))
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(axum::middleware::from_fn(crate::middleware::track))
        .layer(axum::middleware::from_fn(crate::middleware::security_headers))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            http.request_timeout,
        ))
        // Every log line of a request carries its id (taken from the client's
        // X-Request-Id or made up), and the response echoes it.
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let request_id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", request_id = %request_id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(tower::util::option_layer(middleware::cors(&http.cors_origins)))
        .with_state(state)
}
