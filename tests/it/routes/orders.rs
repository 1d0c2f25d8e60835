//! The purchase pipeline end to end: order → purchases queue → sandbox
//! checkout over HTTP → signed webhook → payments queue → tickets → email.

use std::time::Duration;

use mail_parser::MimeHeaders;
use serde_json::json;

use crate::harness::{TestApp, eventually};

#[tokio::test(flavor = "multi_thread")]
async fn happy_path_from_order_to_tickets_in_the_inbox() {
    let app = TestApp::builder().full().start().await;
    let shop = app.shop(10, 2500).await;
    let (buyer, _, _) = app.register("buyer@example.com", "attendee").await;

    let (status, placed) = app
        .order(
            &buyer,
            &shop.event_id,
            "key-1",
            json!({"items": [{"tier_id": shop.tier_id, "quantity": 2,
                    "attendees": [{"name": "Ada Guest", "email": "ada@example.com"}]}]}),
        )
        .await;
    assert_eq!(status, 202, "{placed}");
    assert_eq!(placed["status"], "pending");
    let order_id = placed["id"].as_str().unwrap().to_owned();

    // Reserved by the purchases worker, with a checkout at the provider.
    let reserved = eventually(Duration::from_secs(20), || async {
        let (_, o) = app
            .get(&format!("/v1/orders/{order_id}"), Some(&buyer))
            .await;
        if o["status"] == "awaiting_payment" && o["checkout_url"].is_string() {
            Ok(o)
        } else {
            Err(o.to_string())
        }
    })
    .await;
    assert_eq!(reserved["total_minor"], 5000);
    assert_eq!(app.stock(&shop.tier_id).await, (2, 0, 10));
    let checkout_url = reserved["checkout_url"].as_str().unwrap().to_owned();
    assert!(checkout_url.starts_with(&app.sandbox_url), "{checkout_url}");

    // The hosted page shows the amount; the buyer pays there.
    let page = app
        .client
        .get(&checkout_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("EUR 50.00"), "{page}");
    app.settle(&checkout_url, "pay").await;

    let paid = app.wait_order(&buyer, &order_id, "paid").await;
    assert!(
        app.sandbox.delivered_webhooks() >= 1,
        "the payment came by signed webhook"
    );
    assert!(paid["paid_at"].is_string());
    assert_eq!(app.stock(&shop.tier_id).await, (0, 2, 10));

    // Two tickets, the first in the named attendee's name, the second in the buyer's.
    let (_, tickets) = app.get("/v1/users/me/tickets", Some(&buyer)).await;
    let tickets = tickets["items"].as_array().unwrap().clone();
    assert_eq!(tickets.len(), 2);
    let names: Vec<&str> = tickets
        .iter()
        .map(|t| t["attendee_name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Ada Guest") && names.contains(&"Test User"),
        "{names:?}"
    );
    assert_ne!(tickets[0]["code"], tickets[1]["code"]);
    let qr = app
        .client
        .get(app.url(tickets[0]["qr_url"].as_str().unwrap()))
        .bearer_auth(&buyer)
        .send()
        .await
        .unwrap();
    assert_eq!(qr.headers()["content-type"], "image/png");
    assert_eq!(&qr.bytes().await.unwrap()[..4], b"\x89PNG");
    // Someone else's ticket is not found.
    let (other, _, _) = app.register("nosy@example.com", "attendee").await;
    let ticket_id = tickets[0]["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/tickets/{ticket_id}"), Some(&other))
            .await
            .0,
        404
    );
    assert_eq!(
        app.get(&format!("/v1/orders/{order_id}"), Some(&other))
            .await
            .0,
        404
    );
    // The order's own tickets: the same two, for the buyer only.
    let (status, of_order) = app
        .get(&format!("/v1/orders/{order_id}/tickets"), Some(&buyer))
        .await;
    assert_eq!(status, 200);
    let mut ids: Vec<&str> = of_order
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    let mut mine: Vec<&str> = tickets.iter().map(|t| t["id"].as_str().unwrap()).collect();
    ids.sort();
    mine.sort();
    assert_eq!(ids, mine);
    let (status, problem) = app
        .get(&format!("/v1/orders/{order_id}/tickets"), Some(&other))
        .await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
    // "Add to calendar": the published event as iCalendar, for anyone.
    let ics = app
        .client
        .get(app.url(&format!("/v1/events/{}/calendar.ics", shop.event_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(ics.status(), 200);
    assert!(
        ics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/calendar")
    );
    let ics = ics.text().await.unwrap();
    assert!(
        ics.starts_with("BEGIN:VCALENDAR\r\n")
            && ics.contains(&format!("UID:{}@boxoffice", shop.event_id)),
        "{ics}"
    );

    // The confirmation email: QR codes inline, an .ics invite attached.
    let mail = app
        .smtp
        .wait_for("buyer@example.com", "Your tickets", Duration::from_secs(20))
        .await;
    let parsed = mail.parsed();
    let parts: Vec<(String, Vec<u8>)> = parsed
        .attachments()
        .map(|a| {
            (
                a.content_type()
                    .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()))
                    .unwrap_or_default(),
                a.contents().to_vec(),
            )
        })
        .collect();
    let pngs = parts
        .iter()
        .filter(|(t, b)| t == "image/png" && b.starts_with(b"\x89PNG"))
        .count();
    assert_eq!(
        pngs,
        2,
        "one QR per ticket: {:?}",
        parts.iter().map(|p| &p.0).collect::<Vec<_>>()
    );
    let ics = parts
        .iter()
        .find(|(t, _)| t == "text/calendar")
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .expect("an .ics attachment");
    assert!(
        ics.contains("BEGIN:VEVENT") && ics.contains("SUMMARY:Night at the Opera"),
        "{ics}"
    );
    assert!(mail.html().contains("cid:ticket-1"));
    assert!(
        mail.text().contains(tickets[0]["code"].as_str().unwrap())
            || mail.text().contains(tickets[1]["code"].as_str().unwrap())
    );

    // Money: one payment, a balanced ledger.
    assert_eq!(app.count("payments").await, 1);
    assert_eq!(
        app.scalar("SELECT coalesce(sum(amount_minor), 0)::bigint AS n FROM ledger_entries")
            .await,
        0
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM ledger_entries").await,
        2
    );
    // The public page shows the new stock.
    let (_, page) = app
        .get(&format!("/v1/events/{}", shop.event_id), None)
        .await;
    assert_eq!(page["tiers"][0]["remaining"], 8);
    // The buyer's order list has it.
    let (_, mine) = app.get("/v1/users/me/orders", Some(&buyer)).await;
    assert_eq!(mine["items"][0]["id"], order_id.as_str());
    // Exactly one email for the order, however many deliveries.
    assert_eq!(
        app.smtp.count_to("buyer@example.com"),
        2,
        "verification + confirmation"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_keys_replay_and_refuse_reuse() {
    let app = TestApp::builder().full().start().await;
    let shop = app.shop(10, 1000).await;
    let (buyer, _, _) = app.register("idem@example.com", "attendee").await;
    let body = json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}]});
    let (s1, first) = app
        .order(&buyer, &shop.event_id, "same", body.clone())
        .await;
    let (s2, second) = app
        .order(&buyer, &shop.event_id, "same", body.clone())
        .await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(
        first["id"], second["id"],
        "same key, same body: the same order"
    );
    let other = json!({"items": [{"tier_id": shop.tier_id, "quantity": 2}]});
    let (status, problem) = app.order(&buyer, &shop.event_id, "same", other).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("idempotency_key_reused"))
    );
    let (status, problem) = app
        .send(
            app.client
                .post(app.url(&format!("/v1/events/{}/orders", shop.event_id)))
                .bearer_auth(&buyer)
                .json(&body),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("idempotency_key_required"))
    );
    assert_eq!(app.count("orders").await, 1);
    app.wait_order(&buyer, first["id"].as_str().unwrap(), "awaiting_payment")
        .await;
    assert_eq!(app.stock(&shop.tier_id).await, (1, 0, 10), "reserved once");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ended_session_places_no_order_even_inside_a_batch() {
    // Placing an order checks the access session in its insert, not in a
    // query of its own: tokens of a signed-out session, of a bumped token
    // version and of a live session are sent at once, so they share the
    // order writer's batches, and only the live ones may write.
    let app = TestApp::builder().full().start().await;
    let shop = app.shop(100, 1000).await;
    let (live, _, _) = app.register("live@example.com", "attendee").await;
    let (signed_out, _, _) = app.register("gone@example.com", "attendee").await;
    let (reset, _, reset_id) = app.register("reset@example.com", "attendee").await;
    let body = json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}]});
    let (status, before) = app
        .order(&signed_out, &shop.event_id, "before", body.clone())
        .await;
    assert_eq!(status, 202, "{before}");

    let logout = app
        .client
        .post(app.url("/v1/auth/logout"))
        .bearer_auth(&signed_out);
    assert_eq!(app.send(logout).await.0, 204);
    app.sql(&format!(
        "UPDATE users SET token_version = token_version + 1 WHERE id = '{reset_id}'"
    ))
    .await;

    let attempts = (0..10).flat_map(|i| {
        [(&live, 202), (&signed_out, 401), (&reset, 401)]
            .map(|(token, expected)| (token.clone(), format!("k{i}"), expected))
    });
    let answers = futures::future::join_all(attempts.map(|(token, key, expected)| {
        let (app, body, event_id) = (&app, body.clone(), &shop.event_id);
        async move {
            let (status, answer) = app.order(&token, event_id, &key, body).await;
            (status, answer["code"].clone(), expected)
        }
    }))
    .await;
    for (status, code, expected) in &answers {
        assert_eq!(status, expected, "{code}");
        if *expected == 401 {
            assert_eq!(code, "invalid_token");
        }
    }
    // A retry of an order made before signing out gets no order back either.
    let (status, problem) = app.order(&signed_out, &shop.event_id, "before", body).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("invalid_token"))
    );
    assert_eq!(
        app.count("orders").await,
        11,
        "ten live orders and the one before"
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) AS n FROM orders WHERE buyer_id = '{reset_id}'"
        ))
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_retries_with_one_key_make_one_order() {
    // Sent at once, the requests land in the same insert batch or in
    // consecutive ones; either way one order, and every answer names it.
    let app = TestApp::builder().full().start().await;
    let shop = app.shop(10, 1000).await;
    let (buyer, _, _) = app.register("retry@example.com", "attendee").await;
    let (other, _, _) = app.register("other@example.com", "attendee").await;
    let body = json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}]});
    let answers = futures::future::join_all((0..24).map(|i| {
        // A second buyer interleaved: the same key is theirs to use too.
        let token = if i % 3 == 0 { &other } else { &buyer };
        app.order(token, &shop.event_id, "double-click", body.clone())
    }))
    .await;
    let mut ids = std::collections::HashMap::new();
    for (i, (status, order)) in answers.iter().enumerate() {
        assert_eq!(*status, 202, "{order}");
        let who = if i % 3 == 0 { "other" } else { "buyer" };
        let id = order["id"].as_str().unwrap().to_owned();
        assert_eq!(ids.entry(who).or_insert_with(|| id.clone()), &id, "{who}");
    }
    assert_eq!(ids.len(), 2);
    assert_eq!(app.count("orders").await, 2);
    assert_eq!(app.count("order_items").await, 2);
    for (who, token) in [("buyer", &buyer), ("other", &other)] {
        app.wait_order(token, &ids[who], "awaiting_payment").await;
    }
    assert_eq!(
        app.stock(&shop.tier_id).await,
        (2, 0, 10),
        "reserved once each"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_orders_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let shop = app.shop(10, 1000).await;
    let other = app.shop(10, 1000).await;
    let (buyer, _, _) = app.register("bad-orders@example.com", "attendee").await;
    let cases = [
        (json!({"items": []}), "items"),
        (
            json!({"items": [{"tier_id": shop.tier_id, "quantity": 0}]}),
            "items[0].quantity",
        ),
        (
            json!({"items": [{"tier_id": other.tier_id, "quantity": 1}]}),
            "items[0].tier_id",
        ),
        (
            json!({"items": [{"tier_id": shop.tier_id, "quantity": 21}]}),
            "items",
        ),
        (
            json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}, {"tier_id": shop.tier_id, "quantity": 1}]}),
            "items[1].tier_id",
        ),
        (
            json!({"items": [{"tier_id": shop.tier_id, "quantity": 1, "attendees": [{"name": "A", "email": "nope"}]}]}),
            "items[0].attendees[0].email",
        ),
        (
            json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}], "discount_code": "NOPE"}),
            "discount_code",
        ),
        (
            json!({"items": [{"tier_id": "not-a-uuid", "quantity": 1}]}),
            "items[0].tier_id",
        ),
    ];
    for (i, (body, field)) in cases.into_iter().enumerate() {
        let (status, problem) = app
            .order(&buyer, &shop.event_id, &format!("k{i}"), body.clone())
            .await;
        assert_eq!(status, 422, "{body} → {problem}");
        assert!(
            crate::harness::blames(&problem, field),
            "{body} should blame {field}: {problem}"
        );
    }
    let (status, _) = app
        .order(
            &buyer,
            "00000000-0000-7000-8000-000000000000",
            "k",
            json!({"items": []}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.order(&buyer, "zzz", "k", json!({"items": []})).await;
    assert_eq!(status, 404);
    let (status, _) = app
        .send(
            app.client
                .post(app.url(&format!("/v1/events/{}/orders", shop.event_id)))
                .header("idempotency-key", "anon")
                .json(&json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}]})),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(app.count("orders").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn declined_and_cancelled_orders_release_their_seats() {
    let app = TestApp::builder().full().start().await;
    let shop = app.shop(5, 1000).await;
    let (buyer, _, _) = app.register("decline@example.com", "attendee").await;
    let body = json!({"items": [{"tier_id": shop.tier_id, "quantity": 2}]});

    let (_, a) = app.order(&buyer, &shop.event_id, "a", body.clone()).await;
    let a_id = a["id"].as_str().unwrap().to_owned();
    let reserved = eventually(Duration::from_secs(20), || async {
        let (_, o) = app.get(&format!("/v1/orders/{a_id}"), Some(&buyer)).await;
        o["checkout_url"]
            .as_str()
            .map(str::to_owned)
            .ok_or(o.to_string())
    })
    .await;
    app.settle(&reserved, "decline").await;
    let declined = app.wait_order(&buyer, &a_id, "cancelled").await;
    assert_eq!(declined["reason"], "payment_declined");
    assert_eq!(app.stock(&shop.tier_id).await, (0, 0, 5));

    let (_, b) = app.order(&buyer, &shop.event_id, "b", body.clone()).await;
    let b_id = b["id"].as_str().unwrap().to_owned();
    app.wait_order(&buyer, &b_id, "awaiting_payment").await;
    assert_eq!(app.stock(&shop.tier_id).await, (2, 0, 5));
    let (status, cancelled) = app
        .post(
            &format!("/v1/orders/{b_id}/cancel"),
            json!({}),
            Some(&buyer),
        )
        .await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (200, Some("cancelled")),
        "{cancelled}"
    );
    assert_eq!(app.stock(&shop.tier_id).await, (0, 0, 5));
    let (status, problem) = app
        .post(
            &format!("/v1/orders/{b_id}/cancel"),
            json!({}),
            Some(&buyer),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("order_not_cancellable"))
    );
    let (other, _, _) = app.register("not-mine@example.com", "attendee").await;
    assert_eq!(
        app.post(
            &format!("/v1/orders/{b_id}/cancel"),
            json!({}),
            Some(&other)
        )
        .await
        .0,
        404
    );
}
