//! Outgoing webhooks: organizers' systems hear of their orders, check-ins,
//! events and payouts, signed per Standard Webhooks.
//!
//! The outbox is written by database triggers in the transaction of each
//! change (see the `outgoing_webhooks` migration): a `webhook_events` row
//! per change someone subscribes to and a `webhook_deliveries` row per
//! subscribed endpoint. The scheduler's relay pushes a `DeliverWebhook` job
//! per new delivery; the job claims it, sends one attempt and pushes its own
//! retry, delayed, on the schedule (`WEBHOOK_RETRY_SCHEDULE_SECS`).
//!
//! ```text
//! pending --(claimed)--> sending --(2xx)--> delivered
//!                          |  \--(410)--> exhausted, endpoint disabled
//!                          \--(other)--> failed --(due)--> sending ...
//!                                          \--(schedule spent)--> exhausted
//! ```

pub mod guard;

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use rand::RngCore;
use uuid::Uuid;

use crate::payments::signature;

/// The changes an endpoint can subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "order.created",
    "order.paid",
    "order.cancelled",
    "order.expired",
    "order.refunded",
    "ticket.checked_in",
    "event.published",
    "event.cancelled",
    "payout.paid",
];

/// What `POST …/test` sends; not subscribable.
pub const PING: &str = "ping";

/// A fresh signing secret: `whsec_` and 24 random bytes in base64 (the
/// Standard Webhooks shape; receivers' libraries decode it as such).
pub fn new_secret() -> String {
    let mut key = [0u8; 24];
    rand::rng().fill_bytes(&mut key);
    format!("whsec_{}", STANDARD.encode(key))
}

/// The `webhook-id` of a delivery: the event's, the same on every retry and
/// redelivery, so receivers can drop duplicates.
pub fn message_id(event_id: Uuid) -> String {
    format!("msg_{}", event_id.simple())
}

/// The body sent: `{type, timestamp, data}`, fixed by the event (a retry
/// sends the same bytes).
pub fn body(event_type: &str, at: DateTime<Utc>, data: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "type": event_type,
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    }))
    .expect("a JSON value serializes")
}

/// The `webhook-signature` header: one `v1,` entry per secret that signs
/// now (the current one and, during a rotation's overlap, the one it
/// replaced). A secret that does not decode signs nothing: secrets are
/// made by [`new_secret`].
pub fn signature_header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .filter_map(|s| signature::decode_secret(s).ok())
        .map(|key| signature::sign(&key, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// When the attempt after `attempts` failed ones is due, or `None` once the
/// schedule is spent. A receiver's `Retry-After` (429, 503) pushes it later,
/// never sooner.
pub fn next_attempt_in(
    schedule: &[Duration],
    attempts: u32,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let planned = *schedule.get(attempts.checked_sub(1)? as usize)?;
    Some(retry_after.map_or(planned, |r| r.max(planned)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_runs_out_and_retry_after_only_delays() {
        let schedule = [Duration::from_secs(5), Duration::from_secs(300)];
        assert_eq!(
            next_attempt_in(&schedule, 1, None),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            next_attempt_in(&schedule, 2, None),
            Some(Duration::from_secs(300))
        );
        assert_eq!(next_attempt_in(&schedule, 3, None), None);
        assert_eq!(next_attempt_in(&schedule, 0, None), None);
        assert_eq!(
            next_attempt_in(&schedule, 1, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            next_attempt_in(&schedule, 2, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(300))
        );
    }

    /// Headers made by the reference implementation (the `standardwebhooks`
    /// package; `scripts/fixtures/standard-webhooks.py`), not by this code.
    #[test]
    fn matches_the_reference_implementation() {
        #[derive(serde::Deserialize)]
        struct Case {
            name: String,
            secrets: Vec<String>,
            id: String,
            timestamp: i64,
            body: String,
            header: String,
        }
        let cases: Vec<Case> =
            serde_json::from_str(include_str!("fixtures/standard_webhooks.json")).unwrap();
        assert_eq!(cases.len(), 3);
        for c in cases {
            let secrets: Vec<&str> = c.secrets.iter().map(String::as_str).collect();
            assert_eq!(
                signature_header(&secrets, &c.id, c.timestamp, c.body.as_bytes()),
                c.header,
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn signs_with_every_current_secret() {
        let (old, new) = (new_secret(), new_secret());
        assert_ne!(old, new);
        let body = body(
            "ping",
            DateTime::from_timestamp(1_614_265_330, 0).unwrap(),
            &serde_json::json!({}),
        );
        let header = signature_header(&[&new, &old], "msg_1", 1_614_265_330, &body);
        assert_eq!(header.split(' ').count(), 2);
        for secret in [&old, &new] {
            let key = signature::decode_secret(secret).unwrap();
            assert_eq!(
                signature::verify(
                    &[key],
                    Some("msg_1"),
                    Some("1614265330"),
                    Some(&header),
                    &body,
                    1_614_265_330,
                    300
                ),
                Ok(())
            );
        }
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"data":{},"timestamp":"2021-02-25T15:02:10.000Z","type":"ping"}"#
        );
    }
}
