//! Events: organizers create, edit, publish and delete; others cannot.

use serde_json::json;

use crate::harness::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn organizer_creates_edits_and_publishes() {
    let app = TestApp::spawn().await;
    let org = app.organizer("olu@example.com").await;

    let event = app.create_event(&org, json!({"capacity": 500})).await;
    let id = event["id"].as_str().unwrap();
    assert_eq!(event["status"], "draft");
    assert_eq!(event["currency"], "EUR");
    assert_eq!(event["country"], "FR");
    assert_eq!(event["tiers"], json!([]));

    // A draft is invisible to the public and to search.
    let (status, _) = app.get(&format!("/v1/events/{id}"), None).await;
    assert_eq!(status, 404);
    let (_, list) = app.get("/v1/events", None).await;
    assert_eq!(list["items"], json!([]));

    // Publishing needs a tier.
    let (status, problem) = app
        .post(&format!("/v1/events/{id}/publish"), json!({}), Some(&org))
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("event_has_no_tiers"))
    );

    // A partial PATCH keeps the rest; null clears an optional field.
    let (status, edited) = app
        .patch(
            &format!("/v1/events/{id}"),
            json!({"title": "  Night at the Ballet ", "latitude": null, "longitude": null, "currency": "usd"}),
            Some(&org),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["title"], "Night at the Ballet");
    assert_eq!(edited["latitude"], json!(null));
    assert_eq!(edited["currency"], "USD");
    assert_eq!(edited["venue_name"], "Palais Garnier");
    assert_eq!(edited["capacity"], 500);

    let tier = app
        .create_tier(&org, id, json!({"price_minor": 4200}))
        .await;
    assert_eq!(tier["currency"], "USD", "tiers take the event's currency");
    assert_eq!(tier["remaining"], 100);

    let (status, published) = app
        .post(&format!("/v1/events/{id}/publish"), json!({}), Some(&org))
        .await;
    assert_eq!(status, 200, "{published}");
    assert_eq!(published["status"], "published");
    assert!(published["published_at"].is_string());
    // Publishing twice is harmless.
    let (status, again) = app
        .post(&format!("/v1/events/{id}/publish"), json!({}), Some(&org))
        .await;
    assert_eq!(
        (status, &again["published_at"]),
        (200, &published["published_at"])
    );

    // Now public, with its tier and lowest price.
    let (status, public) = app.get(&format!("/v1/events/{id}"), None).await;
    assert_eq!(status, 200, "{public}");
    assert_eq!(public["title"], "Night at the Ballet");
    assert_eq!(public["min_price_minor"], 4200);
    assert_eq!(public["available"], true);
    assert_eq!(public["tiers"][0]["remaining"], 100);
    assert!(
        public["tiers"][0].get("held").is_none(),
        "stock internals are for managers"
    );

    // Changing the currency is refused once anyone has ordered.
    app.sql(
        "INSERT INTO users (id, email, password_hash, display_name)
         VALUES ('00000000-0000-7000-8000-0000000000b1', 'b@x.io', 'x', 'B')",
    )
    .await;
    app.sql(&format!(
        "INSERT INTO orders (id, event_id, buyer_id, idempotency_key, request_hash, currency)
         VALUES (gen_random_uuid(), '{id}', '00000000-0000-7000-8000-0000000000b1', 'k', '\\x00', 'USD')"
    ))
    .await;
    let (status, problem) = app
        .patch(
            &format!("/v1/events/{id}"),
            json!({"currency": "EUR"}),
            Some(&org),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("currency_locked"))
    );

    // A published event is not deleted: DELETE cancels it (its buyers are
    // refunded), and it stays on record.
    let (status, cancelled) = app.delete(&format!("/v1/events/{id}"), Some(&org)).await;
    assert_eq!(status, 202, "{cancelled}");
    assert_eq!(app.count("events").await, 1);
    let (_, page) = app.get(&format!("/v1/events/{id}"), Some(&org)).await;
    assert_eq!(page["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_owner_or_an_admin_manages_an_event() {
    let app = TestApp::spawn().await;
    let owner = app.organizer("owner@example.com").await;
    let rival = app.organizer("rival@example.com").await;
    let (attendee, _, _) = app.register("ann@example.com", "attendee").await;
    let admin = app.admin().await;
    let event = app.create_event(&owner, json!({})).await;
    let id = event["id"].as_str().unwrap();

    // Attendees may not create events at all.
    let (status, problem) = app
        .post("/v1/events", json!({"title": "Mine"}), Some(&attendee))
        .await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("forbidden")));

    // Another organizer cannot see the draft, nor edit, publish, delete it, or
    // add tiers: every answer is 404, exactly as for an id that does not exist.
    let (missing_status, missing) = app
        .get(
            "/v1/events/00000000-0000-7000-8000-000000000000",
            Some(&rival),
        )
        .await;
    assert_eq!(missing_status, 404);
    for (status, problem) in [
        app.get(&format!("/v1/events/{id}"), Some(&rival)).await,
        app.patch(
            &format!("/v1/events/{id}"),
            json!({"title": "Hijacked"}),
            Some(&rival),
        )
        .await,
        app.post(&format!("/v1/events/{id}/publish"), json!({}), Some(&rival))
            .await,
        app.delete(&format!("/v1/events/{id}"), Some(&rival)).await,
        app.post(
            &format!("/v1/events/{id}/tiers"),
            json!({"name": "X", "price_minor": 1, "quantity": 1}),
            Some(&rival),
        )
        .await,
    ] {
        assert_eq!(
            (status, &problem["code"]),
            (404, &missing["code"]),
            "{problem}"
        );
    }
    // Attendees get 403 on management endpoints (they have no events).
    let (status, _) = app
        .patch(
            &format!("/v1/events/{id}"),
            json!({"title": "Nope"}),
            Some(&attendee),
        )
        .await;
    assert_eq!(status, 403);
    // Not signed in: 401.
    let (status, _) = app
        .patch(&format!("/v1/events/{id}"), json!({"title": "Nope"}), None)
        .await;
    assert_eq!(status, 401);

    let (_, still) = app.get(&format!("/v1/events/{id}"), Some(&owner)).await;
    assert_eq!(still["title"], "Night at the Opera");

    // The rival's own list does not show it; the owner's does; an admin's too.
    let (_, rival_list) = app.get("/v1/organizer/events", Some(&rival)).await;
    assert_eq!(rival_list["items"], json!([]));
    let (_, owner_list) = app.get("/v1/organizer/events", Some(&owner)).await;
    assert_eq!(owner_list["items"][0]["id"], id);
    let (status, _) = app.get("/v1/organizer/events", Some(&attendee)).await;
    assert_eq!(status, 403);

    // An admin may edit anyone's event.
    let (status, edited) = app
        .patch(
            &format!("/v1/events/{id}"),
            json!({"title": "Fixed by admin"}),
            Some(&admin),
        )
        .await;
    assert_eq!(
        (status, edited["title"].as_str()),
        (200, Some("Fixed by admin"))
    );
    let (_, admin_list) = app.get("/v1/organizer/events", Some(&admin)).await;
    assert_eq!(admin_list["items"][0]["id"], id);

    // The owner deletes the draft; it is gone for everyone.
    let (status, _) = app.delete(&format!("/v1/events/{id}"), Some(&owner)).await;
    assert_eq!(status, 204);
    let (status, _) = app.get(&format!("/v1/events/{id}"), Some(&owner)).await;
    assert_eq!(status, 404);
    assert_eq!(app.count("events").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn organizer_list_pages_through_every_status() {
    let app = TestApp::spawn().await;
    let org = app.organizer("many@example.com").await;
    let mut made = Vec::new();
    for i in 0..5 {
        let e = app
            .create_event(&org, json!({"title": format!("Show {i}")}))
            .await;
        made.push(e["id"].as_str().unwrap().to_owned());
    }
    app.create_tier(&org, &made[0], json!({})).await;
    app.post(
        &format!("/v1/events/{}/publish", made[0]),
        json!({}),
        Some(&org),
    )
    .await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/organizer/events?limit=2&cursor={c}"),
            None => "/v1/organizer/events?limit=2".into(),
        };
        let (status, page) = app.get(&path, Some(&org)).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    made.reverse();
    assert_eq!(seen, made, "newest first, each once");

    let (_, drafts) = app
        .get("/v1/organizer/events?status=draft", Some(&org))
        .await;
    assert_eq!(drafts["items"].as_array().unwrap().len(), 4);
    let (status, problem) = app
        .get("/v1/organizer/events?status=nope", Some(&org))
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("status"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_events_cannot_change() {
    let app = TestApp::spawn().await;
    let org = app.organizer("closed@example.com").await;
    let event = app.published_event(&org, json!({})).await;
    let id = event["id"].as_str().unwrap();
    app.sql(&format!(
        "UPDATE events SET status = 'cancelled', cancelled_at = now() WHERE id = '{id}'"
    ))
    .await;
    let (status, problem) = app
        .patch(
            &format!("/v1/events/{id}"),
            json!({"title": "Revived"}),
            Some(&org),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("event_closed"))
    );
    let (status, _) = app
        .post(
            &format!("/v1/events/{id}/tiers"),
            json!({"name": "Late", "price_minor": 1, "quantity": 1}),
            Some(&org),
        )
        .await;
    assert_eq!(status, 409);
    // Still visible (ticket holders must see it is cancelled), not searchable.
    let (status, public) = app.get(&format!("/v1/events/{id}"), None).await;
    assert_eq!(
        (status, public["status"].as_str()),
        (200, Some("cancelled"))
    );
    let (_, list) = app.get("/v1/events", None).await;
    assert_eq!(list["items"], json!([]));
}
