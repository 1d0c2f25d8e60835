//! `GET /v1/events/{id}` and its Redis cache: hits, exact invalidation on
//! every change to the event, its tiers or its stock, and the TTL as the
//! backstop when an invalidation is lost.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{TestApp, eventually};

/// (x-cache header, body)
async fn page(app: &TestApp, id: &str) -> (String, Value) {
    let response = app
        .client
        .get(app.url(&format!("/v1/events/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cache = response.headers()["x-cache"].to_str().unwrap().to_owned();
    (cache, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_change_invalidates_the_cached_page() {
    // A long TTL: anything fresh below comes from invalidation, not expiry.
    let app = TestApp::builder()
        .with_config(|c| c.catalog.event_cache_ttl = Duration::from_secs(600))
        .start()
        .await;
    let org = app.organizer("cache@example.com").await;
    let event = app.published_event(&org, json!({})).await;
    let id = event["id"].as_str().unwrap();
    let tier_id = event["tiers"][0]["id"].as_str().unwrap();

    let (first, body) = page(&app, id).await;
    assert_eq!(first, "miss");
    let (second, cached) = page(&app, id).await;
    assert_eq!((second.as_str(), &cached), ("hit", &body));

    // Signed-in buyers share the cached page; its managers never get it.
    let (buyer, _, _) = app.register("buyer@example.com", "attendee").await;
    let as_buyer = app
        .client
        .get(app.url(&format!("/v1/events/{id}")))
        .bearer_auth(&buyer)
        .send()
        .await
        .unwrap();
    assert_eq!(as_buyer.headers()["x-cache"], "hit");
    let as_owner = app
        .client
        .get(app.url(&format!("/v1/events/{id}")))
        .bearer_auth(&org)
        .send()
        .await
        .unwrap();
    assert!(as_owner.headers().get("x-cache").is_none());
    let managed: Value = as_owner.json().await.unwrap();
    assert_eq!(managed["tiers"][0]["held"], 0, "the manager view");

    // The event itself.
    app.patch(
        &format!("/v1/events/{id}"),
        json!({"title": "Renamed"}),
        Some(&org),
    )
    .await;
    let (state, body) = page(&app, id).await;
    assert_eq!(
        (state.as_str(), body["title"].as_str()),
        ("miss", Some("Renamed"))
    );
    assert_eq!(page(&app, id).await.0, "hit");

    // A tier edit.
    app.patch(
        &format!("/v1/events/{id}/tiers/{tier_id}"),
        json!({"price_minor": 3100}),
        Some(&org),
    )
    .await;
    let (state, body) = page(&app, id).await;
    assert_eq!(
        (state.as_str(), body["tiers"][0]["price_minor"].as_i64()),
        ("miss", Some(3100))
    );
    assert_eq!(body["min_price_minor"], 3100);

    // A new tier.
    app.create_tier(&org, id, json!({"name": "Balcony", "price_minor": 900}))
        .await;
    let (_, body) = page(&app, id).await;
    assert_eq!(body["tiers"].as_array().unwrap().len(), 2);
    assert_eq!(body["min_price_minor"], 900);

    // A stock change, as the purchase workers make it: commit, then invalidate.
    page(&app, id).await;
    app.sql(&format!(
        "UPDATE tier_stock SET held = 7 WHERE tier_id = '{tier_id}'"
    ))
    .await;
    app.services
        .event_cache
        .invalidate(uuid::Uuid::parse_str(id).unwrap())
        .await
        .unwrap();
    let (state, body) = page(&app, id).await;
    let tier = body["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == tier_id)
        .unwrap()
        .clone();
    assert_eq!(
        (state.as_str(), tier["remaining"].as_i64()),
        ("miss", Some(93))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_invalidation_is_bounded_by_the_ttl() {
    let app = TestApp::builder()
        .with_config(|c| c.catalog.event_cache_ttl = Duration::from_millis(1500))
        .start()
        .await;
    let org = app.organizer("ttl@example.com").await;
    let event = app.published_event(&org, json!({})).await;
    let id = event["id"].as_str().unwrap();
    let tier_id = event["tiers"][0]["id"].as_str().unwrap();
    page(&app, id).await;
    // Stock moves with no invalidation at all (say Redis blinked after commit).
    app.sql(&format!(
        "UPDATE tier_stock SET sold = 40 WHERE tier_id = '{tier_id}'"
    ))
    .await;
    let (state, stale) = page(&app, id).await;
    assert_eq!(
        (state.as_str(), stale["tiers"][0]["remaining"].as_i64()),
        ("hit", Some(100))
    );
    let started = std::time::Instant::now();
    eventually(Duration::from_secs(5), || async {
        let (_, body) = page(&app, id).await;
        match body["tiers"][0]["remaining"].as_i64() {
            Some(60) => Ok(()),
            other => Err(format!("remaining {other:?}")),
        }
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "stale for {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_reader_cannot_put_a_stale_page_back() {
    let app = TestApp::builder()
        .with_config(|c| c.catalog.event_cache_ttl = Duration::from_secs(600))
        .start()
        .await;
    let org = app.organizer("race-cache@example.com").await;
    let event = app.published_event(&org, json!({})).await;
    let id = uuid::Uuid::parse_str(event["id"].as_str().unwrap()).unwrap();
    let cache = &app.services.event_cache;

    // A reader looks up the page (miss) and reads the database...
    let before = cache.get(id).await.unwrap();
    assert!(before.page.is_none());
    // ...meanwhile a writer commits and invalidates...
    cache.invalidate(id).await.unwrap();
    // ...then the reader stores what it read, now stale.
    cache
        .put(id, before.generation, "{\"stale\":true}")
        .await
        .unwrap();
    // Nobody is served it.
    let after = cache.get(id).await.unwrap();
    assert_eq!(after.page, None);
    assert_eq!(after.generation, before.generation + 1);
    let (state, body) = page(&app, &id.to_string()).await;
    assert_eq!((state.as_str(), body.get("stale")), ("miss", None));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_degrades_to_the_database_when_redis_is_down() {
    let proxy = crate::harness::proxy::Proxy::to_redis().await;
    let port = proxy.port;
    let app = TestApp::builder()
        .with_config(move |c| c.redis.url = format!("redis://127.0.0.1:{port}"))
        .start()
        .await;
    let org = app.organizer("no-redis@example.com").await;
    let event = app.published_event(&org, json!({})).await;
    let id = event["id"].as_str().unwrap();
    proxy.down();
    let response = app
        .client
        .get(app.url(&format!("/v1/events/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], id);
    proxy.up();
}
