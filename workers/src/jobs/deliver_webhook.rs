//! `DeliverWebhook`: one attempt of one outgoing webhook delivery.
//!
//! Safe to run twice: the attempt is claimed in Postgres (the delivery due,
//! its endpoint under its in-flight cap) before anything is sent, and its
//! outcome is recorded only while the claim holds. The next attempt is a
//! delayed push of this job, never a sleep in a worker slot; a lost push is
//! found by the scheduler's sweep. A receiver sees the same `webhook-id` on
//! every attempt, so a repeat after a lost answer is one it can drop.

use std::time::{Duration, Instant};

use boxoffice_core::{
    jobs::{DeliverWebhook, SendEmail},
    models::{Attempt, Claim, Delivery},
    queue::Schedule,
    webhooks,
};
use chrono::Utc;

use super::{JobError, Perform};
use crate::WorkerCtx;

/// Most of a receiver's answer read (and thrown away): enough to end the
/// exchange cleanly, never a memory hazard.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

impl Perform for DeliverWebhook {
    async fn perform(&self, ctx: &WorkerCtx, _attempt: u32) -> Result<(), JobError> {
        let services = &ctx.services;
        let config = &services.config.webhooks;
        // The lease outlives the attempt's own timeout, so a live attempt is
        // never taken over; a dead worker's is, once the lease ends.
        let lease = config.timeout + Duration::from_secs(30);
        let mut conn = services.db.get().await?;
        let claim = Delivery::claim(
            &mut conn,
            self.delivery_id,
            lease,
            config.endpoint_concurrency,
        )
        .await?;
        drop(conn);
        let (claimed, endpoint) = match claim {
            Claim::Ready(ready) => *ready,
            Claim::Nothing => return Ok(()),
            // The endpoint has its fill of attempts in flight: come back
            // later, leaving the worker slot to other endpoints meanwhile.
            Claim::Busy => {
                let wait = Duration::from_millis(
                    (250u64 << self.busy.min(4)) + rand::random_range(0..250),
                );
                let again = DeliverWebhook {
                    delivery_id: self.delivery_id,
                    busy: self.busy.saturating_add(1),
                };
                services
                    .queues
                    .push(&again, Schedule::after(wait))
                    .await
                    .map_err(|e| JobError::new(format!("push: {e}")))?;
                return Ok(());
            }
        };

        let id = webhooks::message_id(claimed.event_id);
        let body = webhooks::body(&claimed.event_type, claimed.event_at, &claimed.data);
        let now = Utc::now();
        let signature =
            webhooks::signature_header(&endpoint.signing_secrets(now), &id, now.timestamp(), &body);
        let attempt = send(ctx, &endpoint.url, &id, now.timestamp(), &signature, body).await;
        tracing::debug!(
            delivery.id = %claimed.id,
            endpoint.id = %endpoint.id,
            attempt = claimed.attempts,
            status = ?attempt.status_code,
            error = ?attempt.error,
            "webhook attempt"
        );

        let mut conn = services.db.get().await?;
        let recorded = Delivery::record(
            &mut conn,
            &claimed,
            &attempt,
            &config.retry_schedule,
            config.disable_after,
        )
        .await?;
        drop(conn);
        if let Some(email_id) = recorded.email {
            tracing::warn!(endpoint.id = %endpoint.id, "webhook endpoint disabled");
            SendEmail::enqueue(&services.queues, email_id).await;
        }
        if let Some(after) = recorded.retry_in {
            let next = DeliverWebhook {
                delivery_id: self.delivery_id,
                busy: 0,
            };
            // Lost, the sweep pushes it once it is overdue.
            if let Err(e) = services.queues.push(&next, Schedule::after(after)).await {
                tracing::warn!(delivery.id = %claimed.id, error = %e, "retry push failed; the sweep will retry");
            }
        }
        Ok(())
    }
}

/// One POST; never an error, the failure is the attempt's outcome.
async fn send(
    ctx: &WorkerCtx,
    url: &str,
    id: &str,
    timestamp: i64,
    signature: &str,
    body: Vec<u8>,
) -> Attempt {
    let started = Instant::now();
    let elapsed = |started: Instant| started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    let refused = |error: String| Attempt {
        status_code: None,
        error: Some(error),
        latency_ms: 0,
        retry_after: None,
    };
    // A literal IP never reaches the guarded resolver: checked here.
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return refused(format!("the URL does not parse: {e}")),
    };
    if let Err(e) = ctx.services.config.webhooks.policy().check_url(&parsed) {
        return refused(format!("refused: {e}"));
    }
    let answer = ctx
        .webhooks
        .post(parsed)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let mut response = match answer {
        Ok(r) => r,
        Err(e) => {
            return Attempt {
                status_code: None,
                error: Some(describe(&e)),
                latency_ms: elapsed(started),
                retry_after: None,
            };
        }
    };
    let status = response.status();
    let retry_after = (status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::SERVICE_UNAVAILABLE)
        .then(|| {
            response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(24 * 3600)))
        })
        .flatten();
    let mut read = 0;
    while read < MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            _ => break,
        }
    }
    Attempt {
        status_code: Some(status.as_u16()),
        error: (!status.is_success()).then(|| {
            if status.is_redirection() {
                format!("answered {status}; redirects are not followed")
            } else {
                format!("answered {status}")
            }
        }),
        latency_ms: elapsed(started),
        retry_after,
    }
}

/// What went wrong, without the URL (it may hold a token).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    let mut cause = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(c) = cause {
        detail = c.to_string();
        cause = c.source();
    }
    if detail.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {detail}")
    }
}
