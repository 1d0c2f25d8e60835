use std::time::Duration;

use crate::harness::{TestApp, eventually, proxy::Proxy};

#[tokio::test(flavor = "multi_thread")]
async fn readyz_fails_while_redis_is_down_and_recovers() {
    let proxy = Proxy::to_redis().await;
    let port = proxy.port;
    let app = TestApp::builder()
        .with_config(move |c| c.redis.url = format!("redis://127.0.0.1:{port}"))
        .start()
        .await;

    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.get("/healthz", None).await.0, 200);

    proxy.down();
    // A readiness report, not a problem: read it raw.
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["redis"], false);
    assert_eq!(body["postgres"], true);
    // Liveness is about the process, not its dependencies.
    assert_eq!(app.get("/healthz", None).await.0, 200);

    proxy.up();
    eventually(Duration::from_secs(20), || async {
        let response = app.client.get(app.url("/readyz")).send().await.unwrap();
        if response.status() == 200 {
            Ok(())
        } else {
            Err(format!("readyz still {}", response.status()))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_stopped_by_a_redis_outage_shows_not_ready_and_is_restarted() {
    use boxoffice_core::queue::QueueName;
    let proxy = Proxy::to_redis().await;
    let port = proxy.port;
    let app = TestApp::builder()
        .full()
        .with_config(move |c| c.redis.url = format!("redis://127.0.0.1:{port}"))
        .start()
        .await;
    let ready = |app: &TestApp| {
        let request = app.client.get(app.url("/readyz"));
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    eventually(Duration::from_secs(10), || async {
        let report = ready(&app).await;
        if report["workers"] == true {
            Ok(())
        } else {
            Err(format!("workers never came up: {report}"))
        }
    })
    .await;

    proxy.down();
    eventually(Duration::from_secs(30), || async {
        let health = app.services.health.snapshot();
        match health.get(&QueueName::Emails) {
            Some(s) if !s.running || s.restarts > 0 => Ok(()),
            _ => Err(format!("worker never noticed the outage: {health:?}")),
        }
    })
    .await;
    let report = ready(&app).await;
    assert_eq!(report["ready"], false, "{report}");

    proxy.up();
    eventually(Duration::from_secs(30), || async {
        let report = ready(&app).await;
        if report["ready"] == true {
            Ok(())
        } else {
            Err(format!("never recovered: {report}"))
        }
    })
    .await;
    let emails = &app.services.health.snapshot()[&QueueName::Emails];
    assert!(emails.running && emails.restarts >= 1, "{emails:?}");
}
