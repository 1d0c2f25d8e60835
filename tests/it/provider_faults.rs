//! The sandbox misbehaving on purpose (`SANDBOX_FAULTS`): answers refused
//! with 429, answered 500 after the work was done, every webhook three
//! times and out of order. (A tenth of each, as in the fault suite: a
//! provider failing half its calls opens the circuit breaker for 30 s,
//! which is its job, and slower than a test.) Orders still end paid once, with one payment,
//! their tickets and one confirmation each.

use std::time::Duration;

use boxoffice_core::config::{AutoOutcome, SandboxFaults};
use serde_json::json;

use crate::harness::{TestApp, eventually};

#[tokio::test(flavor = "multi_thread")]
async fn orders_end_paid_once_while_the_provider_errs_throttles_and_repeats_itself() {
    let app = TestApp::builder()
        .full()
        .with_config(|c| {
            c.sandbox.auto = Some((AutoOutcome::Pay, Duration::from_millis(50)));
            c.sandbox.faults =
                SandboxFaults::parse("error:0.1,throttle:0.1,webhook-copies:3").expect("faults");
        })
        .start()
        .await;
    let shop = app.shop(20, 1500).await;
    let mut orders = Vec::new();
    for i in 0..6 {
        let (buyer, _, _) = app
            .register(&format!("faulty-{i}@example.com"), "attendee")
            .await;
        let (status, order) = app
            .order(
                &buyer,
                &shop.event_id,
                "k1",
                json!({"items": [{"tier_id": shop.tier_id, "quantity": 2}]}),
            )
            .await;
        assert_eq!(status, 202, "{order}");
        orders.push((buyer, order["id"].as_str().unwrap().to_owned()));
    }
    for (buyer, id) in &orders {
        app.wait_order(buyer, id, "paid").await;
    }
    let e = &shop.event_id;
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) AS n FROM payments p JOIN orders o ON o.id = p.order_id
              WHERE o.event_id = '{e}' AND p.status = 'succeeded'"
        ))
        .await,
        6
    );
    // Tickets are issued in the transaction that marks the order paid.
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) AS n FROM tickets WHERE event_id = '{e}'"
        ))
        .await,
        12
    );
    // The held seats move to sold a moment later (the settler's batch).
    eventually(Duration::from_secs(10), || async {
        match app
            .scalar(&format!(
                "SELECT sold::bigint AS n FROM tier_stock WHERE tier_id = '{}'",
                shop.tier_id
            ))
            .await
        {
            12 => Ok(()),
            n => Err(format!("{n} seats sold")),
        }
    })
    .await;
    // Every completed checkout's webhook arrived three times (acknowledged
    // each time) and was applied once.
    eventually(Duration::from_secs(10), || async {
        match app.sandbox.delivered_webhooks() {
            n if n >= 18 => Ok(()),
            n => Err(format!("{n} webhooks acknowledged")),
        }
    })
    .await;
    for i in 0..6 {
        app.smtp
            .wait_for(
                &format!("faulty-{i}@example.com"),
                "Your tickets",
                Duration::from_secs(15),
            )
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let confirmations = app
        .smtp
        .messages()
        .iter()
        .filter(|m| m.subject().starts_with("Your tickets"))
        .count();
    assert_eq!(confirmations, 6);
}

/// A throttled request is refused before anything is done, with the wait.
#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_sandbox_answers_429_with_retry_after() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.sandbox.faults = SandboxFaults::parse("throttle:1").expect("faults");
        })
        .start()
        .await;
    let response = app
        .client
        .post(format!("{}/v1/checkout/sessions", app.sandbox_url))
        .bearer_auth(&app.services.config.payments.api_key)
        .header("idempotency-key", "t1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    // Pages are not the API: they are never throttled.
    let page = app
        .client
        .get(format!("{}/checkout/cs_unknown", app.sandbox_url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
}
