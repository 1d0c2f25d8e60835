//! Refunds on request: by the buyer within the event's policy, by the
//! organizer at any time and in part; through the sandbox over HTTP, with
//! tickets voided, seats back on sale, the order's state, the ledger and the
//! buyer's email; bad input refused with nothing written; concurrent
//! requests never exceeding what was paid.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{TestApp, eventually, shop::Shop};

/// A full app whose sandbox pays every checkout by itself.
pub(crate) async fn paying_app() -> TestApp {
    TestApp::builder()
        .full()
        .with_config(|c| {
            c.sandbox.auto = Some((
                boxoffice_core::config::AutoOutcome::Pay,
                Duration::from_millis(50),
            ))
        })
        .start()
        .await
}

/// A buyer and their paid order of `seats` seats; returns (buyer, order).
pub(crate) async fn paid_order(app: &TestApp, shop: &Shop, seats: i32) -> (String, Value) {
    let (buyer, id, _) = app.order_with_checkout(shop, seats).await;
    let order = app.wait_order(&buyer, &id, "paid").await;
    (buyer, order)
}

/// The order's ticket ids, in seat order.
async fn ticket_ids(app: &TestApp, order_id: &str) -> Vec<String> {
    let n = app
        .scalar(&format!(
            "SELECT count(*) AS n FROM tickets WHERE order_id = '{order_id}'"
        ))
        .await;
    let ids = eventually(Duration::from_secs(10), || async {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct T {
            #[diesel(sql_type = diesel::sql_types::Text)]
            id: String,
        }
        let mut conn = app.services.db.get().await.unwrap();
        let rows: Vec<T> = diesel::sql_query(format!(
            "SELECT id::text FROM tickets WHERE order_id = '{order_id}' ORDER BY seat_index"
        ))
        .load(&mut conn)
        .await
        .unwrap();
        if rows.is_empty() {
            Err("no tickets yet".to_owned())
        } else {
            Ok(rows.into_iter().map(|t| t.id).collect::<Vec<_>>())
        }
    })
    .await;
    assert!(n == 0 || ids.len() as i64 == n);
    ids
}

pub(crate) async fn refund(
    app: &TestApp,
    token: &str,
    order_id: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url(&format!("/v1/orders/{order_id}/refund")))
        .bearer_auth(token);
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    app.send(req).await
}

async fn ticket_status(app: &TestApp, id: &str) -> String {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct S {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
    }
    let mut conn = app.services.db.get().await.unwrap();
    let s: S = diesel::sql_query(format!("SELECT status FROM tickets WHERE id = '{id}'"))
        .get_result(&mut conn)
        .await
        .unwrap();
    s.status
}

