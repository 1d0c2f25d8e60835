//! Orders: placed with an `Idempotency-Key`, decided by the purchases queue,
//! followed by polling or on the live stream, cancelled while unpaid.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
};
use boxoffice_core::{
    jobs::{OrderJob, enqueue_or_log},
    models::{
        Discount, EmailRow, Event, EventStatus, NewOrder, Order, OrderItem, OrderStatus, Placed,
        Refund, RefundKind, RefundStatus, Tier, TierNames, order,
    },
    queue::Schedule,
};
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult, FieldError},
    extract::{AuthUser, Bearer, ClientInfo, Json, Query},
    pagination::{self, Page},
    rate_limit,
    routes::{discounts, events::parse_id, refunds::RefundView},
    state::AppState,
    validate,
};

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    #[schema(min_items = 1)]
    pub items: Vec<ItemRequest>,
    pub discount_code: Option<String>,
    /// Opens hidden tiers that carry this code.
    pub unlock_code: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemRequest {
    pub tier_id: Uuid,
    #[schema(minimum = 1)]
    pub quantity: i32,
    /// One per seat; seats without one are in the buyer's name.
    #[serde(default)]
    pub attendees: Vec<AttendeeRequest>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttendeeRequest {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    pub id: Uuid,
    pub event_id: Uuid,
    pub status: String,
    /// Why it was rejected, cancelled or expired.
    pub reason: Option<String>,
    pub items: Vec<ItemView>,
    pub currency: String,
    pub subtotal_minor: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
    /// Where the buyer pays (once reserved).
    pub checkout_url: Option<String>,
    pub reserved_until: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Given back so far (succeeded refunds of the order, not of returned
    /// payments).
    pub refunded_minor: i64,
    /// Every refund, oldest first.
    pub refunds: Vec<RefundView>,
    pub url: String,
    pub live_url: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemView {
    pub tier_id: Uuid,
    pub tier_name: String,
    pub quantity: i32,
    pub unit_price_minor: i64,
}

impl OrderView {
    pub fn new(order: &Order, items: &[OrderItem], names: &TierNames) -> Self {
        Self {
            id: order.id,
            event_id: order.event_id,
            status: order.status.clone(),
            reason: order.reject_reason.clone(),
            items: items
                .iter()
                .map(|i| ItemView {
                    tier_id: i.tier_id,
                    tier_name: names.of(i.tier_id),
                    quantity: i.quantity,
                    unit_price_minor: i.unit_price_minor,
                })
                .collect(),
            currency: order.currency.clone(),
            subtotal_minor: order.subtotal_minor,
            discount_minor: order.discount_minor,
            total_minor: order.total_minor,
            checkout_url: order.checkout_url.clone(),
            reserved_until: order.reserved_until,
            paid_at: order.paid_at,
            created_at: order.created_at,
            refunded_minor: 0,
            refunds: Vec::new(),
            url: format!("/v1/orders/{}", order.id),
            live_url: format!("/v1/orders/{}/live", order.id),
        }
    }
}

impl OrderView {
    /// With the order's refunds (`refunds` may hold other orders' too).
    pub fn with_refunds(mut self, refunds: &[Refund]) -> Self {
        let mine: Vec<&Refund> = refunds.iter().filter(|r| r.order_id == self.id).collect();
        self.refunded_minor = mine
            .iter()
            .filter(|r| r.kind() != RefundKind::Returned && r.status() == RefundStatus::Succeeded)
            .map(|r| r.amount_minor)
            .sum();
        self.refunds = mine.into_iter().map(RefundView::from).collect();
        self
    }
}

/// The request's `Idempotency-Key` (required where a retry must not act
/// twice: orders, refunds).
pub fn idempotency_key(headers: &HeaderMap) -> ApiResult<String> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::BadRequest(
            "idempotency_key_required",
            "Send an `Idempotency-Key` header (1–255 characters) with this request.".into(),
        ));
    }
    Ok(key.to_owned())
}

