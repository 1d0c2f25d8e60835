//! Every route in one screen, each API route registered from its OpenAPI
//! annotation.

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, Request},
    routing::get,
};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use utoipa::OpenApi;
use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouter},
    routes,
};

use crate::{error::ApiError, middleware, routes::*, state::AppState};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every documented route, each registered from its handler's OpenAPI
/// annotation (`routes!` takes the method and path from it), so no route
/// can be added without its document entry: the `/v1` API (rate-limited by
/// the caller) and the root's documented pages.
fn documented(state: &AppState) -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    let v1 = OpenApiRouter::new()
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::verify_email))
        .routes(routes!(auth::forgot_password))
        .routes(routes!(auth::reset_password))
        .routes(routes!(sessions::list))
        .routes(routes!(sessions::revoke))
        .routes(routes!(admin_users::list))
        .routes(routes!(admin_users::update))
        .routes(routes!(admin_emails::list))
        .routes(routes!(admin_emails::resend))
        .routes(routes!(events::search::list, events::manage::create))
        .routes(routes!(
            events::detail::get,
            events::manage::update,
            events::manage::delete
        ))
        .routes(routes!(events::manage::publish))
        .routes(routes!(events::calendar::get))
        .routes(routes!(events::cancel::cancel))
        .routes(routes!(events::cancel::progress))
        .routes(routes!(tiers::create))
        .routes(routes!(tiers::update, tiers::delete))
        .routes(routes!(discounts::list, discounts::create))
        .routes(routes!(discounts::check, discounts::update))
        .routes(routes!(messages::list, messages::create))
        .routes(routes!(messages::get))
        .routes(routes!(staff::list, staff::grant))
        .routes(routes!(staff::revoke))
        .routes(routes!(check_ins::list, check_ins::scan))
        .routes(routes!(check_ins::undo))
        .routes(routes!(check_ins::door_list))
        .routes(routes!(check_ins::batch))
        .routes(routes!(attendees::list))
        .routes(routes!(stats::event))
        .routes(routes!(stats::organizer))
        .routes(routes!(stats::admin))
        // Images are the one body bigger than the JSON limit.
        .routes(with_layer(
            routes!(event_images::upload),
            DefaultBodyLimit::max(state.config().media.max_image_bytes + 64 * 1024),
        ))
        .routes(routes!(event_images::delete))
        .routes(routes!(events::manage::list_mine))
        .routes(routes!(payouts::set_account))
        .routes(routes!(banks::list))
        .routes(routes!(payouts::balance))
        .routes(routes!(payouts::list))
        .routes(routes!(webhook_endpoints::list, webhook_endpoints::create))
        .routes(routes!(
            webhook_endpoints::get,
            webhook_endpoints::update,
            webhook_endpoints::delete
        ))
        .routes(routes!(webhook_endpoints::event_types))
        .routes(routes!(webhook_endpoints::rotate_secret))
        .routes(routes!(webhook_endpoints::deliveries))
        .routes(routes!(webhook_endpoints::redeliver))
        .routes(routes!(webhook_endpoints::test))
        .routes(routes!(unsubscribe::unsubscribe))
        .routes(routes!(live::feed))
        .routes(routes!(live::event))
        .routes(routes!(orders::place))
        .routes(routes!(orders::get))
        .routes(routes!(orders::cancel))
        .routes(routes!(orders::resend_tickets))
        .routes(routes!(refunds::request))
        .routes(routes!(refunds::list))
        .routes(routes!(live::order))
        .routes(routes!(orders::list_mine))
        .routes(routes!(tickets::list_mine))
        .routes(routes!(tickets::of_order))
        .routes(routes!(tickets::get))
        .routes(routes!(tickets::qr))
        .routes(with_layer(
            routes!(webhooks::receive),
            DefaultBodyLimit::max(webhooks::MAX_WEBHOOK_BYTES),
        ))
        .routes(routes!(ops::list))
        .routes(routes!(ops::providers))
        .routes(routes!(ops::get))
        .routes(routes!(ops::jobs))
        .routes(routes!(ops::retry))
        .routes(routes!(ops::discard))
        .routes(routes!(ops::pause))
        .routes(routes!(ops::resume));
    let mut root = OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::get))
        .routes(routes!(board::page))
        // A media key has slashes: the route takes the rest of the path,
        // which OpenAPI writes as one parameter.
        .route("/media/{*key}", axum::routing::get(media::get));
    let (_, media_doc, _) = routes!(media::get);
    root.get_openapi_mut().paths.paths.extend(media_doc.paths);
    (v1, root)
}

/// `routes!`'s method router with a layer of its own.
fn with_layer<L>(
    (schemas, paths, method_router): UtoipaMethodRouter<AppState>,
    layer: L,
) -> UtoipaMethodRouter<AppState>
where
    L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
    L::Service: tower::Service<axum::extract::Request> + Clone + Send + Sync + 'static,
    <L::Service as tower::Service<axum::extract::Request>>::Response:
        axum::response::IntoResponse + 'static,
    <L::Service as tower::Service<axum::extract::Request>>::Error:
        Into<std::convert::Infallible> + 'static,
    <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
{
    (schemas, paths, method_router.layer(layer))
}

pub fn router(state: AppState) -> Router {
    let http = &state.config().http;
    let (v1, root) = documented(&state);
    let v1 = v1.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        middleware::limit,
    ));
    // The document is the annotations of every route served.
    let (documented, openapi) = OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .merge(v1)
        .merge(root)
        .split_for_parts();
    let openapi = crate::openapi::Document::new(openapi);

    let documented = crate::routes::web::PAGES
        .iter()
        .fold(documented, |router, page| {
            router.route(page, get(crate::routes::web::page))
        });
    documented
        // Pages of the web app, the docs and the board, not API operations.
        .route("/app/app.css", get(crate::routes::web::style))
        .route("/app/{module}", get(crate::routes::web::script))
        .route("/openapi.json", get(move || async move { openapi.json() }))
        .route("/docs", get(crate::openapi::docs))
        .route("/docs/init.js", get(crate::openapi::docs_init))
        .route("/docs/swagger-ui-bundle.js", get(crate::openapi::docs_bundle))
        .route("/docs/swagger-ui.css", get(crate::openapi::docs_css))
        .route("/ops/board.js", get(board::script))
        .route("/ops/board.css", get(board::style))
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(axum::middleware::from_fn(crate::middleware::hygiene))
        // Inside `track` (a timed-out request is counted) and inside the
        // security headers (its 503 carries them).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::middleware::deadline,
        ))
        .layer(axum::middleware::from_fn(crate::middleware::track))
        .layer(axum::middleware::from_fn(crate::middleware::security_headers))
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
