//! `GET /metrics`: Prometheus text. Counters and histograms of this process,
//! plus shared state sampled now: queue depths, orders by status, seats.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use boxoffice_core::{
    metrics::{labels, metrics},
    models::OrderStatus,
    queue::QueueName,
};
use diesel::{QueryableByName, sql_types};
use diesel_async::RunQueryDsl;

use crate::{
    error::{ApiError, ApiResult},
    state::AppState,
};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = sql_types::Text)]
    key: String,
    #[diesel(sql_type = sql_types::BigInt)]
    n: i64,
}

async fn sample(state: &AppState) -> ApiResult<()> {
    let m = metrics();
    for q in QueueName::ALL {
        let c = state
            .services
            .queues
            .counts(q)
            .await
            .map_err(|e| ApiError::Unavailable(format!("queue: {e}")))?;
        for (name, value) in [
            ("pending", c.pending),
            ("scheduled", c.scheduled),
            ("running", c.running),
            ("done", c.done),
            ("dead", c.dead),
            ("workers", c.workers),
        ] {
            m.queue_jobs
                .get_or_create(&labels([("queue", q.as_str()), ("state", name)]))
                .set(value as i64);
        }
    }
    let mut conn = state.db().await?;
    let orders: Vec<Count> = diesel::sql_query(
        "SELECT status AS key, count(*)::bigint AS n FROM orders GROUP BY status",
    )
    .load(&mut conn)
    .await?;
    for status in OrderStatus::ALL.iter().map(|s| s.as_str()) {
        let n = orders.iter().find(|c| c.key == status).map_or(0, |c| c.n);
        m.orders.get_or_create(&labels([("status", status)])).set(n);
    }
    let seats: Vec<Count> = diesel::sql_query(
        // Paid seats not yet settled count as sold, as everywhere.
        "WITH p AS (SELECT coalesce(sum(quantity), 0)::bigint AS n FROM pending_sales)
         SELECT 'held' AS key, (coalesce(sum(held), 0) - (SELECT n FROM p))::bigint AS n FROM tier_stock
         UNION ALL SELECT 'sold', (coalesce(sum(sold), 0) + (SELECT n FROM p))::bigint FROM tier_stock",
    )
    .load(&mut conn)
    .await?;
    for c in seats {
        m.seats.get_or_create(&labels([("state", &c.key)])).set(c.n);
    }
    Ok(())
}

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics_get",
    tag = "ops",
    summary = "Prometheus metrics",
    responses((status = 200, description = "OpenMetrics text", body = String, content_type = "application/openmetrics-text"), crate::openapi::problems::Unauthorized, crate::openapi::problems::Unavailable)
)]
pub async fn get(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = &state.config().http.metrics_token
        && crate::extract::bearer_token(&headers) != Some(token.as_str())
    {
        return Err(ApiError::Unauthorized(
            "invalid_token",
            "Send `Authorization: Bearer <METRICS_TOKEN>`.",
        ));
    }
    sample(&state).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        metrics().render(),
    )
        .into_response())
}