/// Checks the request against the event and its tiers; returns the items to
/// write and the discount code's id.
async fn validate_request(
    conn: &mut diesel_async::AsyncPgConnection,
    state: &AppState,
    event: &Event,
    tiers: &[Tier],
    req: &PlaceOrderRequest,
) -> ApiResult<(Vec<(Uuid, i32, i64, serde_json::Value)>, Option<Uuid>)> {
    let mut errors = Vec::new();
    let max = state.config().orders.max_tickets_per_order;
    if req.items.is_empty() || req.items.len() > 10 {
        errors.push(FieldError::new("items", "must list 1 to 10 tiers"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut total = 0i64;
    let mut items = Vec::new();
    for (i, item) in req.items.iter().enumerate() {
        let field = |name: &str| format!("items[{i}].{name}");
        if !seen.insert(item.tier_id) {
            errors.push(FieldError::new(field("tier_id"), "appears twice"));
        }
        if item.quantity < 1 {
            errors.push(FieldError::new(field("quantity"), "must be at least 1"));
        }
        total += i64::from(item.quantity.max(0));
        let unlocked = |t: &Tier| {
            !t.hidden
                || matches!((&t.unlock_code, &req.unlock_code),
                    (Some(code), Some(given)) if code.eq_ignore_ascii_case(given.trim()))
        };
        match tiers.iter().find(|t| t.id == item.tier_id) {
            Some(tier) if unlocked(tier) => {
                if item.attendees.len() > item.quantity.max(0) as usize {
                    errors.push(FieldError::new(
                        field("attendees"),
                        "has more entries than seats",
                    ));
                }
                for (j, a) in item.attendees.iter().enumerate() {
                    validate::length(
                        &format!("items[{i}].attendees[{j}].name"),
                        &a.name,
                        1,
                        100,
                        &mut errors,
                    );
                    validate::email(
                        &format!("items[{i}].attendees[{j}].email"),
                        &a.email,
                        &mut errors,
                    );
                }
                let attendees = serde_json::to_value(&item.attendees).unwrap_or_default();
                items.push((tier.id, item.quantity, tier.price_minor, attendees));
            }
            _ => errors.push(FieldError::new(
                field("tier_id"),
                "is not a ticket tier of this event",
            )),
        }
    }
    if total > i64::from(max) {
        errors.push(FieldError::new(
            "items",
            format!("at most {max} tickets per order"),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let discount_id = match req.discount_code.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(code) => {
            let discount =
                Discount::find_by_code(conn, event.id, code)
                    .await
                    .map_err(|e| match e {
                        diesel::result::Error::NotFound => {
                            ApiError::validation("discount_code", "is not a code of this event")
                        }
                        e => e.into(),
                    })?;
            if let Err(why) = discount.check_usable(Utc::now()) {
                return Err(ApiError::Unprocessable(why.code(), why.message().into()));
            }
            Some(discount.id)
        }
    };
    Ok((items, discount_id))
}

/// `POST /v1/events/{id}/orders` → 202 with the `pending` order. The seats
/// are decided by the purchases queue; follow the order's `url` or `live_url`.
#[utoipa::path(
    post,
    path = "/v1/events/{id}/orders",
    operation_id = "orders_place",
    tag = "orders",
    summary = "Place an order (202; decided by the purchases queue)",
    params(("id" = String, Path, description = "Event id"), ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, description = "Required; the same key and body return the same order")),
    request_body = PlaceOrderRequest,
    responses((status = 202, description = "The pending order", body = OrderView), crate::openapi::problems::BadRequest, crate::openapi::problems::Unauthorized, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::Unprocessable, crate::openapi::problems::Unavailable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn place(
    State(state): State<AppState>,
    // The session is checked by the order's insert (one query fewer on the
    // drop's hottest request); a request whose session ended writes nothing
    // and gets the same 401 as anywhere else.
    Bearer(session): Bearer,
    client: ClientInfo,
    Path(event_id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<PlaceOrderRequest>,
) -> ApiResult<impl IntoResponse> {
    let key = idempotency_key(&headers)?;
    let event_id = parse_id(&event_id)?;
    let with_code = req
        .discount_code
        .as_deref()
        .is_some_and(|c| !c.trim().is_empty());
    if with_code {
        discounts::code_tries_left(&state, &client, Some(session.user_id)).await?;
    }
    let hash = Sha256::digest(serde_json::to_vec(&req).expect("requests serialize")).to_vec();
    let mut conn = state.db().await?;
    let snapshot = state.snapshots.get(&mut conn, event_id).await?;
    let (event, tiers) = (&snapshot.0, &snapshot.1);
    match event.status() {
        EventStatus::Published => {}
        EventStatus::Draft => return Err(ApiError::NotFound),
        _ => {
            return Err(ApiError::Conflict(
                "event_not_on_sale",
                format!("The event is {}.", event.status),
            ));
        }
    }
    let (items, discount_code_id) =
        match validate_request(&mut conn, &state, event, tiers, &req).await {
            // A wrong code spends a try of the guessing budget.
            Err(ApiError::Validation(errors))
                if with_code && errors.iter().any(|e| e.field == "discount_code") =>
            {
                discounts::count_code_try(&state, &client, Some(session.user_id)).await?;
                return Err(ApiError::Validation(errors));
            }
            other => other?,
        };
    let order_id = Uuid::now_v7();
    let new = NewOrder {
        id: order_id,
        event_id,
        buyer_id: session.user_id,
        idempotency_key: key,
        request_hash: hash.clone(),
        currency: event.currency.clone(),
        discount_code_id,
    };
    let rows: Vec<OrderItem> = items
        .into_iter()
        .map(|(tier_id, quantity, price, attendees)| OrderItem {
            id: Uuid::now_v7(),
            order_id,
            tier_id,
            quantity,
            unit_price_minor: price,
            attendees,
        })
        .collect();
    // No connection held while the batch is written.
    drop(conn);
    let placed = state.orders.place(new, rows.clone(), session).await?;
    let (order, created) = match placed {
        Placed::Created(order) => (order, true),
        Placed::Existing(order) if order.request_hash == hash => (order, false),
        Placed::Existing(_) => {
            return Err(ApiError::Conflict(
                "idempotency_key_reused",
                "This Idempotency-Key was used for a different order.".into(),
            ));
        }
    };
    // A new order was enqueued by the writer. A retry of a still pending one
    // pushes it again (a lost push; the job is idempotent). The row is
    // committed either way: if Redis is down the order stays pending, the
    // scheduler's sweep enqueues it, and the buyer is answered 202.
    if !created && order.status() == OrderStatus::Pending {
        enqueue_or_log(
            &state.services.queues,
            &OrderJob::Place { order_id: order.id },
            Schedule::now(),
        )
        .await;
    }
    if created {
        tracing::info!(order.id = %order.id, event.id = %event_id, "order placed");
    }
    let items = if created {
        rows
    } else {
        let mut conn = state.db().await?;
        Order::items(&mut conn, order.id).await?
    };
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/v1/orders/{}", order.id))],
        Json(OrderView::new(&order, &items, &tiers.iter().collect())),
    ))
}

/// The order, if the caller bought it (or is an admin).
pub async fn load_own(
    conn: &mut diesel_async::AsyncPgConnection,
    user: &AuthUser,
    raw_id: &str,
) -> ApiResult<Order> {
    let order = Order::find(conn, parse_id(raw_id)?).await?;
    if order.buyer_id != user.id() && !user.is_admin() {
        return Err(ApiError::NotFound);
    }
    Ok(order)
}

/// `GET /v1/orders/{id}`
#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    operation_id = "orders_get",
    tag = "orders",
    summary = "An order of the caller",
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, description = "The order", body = OrderView), crate::openapi::problems::Unauthorized, crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    let mut conn = state.db().await?;
    let order = load_own(&mut conn, &user, &id).await?;
    let items = Order::items(&mut conn, order.id).await?;
    let names = Tier::names(&mut conn, items.iter().map(|i| i.tier_id)).await?;
    let refunds = Refund::for_order(&mut conn, order.id).await?;
    Ok(Json(
        OrderView::new(&order, &items, &names).with_refunds(&refunds),
    ))
}

/// `POST /v1/orders/{id}/cancel`: an unpaid order; its seats are released.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/cancel",
    operation_id = "orders_cancel",
    tag = "orders",
    summary = "Cancel an unpaid order",
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, description = "Cancelled", body = OrderView), crate::openapi::problems::Unauthorized, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    let mut conn = state.db().await?;
    let order = load_own(&mut conn, &user, &id).await?;
    let cancelled = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            if let Some(o) = Order::cancel_pending(conn, order.id).await? {
                return Ok(Some((o, false)));
            }
            Ok(Order::release(
                conn,
                order.id,
                OrderStatus::Cancelled,
                order::CANCELLED_BY_BUYER,
                false,
            )
            .await?
            .map(|o| (o, true)))
        })
        .await?;
    let Some((order, released)) = cancelled else {
        let current = Order::find(&mut conn, order.id).await?;
        return Err(ApiError::Conflict(
            "order_not_cancellable",
            format!(
                "The order is {}; only unpaid orders can be cancelled.",
                current.status
            ),
        ));
    };
    if released {
        state
            .services
            .event_cache
            .invalidate_or_log(order.event_id)
            .await;
        let tiers = Tier::for_event(&mut conn, order.event_id).await?;
        state
            .services
            .live
            .availability(order.event_id, &tiers)
            .await;
    }
    if order.provider_checkout_id.is_some() {
        // Closed so that it can no longer be paid; a payment that races the
        // closing is given back.
        enqueue_or_log(
            &state.services.queues,
            &OrderJob::CloseCheckout { order_id: order.id },
            Schedule::now(),
        )
        .await;
    }
    state.services.live.order_status(&order).await;
    tracing::info!(order.id = %order.id, "order cancelled by the buyer");
    let items = Order::items(&mut conn, order.id).await?;
    let names = Tier::names(&mut conn, items.iter().map(|i| i.tier_id)).await?;
    Ok(Json(OrderView::new(&order, &items, &names)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// `GET /v1/users/me/orders`, newest first.
#[utoipa::path(
    get,
    path = "/v1/users/me/orders",
    operation_id = "orders_list_mine",
    tag = "orders",
    summary = "The caller's orders",
    params(ListParams),
    responses((status = 200, description = "A page of orders", body = crate::pagination::Page<OrderView>), crate::openapi::problems::BadRequest, crate::openapi::problems::Unauthorized, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn list_mine(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Page<OrderView>>> {
    let limit = pagination::limit_only(params.limit)?;
    let after = pagination::created_after(params.cursor.as_deref())?;
    let mut conn = state.db().await?;
    let rows = Order::for_buyer(&mut conn, user.id(), after, limit + 1).await?;
    let (orders, next_cursor) = pagination::created_page(rows, limit, |o| (o.created_at, o.id));
    let ids: Vec<Uuid> = orders.iter().map(|o| o.id).collect();
    let items = Order::items_of(&mut conn, &ids).await?;
    let names = Tier::names(&mut conn, items.iter().map(|i| i.tier_id)).await?;
    let refunds = Refund::for_orders(&mut conn, &ids).await?;
    let views = orders
        .iter()
        .map(|o| {
            let mine: Vec<OrderItem> = items
                .iter()
                .filter(|i| i.order_id == o.id)
                .cloned()
                .collect();
            OrderView::new(o, &mine, &names).with_refunds(&refunds)
        })
        .collect();
    Ok(Json(Page {
        items: views,
        next_cursor,
    }))
}

/// Resends of one order's tickets per hour.
const TICKET_RESENDS_PER_HOUR: u32 = 3;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResendView {
    /// Where the tickets go: the buyer's address.
    pub to: String,
    /// `pending` (queued now) or `sending` (already on its way: not sent
    /// twice).
    pub status: String,
}

/// `POST /v1/orders/{id}/resend-tickets`: the order's confirmation with
/// every ticket, sent again to the buyer. One that is still on its way is
/// not sent twice.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/resend-tickets",
    operation_id = "orders_resend_tickets",
    tag = "orders",
    summary = "Email the order's tickets again",
    params(("id" = String, Path, description = "Order id")),
    responses((status = 202, description = "Queued", body = ResendView), crate::openapi::problems::Unauthorized, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn resend_tickets(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<ResendView>)> {
    let mut conn = state.db().await?;
    let order = load_own(&mut conn, &user, &id).await?;
    if !matches!(
        order.status(),
        OrderStatus::Paid | OrderStatus::PartiallyRefunded
    ) {
        return Err(ApiError::Conflict(
            "order_not_paid",
            format!("The order is {}: it has no tickets to send.", order.status),
        ));
    }
    let key = format!("order_confirmation:{}", order.id);
    let email = EmailRow::find_by_key(&mut conn, &key)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(
                "order_not_paid",
                "The order's tickets are still being issued.".into(),
            )
        })?;
    drop(conn);
    rate_limit::hit(
        &state,
        &[(
            &format!("resend-tickets:{}", order.id),
            TICKET_RESENDS_PER_HOUR,
        )],
        std::time::Duration::from_secs(3600),
    )
    .await?;
    let status = match crate::routes::admin_emails::resend_email(&state, email.id).await {
        Ok(resent) => resent.status,
        Err(ApiError::Conflict("email_in_flight", _)) => "sending".to_owned(),
        Err(e) => return Err(e),
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(ResendView {
            to: email.to_address,
            status,
        }),
    ))
}
