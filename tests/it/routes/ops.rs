//! Ops: queue stats reflect real jobs in every state, dead jobs are retried
//! once their cause is fixed, pause holds work back, only admins get in;
//! /metrics parses and moves; edge rate limits answer 429.

use std::{collections::HashMap, time::Duration};

use boxoffice_core::queue::Schedule;
use boxoffice_workers::{WorkerCtx, run_queue};
use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::{
    harness::{TestApp, eventually},
    queue::{Behaviour, Probe},
};

async fn webhooks_queue(app: &TestApp, admin: &str) -> Value {
    let (status, all) = app.get("/v1/ops/queues", Some(admin)).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all.as_array().unwrap().len(), 6, "every queue is listed");
    all.as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "webhooks")
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_show_every_state_and_dead_jobs_are_retried_once_fixed() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let queues = &app.services.queues;
    // A worker for the probe queue (webhooks), as a workers process runs it.
    let (stop, rx) = tokio::sync::watch::channel(false);
    let ctx = WorkerCtx::new(app.services.clone()).unwrap();
    let worker = tokio::spawn(run_queue::<Probe>(ctx, 4, rx));

    for id in ["broken-1", "broken-2"] {
        queues
            .push(
                &Probe {
                    id: id.into(),
                    behaviour: Behaviour::FailUntilFixed,
                },
                Schedule::now(),
            )
            .await
            .unwrap();
    }
    queues
        .push(
            &Probe {
                id: "fine".into(),
                behaviour: Behaviour::Succeed,
            },
            Schedule::now(),
        )
        .await
        .unwrap();
    let q = eventually(Duration::from_secs(20), || async {
        let q = webhooks_queue(&app, &admin).await;
        if q["dead"] == 2 && q["done"] == 1 {
            Ok(q)
        } else {
            Err(q.to_string())
        }
    })
    .await;
    assert_eq!(q["workers"], 1);
    assert_eq!(q["worker_heartbeats"][0]["alive"], true);
    // Throughput is counted per minute (flushed every second).
    eventually(Duration::from_secs(5), || async {
        let q = webhooks_queue(&app, &admin).await;
        let last = q["per_minute"].as_array().unwrap().last().unwrap().clone();
        if last["done"] == 1 && last["failed"] == 2 {
            Ok(())
        } else {
            Err(q["per_minute"].to_string())
        }
    })
    .await;

    // Paused: the worker stops taking jobs; new ones wait, delayed ones too.
    let (status, paused) = app
        .post("/v1/ops/queues/webhooks/pause", json!({}), Some(&admin))
        .await;
    assert_eq!((status, paused["paused"].as_bool()), (200, Some(true)));
    eventually(Duration::from_secs(5), || async {
        let q = webhooks_queue(&app, &admin).await;
        if q["workers"] == 0 {
            Ok(())
        } else {
            Err(q.to_string())
        }
    })
    .await;
    for i in 0..3 {
        queues
            .push(
                &Probe {
                    id: format!("waiting-{i}"),
                    behaviour: Behaviour::Succeed,
                },
                Schedule::now(),
            )
            .await
            .unwrap();
    }
    for i in 0..2 {
        queues
            .push(
                &Probe {
                    id: format!("later-{i}"),
                    behaviour: Behaviour::Succeed,
                },
                Schedule::after(Duration::from_secs(600)),
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let q = webhooks_queue(&app, &admin).await;
    assert_eq!(
        (q["pending"].as_u64(), q["scheduled"].as_u64()),
        (Some(3), Some(2)),
        "{q}"
    );
    assert_eq!(q["paused"], true);
    assert!(q["oldest_pending_age_secs"].as_f64().unwrap() >= 1.0, "{q}");
    let (_, pending) = app
        .get("/v1/ops/queues/webhooks/jobs?status=pending", Some(&admin))
        .await;
    assert_eq!(pending.as_array().unwrap().len(), 3);
    let (_, scheduled) = app
        .get(
            "/v1/ops/queues/webhooks/jobs?status=scheduled",
            Some(&admin),
        )
        .await;
    assert_eq!(scheduled.as_array().unwrap().len(), 2);
    assert!(scheduled[0]["run_at_ms"].as_u64().is_some());
    // Readiness treats a paused queue as intended, not broken.
    assert_eq!(app.get("/readyz", None).await.0, 200);

    // The dead jobs, with their last error.
    let (_, dead) = app
        .get("/v1/ops/queues/webhooks/jobs?status=dead", Some(&admin))
        .await;
    let dead = dead.as_array().unwrap().clone();
    assert_eq!(dead.len(), 2);
    assert!(
        dead[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("broken until fixed"),
        "{dead:?}"
    );
    let ids: HashMap<String, String> = dead
        .iter()
        .map(|j| {
            (
                j["payload"]["id"].as_str().unwrap().to_owned(),
                j["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();

    // Fix the cause, resume, retry one, discard the other.
    let _: () = app
        .services
        .queues
        .connection()
        .set(format!("{}-probe-fixed", queues.namespace()), 1)
        .await
        .unwrap();
    let (status, _) = app
        .post("/v1/ops/queues/webhooks/resume", json!({}), Some(&admin))
        .await;
    assert_eq!(status, 200);
    let (status, retried) = app
        .post(
            &format!("/v1/ops/queues/webhooks/jobs/{}/retry", ids["broken-1"]),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!((status, retried["count"].as_u64()), (200, Some(1)));
    let (status, _) = app
        .post(
            &format!("/v1/ops/queues/webhooks/jobs/{}/discard", ids["broken-2"]),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post(
            &format!("/v1/ops/queues/webhooks/jobs/{}/discard", ids["broken-2"]),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 404, "gone for good");
    let q = eventually(Duration::from_secs(20), || async {
        let q = webhooks_queue(&app, &admin).await;
        if q["dead"] == 0 && q["pending"] == 0 && q["done"] == 5 {
            Ok(q)
        } else {
            Err(q.to_string())
        }
    })
    .await;
    assert_eq!(q["scheduled"], 2);
    let _ = stop.send(true);
    let _ = worker.await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_reach_ops_and_the_board_is_served_by_the_binary() {
    let app = TestApp::spawn().await;
    let (attendee, _, _) = app.register("curious@example.com", "attendee").await;
    let organizer = app.organizer("org-ops@example.com").await;
    let routes: [(&str, &str); 7] = [
        ("GET", "/v1/ops/queues"),
        ("GET", "/v1/ops/queues/emails"),
        ("GET", "/v1/ops/queues/emails/jobs?status=dead"),
        ("POST", "/v1/ops/queues/emails/jobs/x/retry"),
        ("POST", "/v1/ops/queues/emails/jobs/x/discard"),
        ("POST", "/v1/ops/queues/emails/pause"),
        ("POST", "/v1/ops/queues/emails/resume"),
    ];
    for (method, path) in routes {
        for (token, expected) in [(None, 401), (Some(&attendee), 403), (Some(&organizer), 403)] {
            let mut req = app.client.request(method.parse().unwrap(), app.url(path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let (status, _) = app.send(req).await;
            assert_eq!(status, expected, "{method} {path}");
        }
    }
    assert!(
        !app.services
            .queues
            .is_paused(boxoffice_core::queue::QueueName::Emails)
            .await
            .unwrap()
    );
    let admin = app.admin().await;
    let (status, _) = app.get("/v1/ops/queues/nope", Some(&admin)).await;
    assert_eq!(status, 404);
    let (status, problem) = app
        .get("/v1/ops/queues/emails/jobs?status=weird", Some(&admin))
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("status"))
    );

    let page = app.client.get(app.url("/ops/board")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("/ops/board.js") && !html.contains("https://"),
        "no CDN"
    );
    let js = app
        .client
        .get(app.url("/ops/board.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(js.contains("/v1/ops/queues"));
}

/// Samples of one metric family, by label string.
fn samples(text: &str, name: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        let (metric, labels) = series
            .split_once('{')
            .map_or((series, ""), |(m, l)| (m, l.trim_end_matches('}')));
        if metric == name {
            out.insert(labels.to_owned(), value);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_parse_and_move_when_work_happens() {
    let app = TestApp::builder().full().start().await;
    let scrape = || async {
        let response = app.client.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .contains("openmetrics-text")
        );
        let text = response.text().await.unwrap();
        assert!(text.trim_end().ends_with("# EOF"));
        text
    };
    let before = scrape().await;
    // Every line is a comment or `name{labels} value`.
    samples(&before, "boxoffice_http_requests_total");

    let shop = app.shop(5, 1000).await;
    let (buyer, _, _) = app.register("metrics@example.com", "attendee").await;
    let (_, order) = app
        .order(
            &buyer,
            &shop.event_id,
            "m",
            json!({"items": [{"tier_id": shop.tier_id, "quantity": 2}]}),
        )
        .await;
    app.wait_order(&buyer, order["id"].as_str().unwrap(), "awaiting_payment")
        .await;

    let after = scrape().await;
    let requests = samples(&after, "boxoffice_http_requests_total");
    let key = requests
        .keys()
        .find(|k| k.contains("route=\"/v1/events/{id}/orders\"") && k.contains("status=\"202\""))
        .unwrap_or_else(|| panic!("no order requests counted: {requests:?}"));
    assert_eq!(requests[key], 1.0);
    assert!(
        samples(&after, "boxoffice_http_request_duration_seconds_count")
            .keys()
            .any(|k| k.contains("/v1/events/{id}/orders"))
    );
    let orders = samples(&after, "boxoffice_orders");
    assert_eq!(orders["status=\"awaiting_payment\""], 1.0);
    assert_eq!(samples(&after, "boxoffice_seats")["state=\"held\""], 2.0);
    // The order shows its new state at the commit; the job is counted when
    // its handler returns, a moment later.
    eventually(Duration::from_secs(5), || async {
        let jobs = samples(&scrape().await, "boxoffice_jobs_total");
        jobs.iter()
            .any(|(k, v)| {
                k.contains("queue=\"purchases\"") && k.contains("outcome=\"ok\"") && *v >= 1.0
            })
            .then_some(())
            .ok_or(format!("{jobs:?}"))
    })
    .await;
    let provider = samples(&after, "boxoffice_provider_requests_total");
    assert!(
        provider
            .keys()
            .any(|k| k.contains("operation=\"checkout\"")),
        "{provider:?}"
    );
    assert!(
        samples(&after, "boxoffice_queue_jobs")
            .contains_key("queue=\"purchases\",state=\"pending\"")
    );

    // A forged webhook is counted.
    let (status, _) = app
        .send(
            app.client
                .post(app.url("/v1/webhooks/payments/sandbox"))
                .json(&json!({})),
        )
        .await;
    assert_eq!(status, 401);
    let forged = samples(
        &scrape().await,
        "boxoffice_webhook_signature_failures_total",
    );
    assert!(forged.values().any(|v| *v >= 1.0), "{forged:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn edge_rate_limits_answer_429_with_retry_after() {
    let app = TestApp::builder()
        .with_config(|c| c.http.ip_rate_limit = 5)
        .start()
        .await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = app.client.get(app.url("/v1/events")).send().await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], "rate_limited");
        }
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 200, 429]);
    // Health and webhooks are not counted against clients.
    assert_eq!(app.get("/healthz", None).await.0, 200);
    // Security headers on every answer.
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
}

#[tokio::test(flavor = "multi_thread")]
async fn per_user_limits_apply_across_ips_and_cors_follows_config() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.http.user_rate_limit = 3;
            c.http.cors_origins = vec!["https://shop.example".into()];
        })
        .start()
        .await;
    let (token, _, _) = app.register("limited@example.com", "attendee").await;
    // The scheme is case-insensitive for the limiter as for the API: a
    // lower-case `bearer` is the same caller, not a way around the budget.
    let mut statuses = Vec::new();
    for scheme in ["Bearer", "bearer", "BEARER", "bearer"] {
        let response = app
            .client
            .get(app.url("/v1/auth/me"))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/events"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let other = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}
