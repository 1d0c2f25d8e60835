//! The fallback of every batcher: a batch that fails whole (one poisoned
//! item) is written item by item, so only the poisoned item fails.
//!
//! How a batch is made to hold the poison with company, deterministically:
//! a trigger on the batcher's write waits on an advisory lock that the test
//! holds (the gate), so the first batches (one per slot in flight) block
//! inside their statement while the next items gather in the channel; the
//! same trigger raises for the poisoned row. Once the gate opens, the
//! gathered items go as one batch, fail whole, and are written alone.

use std::time::Duration;

use boxoffice_core::{db::DbConn, metrics, queue::QueueName};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use serde_json::json;

use crate::{
    harness::{TestApp, eventually},
    routes::webhooks::{dev_secret, now, signed},
};

const GATE: i64 = 4242;

/// A trigger `name` on `table` for `events` (e.g. `BEFORE INSERT`), firing
/// `when` (an SQL condition on NEW/OLD): waits at the gate, then raises if
/// `poisoned` holds.
async fn poison(app: &TestApp, table: &str, events: &str, when: &str, poisoned: &str) {
    app.sql(&format!(
        "CREATE FUNCTION gate_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           PERFORM pg_advisory_lock_shared({GATE});
           PERFORM pg_advisory_unlock_shared({GATE});
           IF {poisoned} THEN RAISE EXCEPTION 'poisoned row'; END IF;
           RETURN NEW;
         END $$"
    ))
    .await;
    app.sql(&format!(
        "CREATE TRIGGER gate_{table} {events} ON {table} FOR EACH ROW
           WHEN ({when}) EXECUTE FUNCTION gate_{table}()"
    ))
    .await;
}

/// The test's hold on the gate: batches reaching the trigger wait until it
/// is opened.
struct Gate {
    conn: tokio::sync::Mutex<DbConn>,
}

impl Gate {
    async fn close(app: &TestApp) -> Gate {
        let mut conn = app.services.db.get().await.unwrap();
        conn.batch_execute(&format!("SELECT pg_advisory_lock({GATE})"))
            .await
            .unwrap();
        Gate {
            conn: tokio::sync::Mutex::new(conn),
        }
    }

    /// Waits until `n` sessions of this database wait on a lock (at the
    /// gate, or behind a batch that is).
    async fn until_waiting(&self, n: i64) {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.conn.lock().await;
        for _ in 0..200 {
            let waiting: N = diesel::sql_query(
                "SELECT count(DISTINCT l.pid)::bigint AS n
                   FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                  WHERE NOT l.granted AND a.datname = current_database()",
            )
            .get_result(&mut *conn)
            .await
            .unwrap();
            if waiting.n >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{n} batches never reached the gate");
    }

    async fn open(&self) {
        self.conn
            .lock()
            .await
            .batch_execute(&format!("SELECT pg_advisory_unlock({GATE})"))
            .await
            .unwrap();
    }
}

/// Nothing marks an item as handed to a batcher: give the requests or jobs
/// sent last a moment to reach its channel while the gate is closed.
async fn let_them_gather() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

fn fallbacks(batcher: &str) -> u64 {
    metrics::metrics()
        .batch_fallbacks
        .get_or_create(&metrics::labels([("batcher", batcher)]))
        .get()
}

/// Waits until no job of `queue` waits to be fetched (the workers hold them).
async fn all_fetched(app: &TestApp, queue: QueueName) {
    eventually(Duration::from_secs(10), || async {
        let counts = app.services.queues.counts(queue).await.unwrap();
        if counts.pending == 0 {
            Ok(())
        } else {
            Err(format!("{} pending", counts.pending))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn order_inserts_fall_back_to_one_by_one() {
    let app = TestApp::spawn().await;
    let shop = app.shop(50, 1000).await;
    let (buyer, _, _) = app.register("buyer@example.com", "attendee").await;
    poison(
        &app,
        "orders",
        "BEFORE INSERT",
        "true",
        "NEW.idempotency_key = 'poison'",
    )
    .await;
    let before = fallbacks("orders");
    let order = |key: &'static str| {
        let (app, buyer, shop) = (&app, &buyer, &shop);
        async move {
            let body = json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}]});
            app.order(buyer, &shop.event_id, key, body).await
        }
    };

