//! Event stats: a scenario with a discount, a partial refund and the
//! platform's fee, against figures worked out by hand and the ledger's
//! own balance.

use std::time::Duration;

use boxoffice_core::fees::PlatformFee;
use serde_json::json;

use crate::{harness::TestApp, routes::refunds::refund};

#[tokio::test(flavor = "multi_thread")]
async fn stats_match_hand_figures_and_the_ledger() {
    let app = TestApp::builder()
        .full()
        .with_config(|c| {
            c.sandbox.auto = Some((
                boxoffice_core::config::AutoOutcome::Pay,
                Duration::from_millis(20),
            ));
            c.payments.platform_fee = PlatformFee::parse("2.5", "EUR:50").unwrap();
        })
        .start()
        .await;
    let shop = app.shop(20, 2000).await;
    let (status, body) = app
        .post(
            &format!("/v1/events/{}/discounts", shop.event_id),
            json!({"code": "TEN", "percent_off": 10}),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // A: two tickets, 4000. B: one with 10 % off, 1800.
    let (buyer_a, a, _) = app.order_with_checkout(&shop, 2).await;
    app.wait_order(&buyer_a, &a, "paid").await;
    let (buyer_b, _, _) = app.register("stats-b@example.com", "attendee").await;
    let (status, b) = app
        .order(
            &buyer_b,
            &shop.event_id,
            "b1",
            json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}], "discount_code": "TEN"}),
        )
        .await;
    assert_eq!(status, 202, "{b}");
    let b = b["id"].as_str().unwrap().to_owned();
    app.wait_order(&buyer_b, &b, "paid").await;
    // 10.00 of A given back.
    let (status, body) = refund(
        &app,
        &shop.organizer,
        &a,
        Some("r1"),
        Some(json!({"amount_minor": 1000, "reason": "seat moved"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    app.wait_order(&buyer_a, &a, "partially_refunded").await;

    let url = format!("/v1/events/{}/stats", shop.event_id);
    let (status, stats) = app.get(&url, Some(&shop.organizer)).await;
    assert_eq!(status, 200, "{stats}");
    let tier = &stats["tiers"][0];
    assert_eq!(
        (
            &tier["sold"],
            &tier["held"],
            &tier["remaining"],
            &tier["gross_minor"]
        ),
        (&json!(3), &json!(0), &json!(17), &json!(6000)),
        "{stats}"
    );
    let money = &stats["money"];
    assert_eq!(money["gross_minor"], 6000);
    assert_eq!(money["discounts_minor"], 200);
    assert_eq!(money["collected_minor"], 5800);
    assert_eq!(money["refunded_minor"], 1000);
    // 2.5 % of each order's total plus 0.50 a ticket: 100 + 100 and 45 + 50.
    assert_eq!(money["fees_minor"], 295, "{money}");
    assert_eq!(money["net_minor"], 5800 - 1000 - 295);
    assert_eq!(stats["orders"], json!({"paid": 1, "partially_refunded": 1}));
    let sales = stats["sales"].as_array().unwrap();
    assert_eq!(sales.len(), 1, "{stats}");
    assert_eq!(
        (
            &sales[0]["orders"],
            &sales[0]["tickets"],
            &sales[0]["amount_minor"]
        ),
        (&json!(2), &json!(3), &json!(5800))
    );

    // The organizer's balance, summed from the ledger by payouts, agrees.
    let (_, balance) = app
        .get("/v1/organizer/balance", Some(&shop.organizer))
        .await;
    let currency = &balance["currencies"][0];
    let owed =
        currency["payable_minor"].as_i64().unwrap() + currency["pending_minor"].as_i64().unwrap();
    assert_eq!(json!(owed), money["net_minor"], "{balance}");

    // Across the organizer's events, and platform-wide for admins.
    let (status, mine) = app.get("/v1/organizer/stats", Some(&shop.organizer)).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["events"].as_array().unwrap().len(), 1);
    assert_eq!(mine["events"][0]["net_minor"], money["net_minor"]);
    assert_eq!(mine["totals"][0]["sold"], 3);
    assert_eq!(mine["totals"][0]["collected_minor"], 5800);
    let admin = app.admin().await;
    let (status, platform) = app.get("/v1/admin/stats", Some(&admin)).await;
    assert_eq!(status, 200, "{platform}");
    assert_eq!(platform["orders"]["paid"], 1);
    let revenue = &platform["revenue"][0];
    assert_eq!(
        (
            &revenue["collected_minor"],
            &revenue["refunded_minor"],
            &revenue["fees_minor"]
        ),
        (&json!(5800), &json!(1000), &json!(295))
    );
    let rate = revenue["refund_rate"].as_f64().unwrap();
    assert!((rate - 1000.0 / 5800.0).abs() < 1e-9, "{rate}");
    assert!(
        platform["queues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["queue"] == "purchases"),
        "{platform}"
    );
    let (status, _) = app.get("/v1/admin/stats", Some(&shop.organizer)).await;
    assert_eq!(status, 403);
    let (status, _) = app
        .get(
            &format!(
                "/v1/organizer/stats?organizer_id={}",
                uuid_of(&app, &admin).await
            ),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(status, 403, "only admins read another organizer's");

    let (status, hourly) = app
        .get(&format!("{url}?interval=hour"), Some(&shop.organizer))
        .await;
    assert_eq!(status, 200);
    assert!(
        hourly["sales"][0]["starts"]
            .as_str()
            .unwrap()
            .ends_with(":00:00")
    );
    let (status, problem) = app
        .get(&format!("{url}?interval=week"), Some(&shop.organizer))
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("interval"))
    );
    let stranger = app.organizer("stats-stranger@example.com").await;
    let (status, _) = app.get(&url, Some(&stranger)).await;
    assert_eq!(status, 404);
    let (status, _) = app.get(&url, Some(&buyer_b)).await;
    assert_eq!(status, 403);
}

/// The user id behind a token.
async fn uuid_of(app: &TestApp, token: &str) -> String {
    let (_, me) = app.get("/v1/auth/me", Some(token)).await;
    me["id"].as_str().unwrap().to_owned()
}
