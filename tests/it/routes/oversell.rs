//! No oversell, proved under concurrency: hundreds of buyers at once against
//! two independent worker groups (two reservation batchers racing).

use std::time::Duration;

use serde_json::json;

use crate::harness::{TestApp, eventually};

async fn buyers(app: &TestApp, n: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    for i in 0..n {
        let (token, _, _) = app
            .register(
                &format!("buyer{i}-{}@example.com", uuid::Uuid::new_v4().simple()),
                "attendee",
            )
            .await;
        tokens.push(token);
    }
    tokens
}

/// Waits until no order of the event is pending.
async fn settled(app: &TestApp, event_id: &str) {
    eventually(Duration::from_secs(60), || async {
        let pending = app
            .scalar(&format!(
                "SELECT count(*) AS n FROM orders WHERE event_id = '{event_id}' AND status = 'pending'"
            ))
            .await;
        if pending == 0 { Ok(()) } else { Err(format!("{pending} still pending")) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn five_hundred_buyers_one_hundred_seats() {
    let app = TestApp::builder()
        .worker_groups(2)
        .with_config(|c| c.auth.registrations_per_hour = 1_000)
        .start()
        .await;
    let shop = app.shop(100, 1500).await;
    let tokens = buyers(&app, 25).await;

    // 500 orders of one seat, all at once, 20 per buyer.
    let orders = (0..500).map(|i| {
        let (app, shop, token) = (&app, &shop, &tokens[i % tokens.len()]);
        async move {
            let (status, body) = app
                .order(
                    token,
                    &shop.event_id,
                    &format!("o{i}"),
                    json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}]}),
                )
                .await;
            assert_eq!(status, 202, "{body}");
        }
    });
    futures::future::join_all(orders).await;
    settled(&app, &shop.event_id).await;

    let count = |status: &'static str| {
        let event_id = shop.event_id.clone();
        let app = &app;
        async move {
            app.scalar(&format!(
                "SELECT count(*) AS n FROM orders WHERE event_id = '{event_id}' AND status = '{status}'"
            ))
            .await
        }
    };
    assert_eq!(
        count("awaiting_payment").await,
        100,
        "exactly the seats there are"
    );
    assert_eq!(count("rejected").await, 400);
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) AS n FROM orders WHERE event_id = '{}' AND status = 'rejected' AND reject_reason <> 'sold_out'",
            shop.event_id
        ))
        .await,
        0
    );
    assert_eq!(app.stock(&shop.tier_id).await, (100, 0, 100));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_with_ten_redemptions_is_redeemed_ten_times() {
    let app = TestApp::builder()
        .worker_groups(2)
        .with_config(|c| c.auth.registrations_per_hour = 1_000)
        .start()
        .await;
    let shop = app.shop(1000, 2000).await;
    let (status, _) = app
        .post(
            &format!("/v1/events/{}/discounts", shop.event_id),
            json!({"code": "TEN", "percent_off": 50, "max_redemptions": 10}),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(status, 201);
    let tokens = buyers(&app, 20).await;
    let orders = (0..100).map(|i| {
        let (app, shop, token) = (&app, &shop, &tokens[i % tokens.len()]);
        async move {
            app.order(
                token,
                &shop.event_id,
                &format!("d{i}"),
                json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}], "discount_code": "ten"}),
            )
            .await
            .0
        }
    });
    let statuses = futures::future::join_all(orders).await;
    // Some may be refused at the door once the code is used up.
    assert!(
        statuses.iter().all(|s| *s == 202 || *s == 422),
        "{statuses:?}"
    );
    settled(&app, &shop.event_id).await;
    let discounted = app
        .scalar(&format!(
            "SELECT count(*) AS n FROM orders WHERE event_id = '{}' AND status = 'awaiting_payment' AND discount_minor = 1000",
            shop.event_id
        ))
        .await;
    assert_eq!(discounted, 10);
    assert_eq!(
        app.scalar("SELECT redemptions::bigint AS n FROM discount_codes WHERE code = 'TEN'")
            .await,
        10
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) AS n FROM orders WHERE event_id = '{}' AND status = 'awaiting_payment' AND discount_minor = 0",
            shop.event_id
        ))
        .await,
        0,
        "nobody got a seat without the discount they asked for"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_per_buyer_limit_holds_across_orders() {
    let app = TestApp::builder().full().start().await;
    let shop = app.shop(100, 1000).await;
    let (status, _) = app
        .patch(
            &format!("/v1/events/{}", shop.event_id),
            json!({"max_tickets_per_buyer": 2}),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(status, 200);
    let (buyer, _, _) = app.register("greedy@example.com", "attendee").await;
    let orders = (0..6).map(|i| {
        let (app, shop, buyer) = (&app, &shop, &buyer);
        async move {
            app.order(
                buyer,
                &shop.event_id,
                &format!("g{i}"),
                json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}]}),
            )
            .await
        }
    });
    futures::future::join_all(orders).await;
    settled(&app, &shop.event_id).await;
    assert_eq!(app.stock(&shop.tier_id).await.0, 2);
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM orders WHERE reject_reason = 'buyer_limit_reached'")
            .await,
        4
    );
}
