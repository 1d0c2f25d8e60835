use boxoffice_core::Services;
use boxoffice_scheduler::LeaderLock;

use crate::harness::{app::test_config, smtp::SmtpSink};

#[tokio::test(flavor = "multi_thread")]
async fn one_leader_at_a_time_and_each_tick_fires_once() {
    let smtp = SmtpSink::start().await;
    let (config, db_url) = test_config(smtp.port).await;
    // The leader lock lives in Redis; the database is not needed.
    crate::harness::db::drop_database_blocking(db_url);
    let services = Services::connect(config).await.unwrap();
    let (a, b) = (
        LeaderLock::new(&services, "scheduler"),
        LeaderLock::new(&services, "scheduler"),
    );

    let (la, lb) = tokio::join!(a.acquire_or_renew(), b.acquire_or_renew());
    assert!(la ^ lb, "exactly one leader: {la} {lb}");
    let (leader, follower) = if la { (&a, &b) } else { (&b, &a) };
    assert!(leader.acquire_or_renew().await, "the leader renews");
    assert!(!follower.acquire_or_renew().await);

    let (ca, cb) = tokio::join!(
        a.claim_tick("email_sweep", 1_000),
        b.claim_tick("email_sweep", 1_000)
    );
    assert!(ca ^ cb, "a tick is claimed once: {ca} {cb}");
    assert!(a.claim_tick("email_sweep", 1_015).await);

    // Releasing hands leadership over; a follower's release does nothing.
    follower.release().await;
    assert!(leader.holder().await.is_some());
    leader.release().await;
    assert!(follower.acquire_or_renew().await);
    services.queues.purge_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn ended_events_are_completed_by_the_sweep() {
    let app = crate::harness::TestApp::spawn().await;
    let org = app.organizer("sweep@example.com").await;
    let ended = app.published_event(&org, serde_json::json!({})).await;
    let upcoming = app.published_event(&org, serde_json::json!({})).await;
    let ended_id = ended["id"].as_str().unwrap();
    // Cached while still published...
    app.get(&format!("/v1/events/{ended_id}"), None).await;
    app.sql(&format!(
        "UPDATE events SET starts_at = now() - interval '3 hours', ends_at = now() - interval '1 minute' WHERE id = '{ended_id}'"
    ))
    .await;

    let n = boxoffice_scheduler::run_sweep(&app.services, "event_completion")
        .await
        .unwrap();
    assert_eq!(n, 1);
    // ...and the page shows the new status at once.
    let (_, page) = app.get(&format!("/v1/events/{ended_id}"), None).await;
    assert_eq!(page["status"], "completed");
    let (_, other) = app
        .get(
            &format!("/v1/events/{}", upcoming["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(other["status"], "published");
    // Running it again changes nothing.
    assert_eq!(
        boxoffice_scheduler::run_sweep(&app.services, "event_completion")
            .await
            .unwrap(),
        0
    );
}

/// A full app whose sweeps take up what they find at once (no grace), with
/// a shop of 10 seats.
async fn recovering_shop() -> (crate::harness::TestApp, crate::harness::shop::Shop) {
    let app = crate::harness::TestApp::builder()
        .full()
        .with_config(|c| c.orders.recovery_grace = std::time::Duration::ZERO)
        .start()
        .await;
    let shop = app.shop(10, 1500).await;
    (app, shop)
}

/// A paid order's webhook was stored but its job lost (Redis emptied while
/// the payments queue was paused): the sweep pushes it again and the payment
/// is applied once.
#[tokio::test(flavor = "multi_thread")]
async fn a_stored_webhook_whose_job_was_lost_is_applied_by_the_sweep() {
    use std::time::Duration;

    use boxoffice_core::queue::QueueName;
    use redis::AsyncCommands;

    use crate::harness::eventually;

    let (app, shop) = recovering_shop().await;
    let (buyer, _, _) = app.register("late@example.com", "attendee").await;
    let (id, checkout) = app.reserved_checkout(&buyer, &shop, "k").await;

    let queues = &app.services.queues;
    queues.pause(QueueName::Payments).await.unwrap();
    eventually(Duration::from_secs(10), || async {
        let health = app.services.health.snapshot();
        (health[&QueueName::Payments].paused)
            .then_some(())
            .ok_or("payments still running".to_owned())
    })
    .await;
    app.settle(&checkout, "pay").await;
    eventually(Duration::from_secs(10), || async {
        let stored = app.count("webhook_inbox").await;
        (stored == 1)
            .then_some(())
            .ok_or(format!("{stored} stored"))
    })
    .await;
    // The job is lost.
    let mut redis = queues.connection();
    let list = queues
        .storage_config(QueueName::Payments)
        .active_jobs_list();
    let lost: usize = redis.del(&list).await.unwrap();
    assert_eq!(lost, 1, "the job was waiting");
    queues.resume(QueueName::Payments).await.unwrap();

    let pushed = boxoffice_scheduler::run_sweep(&app.services, "unapplied_webhooks")
        .await
        .unwrap();
    assert_eq!(pushed, 1);
    app.wait_order(&buyer, &id, "paid").await;
    assert_eq!(app.count("payments").await, 1);
    eventually(Duration::from_secs(10), || async {
        let left = boxoffice_scheduler::run_sweep(&app.services, "unapplied_webhooks")
            .await
            .unwrap();
        (left == 0)
            .then_some(())
            .ok_or(format!("{left} still unapplied"))
    })
    .await;
}

/// A refund row left `requested` (its job lost) is sent by the sweep, and
/// finished once: succeeded, posted to the ledger, the order refunded, the
/// buyer told.
#[tokio::test(flavor = "multi_thread")]
async fn an_open_refund_is_finished_by_the_sweep() {
    use std::time::Duration;

    use crate::harness::eventually;

    let (app, shop) = recovering_shop().await;
    let (buyer, _, _) = app.register("refund@example.com", "attendee").await;
    let (id, checkout) = app.reserved_checkout(&buyer, &shop, "k").await;
    app.settle(&checkout, "pay").await;
    app.wait_order(&buyer, &id, "paid").await;
    // A refund whose job never ran.
    app.sql(&format!(
        "INSERT INTO refunds (id, order_id, payment_id, amount_minor, currency, reason, status, idempotency_key, kind)
         SELECT gen_random_uuid(), order_id, id, amount_minor, currency, 'requested by the buyer', 'requested', 'test:' || id, 'order'
           FROM payments WHERE order_id = '{id}'"
    ))
    .await;

    let pushed = boxoffice_scheduler::run_sweep(&app.services, "open_refunds")
        .await
        .unwrap();
    assert_eq!(pushed, 1);
    eventually(Duration::from_secs(20), || async {
        let done = app
            .scalar("SELECT count(*) AS n FROM refunds WHERE status = 'succeeded'")
            .await;
        (done == 1).then_some(()).ok_or("not yet".to_owned())
    })
    .await;
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM email_log WHERE template = 'refund_notice'")
            .await,
        1
    );
    assert_eq!(
        app.scalar(
            "SELECT count(*) AS n FROM ledger_entries WHERE refund_id IS NOT NULL AND amount_minor <> 0"
        )
        .await,
        2,
        "the refund's two legs"
    );
    app.wait_order(&buyer, &id, "refunded").await;
    crate::routes::refunds::ledger_checks(&app).await;
    assert_eq!(
        boxoffice_scheduler::run_sweep(&app.services, "open_refunds")
            .await
            .unwrap(),
        0,
        "nothing left open"
    );
}

/// The `cancelled_events` sweep resumes a cancellation whose fan-out
/// stopped (nothing written for the recovery grace) and leaves a live one
/// alone: a second fan-out beside it would only take turns with it at the
/// event's lock.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_cancellation_is_resumed_and_a_live_one_left_alone() {
    use boxoffice_core::queue::QueueName;

    // No refunds worker: the fan-out the cancel request pushes never runs.
    let app = crate::harness::TestApp::builder()
        .full()
        .with_config(|c| {
            c.orders.recovery_grace = std::time::Duration::from_secs(30);
            c.workers.queues = QueueName::ALL
                .into_iter()
                .filter(|q| *q != QueueName::Refunds)
                .collect();
        })
        .start()
        .await;
    let shop = app.shop(10, 1500).await;
    let (buyer, _, _) = app.register("stopped@example.com", "attendee").await;
    let mut orders = Vec::new();
    for key in ["a", "b"] {
        let (id, checkout) = app.reserved_checkout(&buyer, &shop, key).await;
        app.settle(&checkout, "pay").await;
        app.wait_order(&buyer, &id, "paid").await;
        orders.push(id);
    }
    let (status, body) = app
        .post(
            &format!("/v1/events/{}/cancel", shop.event_id),
            serde_json::json!({"message": "Rained out."}),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let sweep = || async {
        boxoffice_scheduler::run_sweep(&app.services, "cancelled_events")
            .await
            .unwrap()
    };
    assert_eq!(
        sweep().await,
        0,
        "cancelled within the grace: its fan-out runs"
    );
    app.sql(&format!(
        "UPDATE events SET cancelled_at = now() - interval '1 hour' WHERE id = '{}'",
        shop.event_id
    ))
    .await;
    assert_eq!(sweep().await, 1, "nothing written since: resumed");

    // A fan-out that wrote a refund a moment ago is alive.
    app.sql(&format!(
        "INSERT INTO refunds (id, order_id, payment_id, amount_minor, currency, reason, status, idempotency_key, kind)
         SELECT gen_random_uuid(), order_id, id, amount_minor, currency, 'event_cancelled', 'requested', 'event_cancelled:' || order_id, 'event_cancelled'
           FROM payments WHERE order_id = '{}'",
        orders[0]
    ))
    .await;
    assert_eq!(sweep().await, 0, "a fan-out wrote within the grace");
    app.sql("UPDATE refunds SET created_at = now() - interval '1 hour'")
        .await;
    assert_eq!(sweep().await, 1, "and stopped since: resumed");
}
