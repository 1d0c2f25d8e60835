//! Cancelling an event: unpaid orders cancelled at once with their holds
//! and checkouts, every paid order refunded exactly once (also when the
//! worker doing it is killed half-way), every buyer told; a payment that
//! races a cancellation is given back.

use std::time::Duration;

use boxoffice_core::{Services, config::AutoOutcome, queue::QueueName};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::{
    harness::{TestApp, eventually},
    routes::refunds::ledger_checks,
};

/// A worker process of its own draining only the refunds queue: a runtime
/// with its own connections. Shutting the runtime down kills it without any
/// cleanup, as `kill -9` would.
fn refunds_worker(mut config: boxoffice_core::Config) -> tokio::runtime::Runtime {
    config.workers.queues = vec![QueueName::Refunds];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.spawn(async move {
        let services = Services::connect(config).await.unwrap();
        let (_keep, rx) = watch::channel(false);
        boxoffice_workers::run(services, rx).await.unwrap();
    });
    rt
}

async fn progress(app: &TestApp, token: &str, event_id: &str) -> Value {
    let (status, body) = app
        .get(&format!("/v1/events/{event_id}/cancellation"), Some(token))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn every_paid_order_is_refunded_once_even_when_the_worker_is_killed_half_way() {
    const PAID: usize = 500;
    // The app's own workers sell; refunds are drained by the processes below.
    let app = TestApp::builder()
        .full()
        .with_config(|c| {
            c.sandbox.auto = Some((AutoOutcome::Pay, Duration::from_millis(20)));
            c.workers.queues = QueueName::ALL
                .into_iter()
                .filter(|q| *q != QueueName::Refunds)
                .collect();
            c.orders.recovery_grace = Duration::ZERO;
            // 500 sales, refunds and emails in one process: a production
            // pool (the tests' default of 8 starves under this load).
            c.database.pool_size = 32;
        })
        .start()
        .await;
    let shop = app.shop(1_000, 2500).await;
    let free = app
        .create_tier(
            &shop.organizer,
            &shop.event_id,
            json!({"name": "Guest list", "price_minor": 0, "quantity": 10}),
        )
        .await;
    let (buyer, _, _) = app.register("fan@example.com", "attendee").await;
    for i in 0..PAID {
        let (status, body) = app
            .order(
                &buyer,
                &shop.event_id,
                &format!("k{i}"),
                json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}]}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }
    for i in 0..2 {
        let (status, body) = app
            .order(
                &buyer,
                &shop.event_id,
                &format!("free{i}"),
                json!({"items": [{"tier_id": free["id"], "quantity": 1}]}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }
    eventually(Duration::from_secs(60), || async {
        let paid = app
            .scalar("SELECT count(*) AS n FROM orders WHERE status = 'paid'")
            .await;
        if paid == PAID as i64 + 2 {
            Ok(())
        } else {
            Err(format!("{paid} paid"))
        }
    })
    .await;

    let config = (*app.services.config).clone();
    let doomed = refunds_worker(config.clone());
    let (status, started) = app
        .post(
            &format!("/v1/events/{}/cancel", shop.event_id),
            json!({"message": "The venue flooded."}),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["orders_total"], PAID as i64 + 2);
    // At once: no new orders.
    let (status, refused) = app
        .order(
            &buyer,
            &shop.event_id,
            "late",
            json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["code"], "event_not_on_sale");

    // Kill the refunds worker once it is part-way through.
    eventually(Duration::from_secs(60), || async {
        let done = app
            .scalar("SELECT count(*) AS n FROM refunds WHERE status = 'succeeded'")
            .await;
        if done >= 50 {
            Ok(())
        } else {
            Err(format!("{done} refunded"))
        }
    })
    .await;
    doomed.shutdown_background();
    let at_kill = app
        .scalar("SELECT count(*) AS n FROM refunds WHERE status = 'succeeded'")
        .await;
    assert!(at_kill < PAID as i64, "killed half-way: {at_kill}");

    // Another process and the sweeps finish it.
    let survivor = refunds_worker(config);
    let done = eventually(Duration::from_secs(90), || async {
        for sweep in ["cancelled_events", "open_refunds", "email_sweep"] {
            boxoffice_scheduler::run_sweep(&app.services, sweep)
                .await
                .unwrap();
        }
        let p = progress(&app, &shop.organizer, &shop.event_id).await;
        if p["state"] == "done" {
            Ok(p)
        } else {
            Err(format!("{p}"))
        }
    })
    .await;
    assert_eq!(done["refunded"], PAID as i64 + 2, "{done}");
    assert_eq!(done["failed"], 0);

    // Exactly once each: one cancellation refund per paid order, all
    // succeeded, for the full amount; free orders cancelled without one.
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM refunds WHERE kind = 'event_cancelled' AND status = 'succeeded' AND amount_minor = 2500")
            .await,
        PAID as i64
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM (SELECT order_id FROM refunds GROUP BY order_id HAVING count(*) > 1) twice")
            .await,
        0
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM orders WHERE status = 'refunded'")
            .await,
        PAID as i64
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM orders WHERE status = 'cancelled' AND reject_reason = 'event_cancelled'")
            .await,
        2
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM tickets WHERE status <> 'void'")
            .await,
        0
    );
    // The provider gave back each payment once (a second refund of a
    // payment would have been refused by it, and failed here).
    assert_eq!(
        app.scalar("SELECT coalesce(sum(amount_minor), 0)::bigint AS n FROM ledger_entries WHERE account = 'cash:sandbox'")
            .await,
        0
    );
    ledger_checks(&app).await;
    // Every buyer told, once per order (an email whose job died with the
    // worker, between its row's commit and its push, is the sweep's).
    eventually(Duration::from_secs(60), || async {
        boxoffice_scheduler::run_sweep(&app.services, "email_sweep")
            .await
            .unwrap();
        let sent = app
            .scalar("SELECT count(*) AS n FROM email_log WHERE template IN ('refund_notice', 'event_cancelled') AND status = 'sent'")
            .await;
        if sent == PAID as i64 + 2 {
            Ok(())
        } else {
            Err(format!("{sent} sent"))
        }
    })
    .await;
    let mail = app
        .smtp
        .wait_for("fan@example.com", "Refund", Duration::from_secs(10))
        .await;
    assert!(
        mail.text().contains("The venue flooded."),
        "{}",
        mail.text()
    );
    survivor.shutdown_background();
}

