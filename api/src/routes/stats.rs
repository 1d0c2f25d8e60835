//! How an event sells, for its organizer: tiers, money, conversion and
//! sales over time (`models::event_stats`).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use boxoffice_core::models::event_stats;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult, FieldError},
    extract::{AuthUser, Json, Query},
    routes::events::load_managed,
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsParams {
    /// Sales over time in `hour` or `day` buckets (default) of the
    /// event's time zone.
    #[param(pattern = "^(hour|day)$")]
    pub interval: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventStatsView {
    pub event_id: Uuid,
    pub currency: String,
    pub timezone: String,
    pub tiers: Vec<TierStatsView>,
    pub money: MoneyView,
    /// Orders per status (`pending`, `paid`, `expired`, `rejected`, …).
    pub orders: BTreeMap<String, i64>,
    /// Paid orders over time, oldest bucket first.
    pub sales: Vec<SalesBucketView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TierStatsView {
    pub tier_id: Uuid,
    pub name: String,
    pub quantity: i64,
    pub sold: i64,
    pub held: i64,
    pub remaining: i64,
    pub gross_minor: i64,
    pub checked_in: i64,
}

/// Charged amounts from the orders; the rest from the ledger, so they
/// agree with balances and payouts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MoneyView {
    pub gross_minor: i64,
    pub discounts_minor: i64,
    pub collected_minor: i64,
    pub refunded_minor: i64,
    pub fees_minor: i64,
    /// What the organizer earned: collected − refunded − fees.
    pub net_minor: i64,
    pub paid_out_minor: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SalesBucketView {
    /// Local start of the bucket in the event's time zone.
    pub starts: String,
    pub orders: i64,
    pub tickets: i64,
    pub amount_minor: i64,
}

/// `GET /v1/events/{id}/stats`
#[utoipa::path(
    get,
    path = "/v1/events/{id}/stats",
    operation_id = "events_stats",
    tag = "events",
    summary = "How the event sells: tiers, money, orders by status, sales over time",
    params(("id" = String, Path, description = "Event id"), StatsParams),
    responses((status = 200, description = "Stats", body = EventStatsView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::BadRequest, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn event(
    State(state): State<AppState>,
    user: AuthUser,
    Path(event_id): Path<String>,
    Query(params): Query<StatsParams>,
) -> ApiResult<Json<EventStatsView>> {
    let bucket = match params.interval.as_deref() {
        None | Some("day") => "day",
        Some("hour") => "hour",
        Some(_) => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "interval",
                "must be `hour` or `day`",
            )]));
        }
    };
    let mut conn = state.db().await?;
    let event = load_managed(&mut conn, &user, &event_id).await?;
    let tiers = event_stats::tiers(&mut conn, event.id).await?;
    let money = event_stats::money(&mut conn, event.id).await?;
    let orders = event_stats::conversion(&mut conn, event.id).await?;
    let sales = event_stats::sales(&mut conn, event.id, bucket).await?;
    Ok(Json(EventStatsView {
        event_id: event.id,
        currency: event.currency.clone(),
        timezone: event.timezone.clone(),
        tiers: tiers
            .into_iter()
            .map(|t| TierStatsView {
                tier_id: t.tier_id,
                name: t.name,
                quantity: t.quantity,
                sold: t.sold,
                held: t.held,
                remaining: (t.quantity - t.sold - t.held).max(0),
                gross_minor: t.gross_minor,
                checked_in: t.checked_in,
            })
            .collect(),
        money: MoneyView {
            gross_minor: money.gross_minor,
            discounts_minor: money.discounts_minor,
            collected_minor: money.collected_minor,
            refunded_minor: money.refunded_minor,
            fees_minor: money.fees_minor,
            net_minor: money.net_minor,
            paid_out_minor: money.paid_out_minor,
        },
        orders: orders.into_iter().map(|s| (s.status, s.orders)).collect(),
        sales: sales
            .into_iter()
            .map(|b| SalesBucketView {
                starts: b.starts,
                orders: b.orders,
                tickets: b.tickets,
                amount_minor: b.amount_minor,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrganizerStatsView {
    pub organizer_id: Uuid,
    /// Per currency, over all events.
    pub totals: Vec<CurrencyTotals>,
    /// Newest start first.
    pub events: Vec<EventSummaryView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CurrencyTotals {
    pub currency: String,
    pub sold: i64,
    pub collected_minor: i64,
    pub refunded_minor: i64,
    pub net_minor: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventSummaryView {
    pub event_id: Uuid,
    pub title: String,
    pub status: String,
    pub currency: String,
    pub sold: i64,
    pub collected_minor: i64,
    pub refunded_minor: i64,
    pub net_minor: i64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OrganizerStatsParams {
    /// Admins only: another organizer's.
    pub organizer_id: Option<Uuid>,
}

/// `GET /v1/organizer/stats`
#[utoipa::path(
    get,
    path = "/v1/organizer/stats",
    operation_id = "organizer_stats",
    tag = "events",
    summary = "How the caller's events sell, each and in total per currency",
    params(OrganizerStatsParams),
    responses((status = 200, description = "Stats", body = OrganizerStatsView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::BadRequest, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn organizer(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<OrganizerStatsParams>,
) -> ApiResult<Json<OrganizerStatsView>> {
    user.require(boxoffice_core::models::Role::Organizer)?;
    let organizer_id = match params.organizer_id {
        Some(id) if user.is_admin() => id,
        Some(_) => return Err(ApiError::Forbidden),
        None => user.id(),
    };
    let mut conn = state.db().await?;
    let events = event_stats::organizer(&mut conn, organizer_id).await?;
    let mut totals: BTreeMap<String, CurrencyTotals> = BTreeMap::new();
    for e in &events {
        let t = totals
            .entry(e.currency.clone())
            .or_insert_with(|| CurrencyTotals {
                currency: e.currency.clone(),
                sold: 0,
                collected_minor: 0,
                refunded_minor: 0,
                net_minor: 0,
            });
        t.sold += e.sold;
        t.collected_minor += e.collected_minor;
        t.refunded_minor += e.refunded_minor;
        t.net_minor += e.net_minor;
    }
    Ok(Json(OrganizerStatsView {
        organizer_id,
        totals: totals.into_values().collect(),
        events: events
            .into_iter()
            .map(|e| EventSummaryView {
                event_id: e.event_id,
                title: e.title,
                status: e.status,
                currency: e.currency,
                sold: e.sold,
                collected_minor: e.collected_minor,
                refunded_minor: e.refunded_minor,
                net_minor: e.net_minor,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminStatsView {
    /// Orders per status, platform-wide (`rejected`: payment failed or
    /// declined).
    pub orders: BTreeMap<String, i64>,
    pub revenue: Vec<RevenueView>,
    /// Per queue: pending, scheduled, running, dead.
    pub queues: Vec<QueueHealth>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RevenueView {
    pub currency: String,
    pub collected_minor: i64,
    pub refunded_minor: i64,
    /// The platform's fees, net of fees given back.
    pub fees_minor: i64,
    /// Refunded / collected, 0 when nothing was collected.
    pub refund_rate: f64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueHealth {
    pub queue: String,
    pub pending: u64,
    pub scheduled: u64,
    pub running: u64,
    pub dead: u64,
    pub workers: u64,
    pub oldest_pending_age_secs: Option<f64>,
}

/// `GET /v1/admin/stats`
#[utoipa::path(
    get,
    path = "/v1/admin/stats",
    operation_id = "admin_stats",
    tag = "ops",
    summary = "The platform at a glance: orders by status, revenue and refund rate per currency, queue health",
    responses((status = 200, description = "Stats", body = AdminStatsView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::Unavailable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn admin(
    State(state): State<AppState>,
    _: crate::extract::RequireAdmin,
) -> ApiResult<Json<AdminStatsView>> {
    let mut conn = state.db().await?;
    let orders = event_stats::platform_orders(&mut conn).await?;
    let revenue = event_stats::platform_revenue(&mut conn).await?;
    drop(conn);
    let mut queues = Vec::new();
    for q in boxoffice_core::queue::QueueName::ALL {
        let s = state
            .services
            .queues
            .stats(q)
            .await
            .map_err(|e| ApiError::Unavailable(format!("queue: {e}")))?;
        queues.push(QueueHealth {
            queue: q.to_string(),
            pending: s.counts.pending,
            scheduled: s.counts.scheduled,
            running: s.counts.running,
            dead: s.counts.dead,
            workers: s.counts.workers,
            oldest_pending_age_secs: s.oldest_pending_age_secs,
        });
    }
    Ok(Json(AdminStatsView {
        orders: orders.into_iter().map(|s| (s.status, s.orders)).collect(),
        revenue: revenue
            .into_iter()
            .map(|r| RevenueView {
                refund_rate: if r.collected_minor > 0 {
                    r.refunded_minor as f64 / r.collected_minor as f64
                } else {
                    0.0
                },
                currency: r.currency,
                collected_minor: r.collected_minor,
                refunded_minor: r.refunded_minor,
                fees_minor: r.fees_minor,
            })
            .collect(),
        queues,
    }))
}
