//! Email delivery ops can trust: guests' own ticket emails, the admin list
//! and resend, an attendee's resend of their tickets, and the SMTP
//! account's send rate, against the workers and the SMTP sink.

use std::time::Duration;

use mail_parser::MimeHeaders;
use serde_json::json;

use crate::{
    harness::{TestApp, blames, eventually},
    routes::refunds::{paid_order, paying_app},
};

#[tokio::test(flavor = "multi_thread")]
async fn named_guests_get_their_own_tickets_unless_the_organizer_turns_it_off() {
    let app = paying_app().await;
    let shop = app.shop(50, 2500).await;
    let (buyer, _, _) = app.register("host@example.com", "attendee").await;
    let attendees = json!([
        {"name": "Gus Guest", "email": "Gus@Example.com"},
        {"name": "Me Again", "email": "HOST@example.com"},
    ]);
    let (status, order) = app
        .order(
            &buyer,
            &shop.event_id,
            "k1",
            json!({"items": [{"tier_id": shop.tier_id, "quantity": 3, "attendees": attendees}]}),
        )
        .await;
    assert_eq!(status, 202, "{order}");
    app.wait_order(&buyer, order["id"].as_str().unwrap(), "paid")
        .await;

    // The third seat is the buyer's. The buyer's confirmation lists every
    // ticket; the guest's has theirs.
    let confirmation = app
        .smtp
        .wait_for("host@example.com", "Your tickets", Duration::from_secs(20))
        .await;
    assert_eq!(confirmation.text().matches("— code ").count(), 3);
    let guest = app
        .smtp
        .wait_for(
            "gus@example.com",
            "got you tickets",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(
        guest.text().matches("— code ").count(),
        1,
        "{}",
        guest.text()
    );
    assert!(guest.text().contains("Gus Guest"));
    let parts: Vec<String> = guest
        .parsed()
        .attachments()
        .filter_map(|a| {
            a.content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()))
        })
        .collect();
    assert!(parts.contains(&"image/png".to_owned()), "{parts:?}");
    assert!(parts.contains(&"text/calendar".to_owned()), "{parts:?}");
    // Nobody else: the buyer's own address named again is not a guest.
    assert_eq!(
        app.smtp.count_to("host@example.com"),
        2,
        "verification + confirmation"
    );
    assert_eq!(app.smtp.count_to("gus@example.com"), 1);

    // Guest emails off: the buyer still gets everything, the guest nothing.
    let quiet = app
        .shop_with(50, 2500, json!({"guest_emails": false}))
        .await;
    let (status, event) = app
        .get(&format!("/v1/events/{}", quiet.event_id), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(event["guest_emails"], false);
    let (status, order) = app
        .order(
            &buyer,
            &quiet.event_id,
            "k2",
            json!({"items": [{"tier_id": quiet.tier_id, "quantity": 1,
                   "attendees": [{"name": "Quiet Guest", "email": "quiet@example.com"}]}]}),
        )
        .await;
    assert_eq!(status, 202, "{order}");
    app.wait_order(&buyer, order["id"].as_str().unwrap(), "paid")
        .await;
    eventually(Duration::from_secs(20), || async {
        let skipped = app
            .scalar(
                "SELECT count(*) AS n FROM email_log
                  WHERE to_address = 'quiet@example.com' AND status = 'skipped'",
            )
            .await;
        (skipped == 1).then_some(()).ok_or(format!("{}", skipped))
    })
    .await;
    assert_eq!(app.smtp.count_to("quiet@example.com"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_list_emails_and_resend_one_once() {
    let app = paying_app().await;
    let admin = app.admin().await;
    let shop = app.shop(50, 2500).await;
    let (buyer, _) = paid_order(&app, &shop, 1).await;
    let (_, me) = app.get("/v1/auth/me", Some(&buyer)).await;
    let to = me["email"].as_str().unwrap().to_owned();
    app.smtp
        .wait_for(&to, "Your tickets", Duration::from_secs(20))
        .await;

    let list = format!(
        "/v1/admin/emails?to={}&kind=order_confirmation",
        to.to_uppercase()
    );
    let sent = eventually(Duration::from_secs(10), || async {
        let (status, page) = app.get(&list, Some(&admin)).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap().clone();
        (items.len() == 1 && items[0]["status"] == "sent")
            .then_some(items[0].clone())
            .ok_or(page.to_string())
    })
    .await;
    assert!(sent.get("params").is_none(), "parameters never shown");
    let (_, page) = app
        .get("/v1/admin/emails?status=sent&limit=1", Some(&admin))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["next_cursor"].is_string(), "{page}");

    // Bad filters and non-admins are refused.
    let (status, problem) = app.get("/v1/admin/emails?status=lost", Some(&admin)).await;
    assert_eq!(status, 422);
    assert!(blames(&problem, "status"), "{problem}");
    let (status, _) = app.get("/v1/admin/emails?cursor=nope", Some(&admin)).await;
    assert_eq!(status, 400);
    let (status, _) = app.get("/v1/admin/emails", Some(&buyer)).await;
    assert_eq!(status, 403);

    // Two resends at once: one goes, the other finds it on its way.
    let resend = format!("/v1/admin/emails/{}/resend", sent["id"].as_str().unwrap());
    let (a, b) = tokio::join!(
        app.post(&resend, json!({}), Some(&admin)),
        app.post(&resend, json!({}), Some(&admin))
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [202, 409], "{a:?} {b:?}");
    eventually(Duration::from_secs(20), || async {
        let n = app
            .smtp
            .messages()
            .iter()
            .filter(|m| m.to.contains(&to) && m.subject().contains("Your tickets"))
            .count();
        (n == 2).then_some(()).ok_or(format!("{}", n))
    })
    .await;
    let (status, _) = app
        .post(
            &format!("/v1/admin/emails/{}/resend", uuid::Uuid::now_v7()),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_buyer_gets_their_tickets_again_within_limits() {
    let app = paying_app().await;
    let shop = app.shop(50, 2500).await;
    let (buyer, order) = paid_order(&app, &shop, 2).await;
    let order_id = order["id"].as_str().unwrap();
    let (_, me) = app.get("/v1/auth/me", Some(&buyer)).await;
    let to = me["email"].as_str().unwrap().to_owned();
    let confirmations = || {
        app.smtp
            .messages()
            .iter()
            .filter(|m| m.to.contains(&to) && m.subject().contains("Your tickets"))
            .count()
    };
    eventually(Duration::from_secs(20), || async {
        (confirmations() == 1)
            .then_some(())
            .ok_or(format!("{}", confirmations()))
    })
    .await;

    let path = format!("/v1/orders/{order_id}/resend-tickets");
    let (status, body) = app.post(&path, json!({}), Some(&buyer)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["to"], to);
    eventually(Duration::from_secs(20), || async {
        (confirmations() == 2)
            .then_some(())
            .ok_or(format!("{}", confirmations()))
    })
    .await;

    // Someone else's order is not found; an unpaid one has nothing to send.
    let (stranger, _, _) = app.register("stranger@example.com", "attendee").await;
    let (status, _) = app.post(&path, json!({}), Some(&stranger)).await;
    assert_eq!(status, 404);
    let closed = app.shop_with(5, 2500, json!({})).await;
    let (status, unpaid) = app
        .order(
            &stranger,
            &closed.event_id,
            "u1",
            json!({"items": [{"tier_id": closed.tier_id, "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 202, "{unpaid}");
    let (status, problem) = app
        .post(
            &format!(
                "/v1/orders/{}/resend-tickets",
                unpaid["id"].as_str().unwrap()
            ),
            json!({}),
            Some(&stranger),
        )
        .await;
    // Placed, not yet paid by the sandbox's auto-pay (or paid just now).
    assert!(status == 409 || status == 202, "{status} {problem}");

    // Three an hour per order: the fourth waits.
    for _ in 0..2 {
        let (status, body) = app.post(&path, json!({}), Some(&buyer)).await;
        assert_eq!(status, 202, "{body}");
    }
    let (status, problem) = app.post(&path, json!({}), Some(&buyer)).await;
    assert_eq!(status, 429, "{problem}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_send_rate_spaces_an_accounts_emails() {
    let app = TestApp::builder()
        .full()
        .with_config(|c| c.smtp.send_rate = 4)
        .start()
        .await;
    // Each registration sends a verification email: nine at once.
    let addresses: Vec<String> = (0..9).map(|i| format!("rate{i}@example.com")).collect();
    for to in &addresses {
        app.register(to, "attendee").await;
    }
    eventually(Duration::from_secs(30), || async {
        let n = app.smtp.count();
        (n == 9).then_some(()).ok_or(format!("{}", n))
    })
    .await;
    let mut times: Vec<std::time::Instant> = app.smtp.messages().iter().map(|m| m.at).collect();
    times.sort();
    let spread = times[8] - times[0];
    // Slots 250 ms apart: eight gaps.
    assert!(
        spread >= Duration::from_millis(1900),
        "9 emails at 4/s took {spread:?}"
    );
}
