//! Live streams (SSE through Redis pub/sub) and recovery of orders whose job
//! never made it onto the queue.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::harness::{TestApp, eventually, proxy::Proxy};

/// Reads SSE `data:` lines until `until` matches one; returns all seen.
async fn read_until(response: reqwest::Response, until: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut buffer = String::new();
    let mut body = response.bytes_stream();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while let Ok(Some(chunk)) = tokio::time::timeout_at(deadline, body.next()).await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            for line in frame.lines() {
                if let Some(data) = line.strip_prefix("data: ")
                    && let Ok(value) = serde_json::from_str::<Value>(data)
                {
                    let done = until(&value);
                    seen.push(value);
                    if done {
                        return seen;
                    }
                }
            }
        }
    }
    panic!("stream ended without the awaited message; saw {seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_order_stream_shows_every_status_change() {
    let app = TestApp::builder()
        .full()
        .with_config(|c| {
            c.sandbox.auto = Some((
                boxoffice_core::config::AutoOutcome::Pay,
                Duration::from_millis(300),
            ))
        })
        .start()
        .await;
    let shop = app.shop(10, 1200).await;
    let (buyer, _, _) = app.register("live@example.com", "attendee").await;
    // Watch the event page too: availability moves, and we are one viewer.
    let event_stream = app
        .client
        .get(app.url(&format!("/v1/events/{}/live", shop.event_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(event_stream.headers()["content-type"], "text/event-stream");

    let (_, order) = app
        .order(
            &buyer,
            &shop.event_id,
            "live",
            json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}]}),
        )
        .await;
    let id = order["id"].as_str().unwrap();
    let stream = app
        .client
        .get(app.url(&format!("/v1/orders/{id}/live")))
        .bearer_auth(&buyer)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    // The sandbox auto-pays: pending/awaiting → paid, streamed as it happens.
    let seen = read_until(stream, |m| m["status"] == "paid").await;
    assert_eq!(seen.first().unwrap()["type"], "order.status");
    assert_eq!(seen.last().unwrap()["status"], "paid");

    let events = read_until(event_stream, |m| {
        m["type"] == "availability" && m["tiers"][0]["remaining"] == 9
    })
    .await;
    assert!(
        events
            .iter()
            .any(|m| m["type"] == "viewers" && m["count"] == 1),
        "{events:?}"
    );

    // Someone else cannot watch this order.
    let (other, _, _) = app.register("peek@example.com", "attendee").await;
    let (status, _) = app
        .get(&format!("/v1/orders/{id}/live"), Some(&other))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_new_events_feed_announces_publications() {
    let app = TestApp::spawn().await;
    let feed = app
        .client
        .get(app.url("/v1/events/live"))
        .send()
        .await
        .unwrap();
    let org = app.organizer("feed@example.com").await;
    let event = app
        .published_event(&org, json!({"title": "Fresh Show"}))
        .await;
    let seen = read_until(feed, |m| m["type"] == "event.published").await;
    assert_eq!(seen.last().unwrap()["event_id"], event["id"]);
    assert_eq!(seen.last().unwrap()["title"], "Fresh Show");
}

/// Subscribers of `channel` in Redis (any process).
async fn subscribers(app: &TestApp, channel: &str) -> i64 {
    let mut redis = app.services.queues.connection();
    let (_, n): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut redis)
        .await
        .unwrap();
    n
}

