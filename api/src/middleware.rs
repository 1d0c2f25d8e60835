//! Edge middleware: request metrics, per-IP and per-user rate limits, the
//! request deadline, input hygiene of the address, security headers and CORS.

use std::time::{Duration, Instant};

use axum::{
    extract::{FromRequestParts, MatchedPath, Request, State},
    http::{HeaderName, HeaderValue, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use boxoffice_core::{
    auth::jwt,
    metrics::{labels, metrics},
};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{
    error::ApiError,
    extract::{ClientInfo, bearer_token},
    rate_limit,
    state::AppState,
};

/// Longer than any route and its parameters need (browsers and proxies
/// commonly stop at 8 KiB too). Past 64 KiB hyper answers 414 itself,
/// before any of this runs.
const MAX_URI_BYTES: usize = 8 * 1024;

/// Refuses addresses no route could use: too long, or carrying a NUL
/// character (`%00`), which PostgreSQL cannot store in text and no path
/// segment or parameter accepts. Bodies get the same check in `Json`.
pub async fn hygiene(request: Request, next: Next) -> Response {
    let uri = request.uri();
    if uri.path().len() + uri.query().map_or(0, str::len) > MAX_URI_BYTES {
        return ApiError::UriTooLong.into_response();
    }
    let nul = |s: &str| s.contains("%00");
    if nul(uri.path()) || uri.query().is_some_and(nul) {
        return ApiError::BadRequest(
            "nul_character",
            "The address holds a NUL character (%00), which no path or parameter accepts.".into(),
        )
        .into_response();
    }
    next.run(request).await
}

/// Answers 503 problem+json (with the security headers and request id of
/// any answer) when a request outlives `HTTP_REQUEST_TIMEOUT_SECS`; only
/// the wait for the response's head counts, so live streams run on.
pub async fn deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.config().http.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// Counts every request by route template (never the raw path: ids would
/// explode the label set), method and status, with its latency.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let m = metrics();
    let status = response.status().as_u16().to_string();
    m.http_requests
        .get_or_create(&labels([
            ("route", &route),
            ("method", &method),
            ("status", &status),
        ]))
        .inc();
    m.http_duration
        .get_or_create(&labels([("route", &route), ("method", &method)]))
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Fixed one-minute windows in Redis, shared by every replica: one budget per
/// client IP and one per signed-in user (read from the token's signature
/// alone, no database trip). Provider webhooks are exempt: they are signed,
/// and a provider retrying a backlog must never be turned away.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let http = &state.config().http;
    if request.uri().path().starts_with("/v1/webhooks/")
        || (http.ip_rate_limit == 0 && http.user_rate_limit == 0)
    {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let ip = match ClientInfo::from_request_parts(&mut parts, &state).await {
        Ok(client) => client.ip.to_string(),
        Err(e) => return e.into_response(),
    };
    let user = bearer_token(&parts.headers)
        .and_then(|t| {
            jwt::decode(
                t,
                state.services.jwt_secret(),
                chrono::Utc::now().timestamp(),
            )
            .ok()
        })
        .map(|claims| claims.sub.to_string());
    let mut buckets = Vec::new();
    let ip_bucket = format!("edge-ip:{ip}");
    if http.ip_rate_limit > 0 {
        buckets.push((ip_bucket.as_str(), http.ip_rate_limit));
    }
    let user_bucket = user.map(|u| format!("edge-user:{u}"));
    if let Some(bucket) = &user_bucket
        && http.user_rate_limit > 0
    {
        buckets.push((bucket.as_str(), http.user_rate_limit));
    }
    if let Err(e) = rate_limit::hit(&state, &buckets, Duration::from_secs(60)).await {
        // A Redis outage must not take the API down with it: let it through.
        if !matches!(e, crate::error::ApiError::Unavailable(_)) {
            return e.into_response();
        }
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Defaults for every response; pages that need more (the docs and the ops
/// board run scripts) set their own policy, which wins.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let https = request
        .headers()
        .get("x-forwarded-proto")
        .is_some_and(|v| v == "https");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let defaults: [(HeaderName, &'static str); 4] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; img-src 'self' data:",
        ),
    ];
    for (name, value) in defaults {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    if https {
        headers
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static(
                "max-age=31536000; includeSubDomains",
            ));
    }
    response
}

/// CORS for the configured origins (`CORS_ORIGINS`), or none at all.
pub fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse::<HeaderValue>().ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                header::RETRY_AFTER,
                header::LOCATION,
            ])
            .max_age(Duration::from_secs(600)),
    )
}
