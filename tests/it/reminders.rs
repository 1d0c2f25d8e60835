//! Reminders before an event starts, unsubscribe links, and delivery
//! failures: against the real scheduler sweep (its clock moved by
//! `remind_at`), the workers and the SMTP sink.

use std::time::Duration;

use boxoffice_scheduler::remind_at;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::{
    harness::{TestApp, eventually, shop::Shop},
    routes::refunds::{paid_order, paying_app, refund},
};

/// A published event of `timezone` starting at `starts_at`, one tier.
async fn event_at(app: &TestApp, starts_at: DateTime<Utc>, timezone: &str) -> Shop {
    app.shop_with(
        50,
        2500,
        json!({
            "starts_at": starts_at.to_rfc3339(),
            "ends_at": (starts_at + chrono::Duration::hours(3)).to_rfc3339(),
            "timezone": timezone,
        }),
    )
    .await
}

async fn starts_at(app: &TestApp, shop: &Shop) -> DateTime<Utc> {
    let (_, event) = app
        .get(&format!("/v1/events/{}", shop.event_id), None)
        .await;
    event["starts_at"].as_str().unwrap().parse().unwrap()
}

async fn remind(app: &TestApp, at: DateTime<Utc>) -> usize {
    remind_at(&app.services, at).await.expect("reminders tick")
}

async fn reminders_of(app: &TestApp, shop: &Shop) -> i64 {
    app.scalar(&format!(
        "SELECT count(*) AS n FROM email_log
          WHERE template = 'event_reminder' AND params->>'event_id' = '{}'",
        shop.event_id
    ))
    .await
}

/// The buyer's email address.
async fn address(app: &TestApp, token: &str) -> String {
    let (_, me) = app.get("/v1/auth/me", Some(token)).await;
    me["email"].as_str().unwrap().to_owned()
}

