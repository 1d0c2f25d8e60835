//! A tiny hot drop through the benchmark's own code, so it cannot rot: the
//! real app (workers, sandbox auto-paying), a few seats, more buyers.

use std::time::Duration;

use boxoffice_bench::hot_drop::{Params, Target, run};
use boxoffice_core::config::AutoOutcome;

use crate::harness::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn a_small_hot_drop_sells_every_seat_once() {
    let app = TestApp::builder()
        .full()
        .with_config(|c| c.sandbox.auto = Some((AutoOutcome::Pay, Duration::from_millis(50))))
        .start()
        .await;
    let target = Target {
        api_url: app.url(""),
        db: app.services.db.clone(),
        jwt_secret: app.services.config.auth.jwt_secret.clone(),
        pid: Some(std::process::id()),
    };
    let report = run(
        &target,
        &Params {
            seats: 12,
            // Two tiers: the stadium profile's split, small.
            tiers: 2,
            buyers: 60,
            concurrency: 16,
            // Paced (the latency run's mode): 60 arrivals over half a second.
            rate: Some(120.0),
            reservation_ttl: app.services.config.orders.reservation_ttl,
            settle_timeout: Duration::from_secs(60),
            // A small one, so the warm-up path runs too.
            warmup_buyers: 20,
        },
    )
    .await
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    // The warm-up sale ran first, on its own event: every figure below is
    // the measured drop's alone.
    assert_eq!(report.warmup_buyers, 20);
    assert_eq!(report.post_latency_ms.count, 60);
    // The arrivals are scheduled within the first half second.
    let seconds: Vec<(u32, usize)> = report
        .post_latency_by_second
        .iter()
        .map(|s| (s.second, s.count))
        .collect();
    assert_eq!(seconds, vec![(0, 60)]);
    assert!(
        report.post_wall_secs >= 59.0 / 120.0,
        "{}",
        report.post_wall_secs
    );
    assert!(!report.oversold);
    // Orders are for 1 or 2 seats: the last seat may go unsold only if every
    // later order wanted two.
    assert!((11..=12).contains(&report.seats_sold), "{report:?}");
    assert_eq!(report.seats_held_after, 0);
    assert_eq!(report.emails_sent, report.paid_orders);
    assert_eq!(report.tiers, 2);
    // The last confirmation went after the last payment.
    let lag = report
        .last_payment_to_last_email_ms
        .expect("emails were sent");
    assert!(lag >= 0.0, "{lag}");
    assert!(report.paid_orders > 0 && report.time_to_paid_ms.count as i64 == report.paid_orders);
    assert_eq!(report.time_to_decided_ms.count, 60);
    let statuses: Vec<&str> = report
        .orders_by_status
        .iter()
        .map(|(s, _)| s.as_str())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == "paid" || *s == "rejected"),
        "{statuses:?}"
    );
    assert!(report.peak_rss_mb.unwrap() > 0.0);
}

/// The reminders benchmark, small: the real scheduler loop picks the moved
/// event up on its own tick and every holder gets one reminder.
#[tokio::test(flavor = "multi_thread")]
async fn a_small_reminders_run_reminds_every_holder_once() {
    let app = TestApp::builder()
        .full()
        .with_config(|c| c.sandbox.auto = Some((AutoOutcome::Pay, Duration::from_millis(50))))
        .start()
        .await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheduler = tokio::spawn(boxoffice_scheduler::run(app.services.clone(), stopped));
    let target = Target {
        api_url: app.url(""),
        db: app.services.db.clone(),
        jwt_secret: app.services.config.auth.jwt_secret.clone(),
        pid: Some(std::process::id()),
    };
    let run = boxoffice_bench::reminders::measure(&target, &app.smtp, 300)
        .await
        .unwrap();
    stop.send(true).unwrap();
    scheduler.await.unwrap();
    assert_eq!(run.holders, 300);
    assert_eq!(run.reminders_sent, 300);
    assert_eq!(run.reminded_twice, 0);
    assert!(run.reminders_per_sec > 0.0);
    // The other entries' ticks were read from the server's metrics.
    assert!(run.other_ticks > 0, "{run:?}");
    assert!(run.other_ticks_worst_bucket > 0.0, "{run:?}");
}
