use std::time::Duration;

use boxoffice_core::{
    jobs::SendEmail,
    models::{EmailRow, NewEmail},
    queue::Schedule,
};
use boxoffice_workers::{Perform, WorkerCtx};
use serde_json::json;

use crate::harness::{TestApp, eventually, proxy::Proxy};

async fn record_email(app: &TestApp, to: &str) -> uuid::Uuid {
    let (_, _, user_id) = app.register(to, "attendee").await;
    let mut conn = app.services.db.get().await.unwrap();
    let token_id = uuid::Uuid::now_v7();
    NewEmail {
        id: uuid::Uuid::now_v7(),
        dedupe_key: &format!("test:{token_id}"),
        template: "verify_email",
        to_address: to,
        user_id: Some(user_id.parse().unwrap()),
        params: json!({"token_id": token_id, "display_name": "Test"}),
    }
    .insert(&mut conn)
    .await
    .unwrap()
    .expect("new email")
}

/// Messages the SMTP server received of this email (its id is in the
/// `Message-ID`).
fn copies(app: &TestApp, email_id: uuid::Uuid) -> usize {
    let id = email_id.to_string();
    app.smtp
        .messages()
        .iter()
        .filter(|m| m.raw.windows(id.len()).any(|w| w == id.as_bytes()))
        .count()
}