/// The refund policy allows refunds until `hours` before the start.
async fn with_policy(app: &TestApp, shop: &Shop, hours: Option<i32>) {
    let (status, body) = app
        .patch(
            &format!("/v1/events/{}", shop.event_id),
            json!({ "refund_until_hours": hours }),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_buyer_refunds_one_ticket_then_the_rest() {
    let app = paying_app().await;
    let shop = app.shop(10, 2500).await;
    with_policy(&app, &shop, Some(48)).await;
    let (buyer, order) = paid_order(&app, &shop, 2).await;
    let order_id = order["id"].as_str().unwrap();
    let tickets = ticket_ids(&app, order_id).await;
    assert_eq!(tickets.len(), 2);
    eventually(Duration::from_secs(10), || async {
        match app.stock(&shop.tier_id).await {
            (0, 2, 10) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // One ticket: its price back, that ticket void, its seat on sale again.
    let ask = json!({"ticket_ids": [tickets[0]], "reason": "cannot come"});
    let (status, first) = refund(&app, &buyer, order_id, Some("r1"), Some(ask.clone())).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["status"], "requested");
    assert_eq!(first["amount_minor"], 2500);
    assert_eq!(first["kind"], "order");
    let partly = app.wait_order(&buyer, order_id, "partially_refunded").await;
    assert_eq!(partly["refunds"][0]["status"], "succeeded", "{partly}");
    assert_eq!(ticket_status(&app, &tickets[0]).await, "void");
    assert_eq!(ticket_status(&app, &tickets[1]).await, "valid");
    assert_eq!(app.stock(&shop.tier_id).await, (0, 1, 10));

    // The same request again is the same refund; the key with another body is refused.
    let (status, again) = refund(&app, &buyer, order_id, Some("r1"), Some(ask)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], first["id"]);
    let (status, reused) = refund(&app, &buyer, order_id, Some("r1"), None).await;
    assert_eq!(status, 409, "{reused}");
    assert_eq!(reused["code"], "idempotency_key_reused");
    // A voided ticket cannot be refunded twice.
    let (status, twice) = refund(
        &app,
        &buyer,
        order_id,
        Some("r2"),
        Some(json!({"ticket_ids": [tickets[0]]})),
    )
    .await;
    assert_eq!(status, 409, "{twice}");
    assert_eq!(twice["code"], "ticket_already_refunded");

    // An empty body: the rest of the order.
    let (status, rest) = refund(&app, &buyer, order_id, Some("r3"), None).await;
    assert_eq!(status, 202, "{rest}");
    assert_eq!(rest["amount_minor"], 2500);
    app.wait_order(&buyer, order_id, "refunded").await;
    assert_eq!(ticket_status(&app, &tickets[1]).await, "void");
    assert_eq!(app.stock(&shop.tier_id).await, (0, 0, 10));
    let (status, list) = app
        .get(&format!("/v1/orders/{order_id}/refunds"), Some(&buyer))
        .await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "succeeded")
    );
    let (status, done) = refund(&app, &buyer, order_id, Some("r4"), None).await;
    assert_eq!(status, 409, "{done}");
    assert_eq!(done["code"], "order_not_refundable");

    // Money: the provider's cash went back out; the organizer owes nothing.
    assert_eq!(
        app.scalar("SELECT coalesce(sum(amount_minor), 0)::bigint AS n FROM ledger_entries WHERE account = 'cash:sandbox'")
            .await,
        0
    );
    // The buyer was told twice, once per refund.
    eventually(Duration::from_secs(20), || async {
        let sent = app
            .scalar("SELECT count(*) AS n FROM email_log WHERE template = 'refund_notice' AND status = 'sent'")
            .await;
        if sent == 2 { Ok(()) } else { Err(format!("{sent} sent")) }
    })
    .await;
    let to = app.get("/v1/auth/me", Some(&buyer)).await.1["email"]
        .as_str()
        .unwrap()
        .to_owned();
    let mail = app
        .smtp
        .wait_for(&to, "Refund", Duration::from_secs(10))
        .await;
    assert!(mail.text().contains("on request"), "{}", mail.text());
    crate::routes::refunds::ledger_checks(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_refund_requests_are_refused_and_change_nothing() {
    let app = paying_app().await;
    let shop = app.shop(10, 2500).await;
    let (buyer, order) = paid_order(&app, &shop, 2).await;
    let order_id = order["id"].as_str().unwrap();
    let (stranger, _, _) = app.register("stranger@example.com", "attendee").await;
    let org = shop.organizer.clone();
    // (case, who asks, Idempotency-Key, body, status, code)
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<Value>,
        u16,
        &'a str,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "no key",
            &buyer,
            None,
            None,
            400,
            "idempotency_key_required",
        ),
        (
            "no policy",
            &buyer,
            Some("a"),
            None,
            409,
            "refunds_not_allowed",
        ),
        (
            "someone else's order",
            &stranger,
            Some("a"),
            None,
            404,
            "not_found",
        ),
        (
            "a buyer's partial amount",
            &buyer,
            Some("a"),
            Some(json!({"amount_minor": 100})),
            422,
            "partial_amount_not_allowed",
        ),
        (
            "zero",
            &org,
            Some("a"),
            Some(json!({"amount_minor": 0})),
            422,
            "validation_failed",
        ),
        (
            "negative",
            &org,
            Some("a"),
            Some(json!({"amount_minor": -1})),
            422,
            "validation_failed",
        ),
        (
            "over the paid amount",
            &org,
            Some("a"),
            Some(json!({"amount_minor": 5001})),
            422,
            "refund_exceeds_paid",
        ),
        (
            "another currency",
            &org,
            Some("a"),
            Some(json!({"amount_minor": 100, "currency": "USD"})),
            422,
            "validation_failed",
        ),
        (
            "both ways at once",
            &org,
            Some("a"),
            Some(json!({"amount_minor": 100, "ticket_ids": []})),
            422,
            "validation_failed",
        ),
        (
            "a foreign ticket",
            &org,
            Some("a"),
            Some(json!({"ticket_ids": [uuid::Uuid::now_v7()]})),
            422,
            "validation_failed",
        ),
        (
            "an unknown field",
            &org,
            Some("a"),
            Some(json!({"amount": 1})),
            422,
            "validation_failed",
        ),
    ];
    for (name, token, key, body, status, code) in cases {
        let (got, problem) = refund(&app, token, order_id, key, body).await;
        assert_eq!(got, status, "{name}: {problem}");
        assert_eq!(problem["code"], code, "{name}: {problem}");
    }
    // Outside the window: refunds close 48 h before the start, which is in 24 h.
    with_policy(&app, &shop, Some(48)).await;
    app.sql(&format!(
        "UPDATE events SET starts_at = now() + interval '24 hours', ends_at = now() + interval '27 hours' WHERE id = '{}'",
        shop.event_id
    ))
    .await;
    let (got, problem) = refund(&app, &buyer, order_id, Some("late"), None).await;
    assert_eq!(
        (got, problem["code"].as_str()),
        (409, Some("refund_window_closed")),
        "{problem}"
    );
    // An unpaid order.
    let (status, unpaid) = app
        .order(
            &buyer,
            &shop.event_id,
            "k2",
            json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 202);
    let (got, problem) = refund(&app, &org, unpaid["id"].as_str().unwrap(), Some("u"), None).await;
    assert_eq!(got, 409, "{problem}");
    assert_eq!(problem["code"], "order_not_refundable");
    assert_eq!(app.count("refunds").await, 0, "nothing written");
    let (_, after) = app
        .get(&format!("/v1/orders/{order_id}"), Some(&buyer))
        .await;
    assert_eq!(after["status"], "paid");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_refunds_never_exceed_what_was_paid() {
    let app = paying_app().await;
    let shop = app.shop(10, 2500).await;
    let (buyer, order) = paid_order(&app, &shop, 2).await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    // Ten partial refunds of 1,000 at once against 5,000 paid.
    let asks = (0..10).map(|i| {
        let (app, org, order_id) = (&app, shop.organizer.clone(), order_id.clone());
        async move {
            refund(
                app,
                &org,
                &order_id,
                Some(&format!("c{i}")),
                Some(json!({"amount_minor": 1000, "reason": "goodwill"})),
            )
            .await
        }
    });
    let answers = futures::future::join_all(asks).await;
    let accepted = answers.iter().filter(|(s, _)| *s == 202).count();
    assert_eq!(accepted, 5, "{answers:?}");
    for (status, body) in &answers {
        assert!(
            *status == 202
                || (*status == 422 && body["code"] == "refund_exceeds_paid")
                || (*status == 409 && body["code"] == "nothing_to_refund")
                // A late ask may find the five refunds already finished
                // and the order `refunded`.
                || (*status == 409 && body["code"] == "order_not_refundable"),
            "{status} {body}"
        );
    }
    let order = app.wait_order(&buyer, &order_id, "refunded").await;
    assert_eq!(order["refunds"].as_array().unwrap().len(), 5);
    assert_eq!(
        app.scalar("SELECT sum(amount_minor)::bigint AS n FROM refunds")
            .await,
        5000
    );
    // The last one gave back all that was left: every ticket is void.
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) AS n FROM tickets WHERE order_id = '{order_id}' AND status = 'void'"
        ))
        .await,
        2
    );

    // And the database holds the line on its own: a sixth refund written
    // past the code is refused by the constraint.
    use diesel_async::RunQueryDsl;
    let mut conn = app.services.db.get().await.unwrap();
    let err = diesel::sql_query(format!(
        "INSERT INTO refunds (id, order_id, payment_id, amount_minor, currency, reason, idempotency_key, kind)
         SELECT gen_random_uuid(), order_id, id, 1, currency, 'x', 'sneaky', 'order' FROM payments WHERE order_id = '{order_id}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap_err();
    assert!(
        boxoffice_core::models::Refund::exceeds_payment(&err),
        "{err}"
    );
    ledger_checks(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refund_the_provider_cannot_take_is_retried_until_it_succeeds() {
    let app = paying_app().await;
    let shop = app.shop(10, 2500).await;
    let (buyer, order) = paid_order(&app, &shop, 1).await;
    let order_id = order["id"].as_str().unwrap();
    app.sandbox.fail_next_refunds(2);
    let (status, asked) = refund(
        &app,
        &shop.organizer,
        order_id,
        Some("outage"),
        Some(json!({"amount_minor": 1000})),
    )
    .await;
    assert_eq!(status, 202, "{asked}");
    // Two 503s from the provider, then the job's third attempt goes through.
    let order = eventually(Duration::from_secs(30), || async {
        let (_, order) = app
            .get(&format!("/v1/orders/{order_id}"), Some(&buyer))
            .await;
        if order["status"] == "partially_refunded" {
            Ok(order)
        } else {
            Err(format!("{order}"))
        }
    })
    .await;
    assert_eq!(order["refunds"][0]["amount_minor"], 1000);
    assert_eq!(order["refunds"][0]["status"], "succeeded");
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM refunds WHERE status = 'succeeded'")
            .await,
        1,
        "refunded once, whatever the retries"
    );
    // Partial: the ticket stays valid, the seat stays sold.
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) AS n FROM tickets WHERE order_id = '{order_id}' AND status = 'valid'"
        ))
        .await,
        1
    );
    ledger_checks(&app).await;
}

/// The ledger check (`boxoffice ledger check`) passes on the app's database.
pub(crate) async fn ledger_checks(app: &TestApp) {
    let mut conn = app.services.db.get().await.unwrap();
    let report = boxoffice_core::models::ledger::check(&mut conn)
        .await
        .expect("ledger readable");
    assert!(report.problems.is_empty(), "{report}");
    assert!(report.transactions > 0, "{report}");
}
