//! Live updates through Redis pub/sub: whichever process changes an order or
//! a tier publishes; each API replica subscribes to the channels its own
//! streaming clients follow and fans out to them. Best effort by nature: a
//! client that misses a message still has the REST resource, and every
//! message carries the full state.

use redis::{AsyncCommands, aio::ConnectionManager};
use serde::Serialize;
use uuid::Uuid;

#[derive(Clone)]
pub struct Live {
    conn: ConnectionManager,
    prefix: String,
}

/// A tier's stock, as streamed to an event page.
#[derive(Debug, Clone, Serialize)]
pub struct TierStock {
    pub tier_id: Uuid,
    pub remaining: i32,
    pub low_stock: bool,
}

impl Live {
    pub fn new(conn: ConnectionManager, namespace: &str) -> Self {
        Self {
            conn,
            prefix: format!("{namespace}-live"),
        }
    }

    pub fn order_channel(&self, order_id: Uuid) -> String {
        format!("{}:order:{order_id}", self.prefix)
    }

    pub fn event_channel(&self, event_id: Uuid) -> String {
        format!("{}:event:{event_id}", self.prefix)
    }

    pub fn feed_channel(&self) -> String {
        format!("{}:events", self.prefix)
    }

    pub fn viewers_key(&self, event_id: Uuid) -> String {
        format!("{}:viewers:{{{event_id}}}", self.prefix)
    }

    /// Publishes; a failure is logged (live updates never fail the work).
    pub async fn publish(&self, channel: &str, message: &impl Serialize) {
        let Ok(body) = serde_json::to_string(message) else {
            return;
        };
        let result: redis::RedisResult<i64> = self.conn.clone().publish(channel, body).await;
        if let Err(e) = result {
            tracing::debug!(channel, error = %e, "live publish failed");
        }
    }

    pub async fn order_status(&self, order: &crate::models::Order) {
        self.publish(
            &self.order_channel(order.id),
            &serde_json::json!({
                "type": "order.status",
                "order_id": order.id,
                "status": order.status,
                "reason": order.reject_reason,
                "checkout_url": order.checkout_url,
                "total_minor": order.total_minor,
                "currency": order.currency,
                "reserved_until": order.reserved_until,
            }),
        )
        .await;
    }

    /// A refund of the order was asked for, sent, or finished.
    pub async fn refund_status(&self, refund: &crate::models::Refund) {
        self.publish(
            &self.order_channel(refund.order_id),
            &serde_json::json!({
                "type": "order.refund",
                "order_id": refund.order_id,
                "refund_id": refund.id,
                "status": refund.status,
                "amount_minor": refund.amount_minor,
                "currency": refund.currency,
                "reason": refund.reason,
            }),
        )
        .await;
    }

    /// Stock of an event's tiers, plus an "almost sold out" flag per tier.
    pub async fn availability(&self, event_id: Uuid, tiers: &[crate::models::Tier]) {
        let stock = public_stock(tiers);
        let channel = self.event_channel(event_id);
        self.publish(&channel, &availability_message(event_id, &stock))
            .await;
        for tier in stock.iter().filter(|t| t.low_stock) {
            self.publish(
                &channel,
                &serde_json::json!({
                    "type": "almost_sold_out",
                    "event_id": event_id,
                    "tier_id": tier.tier_id,
                    "remaining": tier.remaining,
                }),
            )
            .await;
        }
    }
}

/// The public tiers' stock, as the live stream shows it.
pub fn public_stock(tiers: &[crate::models::Tier]) -> Vec<TierStock> {
    tiers
        .iter()
        .filter(|t| !t.hidden)
        .map(|t| TierStock {
            tier_id: t.id,
            remaining: t.remaining(),
            low_stock: t.is_low_stock(),
        })
        .collect()
}

/// The `availability` message: published on every stock change, and the
/// first frame a new event stream gets.
pub fn availability_message(event_id: Uuid, stock: &[TierStock]) -> serde_json::Value {
    serde_json::json!({"type": "availability", "event_id": event_id, "tiers": stock})
}
