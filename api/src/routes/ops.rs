//! Ops: queue stats, jobs by state, retry and discard, pause and resume.
//! Admin only. Built on what apalis-redis really stores (its own board's
//! stats calls fail on Redis in 1.0.0).

use axum::extract::{Path, State};
use boxoffice_core::queue::{JobInfo, JobStatus, QueueName, QueueStats};
use serde::{Deserialize, Serialize};

use crate::{
    error::{ApiError, ApiResult},
    extract::{Json, Query, RequireAdmin},
    state::AppState,
};

fn queue(raw: &str) -> ApiResult<QueueName> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

fn queue_error(e: boxoffice_core::queue::QueueError) -> ApiError {
    ApiError::Unavailable(format!("queue: {e}"))
}

/// `GET /v1/ops/queues`
#[utoipa::path(
    get,
    path = "/v1/ops/queues",
    operation_id = "ops_list",
    tag = "ops",
    summary = "Every queue's stats",
    responses((status = 200, description = "Stats", body = Vec<QueueStats>), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::Unavailable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _: RequireAdmin,
) -> ApiResult<Json<Vec<QueueStats>>> {
    let mut all = Vec::new();
    for q in QueueName::ALL {
        all.push(state.services.queues.stats(q).await.map_err(queue_error)?);
    }
    Ok(Json(all))
}