    let gate = Gate::close(&app).await;
    let (first, rest) = tokio::join!(order("first"), async {
        gate.until_waiting(1).await;
        let rest = futures::future::join_all(["a", "poison", "b", "c"].map(order));
        let gathered = async {
            let_them_gather().await;
            gate.open().await;
        };
        tokio::join!(rest, gathered).0
    });
    assert_eq!(first.0, 202, "{}", first.1);
    let statuses: Vec<u16> = rest.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [202, 500, 202, 202], "{rest:?}");
    assert_eq!(rest[1].1["code"], "internal_error");
    assert_eq!(fallbacks("orders"), before + 1);
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM orders WHERE idempotency_key <> 'poison'")
            .await,
        4
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_inbox_inserts_fall_back_to_one_by_one() {
    let app = TestApp::spawn().await;
    poison(
        &app,
        "webhook_inbox",
        "BEFORE INSERT",
        "true",
        "NEW.provider_event_id = 'evt_poison'",
    )
    .await;
    let before = fallbacks("webhook_inbox");
    let deliver = |id: &'static str| {
        let app = &app;
        async move {
            let body =
                json!({"id": id, "type": "ping", "created": now(), "data": {"reference": ""}});
            app.send(signed(app, dev_secret(), id, now(), &body)).await
        }
    };

    let gate = Gate::close(&app).await;
    // Two batches in flight: both block at the gate first.
    let (first, second, rest) = tokio::join!(
        deliver("evt_first"),
        async {
            gate.until_waiting(1).await;
            deliver("evt_second").await
        },
        async {
            gate.until_waiting(2).await;
            let rest = futures::future::join_all(["evt_a", "evt_poison", "evt_b"].map(deliver));
            let gathered = async {
                let_them_gather().await;
                gate.open().await;
            };
            tokio::join!(rest, gathered).0
        }
    );
    assert_eq!((first.0, second.0), (200, 200));
    let statuses: Vec<u16> = rest.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [200, 503, 200], "{rest:?}");
    assert_eq!(fallbacks("webhook_inbox"), before + 1);
    assert_eq!(app.count("webhook_inbox").await, 4);
}

/// Reservations and checkouts, each poisoned for one order: the others are
/// reserved and get their checkout; the poisoned one does not.
async fn purchases_fall_back(batcher: &str, events: &str, when: &str) {
    let app = TestApp::builder().full().start().await;
    let shop = app.shop(50, 1000).await;
    let (buyer, _, _) = app.register("buyer@example.com", "attendee").await;
    poison(
        &app,
        "orders",
        events,
        when,
        "NEW.idempotency_key = 'poison'",
    )
    .await;
    let before = fallbacks(batcher);
    let order = |key: &'static str| {
        let (app, buyer, shop) = (&app, &buyer, &shop);
        async move {
            let body = json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}]});
            let (status, order) = app.order(buyer, &shop.event_id, key, body).await;
            assert_eq!(status, 202, "{order}");
            order["id"].as_str().unwrap().to_owned()
        }
    };

    let gate = Gate::close(&app).await;
    let first = order("first").await;
    gate.until_waiting(1).await;
    let second = order("second").await;
    gate.until_waiting(2).await;
    let rest = futures::future::join_all(["a", "poison", "b"].map(order)).await;
    all_fetched(&app, QueueName::Purchases).await;
    let_them_gather().await;
    gate.open().await;

    for id in [&first, &second, &rest[0], &rest[2]] {
        let reserved = app.wait_order(&buyer, id, "awaiting_payment").await;
        eventually(Duration::from_secs(20), || async {
            let (_, order) = app.get(&format!("/v1/orders/{id}"), Some(&buyer)).await;
            order["checkout_url"]
                .as_str()
                .map(drop)
                .ok_or(format!("{reserved}"))
        })
        .await;
    }
    let (_, poisoned) = app
        .get(&format!("/v1/orders/{}", rest[1]), Some(&buyer))
        .await;
    assert!(poisoned["checkout_url"].is_null(), "{poisoned}");
    assert!(fallbacks(batcher) > before, "{batcher} fell back");
}

