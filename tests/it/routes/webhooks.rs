//! Inbound payment webhooks: forged, stale, oversized, duplicate and
//! out-of-order deliveries, plus late payments (after expiry) both ways.

use std::time::Duration;

use boxoffice_core::payments::signature;
use serde_json::{Value, json};

use crate::harness::{TestApp, eventually};

const PATH: &str = "/v1/webhooks/payments/sandbox";

/// Signs like the provider does (or with another secret / time, to forge).
pub(crate) fn signed(
    app: &TestApp,
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &Value,
) -> reqwest::RequestBuilder {
    let raw = serde_json::to_vec(body).unwrap();
    let key = signature::decode_secret(secret).unwrap();
    app.client
        .post(app.url(PATH))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            signature::sign(&key, id, timestamp, &raw),
        )
        .body(raw)
}

pub(crate) fn dev_secret() -> &'static str {
    boxoffice_core::config::DEV_WEBHOOK_SECRET
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An order reserved with its checkout open; returns (buyer, order id, checkout id, url).
async fn reserved(
    app: &TestApp,
    tier_id: &str,
    event_id: &str,
    quantity: i32,
) -> (String, String, String, String) {
    let (buyer, _, _) = app
        .register(
            &format!("b-{}@example.com", uuid::Uuid::new_v4().simple()),
            "attendee",
        )
        .await;
    let (id, checkout, url) = reserve_as(app, &buyer, "k", tier_id, event_id, quantity).await;
    (buyer, id, checkout, url)
}

