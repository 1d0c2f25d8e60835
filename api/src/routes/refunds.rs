//! Refunds of an order: asked for by its buyer (within the event's refund
//! policy) or by the event's organizer or an admin (any time, part of the
//! amount too). The refund is written `requested` with the request and
//! sent by the refunds queue; the order, its live stream and
//! `GET /v1/orders/{id}/refunds` follow it to `succeeded`.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
};
use boxoffice_core::{
    jobs::{RefundJob, enqueue_or_log},
    models::{Event, EventStatus, Order, OrderStatus, Payment, Refund, RefundKind, Ticket},
    queue::Schedule,
    refunds::{self, Ask, Refusal},
};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult, FieldError},
    extract::{AuthUser, Json, JsonOrEmpty},
    routes::{events::parse_id, orders::idempotency_key},
    state::AppState,
    validate,
};

#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// These tickets (their share of what was paid). Neither this nor
    /// `amount_minor`: the whole order.
    pub ticket_ids: Option<Vec<Uuid>>,
    /// Organizers and admins: part of the amount, in minor units.
    #[schema(minimum = 1)]
    pub amount_minor: Option<i64>,
    /// If given, must be the order's.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: Option<String>,
    /// Shown to the buyer (up to 500 characters).
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefundView {
    pub id: Uuid,
    pub order_id: Uuid,
    /// `requested`, `processing`, `succeeded` or `failed`.
    pub status: String,
    /// `order` (asked for), `event_cancelled`, or `returned` (a payment
    /// that could not be applied, given back).
    pub kind: String,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
    /// The tickets it voids.
    pub ticket_ids: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Refund> for RefundView {
    fn from(r: &Refund) -> Self {
        Self {
            id: r.id,
            order_id: r.order_id,
            status: r.status.clone(),
            kind: r.kind.clone(),
            amount_minor: r.amount_minor,
            currency: r.currency.clone(),
            reason: r.reason.clone(),
            ticket_ids: r.ticket_ids.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Who is asking, as far as refunds go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asker {
    Buyer,
    /// The event's organizer or an admin.
    Manager,
}

/// The order and its event, if `user` may see its refunds.
async fn load(
    conn: &mut AsyncPgConnection,
    user: &AuthUser,
    raw_id: &str,
) -> ApiResult<(Order, Event, Asker)> {
    let order = Order::find(conn, parse_id(raw_id)?).await?;
    let event = Event::find(conn, order.event_id).await?;
    let asker = if user.can_manage(event.organizer_id) {
        Asker::Manager
    } else if order.buyer_id == user.id() {
        Asker::Buyer
    } else {
        return Err(ApiError::NotFound);
    };
    Ok((order, event, asker))
}

/// Refuses what the request asks before anything is read under lock.
fn check(req: &RefundRequest, order: &Order, asker: Asker) -> ApiResult<Ask> {
    let mut errors = Vec::new();
    if let Some(reason) = &req.reason {
        validate::length("reason", reason, 0, 500, &mut errors);
    }
    if req.ticket_ids.is_some() && req.amount_minor.is_some() {
        errors.push(FieldError::new(
            "amount_minor",
            "give either ticket_ids or amount_minor, not both",
        ));
    }
    if let Some(amount) = req.amount_minor
        && amount <= 0
    {
        errors.push(FieldError::new("amount_minor", "must be more than zero"));
    }
    if let Some(currency) = &req.currency
        && !currency.eq_ignore_ascii_case(&order.currency)
    {
        errors.push(FieldError::new(
            "currency",
            format!("must be the order's, {}", order.currency),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if req.amount_minor.is_some() && asker == Asker::Buyer {
        return Err(ApiError::Unprocessable(
            "partial_amount_not_allowed",
            "Ask for tickets or the whole order; only the organizer refunds part of an amount."
                .into(),
        ));
    }
    Ok(match (&req.ticket_ids, req.amount_minor) {
        (Some(ids), _) => Ask::Tickets(ids.clone()),
        (None, Some(amount)) => Ask::Amount(amount),
        (None, None) => Ask::Whole,
    })
}

/// The event's policy, for a buyer: refunds allowed until N hours before
/// the start, or not at all. Never once the event is cancelled (its orders
/// are refunded by the cancellation).
fn check_policy(event: &Event, asker: Asker, now: DateTime<Utc>) -> ApiResult<()> {
    if event.status() == EventStatus::Cancelled {
        return Err(ApiError::Conflict(
            "event_cancelled",
            "The event is cancelled: every order is refunded in full already.".into(),
        ));
    }
    if asker == Asker::Manager {
        return Ok(());
    }
    match event.refundable_until() {
        None => Err(ApiError::Conflict(
            "refunds_not_allowed",
            "This event does not offer refunds.".into(),
        )),
        Some(until) if now >= until => Err(ApiError::Conflict(
            "refund_window_closed",
            format!("Refunds for this event closed at {}.", until.to_rfc3339()),
        )),
        Some(_) => Ok(()),
    }
}

fn refusal(r: Refusal) -> ApiError {
    match r {
        Refusal::NothingLeft => ApiError::Conflict(
            "nothing_to_refund",
            "Nothing of this order is left to refund.".into(),
        ),
        Refusal::UnknownTicket(id) => ApiError::Validation(vec![FieldError::new(
            "ticket_ids",
            format!("{id} is not a ticket of this order"),
        )]),
        Refusal::TicketRefunded(id) => ApiError::Conflict(
            "ticket_already_refunded",
            format!("Ticket {id} is refunded or void already."),
        ),
        Refusal::AmountNotPositive => ApiError::Validation(vec![FieldError::new(
            "amount_minor",
            "must be more than zero",
        )]),
        Refusal::AmountTooLarge { left } => ApiError::Unprocessable(
            "refund_exceeds_paid",
            format!("Only {left} (minor units) is left to refund."),
        ),
    }
}

/// `POST /v1/orders/{id}/refund`
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/refund",
    operation_id = "orders_refund",
    tag = "orders",
    summary = "Refund an order, some of its tickets, or (organizers) part of its amount",
    description = "Empty body: the whole order. Requires `Idempotency-Key`. Buyers within the event's refund policy; the event's organizer and admins at any time.",
    params(
        ("id" = String, Path, description = "Order id"),
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, description = "Required; the same key, the same refund"),
    ),
    request_body(content = Option<RefundRequest>, description = "Empty for the whole order"),
    responses(
        (status = 202, description = "Requested; follow it on the order", body = RefundView),
        (status = 200, description = "This key's refund, requested before", body = RefundView),
        crate::openapi::problems::BadRequest, crate::openapi::problems::Unauthorized, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited
    ),
    security(("bearer" = []))
)]
pub async fn request(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonOrEmpty(req): JsonOrEmpty<RefundRequest>,
) -> ApiResult<impl IntoResponse> {
    let key = idempotency_key(&headers)?;
    let mut conn = state.db().await?;
    let (order, event, asker) = load(&mut conn, &user, &id).await?;
    let ask = check(&req, &order, asker)?;
    let hash = Sha256::digest(serde_json::to_vec(&req).expect("requests serialize")).to_vec();
    let key = format!("request:{}:{key}", order.id);
    let requester = user.id();
    let written = conn
        .transaction::<_, ApiError, _>(async |conn| {
            // One refund request of an order at a time: what is left is read
            // and taken under this lock (and the database checks it again).
            let order = Order::lock(conn, order.id).await?;
            if let Some(existing) = Refund::find_by_key(conn, &key).await? {
                return if existing.request_hash.as_deref() == Some(hash.as_slice()) {
                    Ok((existing, false))
                } else {
                    Err(ApiError::Conflict(
                        "idempotency_key_reused",
                        "This Idempotency-Key was used for a different refund.".into(),
                    ))
                };
            }
            check_policy(&event, asker, Utc::now())?;
            if !matches!(
                order.status(),
                OrderStatus::Paid | OrderStatus::PartiallyRefunded
            ) {
                return Err(ApiError::Conflict(
                    "order_not_refundable",
                    format!(
                        "The order is {}; only paid orders are refunded.",
                        order.status
                    ),
                ));
            }
            let Some(payment) = Payment::of_order(conn, order.id).await? else {
                return Err(ApiError::Conflict(
                    "nothing_to_refund",
                    "The order was free: there is nothing to refund.".into(),
                ));
            };
            let refunds = Refund::for_order(conn, order.id).await?;
            let items = Order::items(conn, order.id).await?;
            let tickets = Ticket::for_order(conn, order.id).await?;
            let plan =
                refunds::plan(&payment, &refunds, &items, &tickets, &ask).map_err(refusal)?;
            let reason = req
                .reason
                .clone()
                .filter(|r| !r.trim().is_empty())
                .unwrap_or_else(|| match asker {
                    Asker::Buyer => "requested by the buyer".into(),
                    Asker::Manager => "refunded by the organizer".into(),
                });
            let refund = Refund::new(&payment, plan.amount_minor, &reason, key.clone())
                .with_request(
                    RefundKind::Order,
                    plan.ticket_ids,
                    Some(requester),
                    Some(hash.clone()),
                );
            let written = Refund::create_once(conn, &refund).await.map_err(|e| {
                if Refund::exceeds_payment(&e) {
                    ApiError::Conflict(
                        "refund_exceeds_paid",
                        "Refunds of this order would exceed what was paid.".into(),
                    )
                } else {
                    e.into()
                }
            })?;
            Ok((written, true))
        })
        .await?;
    let (refund, created) = written;
    if created {
        enqueue_or_log(
            &state.services.queues,
            &RefundJob::Send {
                refund_id: refund.id,
            },
            Schedule::now(),
        )
        .await;
        state.services.live.refund_status(&refund).await;
        tracing::info!(order.id = %refund.order_id, refund.id = %refund.id, amount = refund.amount_minor, "refund requested");
    }
    Ok((
        if created {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        },
        [(
            header::LOCATION,
            format!("/v1/orders/{}/refunds", refund.order_id),
        )],
        Json(RefundView::from(&refund)),
    ))
}

/// `GET /v1/orders/{id}/refunds`, oldest first.
#[utoipa::path(
    get,
    path = "/v1/orders/{id}/refunds",
    operation_id = "orders_refunds",
    tag = "orders",
    summary = "An order's refunds (its buyer, the event's organizer, admins)",
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, description = "The refunds", body = Vec<RefundView>), crate::openapi::problems::Unauthorized, crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<RefundView>>> {
    let mut conn = state.db().await?;
    let (order, _, _) = load(&mut conn, &user, &id).await?;
    let refunds = Refund::for_order(&mut conn, order.id).await?;
    Ok(Json(refunds.iter().map(RefundView::from).collect()))
}
