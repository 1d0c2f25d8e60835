//! Organizers' messages to their ticket holders: fanned out by the real
//! scheduler sweep, sent by the workers to the SMTP sink, followed through
//! the API.

use std::{collections::HashMap, time::Duration};

use boxoffice_scheduler::run_sweep;
use serde_json::{Value, json};

use crate::{
    harness::{TestApp, blames, eventually, shop::Shop},
    routes::refunds::{paid_order, paying_app},
};

async fn message(app: &TestApp, shop: &Shop, body: Value) -> (u16, Value) {
    app.post(
        &format!("/v1/events/{}/messages", shop.event_id),
        body,
        Some(&shop.organizer),
    )
    .await
}

/// 1,000 more holders of the order's tier, one ticket each (set-up no
/// endpoint offers fast enough: the tickets are as the purchase writes them).
async fn add_holders(app: &TestApp, order_id: &str, n: i32) {
    app.sql(&format!(
        "INSERT INTO tickets (id, order_id, order_item_id, event_id, tier_id, owner_id, code,
                              seat_index, attendee_name, attendee_email, status)
         SELECT gen_random_uuid(), t.order_id, t.order_item_id, t.event_id, t.tier_id, t.owner_id,
                'HOLDER' || g, 100 + g, 'Holder ' || g, 'holder' || g || '@example.com', 'valid'
           FROM tickets t, generate_series(1, {n}) g
          WHERE t.order_id = '{order_id}' AND t.seat_index = 0"
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_reaches_each_holder_once_and_its_progress_shows() {
    let app = paying_app().await;
    let shop = app.shop(50, 2500).await;
    let vip = app
        .create_tier(
            &shop.organizer,
            &shop.event_id,
            json!({"name": "VIP", "price_minor": 9000, "quantity": 10}),
        )
        .await;
    let vip_id = vip["id"].as_str().unwrap();
    let (_, order) = paid_order(&app, &shop, 1).await;
    add_holders(&app, order["id"].as_str().unwrap(), 1000).await;
    let (vip_buyer, _, _) = app.register("vip@example.com", "attendee").await;
    let (status, vip_order) = app
        .order(
            &vip_buyer,
            &shop.event_id,
            "v1",
            json!({"items": [{"tier_id": vip_id, "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 202, "{vip_order}");
    app.wait_order(&vip_buyer, vip_order["id"].as_str().unwrap(), "paid")
        .await;
    // One holder unsubscribed earlier: left out.
    app.sql("INSERT INTO email_suppressions (address) VALUES ('holder7@example.com')")
        .await;

    let (status, all) = message(
        &app,
        &shop,
        json!({"subject": "Doors at 19:00", "body": "Come early.\n\nBring <b>ID</b>."}),
    )
    .await;
    assert_eq!(status, 202, "{all}");
    assert_eq!(all["status"], "queued");
    let (status, vip_only) = message(
        &app,
        &shop,
        json!({"subject": "VIP lounge", "body": "Upstairs.", "tier_ids": [vip_id]}),
    )
    .await;
    assert_eq!(status, 202, "{vip_only}");

    // Two fan-outs racing (two schedulers), then more ticks: once each.
    let (a, b) = tokio::join!(
        run_sweep(&app.services, "messages"),
        run_sweep(&app.services, "messages")
    );
    let written = a.unwrap() + b.unwrap() + run_sweep(&app.services, "messages").await.unwrap();
    assert_eq!(
        written,
        1001 + 1,
        "1,001 holders (one unsubscribed), then the VIP"
    );

    let url = format!(
        "/v1/events/{}/messages/{}",
        shop.event_id,
        all["id"].as_str().unwrap()
    );
    let done = eventually(Duration::from_secs(60), || async {
        let (_, m) = app.get(&url, Some(&shop.organizer)).await;
        (m["status"] == "done")
            .then_some(m.clone())
            .ok_or(m.to_string())
    })
    .await;
    assert_eq!(done["recipients"], 1001);
    assert_eq!(done["sent"], 1001);
    assert_eq!(done["failed"], 0);

    let messages = app.smtp.messages();
    let mut per_address: HashMap<String, usize> = HashMap::new();
    for m in messages
        .iter()
        .filter(|m| m.subject() == "Night at the Opera: Doors at 19:00")
    {
        for to in &m.to {
            *per_address.entry(to.to_lowercase()).or_default() += 1;
        }
    }
    assert_eq!(per_address.len(), 1001);
    assert!(per_address.values().all(|&n| n == 1), "each exactly once");
    assert!(!per_address.contains_key("holder7@example.com"));
    let one = messages
        .iter()
        .find(|m| m.to.iter().any(|t| t == "holder1@example.com"))
        .unwrap();
    assert!(one.text().contains("Bring <b>ID</b>."), "{}", one.text());
    assert!(
        one.html().contains("Bring &lt;b&gt;ID&lt;&#x2f;b&gt;."),
        "{}",
        one.html()
    );
    assert!(
        one.parsed().header_raw("List-Unsubscribe").is_some(),
        "marketing-class email carries the one-click link"
    );

    // The tier's message went to its holder only.
    let vip_mail = app
        .smtp
        .wait_for("vip@example.com", "VIP lounge", Duration::from_secs(20))
        .await;
    assert!(vip_mail.text().contains("Upstairs."));
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.subject().contains("VIP lounge"))
            .count(),
        1
    );
    let (status, page) = app
        .get(
            &format!("/v1/events/{}/messages", shop.event_id),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["items"][0]["subject"], "VIP lounge", "newest first");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_messages_are_refused_and_nothing_is_sent() {
    let app = TestApp::spawn().await;
    let shop = app.shop(50, 2500).await;
    let other = app.shop(50, 2500).await;
    let long = "x".repeat(10_001);
    for (body, field) in [
        (json!({"subject": "", "body": "Hi"}), "subject"),
        (json!({"subject": "  ", "body": "Hi"}), "subject"),
        (
            json!({"subject": "One\r\nBcc: x@y", "body": "Hi"}),
            "subject",
        ),
        (json!({"subject": "Hi", "body": ""}), "body"),
        (json!({"subject": "Hi", "body": long}), "body"),
        (
            json!({"subject": "Hi", "body": "Hi", "tier_ids": []}),
            "tier_ids",
        ),
        (
            json!({"subject": "Hi", "body": "Hi", "tier_ids": [other.tier_id]}),
            "tier_ids",
        ),
    ] {
        let (status, problem) = message(&app, &shop, body.clone()).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert!(blames(&problem, field), "{body}: {problem}");
    }
    let (status, problem) = message(&app, &shop, json!({"subject": "Hi", "html": "<b>"})).await;
    assert_eq!(status, 422, "{problem}");

    // Someone else's event: not found; an attendee: forbidden.
    let (status, problem) = app
        .post(
            &format!("/v1/events/{}/messages", other.event_id),
            json!({"subject": "Hi", "body": "Hi"}),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(status, 404, "{problem}");
    let (attendee, _, _) = app.register("someone@example.com", "attendee").await;
    let (status, _) = app
        .post(
            &format!("/v1/events/{}/messages", shop.event_id),
            json!({"subject": "Hi", "body": "Hi"}),
            Some(&attendee),
        )
        .await;
    assert_eq!(status, 403);

    // A draft has no holders.
    let draft = app.create_event(&shop.organizer, json!({})).await;
    let (status, problem) = app
        .post(
            &format!("/v1/events/{}/messages", draft["id"].as_str().unwrap()),
            json!({"subject": "Hi", "body": "Hi"}),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "event_not_published");
    assert_eq!(app.count("event_messages").await, 0);

    // Ten an hour per organizer; the eleventh waits.
    for i in 0..10 {
        let (status, body) = message(
            &app,
            &shop,
            json!({"subject": format!("News {i}"), "body": "Hi"}),
        )
        .await;
        assert_eq!(status, 202, "{body}");
    }
    let (status, problem) =
        message(&app, &shop, json!({"subject": "One more", "body": "Hi"})).await;
    assert_eq!(status, 429, "{problem}");
    assert_eq!(app.count("event_messages").await, 10);
    // A message id of another event is not found through this one.
    let (_, page) = app
        .get(
            &format!("/v1/events/{}/messages?limit=1", shop.event_id),
            Some(&shop.organizer),
        )
        .await;
    let mid = page["items"][0]["id"].as_str().unwrap();
    assert!(page["next_cursor"].is_string());
    let (status, _) = app
        .get(
            &format!("/v1/events/{}/messages/{mid}", other.event_id),
            Some(&other.organizer),
        )
        .await;
    assert_eq!(status, 404);
}