/// The API subscribes to a channel while a client follows it, and only
/// then: what nobody watches is sent to no API process.
#[tokio::test(flavor = "multi_thread")]
async fn the_hub_subscribes_only_to_what_its_clients_follow() {
    let app = TestApp::spawn().await;
    let live = &app.services.live;
    let channel = live.feed_channel();
    assert_eq!(subscribers(&app, &channel).await, 0);

    let follow = || app.client.get(app.url("/v1/events/live")).send();
    // The stream answers once its subscription is confirmed.
    let feed = follow().await.unwrap();
    assert_eq!(feed.status(), 200);
    assert_eq!(subscribers(&app, &channel).await, 1);
    let other = follow().await.unwrap();
    assert_eq!(subscribers(&app, &channel).await, 1, "one per process");

    // Both clients leave; the next messages find nobody and the API lets
    // the channel go.
    drop((feed, other));
    eventually(Duration::from_secs(10), || async {
        live.publish(&channel, &json!({"type": "ping"})).await;
        match subscribers(&app, &channel).await {
            0 => Ok(()),
            n => Err(format!("{n} subscribers")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_placed_while_redis_is_down_is_not_lost() {
    let proxy = Proxy::to_redis().await;
    let port = proxy.port;
    let app = TestApp::builder()
        .full()
        .with_config(move |c| {
            c.redis.url = format!("redis://127.0.0.1:{port}");
            c.orders.recovery_grace = Duration::ZERO;
        })
        .start()
        .await;
    let shop = app.shop(5, 1000).await;
    let (buyer, _, _) = app.register("outage@example.com", "attendee").await;

    proxy.down();
    let body = json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}]});
    // Written, so taken: 202, pending, for the sweep to enqueue.
    let (status, order) = app
        .order(&buyer, &shop.event_id, "during-outage", body.clone())
        .await;
    assert_eq!((status, order["status"].as_str()), (202, Some("pending")));
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM orders WHERE status = 'pending'")
            .await,
        1
    );
    proxy.up();

    // The sweep finds it and the workers decide it, with no client retry.
    eventually(Duration::from_secs(20), || async {
        boxoffice_scheduler::run_sweep(&app.services, "stuck_orders")
            .await
            .map_err(|e| e.to_string())?;
        let n = app
            .scalar("SELECT count(*) AS n FROM orders WHERE status = 'awaiting_payment'")
            .await;
        if n == 1 {
            Ok(())
        } else {
            Err(format!("{n} reserved"))
        }
    })
    .await;
    // A client retry with the same key gets that same order.
    let (status, again) = app
        .order(&buyer, &shop.event_id, "during-outage", body)
        .await;
    assert_eq!(status, 202);
    assert_eq!(again["status"], "awaiting_payment");
    assert_eq!(app.count("orders").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn refunds_appear_on_the_order_stream() {
    let app = crate::routes::refunds::paying_app().await;
    let shop = app.shop(10, 1200).await;
    let (buyer, order) = crate::routes::refunds::paid_order(&app, &shop, 1).await;
    let id = order["id"].as_str().unwrap();
    let stream = app
        .client
        .get(app.url(&format!("/v1/orders/{id}/live")))
        .bearer_auth(&buyer)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let (status, asked) =
        crate::routes::refunds::refund(&app, &shop.organizer, id, Some("live"), None).await;
    assert_eq!(status, 202, "{asked}");
    // Requested, then succeeded, then the order refunded: as they happen.
    let seen = read_until(stream, |m| {
        m["type"] == "order.status" && m["status"] == "refunded"
    })
    .await;
    let refund_states: Vec<&str> = seen
        .iter()
        .filter(|m| m["type"] == "order.refund")
        .filter_map(|m| m["status"].as_str())
        .collect();
    assert!(refund_states.contains(&"succeeded"), "{seen:?}");
    assert!(
        seen.iter().any(|m| m["type"] == "order.refund"
            && m["refund_id"] == asked["id"]
            && m["amount_minor"] == 1200),
        "{seen:?}"
    );
}

/// A process asked to stop ends its live streams itself (clients reconnect,
/// to another replica): the graceful shutdown does not wait for the last
/// watcher to leave.
#[tokio::test(flavor = "multi_thread")]
async fn shutdown_ends_live_streams_at_once() {
    let app = TestApp::spawn().await;
    let shop = app.shop(5, 1000).await;
    // An API of its own, to stop while the test's app runs on.
    let (stop, rx) = tokio::sync::watch::channel(false);
    let (addr, server) = boxoffice_api::bind(app.services.clone(), rx).await.unwrap();
    let server = tokio::spawn(server);
    let stream = app
        .client
        .get(format!("http://{addr}/v1/events/{}/live", shop.event_id))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    stop.send(true).unwrap();
    let body = tokio::time::timeout(Duration::from_secs(5), stream.text())
        .await
        .expect("the stream ends with the shutdown")
        .unwrap();
    assert!(body.contains("event: availability"), "{body}");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops with a stream open")
        .unwrap()
        .unwrap();
}
