//! Discount codes: organizers manage them, buyers check them.

use serde_json::json;

use crate::harness::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn codes_are_managed_and_checked_case_insensitively() {
    let app = TestApp::spawn().await;
    let org = app.organizer("codes@example.com").await;
    let event = app.published_event(&org, json!({})).await;
    let id = event["id"].as_str().unwrap();
    let vip = app
        .create_tier(&org, id, json!({"name": "VIP", "price_minor": 9999}))
        .await;
    let vip_id = vip["id"].as_str().unwrap();

    let (status, code) = app
        .post(
            &format!("/v1/events/{id}/discounts"),
            json!({"code": "Early15", "percent_off": 15, "max_redemptions": 2, "per_buyer_limit": 1}),
            Some(&org),
        )
        .await;
    assert_eq!(status, 201, "{code}");
    assert_eq!(
        (code["kind"].as_str(), code["percent_off"].as_f64()),
        (Some("percentage"), Some(15.0))
    );
    assert_eq!(code["redemptions"], 0);

    // The same code in other letters is the same code.
    let (status, problem) = app
        .post(
            &format!("/v1/events/{id}/discounts"),
            json!({"code": "EARLY15", "amount_off_minor": 500}),
            Some(&org),
        )
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("code"))
    );

    // A fixed amount limited to one tier.
    let (status, fixed) = app
        .post(
            &format!("/v1/events/{id}/discounts"),
            json!({"code": "VIP-5", "amount_off_minor": 500, "tier_ids": [vip_id]}),
            Some(&org),
        )
        .await;
    assert_eq!(status, 201, "{fixed}");

    // A buyer (no account needed) checks codes and sees the prices they give.
    let (status, check) = app
        .get(&format!("/v1/events/{id}/discounts/early15"), None)
        .await;
    assert_eq!(status, 200, "{check}");
    let prices: Vec<(i64, i64)> = check["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["price_minor"].as_i64().unwrap(),
                t["discounted_price_minor"].as_i64().unwrap(),
            )
        })
        .collect();
    // 15 % off 2500 is 375; off 9999 is 1499.85, rounded half up to 1500.
    assert_eq!(prices, vec![(2500, 2125), (9999, 8499)]);
    assert!(
        check.get("redemptions").is_none(),
        "buyers do not see usage"
    );
    let (_, check) = app
        .get(&format!("/v1/events/{id}/discounts/VIP-5"), None)
        .await;
    assert_eq!(check["tiers"].as_array().unwrap().len(), 1, "{check}");
    assert_eq!(check["tiers"][0]["discounted_price_minor"], 9499);
    assert_eq!(check["tiers"][0]["display"], "EUR 94.99");

    let (status, problem) = app
        .get(&format!("/v1/events/{id}/discounts/NOPE"), None)
        .await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));

    // Used up, expired, not yet valid, switched off.
    app.sql("UPDATE discount_codes SET redemptions = 2 WHERE code = 'early15'")
        .await;
    let (status, problem) = app
        .get(&format!("/v1/events/{id}/discounts/EARLY15"), None)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("discount_exhausted"))
    );
    // ... and the cap cannot drop below what was redeemed.
    let (status, problem) = app
        .patch(
            &format!("/v1/events/{id}/discounts/early15"),
            json!({"max_redemptions": 1}),
            Some(&org),
        )
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("max_redemptions"))
    );
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (status, _) = app
        .patch(
            &format!("/v1/events/{id}/discounts/vip-5"),
            json!({"valid_until": past}),
            Some(&org),
        )
        .await;
    assert_eq!(status, 200);
    let (status, problem) = app
        .get(&format!("/v1/events/{id}/discounts/VIP-5"), None)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("discount_expired"))
    );
    let (_, _) = app
        .patch(
            &format!("/v1/events/{id}/discounts/vip-5"),
            json!({"valid_until": null, "valid_from": future}),
            Some(&org),
        )
        .await;
    let (status, problem) = app
        .get(&format!("/v1/events/{id}/discounts/VIP-5"), None)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("discount_not_started"))
    );
    let (_, off) = app
        .patch(
            &format!("/v1/events/{id}/discounts/vip-5"),
            json!({"valid_from": null, "active": false}),
            Some(&org),
        )
        .await;
    assert_eq!(off["active"], false);
    let (status, _) = app
        .get(&format!("/v1/events/{id}/discounts/VIP-5"), None)
        .await;
    assert_eq!(status, 404, "a switched-off code is unknown to buyers");

    // The organizer's list shows both with their usage.
    let (status, list) = app
        .get(&format!("/v1/events/{id}/discounts"), Some(&org))
        .await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["redemptions"], 2);

    // Another organizer sees nothing.
    let rival = app.organizer("rival-codes@example.com").await;
    let (status, _) = app
        .get(&format!("/v1/events/{id}/discounts"), Some(&rival))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .patch(
            &format!("/v1/events/{id}/discounts/early15"),
            json!({"active": false}),
            Some(&rival),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_codes_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let org = app.organizer("badcodes@example.com").await;
    let other = app.published_event(&org, json!({})).await;
    let other_tier = other["tiers"][0]["id"].as_str().unwrap().to_owned();
    let event = app.published_event(&org, json!({})).await;
    let id = event["id"].as_str().unwrap();
    let cases = [
        (json!({"code": "X", "percent_off": 10}), "code"),
        (json!({"code": "has space", "percent_off": 10}), "code"),
        (json!({"code": "OK10"}), "percent_off"),
        (json!({"code": "OK10", "percent_off": 0}), "percent_off"),
        (json!({"code": "OK10", "percent_off": 101}), "percent_off"),
        (
            json!({"code": "OK10", "percent_off": 10.555}),
            "percent_off",
        ),
        (
            json!({"code": "OK10", "amount_off_minor": -5}),
            "amount_off_minor",
        ),
        (
            json!({"code": "OK10", "percent_off": 5, "amount_off_minor": 5}),
            "amount_off_minor",
        ),
        (
            json!({"code": "OK10", "percent_off": 5, "tier_ids": [other_tier]}),
            "tier_ids",
        ),
        (
            json!({"code": "OK10", "percent_off": 5, "tier_ids": []}),
            "tier_ids",
        ),
        (
            json!({"code": "OK10", "percent_off": 5, "max_redemptions": 0}),
            "max_redemptions",
        ),
        (
            json!({"code": "OK10", "percent_off": 5, "valid_from": "2030-01-02T00:00:00Z", "valid_until": "2030-01-01T00:00:00Z"}),
            "valid_until",
        ),
        (
            json!({"code": "OK10", "percent_off": 5, "colour": "red"}),
            "colour",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = app
            .post(
                &format!("/v1/events/{id}/discounts"),
                body.clone(),
                Some(&org),
            )
            .await;
        assert_eq!(status, 422, "{body} → {problem}");
        assert!(
            crate::harness::blames(&problem, field),
            "{body} should blame {field}: {problem}"
        );
    }
    assert_eq!(app.count("discount_codes").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn code_checks_are_rate_limited() {
    let app = TestApp::spawn().await;
    let org = app.organizer("guess@example.com").await;
    let event = app.published_event(&org, json!({})).await;
    let id = event["id"].as_str().unwrap();
    let mut last = (0, serde_json::Value::Null);
    for i in 0..31 {
        last = app
            .get(&format!("/v1/events/{id}/discounts/GUESS{i}"), None)
            .await;
        if i < 30 {
            assert_eq!(last.0, 404, "{}", last.1);
        }
    }
    assert_eq!(
        (last.0, last.1["code"].as_str()),
        (429, Some("rate_limited"))
    );
}

/// Orders carrying a code draw on the code check's budget: guessing through
/// `POST /orders` stops where guessing through the check does, and the
/// right code then gets no further either.
#[tokio::test(flavor = "multi_thread")]
async fn codes_cannot_be_guessed_through_orders() {
    let app = TestApp::spawn().await;
    let org = app.organizer("guess-orders@example.com").await;
    let event = app.published_event(&org, json!({})).await;
    let id = event["id"].as_str().unwrap();
    let tier = event["tiers"][0]["id"].as_str().unwrap();
    let (status, _) = app
        .post(
            &format!("/v1/events/{id}/discounts"),
            json!({"code": "SECRET", "percent_off": 50}),
            Some(&org),
        )
        .await;
    assert_eq!(status, 201);
    let (buyer, _, _) = app.register("guesser@example.com", "attendee").await;
    let order = |n: usize, code: &str| {
        let body = json!({"items": [{"tier_id": tier, "quantity": 1}], "discount_code": code});
        let (app, buyer) = (&app, &buyer);
        async move { app.order(buyer, id, &format!("guess-{n}"), body).await }
    };
    // Half the budget spent on the check endpoint, the rest on orders.
    for n in 0..15 {
        let (status, _) = app
            .get(&format!("/v1/events/{id}/discounts/GUESS{n}"), None)
            .await;
        assert_eq!(status, 404);
    }
    for n in 0..15 {
        let (status, body) = order(n, &format!("GUESS{n}")).await;
        assert_eq!(status, 422, "{body}");
    }
    let (status, body) = order(99, "SECRET").await;
    assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")));
    assert_eq!(app.count("orders").await, 0);
}