fn header(message: &boxoffice_bench::smtp_sink::Received, name: &str) -> Option<String> {
    message
        .parsed()
        .header_raw(name)
        .map(|v| v.trim().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn each_holder_is_reminded_once_inside_the_window_and_again_after_a_move() {
    let app = paying_app().await;
    let shop = app.shop(50, 2500).await;
    let (buyer, _) = paid_order(&app, &shop, 1).await;
    // A second buyer names a guest for one of their two seats.
    let (guest_buyer, _, _) = app.register("host@example.com", "attendee").await;
    let (status, order) = app
        .order(
            &guest_buyer,
            &shop.event_id,
            "k1",
            json!({"items": [{"tier_id": shop.tier_id, "quantity": 2,
                   "attendees": [{"name": "Gus Guest", "email": "Gus@Example.com"}]}]}),
        )
        .await;
    assert_eq!(status, 202, "{order}");
    app.wait_order(&guest_buyer, order["id"].as_str().unwrap(), "paid")
        .await;
    let start = starts_at(&app, &shop).await;
    let minute = chrono::Duration::minutes(1);
    let day = chrono::Duration::hours(24);

    // 24 h 01 min before: not yet.
    assert_eq!(remind(&app, start - day - minute).await, 0);
    // 23 h 59 min before: one per holder (buyer, host, guest), and ticks
    // racing each other or repeated write nothing more.
    assert_eq!(remind(&app, start - day + minute).await, 3);
    let (a, b) = tokio::join!(
        remind(&app, start - day + minute * 2),
        remind(&app, start - day + minute * 3)
    );
    assert_eq!(a + b, 0);
    assert_eq!(reminders_of(&app, &shop).await, 3);

    let buyer_address = address(&app, &buyer).await;
    for to in [
        buyer_address.as_str(),
        "host@example.com",
        "gus@example.com",
    ] {
        let message = app
            .smtp
            .wait_for(to, "Reminder: Night at the Opera", Duration::from_secs(20))
            .await;
        let unsubscribe = header(&message, "List-Unsubscribe").expect("List-Unsubscribe");
        assert!(
            unsubscribe.contains("/v1/unsubscribe?token="),
            "{unsubscribe}"
        );
        assert_eq!(
            header(&message, "List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click")
        );
    }
    // The host's reminder shows the host's ticket only; the guest's theirs.
    let host = app
        .smtp
        .wait_for("host@example.com", "Reminder:", Duration::from_secs(1))
        .await;
    assert_eq!(host.text().matches("— code ").count(), 1, "{}", host.text());
    let guest = app
        .smtp
        .wait_for("gus@example.com", "Reminder:", Duration::from_secs(1))
        .await;
    assert!(guest.text().contains("Gus Guest"), "{}", guest.text());

    // Moving the start re-arms the reminder: once more each, for the new start.
    let moved = start + chrono::Duration::days(2);
    let (status, body) = app
        .patch(
            &format!("/v1/events/{}", shop.event_id),
            json!({"starts_at": moved.to_rfc3339(), "ends_at": (moved + chrono::Duration::hours(3)).to_rfc3339()}),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        remind(&app, start - day + minute * 4).await,
        0,
        "not due yet"
    );
    assert_eq!(remind(&app, moved - day + minute).await, 3);
    assert_eq!(remind(&app, moved - day + minute * 2).await, 0);
    eventually(Duration::from_secs(20), || async {
        let sent = app
            .smtp
            .messages()
            .iter()
            .filter(|m| {
                m.to.iter()
                    .any(|t| t.eq_ignore_ascii_case("gus@example.com"))
            })
            .filter(|m| m.subject().starts_with("Reminder:"))
            .count();
        (sent == 2)
            .then_some(())
            .ok_or(format!("{sent} reminders to the guest"))
    })
    .await;
    // Never once it has started.
    assert_eq!(remind(&app, moved + minute).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reminder_across_a_dst_change_shows_the_local_start() {
    let app = paying_app().await;
    // New York moves to summer time at 02:00 on 14 March 2027: an event at
    // 10:30 that morning (EDT, 14:30 UTC) is reminded from 14:30 UTC the day
    // before, 09:30 EST local: 24 real hours, 25 on the wall clock.
    let start: DateTime<Utc> = "2027-03-14T14:30:00Z".parse().unwrap();
    let shop = event_at(&app, start, "America/New_York").await;
    let (buyer, _) = paid_order(&app, &shop, 1).await;
    let minute = chrono::Duration::minutes(1);
    let day = chrono::Duration::hours(24);
    assert_eq!(remind(&app, start - day - minute).await, 0);
    assert_eq!(remind(&app, start - day + minute).await, 1);
    let message = app
        .smtp
        .wait_for(
            &address(&app, &buyer).await,
            "Reminder:",
            Duration::from_secs(20),
        )
        .await;
    assert!(
        message
            .subject()
            .contains("Sun 14 Mar 2027, 10:30 (America/New_York)"),
        "{}",
        message.subject()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelled_events_refunded_tickets_and_switched_off_reminders_are_skipped() {
    let app = paying_app().await;
    let shop = app.shop(50, 2500).await;
    let (kept, _) = paid_order(&app, &shop, 1).await;
    let (refunded, order) = paid_order(&app, &shop, 1).await;
    let order_id = order["id"].as_str().unwrap();
    let (status, body) = refund(&app, &shop.organizer, order_id, Some("r1"), None).await;
    assert_eq!(status, 202, "{body}");
    app.wait_order(&refunded, order_id, "refunded").await;

    let cancelled = app.shop(50, 2500).await;
    paid_order(&app, &cancelled, 1).await;
    let (status, body) = app
        .post(
            &format!("/v1/events/{}/cancel", cancelled.event_id),
            json!({"message": "Sorry"}),
            Some(&cancelled.organizer),
        )
        .await;
    assert_eq!(status, 202, "{body}");

    let quiet = app.shop(50, 2500).await;
    paid_order(&app, &quiet, 1).await;
    let (status, body) = app
        .patch(
            &format!("/v1/events/{}", quiet.event_id),
            json!({"reminders": false}),
            Some(&quiet.organizer),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reminders"], false);

    let start = starts_at(&app, &shop).await;
    let at = start - chrono::Duration::hours(23);
    assert_eq!(remind(&app, at).await, 1, "only the holder still holding");
    assert_eq!(reminders_of(&app, &shop).await, 1);
    assert_eq!(reminders_of(&app, &cancelled).await, 0);
    assert_eq!(reminders_of(&app, &quiet).await, 0);
    app.smtp
        .wait_for(
            &address(&app, &kept).await,
            "Reminder:",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(
        app.smtp
            .messages()
            .iter()
            .filter(|m| m.subject().starts_with("Reminder:"))
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_unsubscribe_link_stops_reminders_but_never_a_refund_email() {
    let app = paying_app().await;
    let shop = app.shop(50, 2500).await;
    let (buyer, order) = paid_order(&app, &shop, 1).await;
    let to = address(&app, &buyer).await;
    let start = starts_at(&app, &shop).await;
    assert_eq!(remind(&app, start - chrono::Duration::hours(23)).await, 1);
    let reminder = app
        .smtp
        .wait_for(&to, "Reminder:", Duration::from_secs(20))
        .await;
    let link = header(&reminder, "List-Unsubscribe").unwrap();
    let link = link.trim_matches(['<', '>']);
    let path = &link[link.find("/v1/").unwrap()..];

    // Forged and expired links are refused, and change nothing.
    for (token, code) in [
        ("not-a-token".to_owned(), "unsubscribe_link_invalid"),
        (
            path.split("token=").nth(1).unwrap().replacen('.', ".1", 1),
            "unsubscribe_link_invalid",
        ),
        (
            boxoffice_core::auth::tokens::unsubscribe_token(
                app.services.jwt_secret(),
                &to,
                Utc::now().timestamp() - 1,
            ),
            "unsubscribe_link_expired",
        ),
    ] {
        let (status, problem) = app
            .send(
                app.client
                    .post(app.url(&format!("/v1/unsubscribe?token={token}"))),
            )
            .await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["code"], code);
    }
    assert_eq!(app.count("email_suppressions").await, 0);

    // One click, as a mail app does it (RFC 8058): a form POST, no login.
    let one_click = || {
        app.send(
            app.client
                .post(app.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("List-Unsubscribe=One-Click"),
        )
    };
    let (status, body): (u16, Value) = one_click().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["address"], to.to_lowercase());
    assert_eq!(body["newly_unsubscribed"], true);
    let (status, body) = one_click().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["newly_unsubscribed"], false);

    // The start moves: no reminder for this address any more.
    let moved = start + chrono::Duration::days(1);
    let (status, body) = app
        .patch(
            &format!("/v1/events/{}", shop.event_id),
            json!({"starts_at": moved.to_rfc3339(), "ends_at": (moved + chrono::Duration::hours(3)).to_rfc3339()}),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(remind(&app, moved - chrono::Duration::hours(23)).await, 0);

    // A refund is transactional: its email still goes.
    let order_id = order["id"].as_str().unwrap();
    let (status, body) = refund(&app, &shop.organizer, order_id, Some("r1"), None).await;
    assert_eq!(status, 202, "{body}");
    app.smtp
        .wait_for(&to, "Refund for", Duration::from_secs(20))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_refusal_fails_the_email_and_a_transient_one_is_retried() {
    let app = TestApp::builder().full().start().await;
    app.smtp.refuse(
        "bounce@example.com",
        "550 5.1.1 mailbox unavailable",
        u32::MAX,
    );
    app.smtp.refuse(
        "later@example.com",
        "451 4.7.1 greylisted, try again later",
        1,
    );
    // Each registration sends a verification email.
    app.register("bounce@example.com", "attendee").await;
    app.register("later@example.com", "attendee").await;

    let app = &app;
    // status (sent 1, failed 2) × 100 + attempts.
    let row = |to: &'static str| async move {
        app.scalar(&format!(
            "SELECT coalesce(max((CASE status WHEN 'sent' THEN 1 WHEN 'failed' THEN 2 ELSE 0 END) * 100
                    + attempts), 0)::bigint AS n
               FROM email_log WHERE to_address = '{to}'"
        ))
        .await
    };
    eventually(Duration::from_secs(20), || async {
        match (
            row("later@example.com").await,
            row("bounce@example.com").await,
        ) {
            (102, 201) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let error = app
        .scalar(
            "SELECT count(*) AS n FROM email_log
              WHERE to_address = 'bounce@example.com' AND last_error LIKE '%550%'",
        )
        .await;
    assert_eq!(error, 1, "the server's reply is kept");
    assert_eq!(app.smtp.count_to("bounce@example.com"), 0);
    assert_eq!(app.smtp.count_to("later@example.com"), 1);
}