/// `buyer` orders with `key` and waits for the checkout; returns (order id,
/// checkout id, url).
async fn reserve_as(
    app: &TestApp,
    buyer: &str,
    key: &str,
    tier_id: &str,
    event_id: &str,
    quantity: i32,
) -> (String, String, String) {
    let (status, order) = app
        .order(
            buyer,
            event_id,
            key,
            json!({"items": [{"tier_id": tier_id, "quantity": quantity}]}),
        )
        .await;
    assert_eq!(status, 202, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let url = eventually(Duration::from_secs(20), || async {
        let (_, o) = app.get(&format!("/v1/orders/{id}"), Some(buyer)).await;
        o["checkout_url"]
            .as_str()
            .map(str::to_owned)
            .ok_or(o.to_string())
    })
    .await;
    let checkout = url.rsplit('/').next().unwrap().to_owned();
    (id, checkout, url)
}

fn completed(event_id: &str, checkout: &str, order_id: &str, payment: &str, amount: i64) -> Value {
    json!({"id": event_id, "type": "checkout.completed", "created": now(),
           "data": {"checkout_id": checkout, "reference": order_id, "payment_id": payment,
                    "amount_minor": amount, "currency": "EUR"}})
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_stale_oversized_and_duplicate_webhooks() {
    let app = TestApp::builder().full().start().await;
    let shop = app.shop(10, 1000).await;
    let (buyer, order_id, checkout, _) = reserved(&app, &shop.tier_id, &shop.event_id, 1).await;
    let event = completed("evt_test_1", &checkout, &order_id, "pay_test_1", 1000);

    // Wrong secret, stale, from the future, missing headers, tampered body.
    let other_secret = "whsec_c29tZW9uZS1lbHNlcy1zZWNyZXQtMTIzNDU2Nzg=";
    let forged = [
        signed(&app, other_secret, "evt_test_1", now(), &event),
        signed(&app, dev_secret(), "evt_test_1", now() - 301, &event),
        signed(&app, dev_secret(), "evt_test_1", now() + 301, &event),
        app.client.post(app.url(PATH)).json(&event),
        signed(&app, dev_secret(), "evt_test_1", now(), &event).body(
            serde_json::to_vec(&completed(
                "evt_test_1",
                &checkout,
                &order_id,
                "pay_test_1",
                1,
            ))
            .unwrap(),
        ),
    ];
    for request in forged {
        let (status, problem) = app.send(request).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (401, Some("invalid_signature")),
            "{problem}"
        );
    }
    assert_eq!(app.count("webhook_inbox").await, 0, "nothing stored");
    let (_, order) = app
        .get(&format!("/v1/orders/{order_id}"), Some(&buyer))
        .await;
    assert_eq!(order["status"], "awaiting_payment", "nothing changed");

    // Oversized: 413 before any parsing.
    let big = json!({"id": "evt_big", "type": "checkout.completed", "pad": "x".repeat(70 * 1024)});
    let (status, _) = app
        .send(signed(&app, dev_secret(), "evt_big", now(), &big))
        .await;
    assert_eq!(status, 413);
    // Unknown provider.
    let (status, _) = app
        .send(
            app.client
                .post(app.url("/v1/webhooks/payments/stripe"))
                .json(&event),
        )
        .await;
    assert_eq!(status, 404);

    // The genuine event, delivered three times (once concurrently).
    let deliver = || async {
        app.send(signed(&app, dev_secret(), "evt_test_1", now(), &event))
            .await
    };
    let (a, b) = tokio::join!(deliver(), deliver());
    let c = deliver().await;
    let mut statuses = vec![
        a.1["status"].clone(),
        b.1["status"].clone(),
        c.1["status"].clone(),
    ];
    statuses.sort_by_key(|v| v.to_string());
    assert_eq!((a.0, b.0, c.0), (200, 200, 200));
    assert_eq!(
        statuses,
        vec![json!("accepted"), json!("duplicate"), json!("duplicate")]
    );
    app.wait_order(&buyer, &order_id, "paid").await;
    assert_eq!(app.count("webhook_inbox").await, 1);
    assert_eq!(app.count("payments").await, 1);
    assert_eq!(app.count("tickets").await, 1);

    // Out of order: a decline arriving after the payment changes nothing.
    let decline = json!({"id": "evt_test_2", "type": "checkout.declined", "created": now(),
                         "data": {"checkout_id": checkout, "reference": order_id}});
    let (status, _) = app
        .send(signed(&app, dev_secret(), "evt_test_2", now(), &decline))
        .await;
    assert_eq!(status, 200);
    eventually(Duration::from_secs(10), || async {
        let n = app
            .scalar("SELECT count(*) AS n FROM webhook_inbox WHERE processed_at IS NULL")
            .await;
        if n == 0 {
            Ok(())
        } else {
            Err(format!("{n} unprocessed"))
        }
    })
    .await;
    let (_, order) = app
        .get(&format!("/v1/orders/{order_id}"), Some(&buyer))
        .await;
    assert_eq!(order["status"], "paid");
    assert_eq!(app.stock(&shop.tier_id).await, (0, 1, 10));
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_secrets_are_both_accepted() {
    let new_secret = "whsec_bmV3LXJvdGF0ZWQtc2VjcmV0LWZvci10ZXN0cy0xMjM=";
    let app = TestApp::builder()
        .full()
        .with_config(move |c| {
            c.payments.webhook_secrets = vec![
                new_secret.into(),
                boxoffice_core::config::DEV_WEBHOOK_SECRET.into(),
            ];
            c.sandbox.webhook_secret = new_secret.into();
        })
        .start()
        .await;
    let shop = app.shop(10, 1000).await;
    let (buyer, order_id, checkout, _) = reserved(&app, &shop.tier_id, &shop.event_id, 1).await;
    // Signed with the old secret: still accepted during the rotation.
    let event = completed("evt_rot", &checkout, &order_id, "pay_rot", 1000);
    let (status, _) = app
        .send(signed(&app, dev_secret(), "evt_rot", now(), &event))
        .await;
    assert_eq!(status, 200);
    app.wait_order(&buyer, &order_id, "paid").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_payment_is_confirmed_if_seats_are_free_and_refunded_if_not() {
    let app = TestApp::builder()
        .full()
        .with_config(|c| c.orders.reservation_ttl = Duration::from_secs(1))
        .start()
        .await;
    let shop = app.shop(1, 1000).await;

    // Reserved, expired (the delayed job), then paid: the seat is still free.
    let (buyer, order_id, _, url) = reserved(&app, &shop.tier_id, &shop.event_id, 1).await;
    let expired = app.wait_order(&buyer, &order_id, "expired").await;
    assert_eq!(expired["reason"], "reservation_expired");
    assert_eq!(app.stock(&shop.tier_id).await, (0, 0, 1));
    app.settle(&url, "pay").await;
    app.wait_order(&buyer, &order_id, "paid").await;
    assert_eq!(app.stock(&shop.tier_id).await, (0, 1, 1));

    // Second buyer: reserved... but the first one took the only seat. Make
    // room, reserve, expire, let someone else buy it, then pay late.
    app.sql(&format!(
        "UPDATE tier_stock SET quantity = 2 WHERE tier_id = '{}'",
        shop.tier_id
    ))
    .await;
    let (late, late_id, _, late_url) = reserved(&app, &shop.tier_id, &shop.event_id, 1).await;
    app.wait_order(&late, &late_id, "expired").await;
    let (quick, _, _, quick_url) = reserved(&app, &shop.tier_id, &shop.event_id, 1).await;
    app.settle(&quick_url, "pay").await;
    eventually(Duration::from_secs(20), || async {
        let (_, sold, _) = app.stock(&shop.tier_id).await;
        if sold == 2 {
            Ok(())
        } else {
            Err(format!("sold {sold}"))
        }
    })
    .await;
    let _ = quick;
    app.settle(&late_url, "pay").await;
    let refunded = app.wait_order(&late, &late_id, "refunded").await;
    assert_eq!(refunded["status"], "refunded");
    assert_eq!(app.stock(&shop.tier_id).await, (0, 2, 2), "never oversold");
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM refunds WHERE status = 'succeeded'")
            .await,
        1
    );
    // The buyer is told why.
    let late_email = app
        .scalar(&format!(
            "SELECT count(*) AS n FROM email_log e JOIN orders o ON o.buyer_id = e.user_id
              WHERE o.id = '{late_id}' AND e.template = 'refund_notice'"
        ))
        .await;
    assert_eq!(late_email, 1);
    let to: String = {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct E {
            #[diesel(sql_type = diesel::sql_types::Text)]
            email: String,
        }
        let mut conn = app.services.db.get().await.unwrap();
        let e: E = diesel::sql_query(format!(
            "SELECT u.email FROM users u JOIN orders o ON o.buyer_id = u.id WHERE o.id = '{late_id}'"
        ))
        .get_result(&mut conn)
        .await
        .unwrap();
        e.email
    };
    let mail = app
        .smtp
        .wait_for(&to, "Refund", Duration::from_secs(20))
        .await;
    assert!(mail.text().contains("expired"), "{}", mail.text());
    // Ledger: payment and refund both posted, balanced.
    assert_eq!(
        app.scalar("SELECT coalesce(sum(amount_minor), 0)::bigint AS n FROM ledger_entries")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_releases_the_hold_once_when_job_and_sweep_both_fire() {
    let app = TestApp::builder()
        .full()
        .with_config(|c| c.orders.reservation_ttl = Duration::from_secs(1))
        .start()
        .await;
    let shop = app.shop(10, 1000).await;
    let (buyer, order_id, _, _) = reserved(&app, &shop.tier_id, &shop.event_id, 3).await;
    assert_eq!(app.stock(&shop.tier_id).await.0, 3);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The sweep races the delayed job (and itself).
    let (a, b) = tokio::join!(
        boxoffice_scheduler::run_sweep(&app.services, "expired_reservations"),
        boxoffice_scheduler::run_sweep(&app.services, "expired_reservations"),
    );
    a.unwrap();
    b.unwrap();
    app.wait_order(&buyer, &order_id, "expired").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.stock(&shop.tier_id).await,
        (0, 0, 10),
        "released exactly once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn paid_seats_settle_into_the_stock_row_and_the_sweep_catches_leftovers() {
    let app = TestApp::builder().full().start().await;
    let shop = app.shop(10, 1000).await;
    let (buyer, order_id, _, url) = reserved(&app, &shop.tier_id, &shop.event_id, 2).await;
    app.settle(&url, "pay").await;
    app.wait_order(&buyer, &order_id, "paid").await;
    // Reads count the seats as sold whether or not they are settled yet.
    assert_eq!(app.stock(&shop.tier_id).await, (0, 2, 10));
    let raw = format!(
        "SELECT (held * 100 + sold)::bigint AS n FROM tier_stock WHERE tier_id = '{}'",
        shop.tier_id
    );
    eventually(Duration::from_secs(10), || async {
        let pending = app.scalar("SELECT count(*) AS n FROM pending_sales").await;
        let row = app.scalar(&raw).await;
        (pending == 0 && row == 2)
            .then_some(())
            .ok_or(format!("pending {pending}, held*100+sold {row}"))
    })
    .await;

    // A worker that stopped between a payment and its settlement leaves the
    // sale recorded and the stock row behind; the sweep finishes it.
    app.sql(&format!(
        "UPDATE tier_stock SET held = 2, sold = 0 WHERE tier_id = '{}'",
        shop.tier_id
    ))
    .await;
    app.sql(&format!(
        "INSERT INTO pending_sales (order_item_id, tier_id, quantity)
         SELECT id, tier_id, quantity FROM order_items WHERE order_id = '{order_id}'"
    ))
    .await;
    assert_eq!(app.stock(&shop.tier_id).await, (0, 2, 10));
    let seats = boxoffice_scheduler::run_sweep(&app.services, "unsettled_sales")
        .await
        .unwrap();
    assert_eq!(seats, 2);
    assert_eq!(app.scalar(&raw).await, 2);
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM pending_sales").await,
        0
    );
    assert_eq!(
        boxoffice_scheduler::run_sweep(&app.services, "unsettled_sales")
            .await
            .unwrap(),
        0,
        "nothing left"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_payments_is_applied_once_each() {
    // Payments arriving together are applied in batches; a second event
    // for the same payment, in the same batch or not, changes nothing.
    let app = TestApp::builder().full().start().await;
    let shop = app.shop(40, 1000).await;
    // Four buyers (registration is rate limited), six orders each.
    let mut reserved_orders = Vec::new();
    for b in 0..4 {
        let (buyer, _, _) = app
            .register(&format!("burst-{b}@example.com"), "attendee")
            .await;
        for k in 0..6 {
            let key = format!("burst-{k}");
            let (id, checkout, _) =
                reserve_as(&app, &buyer, &key, &shop.tier_id, &shop.event_id, 1).await;
            reserved_orders.push((buyer.clone(), id, checkout));
        }
    }
    let deliveries = reserved_orders
        .iter()
        .enumerate()
        .flat_map(|(i, (_, id, checkout))| {
            let copies = if i % 4 == 0 { 2 } else { 1 };
            (0..copies).map(move |copy| {
                let event_id = format!("evt_burst_{i}_{copy}");
                let body = completed(&event_id, checkout, id, &format!("pay_burst_{i}"), 1000);
                (event_id, body)
            })
        });
    let answers = futures::future::join_all(deliveries.map(|(event_id, body)| {
        let app = &app;
        async move {
            app.send(signed(app, dev_secret(), &event_id, now(), &body))
                .await
                .0
        }
    }))
    .await;
    assert!(
        answers.iter().all(|s| (200..300).contains(s)),
        "{answers:?}"
    );
    for (buyer, id, _) in &reserved_orders {
        app.wait_order(buyer, id, "paid").await;
    }
    eventually(Duration::from_secs(10), || async {
        let unprocessed = app
            .scalar("SELECT count(*) AS n FROM webhook_inbox WHERE processed_at IS NULL")
            .await;
        (unprocessed == 0)
            .then_some(())
            .ok_or(format!("{unprocessed} unprocessed"))
    })
    .await;
    assert_eq!(app.count("webhook_inbox").await, 30);
    assert_eq!(app.count("payments").await, 24);
    assert_eq!(app.count("tickets").await, 24);
    assert_eq!(app.count("ledger_entries").await, 48);
    assert_eq!(
        app.scalar("SELECT coalesce(sum(amount_minor), 0)::bigint AS n FROM ledger_entries")
            .await,
        0,
        "balanced"
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM email_log WHERE template = 'order_confirmation'")
            .await,
        24
    );
    assert_eq!(
        app.count("refunds").await,
        0,
        "no duplicate was charged back"
    );
    assert_eq!(app.stock(&shop.tier_id).await, (0, 24, 40));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_released_reservation_gives_its_code_use_back() {
    // Expired here; a cancellation releases through the same conditional
    // update (a cancelled order's checkout is closed, so it cannot be paid
    // late: `cancellation.rs`).
    let app = TestApp::builder().full().start().await;
    let shop = app.shop(10, 1000).await;
    let (status, _) = app
        .post(
            &format!("/v1/events/{}/discounts", shop.event_id),
            json!({"code": "ONCE", "percent_off": 10, "max_redemptions": 1}),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(status, 201);
    let redemptions = "SELECT redemptions::bigint AS n FROM discount_codes WHERE code = 'ONCE'";
    let with_code =
        json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}], "discount_code": "once"});
    let mut buyers = Vec::new();
    for who in ["first", "second"] {
        let (token, _, _) = app
            .register(&format!("{who}-code@example.com"), "attendee")
            .await;
        buyers.push(token);
    }

    // The first buyer reserves with the only use, then cancels.
    let (_, first) = app
        .order(&buyers[0], &shop.event_id, "k", with_code.clone())
        .await;
    let first_id = first["id"].as_str().unwrap().to_owned();
    let reserved = app
        .wait_order(&buyers[0], &first_id, "awaiting_payment")
        .await;
    assert_eq!(app.scalar(redemptions).await, 1);
    let first_url = eventually(Duration::from_secs(20), || async {
        let (_, o) = app
            .get(&format!("/v1/orders/{first_id}"), Some(&buyers[0]))
            .await;
        o["checkout_url"]
            .as_str()
            .map(str::to_owned)
            .ok_or(o.to_string())
    })
    .await;
    app.sql(&format!(
        "UPDATE orders SET reserved_until = now() - interval '1 second' WHERE id = '{first_id}'"
    ))
    .await;
    boxoffice_scheduler::run_sweep(&app.services, "expired_reservations")
        .await
        .unwrap();
    app.wait_order(&buyers[0], &first_id, "expired").await;
    assert_eq!(app.scalar(redemptions).await, 0, "the use came back");

    // So the second buyer can use the code.
    let (_, second) = app.order(&buyers[1], &shop.event_id, "k", with_code).await;
    let second_id = second["id"].as_str().unwrap().to_owned();
    let second = app
        .wait_order(&buyers[1], &second_id, "awaiting_payment")
        .await;
    assert_eq!(second["discount_minor"], reserved["discount_minor"]);
    assert_eq!(app.scalar(redemptions).await, 1);

    // The first buyer pays late: seats are free, the code's use is not, so
    // the payment is refunded rather than the cap broken.
    app.settle(&first_url, "pay").await;
    app.wait_order(&buyers[0], &first_id, "refunded").await;
    assert_eq!(app.scalar(redemptions).await, 1, "never past the cap");
    assert_eq!(
        app.scalar(
            "SELECT count(*) AS n FROM refunds WHERE reason = 'discount_used_up_after_expiry'"
        )
        .await,
        1,
        "refunded for the code, not the seats"
    );
    let (held, sold, _) = app.stock(&shop.tier_id).await;
    assert_eq!((held, sold), (1, 0), "the second buyer's seat only");
}
