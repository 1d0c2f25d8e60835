//! Liveness and readiness probes.

use axum::{extract::State, http::StatusCode};
use diesel_async::RunQueryDsl;
use serde::Serialize;

use crate::{extract::Json, state::AppState};

/// `GET /healthz`: the process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "health_healthz",
    tag = "health",
    summary = "Liveness",
    responses((status = 200, description = "The process is up", body = String, content_type = "text/plain"))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub postgres: bool,
    pub redis: bool,
    /// In-process queue workers (in `boxoffice dev`); all running or none here.
    pub workers: bool,
}

/// `GET /readyz`: Postgres and Redis answer, and in-process workers run.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "health_readyz",
    tag = "health",
    summary = "Readiness: Postgres, Redis, in-process workers",
    responses((status = 200, description = "Ready", body = Readiness), crate::openapi::problems::Unavailable)
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let timeout = std::time::Duration::from_secs(2);
    let postgres = tokio::time::timeout(timeout, async {
        let mut conn = state.services.db.get().await.ok()?;
        diesel::sql_query("SELECT 1").execute(&mut conn).await.ok()
    })
    .await
    .ok()
    .flatten()
    .is_some();
    let redis = matches!(
        tokio::time::timeout(timeout, state.services.queues.ping()).await,
        Ok(Ok(()))
    );
    let workers = state.services.health.all_running();
    let ready = postgres && redis && workers;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready,
            postgres,
            redis,
            workers,
        }),
    )
}
