//! Server-sent event streams: an order's status, an event's availability
//! (with "almost sold out" flags and how many people are viewing it), and a
//! feed of newly published events. Each stream starts with the current state,
//! then relays what any process publishes (see `crate::live`).

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    extract::{Path, State},
    response::sse::{Event as SseEvent, KeepAlive, Sse},
};
use boxoffice_core::{
    live,
    models::{Event, EventStatus, Order, Tier},
};
use futures::{Stream, StreamExt, stream};
use redis::AsyncCommands;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult},
    extract::AuthUser,
    routes::{events::parse_id, orders::load_own},
    state::AppState,
};

type EventStream = Sse<
    axum::response::sse::KeepAliveStream<
        std::pin::Pin<Box<dyn Stream<Item = Result<SseEvent, Infallible>> + Send>>,
    >,
>;

/// How often a viewer refreshes its presence, and how long it counts without.
const VIEWER_HEARTBEAT: Duration = Duration::from_secs(10);
const VIEWER_TTL_SECS: f64 = 30.0;

fn sse(message: &str) -> SseEvent {
    let kind = serde_json::from_str::<Value>(message)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "message".into());
    SseEvent::default().event(kind).data(message)
}

/// Relays a hub subscription; a slow client that lags just skips ahead
/// (every message carries the full state).
fn relay(rx: broadcast::Receiver<Arc<str>>) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(msg) => return Some((Ok(sse(&msg)), rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// The stream: the current state, then every change, until the client goes
/// or the server shuts down.
fn finish(
    state: &AppState,
    initial: Vec<String>,
    rest: impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static,
) -> EventStream {
    let first = stream::iter(initial.into_iter().map(|m| Ok(sse(&m))));
    Sse::new(first.chain(rest).take_until(state.hub.closing()).boxed())
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// `GET /v1/orders/{id}/live` (the buyer's own).
#[utoipa::path(
    get,
    path = "/v1/orders/{id}/live",
    operation_id = "live_order",
    tag = "live",
    summary = "Server-sent events: the order's status",
    params(("id" = String, Path, description = "Order id")),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream"), crate::openapi::problems::Unauthorized, crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn order(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<EventStream> {
    let mut conn = state.db().await?;
    let order = load_own(&mut conn, &user, &id).await?;
    // Subscribe before reading, so nothing falls between the two.
    let rx = state
        .hub
        .subscribe(&state.services.live.order_channel(order.id))
        .await;
    let order = Order::find(&mut conn, order.id).await?;
    let current = json!({
        "type": "order.status",
        "order_id": order.id,
        "status": order.status,
        "reason": order.reject_reason,
        "checkout_url": order.checkout_url,
        "total_minor": order.total_minor,
        "currency": order.currency,
        "reserved_until": order.reserved_until,
    });
    Ok(finish(&state, vec![current.to_string()], relay(rx)))
}

fn availability(event_id: Uuid, tiers: &[Tier]) -> String {
    live::availability_message(event_id, &live::public_stock(tiers)).to_string()
}

/// Presence of one viewer: refreshed while the stream lives, removed when it
/// ends (or left to age out if the process dies).
struct Viewer {
    conn: redis::aio::ConnectionManager,
    key: String,
    id: String,
}

impl Viewer {
    async fn beat(&self) -> Option<i64> {
        let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
        let mut conn = self.conn.clone();
        let (_, _, count): ((), (), i64) = redis::pipe()
            .zadd(&self.key, &self.id, now)
            .zrembyscore(&self.key, "-inf", now - VIEWER_TTL_SECS)
            .zcard(&self.key)
            .expire(&self.key, 3600)
            .ignore()
            .query_async(&mut conn)
            .await
            .ok()?;
        Some(count)
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let (mut conn, key, id) = (self.conn.clone(), self.key.clone(), self.id.clone());
        tokio::spawn(async move {
            let _: redis::RedisResult<i64> = conn.zrem(key, id).await;
        });
    }
}

/// `GET /v1/events/{id}/live`: availability, low-stock flags, viewers now.
#[utoipa::path(
    get,
    path = "/v1/events/{id}/live",
    operation_id = "live_event",
    tag = "live",
    summary = "Server-sent events: availability, low stock, viewers",
    params(("id" = String, Path, description = "Event id")),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream"), crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited)
)]
pub async fn event(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<EventStream> {
    let id = parse_id(&id)?;
    let live = &state.services.live;
    let rx = state.hub.subscribe(&live.event_channel(id)).await;
    let mut conn = state.db().await?;
    let event = Event::find(&mut conn, id).await?;
    if event.status() == EventStatus::Draft {
        return Err(ApiError::NotFound);
    }
    let tiers = Tier::for_event(&mut conn, id).await?;
    drop(conn);
    let viewer = Viewer {
        conn: state.services.queues.connection(),
        key: live.viewers_key(id),
        id: Uuid::new_v4().to_string(),
    };
    let count = viewer.beat().await.unwrap_or(1);
    let initial = vec![
        availability(id, &tiers),
        json!({"type": "viewers", "event_id": id, "count": count}).to_string(),
    ];
    let viewers = stream::unfold(viewer, move |viewer| async move {
        tokio::time::sleep(VIEWER_HEARTBEAT).await;
        let count = viewer.beat().await.unwrap_or(0);
        let msg = json!({"type": "viewers", "event_id": id, "count": count}).to_string();
        Some((Ok(sse(&msg)), viewer))
    });
    Ok(finish(&state, initial, stream::select(relay(rx), viewers)))
}

/// `GET /v1/events/live`: events as they are published.
#[utoipa::path(
    get,
    path = "/v1/events/live",
    operation_id = "live_feed",
    tag = "live",
    summary = "Server-sent events: newly published events",
    responses((status = 200, description = "An event stream", content_type = "text/event-stream"), crate::openapi::problems::RateLimited)
)]
pub async fn feed(State(state): State<AppState>) -> EventStream {
    let rx = state
        .hub
        .subscribe(&state.services.live.feed_channel())
        .await;
    finish(&state, Vec::new(), relay(rx))
}
