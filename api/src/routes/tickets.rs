//! Tickets: the buyer's own, each with its QR code.

use axum::{
    extract::{Path, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use boxoffice_core::{
    models::{Ticket, Tier, TierNames},
    tickets,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, Json, Query},
    pagination::{self, Page},
    routes::{
        events::parse_id,
        orders::{self, ListParams},
    },
    state::AppState,
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TicketView {
    pub id: Uuid,
    pub order_id: Uuid,
    pub event_id: Uuid,
    pub tier_id: Uuid,
    pub tier_name: String,
    pub code: String,
    pub attendee_name: String,
    pub attendee_email: String,
    pub status: String,
    /// What the QR code encodes (signed, checked at the gate).
    pub qr_payload: String,
    pub qr_url: String,
    pub created_at: DateTime<Utc>,
}

impl TicketView {
    fn new(ticket: &Ticket, names: &TierNames, secret: &[u8]) -> Self {
        Self {
            id: ticket.id,
            order_id: ticket.order_id,
            event_id: ticket.event_id,
            tier_id: ticket.tier_id,
            tier_name: names.of(ticket.tier_id),
            code: ticket.code.clone(),
            attendee_name: ticket.attendee_name.clone(),
            attendee_email: ticket.attendee_email.clone(),
            status: ticket.status.clone(),
            qr_payload: tickets::qr_payload(secret, ticket.id, &ticket.code),
            qr_url: format!("/v1/tickets/{}/qr.png", ticket.id),
            created_at: ticket.created_at,
        }
    }
}

async fn load_own(state: &AppState, user: &AuthUser, raw_id: &str) -> ApiResult<Ticket> {
    let mut conn = state.db().await?;
    let ticket = Ticket::find(&mut conn, parse_id(raw_id)?).await?;
    if ticket.owner_id != user.id() && !user.is_admin() {
        return Err(ApiError::NotFound);
    }
    Ok(ticket)
}

/// `GET /v1/tickets/{id}`
#[utoipa::path(
    get,
    path = "/v1/tickets/{id}",
    operation_id = "tickets_get",
    tag = "tickets",
    summary = "A ticket of the caller",
    params(("id" = String, Path, description = "Ticket id")),
    responses((status = 200, description = "The ticket", body = TicketView), crate::openapi::problems::Unauthorized, crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<TicketView>> {
    let ticket = load_own(&state, &user, &id).await?;
    let mut conn = state.db().await?;
    let names = Tier::names(&mut conn, [ticket.tier_id]).await?;
    Ok(Json(TicketView::new(
        &ticket,
        &names,
        state.services.jwt_secret(),
    )))
}

/// `GET /v1/tickets/{id}/qr.png`
#[utoipa::path(
    get,
    path = "/v1/tickets/{id}/qr.png",
    operation_id = "tickets_qr",
    tag = "tickets",
    summary = "A ticket's QR code",
    params(("id" = String, Path, description = "Ticket id")),
    responses((status = 200, description = "PNG image", content_type = "image/png"), crate::openapi::problems::Unauthorized, crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn qr(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let ticket = load_own(&state, &user, &id).await?;
    let payload = tickets::qr_payload(state.services.jwt_secret(), ticket.id, &ticket.code);
    let png = tickets::qr_png(&payload, 8).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
            // A ticket is a bearer credential: no shared caches.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        png,
    )
        .into_response())
}

/// `GET /v1/orders/{id}/tickets`: the order's tickets, by item and seat
/// (none until it is paid).
#[utoipa::path(
    get,
    path = "/v1/orders/{id}/tickets",
    operation_id = "tickets_of_order",
    tag = "tickets",
    summary = "An order's tickets",
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, description = "The tickets", body = Vec<TicketView>), crate::openapi::problems::Unauthorized, crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn of_order(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<TicketView>>> {
    let mut conn = state.db().await?;
    let order = orders::load_own(&mut conn, &user, &id).await?;
    let rows = Ticket::for_order(&mut conn, order.id).await?;
    let names = Tier::names(&mut conn, rows.iter().map(|t| t.tier_id)).await?;
    let secret = state.services.jwt_secret();
    Ok(Json(
        rows.iter()
            .map(|t| TicketView::new(t, &names, secret))
            .collect(),
    ))
}

/// `GET /v1/users/me/tickets`, newest first.
#[utoipa::path(
    get,
    path = "/v1/users/me/tickets",
    operation_id = "tickets_list_mine",
    tag = "tickets",
    summary = "The caller's tickets",
    params(crate::routes::orders::ListParams),
    responses((status = 200, description = "A page of tickets", body = crate::pagination::Page<TicketView>), crate::openapi::problems::BadRequest, crate::openapi::problems::Unauthorized, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn list_mine(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Page<TicketView>>> {
    let limit = pagination::limit_only(params.limit)?;
    let after = pagination::created_after(params.cursor.as_deref())?;
    let mut conn = state.db().await?;
    let rows = Ticket::for_owner(&mut conn, user.id(), after, limit + 1).await?;
    let (tickets, next_cursor) = pagination::created_page(rows, limit, |t| (t.created_at, t.id));
    let names = Tier::names(&mut conn, tickets.iter().map(|t| t.tier_id)).await?;
    let secret = state.services.jwt_secret();
    Ok(Json(Page {
        items: tickets
            .iter()
            .map(|t| TicketView::new(t, &names, secret))
            .collect(),
        next_cursor,
    }))
}