/// Waits until the email's row is `sent`; returns the row.
async fn wait_sent(app: &TestApp, email_id: uuid::Uuid, within: Duration) -> EmailRow {
    eventually(within, || async {
        let mut conn = app.services.db.get().await.unwrap();
        let row = EmailRow::find(&mut conn, email_id).await.unwrap().unwrap();
        if row.status == "sent" {
            Ok(row)
        } else {
            Err(format!(
                "email {email_id} is {} ({:?})",
                row.status, row.last_error
            ))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn running_the_job_twice_sends_once() {
    let app = TestApp::spawn().await;
    let email_id = record_email(&app, "mo@example.com").await;
    // Two worker processes, each batching its own claims.
    let ctx = WorkerCtx::new(app.services.clone()).unwrap();
    let other = WorkerCtx::new(app.services.clone()).unwrap();
    let job = SendEmail { email_id };

    // Concurrently (twice in one process's batch, once in the other's) and
    // then again: one claim wins, the rest find nothing to do.
    let (a, b, c) = tokio::join!(
        job.perform(&ctx, 1),
        job.perform(&ctx, 1),
        job.perform(&other, 1)
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    job.perform(&ctx, 2).await.unwrap();

    assert_eq!(copies(&app, email_id), 1);
    let id = email_id.to_string();
    assert!(app.smtp.messages().iter().any(|m| {
        m.to == ["mo@example.com"] && m.raw.windows(id.len()).any(|w| w == id.as_bytes())
    }));
    let mut conn = app.services.db.get().await.unwrap();
    let row = EmailRow::find(&mut conn, email_id).await.unwrap().unwrap();
    assert_eq!(row.status, "sent");
    assert_eq!(row.attempts, 1);
    assert_eq!(
        row.message_id.as_deref(),
        Some(format!("<{email_id}@boxoffice>").as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweep_sends_an_email_whose_job_was_lost() {
    let app = TestApp::builder().full().start().await;
    // Written, but its job never pushed (Redis was down at the time).
    let email_id = record_email(&app, "ned@example.com").await;
    // Pretend it was written two minutes ago, past the sweep's grace period.
    {
        use boxoffice_core::schema::email_log;
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        let mut conn = app.services.db.get().await.unwrap();
        diesel::update(email_log::table.find(email_id))
            .set((
                email_log::created_at.eq(chrono::Utc::now() - chrono::Duration::minutes(2)),
                email_log::due_at.eq(chrono::Utc::now() - chrono::Duration::minutes(2)),
            ))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    // Its idempotency key was even taken by a push that got lost.
    app.services
        .queues
        .push(
            &SendEmail { email_id },
            Schedule::after(Duration::from_secs(3600)),
        )
        .await
        .unwrap();

    let handled = boxoffice_scheduler::run_sweep(&app.services, "email_sweep")
        .await
        .unwrap();
    assert!(handled >= 1);
    wait_sent(&app, email_id, Duration::from_secs(15)).await;
    // One waiting out the SMTP server's deferral is not lost, however old.
    let deferred = record_email(&app, "nia@example.com").await;
    {
        use boxoffice_core::schema::email_log;
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        let mut conn = app.services.db.get().await.unwrap();
        diesel::update(email_log::table.find(deferred))
            .set((
                email_log::status.eq("sending"),
                email_log::created_at.eq(chrono::Utc::now() - chrono::Duration::minutes(2)),
            ))
            .execute(&mut conn)
            .await
            .unwrap();
        let n = EmailRow::mark_for_retry(
            &mut conn,
            deferred,
            "451 try again later",
            chrono::Duration::minutes(10),
        )
        .await
        .unwrap();
        assert_eq!(n, 1);
    }
    // Nothing left for the next sweep.
    assert_eq!(
        boxoffice_scheduler::run_sweep(&app.services, "email_sweep")
            .await
            .unwrap(),
        0
    );
}

/// apalis drops the futures of its jobs in flight when its stream fails
/// (Redis gone): a job must still run to its end, or an email the SMTP
/// server accepted stays `sending` and goes again once its claim runs out.
#[tokio::test(flavor = "multi_thread")]
async fn an_email_in_flight_when_redis_goes_away_is_marked_sent_and_sent_once() {
    use boxoffice_core::queue::QueueName;
    let proxy = Proxy::to_redis().await;
    let port = proxy.port;
    let app = TestApp::builder()
        .full()
        .with_config(move |c| c.redis.url = format!("redis://127.0.0.1:{port}"))
        .start()
        .await;
    let email_id = record_email(&app, "ida@example.com").await;
    // The server takes the message but does not confirm it yet.
    app.smtp.hold_replies(true);
    app.services
        .queues
        .push(&SendEmail { email_id }, Schedule::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(10), || async {
        match copies(&app, email_id) {
            0 => Err("the message never reached the server".to_owned()),
            _ => Ok(()),
        }
    })
    .await;

    proxy.down();
    eventually(Duration::from_secs(10), || async {
        let health = app.services.health.snapshot();
        match health.get(&QueueName::Emails) {
            Some(s) if !s.running || s.restarts > 0 => Ok(()),
            _ => Err(format!("the worker never noticed the outage: {health:?}")),
        }
    })
    .await;
    app.smtp.hold_replies(false);

    // Redis is still down: the job's own end writes it down.
    wait_sent(&app, email_id, Duration::from_secs(10)).await;
    proxy.up();
    assert_eq!(copies(&app, email_id), 1);
}

/// A server that answers "try again later" (4xx) is waited for with
/// re-pushes of the job, not the delivery's few quick retries: the email
/// goes once the server takes it, and nothing lands in the dead set.
#[tokio::test(flavor = "multi_thread")]
async fn an_email_the_server_defers_is_tried_again_until_it_goes() {
    use boxoffice_core::queue::QueueName;
    let app = TestApp::builder().full().start().await;
    let email_id = record_email(&app, "uma@example.com").await;
    // The registration's own email gone first.
    app.smtp
        .wait_for("uma@example.com", "", Duration::from_secs(10))
        .await;
    app.smtp
        .refuse("uma@example.com", "451 4.3.0 try again later", 3);
    app.services
        .queues
        .push(&SendEmail { email_id }, Schedule::default())
        .await
        .unwrap();
    // 1 s, 2 s and 4 s apart.
    let row = wait_sent(&app, email_id, Duration::from_secs(20)).await;
    // Three refusals: on a reused connection the relay tries a fresh one
    // within the attempt, so two or three attempts were deferred.
    assert!((3..=4).contains(&row.attempts), "{}", row.attempts);
    assert_eq!(row.last_error, None);
    assert_eq!(copies(&app, email_id), 1);
    assert!(
        app.services
            .queues
            .dead_jobs(QueueName::Emails)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Plain SMTP goes over the relay's own connections: one is reused from
/// message to message, and one the server closed while idle is replaced
/// without losing or doubling the message.
#[tokio::test(flavor = "multi_thread")]
async fn emails_reuse_one_connection_and_survive_the_server_closing_it() {
    let app = TestApp::spawn().await;
    let ctx = WorkerCtx::new(app.services.clone()).unwrap();
    let sent_to = |to: &str| app.smtp.count_to(to);

    for to in ["a@example.com", "b@example.com", "c@example.com"] {
        let email_id = record_email(&app, to).await;
        SendEmail { email_id }.perform(&ctx, 1).await.unwrap();
        assert_eq!(sent_to(to), 1);
    }
    assert_eq!(app.smtp.sessions(), 1, "one connection for all three");

    app.smtp.hang_up();
    let email_id = record_email(&app, "d@example.com").await;
    SendEmail { email_id }.perform(&ctx, 1).await.unwrap();
    assert_eq!(sent_to("d@example.com"), 1);
    assert_eq!(app.smtp.sessions(), 2, "a new connection after the hang-up");
    let mut conn = app.services.db.get().await.unwrap();
    let row = EmailRow::find(&mut conn, email_id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 1));
}
