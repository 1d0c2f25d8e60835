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