/// `GET /v1/ops/providers`: each worker process's circuit breaker per
/// payment provider (processes heard from in the last 30 s).
#[utoipa::path(
    get,
    path = "/v1/ops/providers",
    operation_id = "ops_providers",
    tag = "ops",
    summary = "Payment providers' circuit breakers, per worker process",
    responses((status = 200, description = "States", body = Vec<boxoffice_core::payments::circuits::CircuitView>), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::Unavailable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn providers(
    State(state): State<AppState>,
    _: RequireAdmin,
) -> ApiResult<Json<Vec<boxoffice_core::payments::circuits::CircuitView>>> {
    Ok(Json(
        boxoffice_core::payments::circuits::read(&state.services.queues)
            .await
            .map_err(queue_error)?,
    ))
}

/// `GET /v1/ops/queues/{queue}`
#[utoipa::path(
    get,
    path = "/v1/ops/queues/{queue}",
    operation_id = "ops_get",
    tag = "ops",
    summary = "One queue's stats",
    params(("queue" = String, Path, description = "Queue name")),
    responses((status = 200, description = "Stats", body = QueueStats), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Unavailable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    _: RequireAdmin,
    Path(name): Path<String>,
) -> ApiResult<Json<QueueStats>> {
    let q = queue(&name)?;
    Ok(Json(
        state.services.queues.stats(q).await.map_err(queue_error)?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JobsParams {
    #[param(pattern = "^(pending|scheduled|running|failed|dead)$")]
    pub status: Option<String>,
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// `GET /v1/ops/queues/{queue}/jobs?status=dead|pending|scheduled|running|failed&limit=`
#[utoipa::path(
    get,
    path = "/v1/ops/queues/{queue}/jobs",
    operation_id = "ops_jobs",
    tag = "ops",
    summary = "Jobs of a queue in a state",
    params(("queue" = String, Path, description = "Queue name"), JobsParams),
    responses((status = 200, description = "Jobs", body = Vec<JobInfo>), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Unprocessable, crate::openapi::problems::Unavailable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn jobs(
    State(state): State<AppState>,
    _: RequireAdmin,
    Path(name): Path<String>,
    Query(params): Query<JobsParams>,
) -> ApiResult<Json<Vec<JobInfo>>> {
    let q = queue(&name)?;
    let status = match params.status.as_deref() {
        None => JobStatus::Dead,
        Some(s) => JobStatus::parse(s).ok_or_else(|| {
            ApiError::validation(
                "status",
                "must be pending, scheduled, running, failed or dead",
            )
        })?,
    };
    let limit = params.limit.unwrap_or(100).clamp(1, 1_000);
    Ok(Json(
        state
            .services
            .queues
            .jobs(q, status, limit)
            .await
            .map_err(queue_error)?,
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Done {
    pub queue: QueueName,
    pub job_id: Option<String>,
    pub action: &'static str,
    pub count: usize,
}

/// `POST /v1/ops/queues/{queue}/jobs/{id}/retry` (`id` = `all` retries every dead job)
#[utoipa::path(
    post,
    path = "/v1/ops/queues/{queue}/jobs/{id}/retry",
    operation_id = "ops_retry",
    tag = "ops",
    summary = "Retry a dead job (or all)",
    params(("queue" = String, Path, description = "Queue name"), ("id" = String, Path, description = "Job id (`all` retries every dead job)")),
    responses((status = 200, description = "Retried", body = Done), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Unavailable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn retry(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<Json<Done>> {
    let q = queue(&name)?;
    let queues = &state.services.queues;
    let count = if id == "all" {
        queues.retry_all_dead(q).await.map_err(queue_error)?
    } else if queues.retry_dead(q, &id).await.map_err(queue_error)? {
        1
    } else {
        return Err(ApiError::NotFound);
    };
    tracing::info!(admin.id = %admin.id(), queue = %q, job = %id, count, "dead jobs retried");
    Ok(Json(Done {
        queue: q,
        job_id: (id != "all").then_some(id),
        action: "retried",
        count,
    }))
}

/// `POST /v1/ops/queues/{queue}/jobs/{id}/discard`: a dead or failed job, for good.
#[utoipa::path(
    post,
    path = "/v1/ops/queues/{queue}/jobs/{id}/discard",
    operation_id = "ops_discard",
    tag = "ops",
    summary = "Discard a dead job",
    params(("queue" = String, Path, description = "Queue name"), ("id" = String, Path, description = "Job id")),
    responses((status = 200, description = "Discarded", body = Done), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Unavailable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn discard(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<Json<Done>> {
    let q = queue(&name)?;
    if !state
        .services
        .queues
        .discard(q, &id)
        .await
        .map_err(queue_error)?
    {
        return Err(ApiError::NotFound);
    }
    tracing::info!(admin.id = %admin.id(), queue = %q, job = %id, "job discarded");
    Ok(Json(Done {
        queue: q,
        job_id: Some(id),
        action: "discarded",
        count: 1,
    }))
}

/// `POST /v1/ops/queues/{queue}/pause`: workers finish what they hold and
/// take nothing new until resumed; pushes still queue up.
#[utoipa::path(
    post,
    path = "/v1/ops/queues/{queue}/pause",
    operation_id = "ops_pause",
    tag = "ops",
    summary = "Pause a queue",
    params(("queue" = String, Path, description = "Queue name")),
    responses((status = 200, description = "Paused", body = QueueStats), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Unavailable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn pause(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    Path(name): Path<String>,
) -> ApiResult<Json<QueueStats>> {
    let q = queue(&name)?;
    state.services.queues.pause(q).await.map_err(queue_error)?;
    tracing::warn!(admin.id = %admin.id(), queue = %q, "queue paused");
    Ok(Json(
        state.services.queues.stats(q).await.map_err(queue_error)?,
    ))
}

/// `POST /v1/ops/queues/{queue}/resume`
#[utoipa::path(
    post,
    path = "/v1/ops/queues/{queue}/resume",
    operation_id = "ops_resume",
    tag = "ops",
    summary = "Resume a queue",
    params(("queue" = String, Path, description = "Queue name")),
    responses((status = 200, description = "Resumed", body = QueueStats), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Unavailable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn resume(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    Path(name): Path<String>,
) -> ApiResult<Json<QueueStats>> {
    let q = queue(&name)?;
    state.services.queues.resume(q).await.map_err(queue_error)?;
    tracing::info!(admin.id = %admin.id(), queue = %q, "queue resumed");
    Ok(Json(
        state.services.queues.stats(q).await.map_err(queue_error)?,
    ))
}