#[tokio::test(flavor = "multi_thread")]
async fn unpaid_orders_are_cancelled_and_a_payment_that_races_in_is_given_back() {
    let app = TestApp::builder()
        .full()
        .with_config(|c| c.orders.recovery_grace = Duration::ZERO)
        .start()
        .await;
    let admin = app.admin().await;
    let shop = app.shop(10, 1500).await;
    let (buyer, _, _) = app.register("racer@example.com", "attendee").await;

    // A buyer cancels their own unpaid order: its checkout is closed, the
    // provider's page no longer takes the payment.
    let (mine, mine_url) = app.reserved_checkout(&buyer, &shop, "mine").await;
    let (status, body) = app
        .post(
            &format!("/v1/orders/{mine}/cancel"),
            json!({}),
            Some(&buyer),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Closed by the purchases queue: the hosted page says so, and refuses
    // the payment.
    eventually(Duration::from_secs(20), || async {
        let page = reqwest::get(&mine_url).await.unwrap().text().await.unwrap();
        if page.contains("<strong>expired</strong>") {
            Ok(())
        } else {
            Err("still open".to_owned())
        }
    })
    .await;
    let refused = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{mine_url}/pay"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 409);
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) AS n FROM payments WHERE order_id = '{mine}'"
        ))
        .await,
        0,
        "nothing charged"
    );

    // Two reserved orders; the checkouts' closing is held back (the
    // purchases queue paused), so one is paid after the event is cancelled.
    let (racing, racing_url) = app.reserved_checkout(&buyer, &shop, "racing").await;
    let (_waiting, _) = app.reserved_checkout(&buyer, &shop, "waiting").await;
    assert_eq!(app.stock(&shop.tier_id).await, (2, 0, 10));
    let (status, _) = app
        .post("/v1/ops/queues/purchases/pause", json!({}), Some(&admin))
        .await;
    assert_eq!(status, 200);
    // Workers look at the pause flag twice a second.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (status, started) = app
        .delete(
            &format!("/v1/events/{}", shop.event_id),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(
        status, 202,
        "DELETE of a published event cancels it: {started}"
    );
    assert_eq!(started["orders_total"], 0);
    assert_eq!(started["state"], "done");
    assert_eq!(
        app.stock(&shop.tier_id).await,
        (0, 0, 10),
        "holds released at once"
    );
    let cancelled = app.wait_order(&buyer, &racing, "cancelled").await;
    assert_eq!(cancelled["reason"], "event_cancelled");
    app.settle(&racing_url, "pay").await;
    // The payment is recorded and given back; the buyer is told why.
    let refunded = app.wait_order(&buyer, &racing, "refunded").await;
    assert_eq!(
        refunded["refunds"][0]["reason"], "event_cancelled",
        "{refunded}"
    );
    assert_eq!(refunded["refunds"][0]["kind"], "returned");
    let mail = app
        .smtp
        .wait_for("racer@example.com", "Refund", Duration::from_secs(20))
        .await;
    assert!(
        mail.text().contains("after the event had been cancelled"),
        "{}",
        mail.text()
    );
    let (status, _) = app
        .post("/v1/ops/queues/purchases/resume", json!({}), Some(&admin))
        .await;
    assert_eq!(status, 200);
    ledger_checks(&app).await;

    // Bad input changes nothing.
    let (status, again) = app
        .post(
            &format!("/v1/events/{}/cancel", shop.event_id),
            json!({}),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(
        (status, again["code"].as_str()),
        (409, Some("event_already_cancelled"))
    );
    let draft = app.create_event(&shop.organizer, json!({})).await;
    let draft_id = draft["id"].as_str().unwrap();
    let (status, body) = app
        .post(
            &format!("/v1/events/{draft_id}/cancel"),
            json!({}),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("event_not_published"))
    );
    let (status, body) = app
        .get(
            &format!("/v1/events/{draft_id}/cancellation"),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("event_not_cancelled"))
    );
    let other = app.shop(5, 1000).await;
    let (status, body) = app
        .post(
            &format!("/v1/events/{}/cancel", other.event_id),
            json!({"message": "x".repeat(2001)}),
            Some(&other.organizer),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed"))
    );
    let (status, body) = app
        .post(
            &format!("/v1/events/{}/cancel", other.event_id),
            json!({}),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(status, 404, "another organizer's event: {body}");
    let (_, page) = app
        .get(&format!("/v1/events/{}", other.event_id), None)
        .await;
    assert_eq!(page["status"], "published");
}