#[tokio::test(flavor = "multi_thread")]
async fn reservations_fall_back_to_one_by_one() {
    purchases_fall_back(
        "reservations",
        "BEFORE UPDATE",
        "OLD.status = 'pending' AND NEW.status <> 'pending'",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn checkouts_fall_back_to_one_by_one() {
    purchases_fall_back(
        "checkouts",
        "BEFORE UPDATE",
        "OLD.provider_checkout_id IS NULL AND NEW.provider_checkout_id IS NOT NULL",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn payments_fall_back_to_one_by_one() {
    let app = TestApp::builder().full().start().await;
    let shop = app.shop(50, 1000).await;
    let (buyer, _, _) = app.register("buyer@example.com", "attendee").await;
    let mut orders = Vec::new();
    for key in ["first", "second", "a", "poison", "b"] {
        orders.push(app.reserved_checkout(&buyer, &shop, key).await);
    }
    poison(
        &app,
        "payments",
        "BEFORE INSERT",
        "true",
        "(SELECT idempotency_key FROM orders WHERE id = NEW.order_id) = 'poison'",
    )
    .await;
    let before = fallbacks("payments");

    let gate = Gate::close(&app).await;
    app.settle(&orders[0].1, "pay").await;
    gate.until_waiting(1).await;
    app.settle(&orders[1].1, "pay").await;
    gate.until_waiting(2).await;
    for (_, url) in &orders[2..] {
        app.settle(url, "pay").await;
    }
    eventually(Duration::from_secs(10), || async {
        let stored = app.count("webhook_inbox").await;
        (stored == 5)
            .then_some(())
            .ok_or(format!("{stored} stored"))
    })
    .await;
    all_fetched(&app, QueueName::Payments).await;
    let_them_gather().await;
    gate.open().await;

    for (i, (id, _)) in orders.iter().enumerate() {
        if i != 3 {
            app.wait_order(&buyer, id, "paid").await;
        }
    }
    let (_, poisoned) = app
        .get(&format!("/v1/orders/{}", orders[3].0), Some(&buyer))
        .await;
    assert_eq!(poisoned["status"], "awaiting_payment", "{poisoned}");
    assert_eq!(fallbacks("payments"), before + 1);
    assert_eq!(app.count("payments").await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn email_claims_fall_back_to_one_by_one() {
    let app = TestApp::builder().full().start().await;
    poison(
        &app,
        "email_log",
        "BEFORE UPDATE",
        "NEW.status = 'sending'",
        "NEW.to_address = 'poison@example.com'",
    )
    .await;
    let before = fallbacks("email_marks");

    let gate = Gate::close(&app).await;
    // Every registration sends a verification email.
    app.register("first@example.com", "attendee").await;
    gate.until_waiting(1).await;
    for who in ["a", "poison", "b"] {
        app.register(&format!("{who}@example.com"), "attendee")
            .await;
    }
    all_fetched(&app, QueueName::Emails).await;
    let_them_gather().await;
    gate.open().await;

    eventually(Duration::from_secs(20), || async {
        let sent = app
            .scalar("SELECT count(*) AS n FROM email_log WHERE status = 'sent'")
            .await;
        (sent == 3).then_some(()).ok_or(format!("{sent} sent"))
    })
    .await;
    assert_eq!(
        app.scalar(
            "SELECT count(*) AS n FROM email_log WHERE status = 'sent' AND to_address = 'poison@example.com'"
        )
        .await,
        0
    );
    assert!(fallbacks("email_marks") > before);
}

/// Five paid orders refunded by their organizer while `refunds` rows are
/// poisoned for the fourth order where `when` holds: the first refund's
/// batch holds the gate, the next four gather behind it (one batch in
/// flight) and their batch fails whole; the rest are refunded one by one.
async fn refunds_fall_back(batcher: &str, when: &str) {
    let app = crate::routes::refunds::paying_app().await;
    let shop = app.shop(50, 1000).await;
    let mut orders = Vec::new();
    for _ in 0..5 {
        let (buyer, order) = crate::routes::refunds::paid_order(&app, &shop, 1).await;
        orders.push((buyer, order["id"].as_str().unwrap().to_owned()));
    }
    poison(
        &app,
        "refunds",
        "BEFORE UPDATE",
        when,
        &format!("NEW.order_id = '{}'", orders[3].1),
    )
    .await;
    let before = fallbacks(batcher);
    // The organizer refunds (the event's policy does not let buyers).
    let ask = |i: usize| {
        crate::routes::refunds::refund(&app, &shop.organizer, &orders[i].1, Some("r"), None)
    };

    let gate = Gate::close(&app).await;
    assert_eq!(ask(0).await.0, 202);
    gate.until_waiting(1).await;
    for i in 1..5 {
        assert_eq!(ask(i).await.0, 202);
    }
    all_fetched(&app, QueueName::Refunds).await;
    let_them_gather().await;
    gate.open().await;

    for (i, (buyer, id)) in orders.iter().enumerate() {
        if i != 3 {
            app.wait_order(buyer, id, "refunded").await;
        }
    }
    let poisoned = app
        .scalar(&format!(
            "SELECT count(*) AS n FROM refunds WHERE order_id = '{}' AND status = 'succeeded'",
            orders[3].1
        ))
        .await;
    assert_eq!(poisoned, 0);
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM refunds WHERE status = 'succeeded'")
            .await,
        4
    );
    assert!(fallbacks(batcher) > before);
}

#[tokio::test(flavor = "multi_thread")]
async fn refund_starts_fall_back_to_one_by_one() {
    refunds_fall_back(
        "refund_starts",
        "NEW.status = 'processing' AND OLD.status <> 'processing'",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refund_finishes_fall_back_to_one_by_one() {
    refunds_fall_back(
        "refunds",
        "NEW.status = 'succeeded' AND OLD.status <> 'succeeded'",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn door_scans_fall_back_to_one_by_one() {
    let app = crate::routes::refunds::paying_app().await;
    let shop = app.shop(20, 1000).await;
    let (buyer, order) = crate::routes::refunds::paid_order(&app, &shop, 4).await;
    let tickets =
        crate::routes::check_ins::tickets_of(&app, &buyer, order["id"].as_str().unwrap()).await;
    poison(
        &app,
        "check_ins",
        "BEFORE INSERT",
        "true",
        "NEW.device = 'poison'",
    )
    .await;
    let before = fallbacks("door_scans");
    let scan = |i: usize, device: &'static str| {
        let (app, shop) = (&app, &shop);
        let code = tickets[i]["qr_payload"].as_str().unwrap().to_owned();
        async move {
            app.post(
                &format!("/v1/events/{}/check-ins", shop.event_id),
                json!({"code": code, "device": device}),
                Some(&shop.organizer),
            )
            .await
        }
    };

    // The batch in flight holds the gate; the next three gather behind it.
    let gate = Gate::close(&app).await;
    let (first, rest) = tokio::join!(scan(0, "gate 1"), async {
        gate.until_waiting(1).await;
        let rest = futures::future::join_all(
            [(1, "gate 2"), (2, "poison"), (3, "gate 3")].map(|(i, d)| scan(i, d)),
        );
        let gathered = async {
            let_them_gather().await;
            gate.open().await;
        };
        tokio::join!(rest, gathered).0
    });
    assert_eq!(first.0, 201, "{first:?}");
    let statuses: Vec<u16> = rest.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [201, 500, 201], "{rest:?}");
    assert_eq!(fallbacks("door_scans"), before + 1);
    assert_eq!(app.count("check_ins").await, 3);
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM tickets WHERE status = 'checked_in'")
            .await,
        3,
        "the poisoned scan's ticket was not admitted either"
    );
}
