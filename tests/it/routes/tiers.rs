//! Ticket tiers: stock rules, capacity, hidden tiers.

use serde_json::json;

use crate::harness::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn quantity_never_drops_below_held_plus_sold() {
    let app = TestApp::spawn().await;
    let org = app.organizer("stock@example.com").await;
    let event = app.create_event(&org, json!({})).await;
    let id = event["id"].as_str().unwrap();
    let tier = app
        .create_tier(&org, id, json!({"quantity": 50, "low_stock_threshold": 5}))
        .await;
    let tier_id = tier["id"].as_str().unwrap();
    assert_eq!(
        (
            tier["remaining"].as_i64(),
            tier["held"].as_i64(),
            tier["sold"].as_i64()
        ),
        (Some(50), Some(0), Some(0))
    );
    assert_eq!(tier["sale_state"], "on_sale");

    // 30 reserved, 12 sold (what the purchase pipeline does).
    app.sql(&format!(
        "UPDATE tier_stock SET held = 30, sold = 12 WHERE tier_id = '{tier_id}'"
    ))
    .await;
    let path = format!("/v1/events/{id}/tiers/{tier_id}");
    let (status, problem) = app.patch(&path, json!({"quantity": 41}), Some(&org)).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "quantity");
    let (status, tier) = app.patch(&path, json!({"quantity": 45}), Some(&org)).await;
    assert_eq!(status, 200, "{tier}");
    assert_eq!(tier["remaining"], 3);
    assert_eq!(
        tier["low_stock"], true,
        "3 left is under the threshold of 5"
    );

    // A tier with sales cannot be deleted; hiding it works.
    let (status, problem) = app.delete(&path, Some(&org)).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("tier_has_sales"))
    );
    let (status, hidden) = app
        .patch(
            &path,
            json!({"hidden": true, "unlock_code": "INSIDERS"}),
            Some(&org),
        )
        .await;
    assert_eq!((status, hidden["hidden"].as_bool()), (200, Some(true)));

    // An unsold tier can be deleted.
    let spare = app.create_tier(&org, id, json!({"name": "Spare"})).await;
    let (status, _) = app
        .delete(
            &format!("/v1/events/{id}/tiers/{}", spare["id"].as_str().unwrap()),
            Some(&org),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(app.count("ticket_tiers").await, 1);

    // Sold out and sales windows show in the state.
    app.sql(&format!(
        "UPDATE tier_stock SET held = 0, sold = 45 WHERE tier_id = '{tier_id}'"
    ))
    .await;
    let (_, managed) = app.get(&format!("/v1/events/{id}"), Some(&org)).await;
    assert_eq!(managed["tiers"][0]["sale_state"], "sold_out");
    let later = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let soon = app
        .create_tier(&org, id, json!({"name": "Later", "sales_start_at": later}))
        .await;
    assert_eq!(soon["sale_state"], "not_started");
}

#[tokio::test(flavor = "multi_thread")]
async fn tiers_respect_the_event_capacity() {
    let app = TestApp::spawn().await;
    let org = app.organizer("cap@example.com").await;
    let event = app.create_event(&org, json!({"capacity": 100})).await;
    let id = event["id"].as_str().unwrap();
    let a = app.create_tier(&org, id, json!({"quantity": 60})).await;
    let (status, problem) = app
        .post(
            &format!("/v1/events/{id}/tiers"),
            json!({"name": "B", "price_minor": 100, "quantity": 41}),
            Some(&org),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "quantity");
    app.create_tier(&org, id, json!({"name": "B", "quantity": 40}))
        .await;
    // Growing a tier counts the others.
    let (status, _) = app
        .patch(
            &format!("/v1/events/{id}/tiers/{}", a["id"].as_str().unwrap()),
            json!({"quantity": 61}),
            Some(&org),
        )
        .await;
    assert_eq!(status, 422);
    // Nor can the capacity shrink below the tiers' total.
    let (status, problem) = app
        .patch(
            &format!("/v1/events/{id}"),
            json!({"capacity": 99}),
            Some(&org),
        )
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("capacity"))
    );
    let (status, _) = app
        .patch(
            &format!("/v1/events/{id}"),
            json!({"capacity": null}),
            Some(&org),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_tier_creation_never_exceeds_capacity() {
    let app = TestApp::spawn().await;
    let org = app.organizer("race@example.com").await;
    let event = app.create_event(&org, json!({"capacity": 100})).await;
    let id = event["id"].as_str().unwrap().to_owned();
    // Ten tiers of 30 at once: only three fit.
    let attempts = (0..10).map(|i| {
        let (app, org, id) = (&app, &org, &id);
        async move {
            app.post(
                &format!("/v1/events/{id}/tiers"),
                json!({"name": format!("T{i}"), "price_minor": 100, "quantity": 30}),
                Some(org),
            )
            .await
            .0
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 422).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(app.count("ticket_tiers").await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn hidden_tiers_show_only_with_their_unlock_code() {
    let app = TestApp::spawn().await;
    let org = app.organizer("presale@example.com").await;
    let event = app.published_event(&org, json!({})).await;
    let id = event["id"].as_str().unwrap();
    app.create_tier(
        &org,
        id,
        json!({"name": "Fan presale", "price_minor": 1500, "hidden": true, "unlock_code": "FanClub"}),
    )
    .await;

    let (_, public) = app.get(&format!("/v1/events/{id}"), None).await;
    assert_eq!(public["tiers"].as_array().unwrap().len(), 1);
    assert_eq!(
        public["min_price_minor"], 2500,
        "hidden prices are not advertised"
    );
    let (_, wrong) = app
        .get(&format!("/v1/events/{id}?unlock_code=guess"), None)
        .await;
    assert_eq!(wrong["tiers"].as_array().unwrap().len(), 1);
    let (_, unlocked) = app
        .get(&format!("/v1/events/{id}?unlock_code=fanclub"), None)
        .await;
    let names: Vec<&str> = unlocked["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"Fan presale"));
    assert!(
        unlocked["tiers"][0].get("unlock_code").is_none(),
        "the code itself is never shown publicly"
    );

    // A hidden tier without a code could never be bought.
    let (status, problem) = app
        .post(
            &format!("/v1/events/{id}/tiers"),
            json!({"name": "Ghost", "price_minor": 1, "quantity": 1, "hidden": true}),
            Some(&org),
        )
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("unlock_code"))
    );
}
