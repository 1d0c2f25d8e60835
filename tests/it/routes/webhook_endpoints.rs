//! Outgoing webhooks end to end: endpoints registered over the API, the
//! outbox written by the change itself, the relay and the `webhooks` queue
//! delivering to a local receiver over real HTTP, signatures checked,
//! retries, disabling, redelivery, rotation, the SSRF guard, and a slow
//! endpoint that must not hold the others up.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use boxoffice_core::payments::signature;
use serde_json::{Value, json};

use crate::{
    harness::{TestApp, blames, eventually},
    routes::refunds::paid_order,
};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Got {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    at: Instant,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Checks the Standard Webhooks signature against `secrets`.
    fn verifies_with(&self, secret: &str) -> bool {
        let key = signature::decode_secret(secret).unwrap();
        signature::verify(
            &[key],
            Some(&self.id),
            Some(&self.timestamp),
            Some(&self.signature),
            &self.body,
            chrono::Utc::now().timestamp(),
            300,
        )
        .is_ok()
    }
}

#[derive(Default)]
struct Inner {
    got: Vec<Got>,
    /// Answers to give before the default 200: (status, delay).
    script: VecDeque<(u16, Duration)>,
    /// Every answer waits this long (a slow receiver).
    delay: Duration,
    in_flight: usize,
    max_in_flight: usize,
}

/// A local webhook receiver over real HTTP.
#[derive(Clone)]
pub(crate) struct Receiver {
    inner: Arc<Mutex<Inner>>,
    pub(crate) url: String,
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let router = Router::new().fallback(receive).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            inner,
            url: format!("http://127.0.0.1:{}/hooks", addr.port()),
        }
    }

    fn answer(&self, status: u16, delay: Duration) {
        self.inner.lock().unwrap().script.push_back((status, delay));
    }

    fn slow(&self, delay: Duration) {
        self.inner.lock().unwrap().delay = delay;
    }

    fn got(&self) -> Vec<Got> {
        self.inner.lock().unwrap().got.clone()
    }

    fn max_in_flight(&self) -> usize {
        self.inner.lock().unwrap().max_in_flight
    }

    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Got> {
        eventually(Duration::from_secs(20), || async {
            let got = self.got();
            if got.len() >= n {
                Ok(got)
            } else {
                Err(format!("{} of {n} requests", got.len()))
            }
        })
        .await
    }
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (status, delay) = {
        let mut inner = inner.lock().unwrap();
        inner.got.push(Got {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body: body.to_vec(),
            at: Instant::now(),
        });
        inner.in_flight += 1;
        inner.max_in_flight = inner.max_in_flight.max(inner.in_flight);
        let base = inner.delay;
        inner
            .script
            .pop_front()
            .map_or((200, base), |(s, d)| (s, d + base))
    };
    tokio::time::sleep(delay).await;
    inner.lock().unwrap().in_flight -= 1;
    StatusCode::from_u16(status).unwrap()
}

/// The scheduler's relay, every 100 ms, for as long as the guard lives.
pub(crate) struct Relay(tokio::task::JoinHandle<()>);

impl Drop for Relay {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) fn relay(app: &TestApp) -> Relay {
    let services = app.services.clone();
    Relay(tokio::spawn(async move {
        loop {
            let _ = boxoffice_scheduler::run_sweep(&services, "webhook_relay").await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }))
}

/// Workers and the sandbox paying every checkout; loopback receivers
/// allowed; retries 1 s apart.
async fn hooked_app(tweak: impl FnOnce(&mut boxoffice_core::config::Config) + 'static) -> TestApp {
    TestApp::builder()
        .full()
        .with_config(|c| {
            c.sandbox.auto = Some((
                boxoffice_core::config::AutoOutcome::Pay,
                Duration::from_millis(50),
            ));
            c.webhooks.allow_loopback = true;
            c.webhooks.retry_schedule = vec![Duration::from_secs(1); 2];
            c.webhooks.timeout = Duration::from_secs(1);
            tweak(c);
        })
        .start()
        .await
}

async fn register(app: &TestApp, token: &str, url: &str, types: &[&str]) -> Value {
    let (status, endpoint) = app
        .post(
            "/v1/organizer/webhook-endpoints",
            json!({"url": url, "event_types": types, "description": "our CRM"}),
            Some(token),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");
    endpoint
}

async fn ping(app: &TestApp, token: &str, endpoint: &Value) -> Value {
    let (status, delivery) = app
        .post(
            &format!(
                "/v1/organizer/webhook-endpoints/{}/test",
                endpoint["id"].as_str().unwrap()
            ),
            json!({}),
            Some(token),
        )
        .await;
    assert_eq!(status, 202, "{delivery}");
    delivery
}

async fn delivery(app: &TestApp, token: &str, endpoint: &Value, id: &str) -> Value {
    let (status, page) = app
        .get(
            &format!(
                "/v1/organizer/webhook-endpoints/{}/deliveries?limit=100",
                endpoint["id"].as_str().unwrap()
            ),
            Some(token),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no delivery {id} in {page}"))
}

async fn wait_delivery(
    app: &TestApp,
    token: &str,
    endpoint: &Value,
    id: &str,
    status: &str,
) -> Value {
    eventually(Duration::from_secs(20), || async {
        let d = delivery(app, token, endpoint, id).await;
        if d["status"] == status {
            Ok(d)
        } else {
            Err(d.to_string())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sale_and_its_check_in_reach_the_organizers_endpoint_signed_from_the_outbox() {
    let app = hooked_app(|_| {}).await;
    let receiver = Receiver::start().await;
    let bystander = Receiver::start().await;
    let shop = app.shop(10, 2500).await;
    let endpoint = register(
        &app,
        &shop.organizer,
        &receiver.url,
        &[
            "order.created",
            "order.paid",
            "ticket.checked_in",
            "event.cancelled",
        ],
    )
    .await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{endpoint}");
    assert_eq!(endpoint["active"], true);
    // The secret is shown once.
    let (_, listed) = app
        .get("/v1/organizer/webhook-endpoints", Some(&shop.organizer))
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("secret").is_none(), "{listed}");
    // Another organizer's endpoint hears nothing of this sale.
    let other = app.organizer("other-org@example.com").await;
    register(
        &app,
        &other,
        &bystander.url,
        &["order.created", "order.paid"],
    )
    .await;

    // Without the relay, the sale's changes are in the outbox already.
    let (buyer, order) = paid_order(&app, &shop, 2).await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    let outbox = eventually(Duration::from_secs(10), || async {
        let n = app
            .scalar("SELECT count(*) AS n FROM webhook_deliveries WHERE queued_at IS NULL")
            .await;
        if n == 2 { Ok(n) } else { Err(n.to_string()) }
    })
    .await;
    assert_eq!(outbox, 2);
    assert!(receiver.got().is_empty());

    let _relay = relay(&app);
    let got = receiver.wait_for(2).await;
    let mut types: Vec<String> = got
        .iter()
        .map(|g| g.json()["type"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    assert_eq!(types, ["order.created", "order.paid"]);
    for g in &got {
        assert!(g.verifies_with(&secret), "{g:?}");
        assert!(!g.verifies_with(&boxoffice_core::webhooks::new_secret()));
        let body = g.json();
        assert_eq!(body["data"]["id"], order_id.as_str(), "{body}");
        assert_eq!(body["data"]["event_id"], shop.event_id.as_str());
        assert!(g.id.starts_with("msg_"), "{}", g.id);
    }
    let paid = got
        .iter()
        .find(|g| g.json()["type"] == "order.paid")
        .unwrap()
        .json();
    assert_eq!(paid["data"]["total_minor"], 5000);
    assert_eq!(paid["data"]["status"], "paid");

    // The door: a scan is reported with its device.
    let (_, tickets) = app.get("/v1/users/me/tickets?limit=10", Some(&buyer)).await;
    let code = tickets["items"][0]["qr_payload"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, scanned) = app
        .post(
            &format!("/v1/events/{}/check-ins", shop.event_id),
            json!({"code": code, "device": "north gate"}),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(status, 201, "{scanned}");
    let got = receiver.wait_for(3).await;
    let checked_in = got[2].json();
    assert_eq!(checked_in["type"], "ticket.checked_in", "{checked_in}");
    assert_eq!(checked_in["data"]["device"], "north gate");
    assert_eq!(checked_in["data"]["order_id"], order_id.as_str());

    // The log: each delivered once, with the receiver's answer (recorded
    // once the answer is back, a moment after the receiver saw it).
    let path = format!(
        "/v1/organizer/webhook-endpoints/{}/deliveries",
        endpoint["id"].as_str().unwrap()
    );
    let page = eventually(Duration::from_secs(10), || async {
        let (status, page) = app.get(&path, Some(&shop.organizer)).await;
        let done = page["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|d| d["status"] == "delivered"));
        if status == 200 && done {
            Ok(page)
        } else {
            Err(page.to_string())
        }
    })
    .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{page}");
    for d in items {
        assert_eq!(d["status"], "delivered", "{d}");
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["response_status"], 200);
        assert!(d["latency_ms"].as_i64().is_some());
        assert!(d["next_attempt_at"].is_null());
    }
    assert_eq!(items[0]["event_type"], "ticket.checked_in", "newest first");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(bystander.got().is_empty());
    assert_eq!(receiver.got().len(), 3, "each delivered once");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_attempts_are_retried_on_schedule_and_a_gone_endpoint_is_disabled() {
    let app = hooked_app(|_| {}).await;
    let _relay = relay(&app);
    let receiver = Receiver::start().await;
    let organizer = app.organizer("hooks@example.com").await;
    let endpoint = register(&app, &organizer, &receiver.url, &["order.paid"]).await;

    // A 500, then a timeout (the attempt's limit is 1 s), then a 200.
    receiver.answer(500, Duration::ZERO);
    receiver.answer(200, Duration::from_secs(3));
    let d = ping(&app, &organizer, &endpoint).await;
    assert_eq!(d["event_type"], "ping");
    let done = wait_delivery(
        &app,
        &organizer,
        &endpoint,
        d["id"].as_str().unwrap(),
        "delivered",
    )
    .await;
    assert_eq!(done["attempts"], 3, "{done}");
    let got = receiver.got();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|g| g.id == got[0].id),
        "one webhook-id on every attempt"
    );
    assert_eq!(got[0].json()["data"]["endpoint_id"], endpoint["id"]);
    for pair in got.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(950),
            "retried too soon"
        );
    }

    // Always failing: the schedule (two retries) runs out.
    for _ in 0..3 {
        receiver.answer(503, Duration::ZERO);
    }
    let d = ping(&app, &organizer, &endpoint).await;
    let spent = wait_delivery(
        &app,
        &organizer,
        &endpoint,
        d["id"].as_str().unwrap(),
        "exhausted",
    )
    .await;
    assert_eq!(spent["attempts"], 3, "{spent}");
    assert_eq!(spent["response_status"], 503);
    assert!(spent["next_attempt_at"].is_null());
    assert!(spent["error"].as_str().unwrap().contains("503"), "{spent}");

    // 410 Gone: no retry, the endpoint is disabled and its owner told.
    receiver.answer(410, Duration::ZERO);
    let before = receiver.got().len();
    let d = ping(&app, &organizer, &endpoint).await;
    wait_delivery(
        &app,
        &organizer,
        &endpoint,
        d["id"].as_str().unwrap(),
        "exhausted",
    )
    .await;
    let (_, now) = app
        .get(
            &format!(
                "/v1/organizer/webhook-endpoints/{}",
                endpoint["id"].as_str().unwrap()
            ),
            Some(&organizer),
        )
        .await;
    assert_eq!(now["active"], false, "{now}");
    assert!(
        now["disabled_reason"].as_str().unwrap().contains("410"),
        "{now}"
    );
    let mail = app
        .smtp
        .wait_for(
            "hooks@example.com",
            "Webhook endpoint disabled",
            Duration::from_secs(20),
        )
        .await;
    assert!(mail.text().contains(&receiver.url), "{}", mail.text());
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(receiver.got().len(), before + 1, "no retry after 410");
    // A disabled endpoint takes no pings; enabled again, it does.
    let id = endpoint["id"].as_str().unwrap();
    let (status, problem) = app
        .post(
            &format!("/v1/organizer/webhook-endpoints/{id}/test"),
            json!({}),
            Some(&organizer),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("endpoint_disabled"))
    );
    let (status, enabled) = app
        .patch(
            &format!("/v1/organizer/webhook-endpoints/{id}"),
            json!({"active": true}),
            Some(&organizer),
        )
        .await;
    assert_eq!(status, 200, "{enabled}");
    assert!(
        enabled["disabled_reason"].is_null() && enabled["failing_since"].is_null(),
        "{enabled}"
    );
    let d = ping(&app, &organizer, &endpoint).await;
    wait_delivery(
        &app,
        &organizer,
        &endpoint,
        d["id"].as_str().unwrap(),
        "delivered",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_failing_for_the_whole_period_is_disabled_and_its_owner_emailed() {
    let app = hooked_app(|c| {
        c.webhooks.retry_schedule = vec![Duration::from_secs(1); 5];
        c.webhooks.disable_after = Duration::from_secs(2);
    })
    .await;
    let _relay = relay(&app);
    let receiver = Receiver::start().await;
    let organizer = app.organizer("failing@example.com").await;
    let endpoint = register(&app, &organizer, &receiver.url, &["order.paid"]).await;
    for _ in 0..10 {
        receiver.answer(500, Duration::ZERO);
    }
    let d = ping(&app, &organizer, &endpoint).await;
    let id = endpoint["id"].as_str().unwrap();
    let disabled = eventually(Duration::from_secs(20), || async {
        let (_, e) = app
            .get(
                &format!("/v1/organizer/webhook-endpoints/{id}"),
                Some(&organizer),
            )
            .await;
        if e["active"] == false {
            Ok(e)
        } else {
            Err(e.to_string())
        }
    })
    .await;
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .starts_with("every delivery failed since"),
        "{disabled}"
    );
    assert!(disabled["failing_since"].is_string());
    // Failing since the first attempt, disabled at the first failure 2 s on.
    let attempts = receiver.got().len();
    assert!((3..=4).contains(&attempts), "{attempts} attempts");
    app.smtp
        .wait_for(
            "failing@example.com",
            "Webhook endpoint disabled",
            Duration::from_secs(20),
        )
        .await;
    // The delivery's planned retry finds the endpoint disabled and stops.
    let last = wait_delivery(
        &app,
        &organizer,
        &endpoint,
        d["id"].as_str().unwrap(),
        "exhausted",
    )
    .await;
    assert!(last["next_attempt_at"].is_null(), "{last}");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(receiver.got().len(), attempts);
}

#[tokio::test(flavor = "multi_thread")]
async fn redelivery_repeats_the_same_message_and_a_rotated_secret_overlaps() {
    let app = hooked_app(|_| {}).await;
    let _relay = relay(&app);
    let receiver = Receiver::start().await;
    let organizer = app.organizer("rotate@example.com").await;
    let endpoint = register(&app, &organizer, &receiver.url, &["payout.paid"]).await;
    let id = endpoint["id"].as_str().unwrap();
    let old = endpoint["secret"].as_str().unwrap().to_owned();
    let d = ping(&app, &organizer, &endpoint).await;
    let delivery_id = d["id"].as_str().unwrap();
    wait_delivery(&app, &organizer, &endpoint, delivery_id, "delivered").await;

    let (status, rotated) = app
        .post(
            &format!("/v1/organizer/webhook-endpoints/{id}/rotate-secret"),
            json!({"overlap_secs": 3600}),
            Some(&organizer),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );

    let (status, again) = app
        .post(
            &format!("/v1/organizer/webhook-endpoints/{id}/deliveries/{delivery_id}/redeliver"),
            json!({}),
            Some(&organizer),
        )
        .await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["webhook_id"], d["webhook_id"]);
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].id, got[0].id, "a redelivery keeps its webhook-id");
    assert_eq!(got[1].body, got[0].body, "and its body");
    assert_eq!(
        got[1].signature.split(' ').count(),
        2,
        "{}",
        got[1].signature
    );
    assert!(got[1].verifies_with(&new) && got[1].verifies_with(&old));
    let done = wait_delivery(&app, &organizer, &endpoint, delivery_id, "delivered").await;
    assert_eq!(done["attempts"], 2);

    // Overlap 0: the old secret stops signing at once.
    let (_, rotated) = app
        .post(
            &format!("/v1/organizer/webhook-endpoints/{id}/rotate-secret"),
            json!({"overlap_secs": 0}),
            Some(&organizer),
        )
        .await;
    let newest = rotated["secret"].as_str().unwrap().to_owned();
    assert!(rotated["previous_secret_expires_at"].is_null(), "{rotated}");
    ping(&app, &organizer, &endpoint).await;
    let got = receiver.wait_for(3).await;
    assert_eq!(got[2].signature.split(' ').count(), 1);
    assert!(got[2].verifies_with(&newest) && !got[2].verifies_with(&new));

    // Someone else's endpoint and unknown deliveries are not found.
    let stranger = app.organizer("stranger@example.com").await;
    let (status, _) = app
        .get(
            &format!("/v1/organizer/webhook-endpoints/{id}/deliveries"),
            Some(&stranger),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .post(
            &format!(
                "/v1/organizer/webhook-endpoints/{id}/deliveries/{}/redeliver",
                uuid::Uuid::new_v4()
            ),
            json!({}),
            Some(&organizer),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .delete(
            &format!("/v1/organizer/webhook-endpoints/{id}"),
            Some(&stranger),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .delete(
            &format!("/v1/organizer/webhook-endpoints/{id}"),
            Some(&organizer),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        app.count("webhook_deliveries").await,
        0,
        "its log goes with it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ssrf_guard_and_bad_registrations_write_nothing() {
    // The default: no loopback receivers.
    let app = TestApp::builder().full().start().await;
    let _relay = relay(&app);
    let receiver = Receiver::start().await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let organizer = app.organizer("ssrf@example.com").await;
    let attendee = app.register("fan@example.com", "attendee").await.0;
    let post = |body: Value, token: String| {
        let app = &app;
        async move {
            app.post("/v1/organizer/webhook-endpoints", body, Some(&token))
                .await
        }
    };
    for (url, why) in [
        (receiver.url.clone(), "loopback"),
        (format!("http://localhost:{port}/hooks"), "private"),
        (
            "http://169.254.169.254/latest/meta-data".to_owned(),
            "link-local",
        ),
        ("http://10.0.0.7/hooks".to_owned(), "private"),
        ("http://[::ffff:127.0.0.1]/hooks".to_owned(), "loopback"),
        ("ftp://hooks.example.com/x".to_owned(), "http"),
        (
            "https://user:pw@hooks.example.com/x".to_owned(),
            "credentials",
        ),
        ("not a url".to_owned(), "absolute"),
    ] {
        let (status, problem) = post(
            json!({"url": url, "event_types": ["order.paid"]}),
            organizer.clone(),
        )
        .await;
        assert_eq!(status, 422, "{url} ({why}): {problem}");
        assert!(blames(&problem, "url"), "{url}: {problem}");
    }
    // A public address, written as one: no DNS needed.
    let https = "https://93.184.215.14/x";
    for (body, field) in [
        (
            json!({"url": https, "event_types": ["order.shipped"]}),
            "event_types",
        ),
        (json!({"url": https, "event_types": []}), "event_types"),
        (
            json!({"url": https, "event_types": ["ping"]}),
            "event_types",
        ),
        (
            json!({"url": https, "event_types": ["order.paid"], "description": "x".repeat(201)}),
            "description",
        ),
    ] {
        let (status, problem) = post(body.clone(), organizer.clone()).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert!(blames(&problem, field), "{body}: {problem}");
    }
    let (status, _) = post(
        json!({"url": https, "event_types": ["order.paid"], "secret": "mine"}),
        organizer.clone(),
    )
    .await;
    assert!((400..500).contains(&status), "an unknown field is refused");
    let (status, _) = post(
        json!({"url": https, "event_types": ["order.paid"]}),
        attendee,
    )
    .await;
    assert_eq!(status, 403, "attendees have no endpoints");
    assert_eq!(app.count("webhook_endpoints").await, 0);

    // A name that resolved elsewhere when registered and to loopback at
    // delivery (DNS rebinding): the connection is never made.
    app.sql(&format!(
        "INSERT INTO webhook_endpoints (id, organizer_id, url, secret, event_types)
         SELECT gen_random_uuid(), id, 'http://localhost:{port}/hooks',
                'whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX', '{{order.paid}}'
           FROM users WHERE email = 'ssrf@example.com'"
    ))
    .await;
    let (_, endpoints) = app
        .get("/v1/organizer/webhook-endpoints", Some(&organizer))
        .await;
    let endpoint = endpoints[0].clone();
    let id = endpoint["id"].as_str().unwrap();
    let (status, problem) = app
        .patch(
            &format!("/v1/organizer/webhook-endpoints/{id}"),
            json!({"url": "http://127.0.0.2/x"}),
            Some(&organizer),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    let d = ping(&app, &organizer, &endpoint).await;
    let failed = eventually(Duration::from_secs(20), || async {
        let d = delivery(&app, &organizer, &endpoint, d["id"].as_str().unwrap()).await;
        if d["attempts"] == 1 && d["status"] != "sending" {
            Ok(d)
        } else {
            Err(d.to_string())
        }
    })
    .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed["response_status"].is_null());
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("loopback") || error.contains("private"),
        "{error}"
    );
    assert!(receiver.got().is_empty(), "the receiver was reached");

    // Bad parameters of the log.
    let (status, problem) = app
        .get(
            &format!("/v1/organizer/webhook-endpoints/{id}/deliveries?status=lost"),
            Some(&organizer),
        )
        .await;
    assert_eq!(status, 422);
    assert!(blames(&problem, "status"), "{problem}");
    let (status, problem) = app
        .post(
            &format!("/v1/organizer/webhook-endpoints/{id}/rotate-secret"),
            json!({"overlap_secs": 999_999_999}),
            Some(&organizer),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    let (status, _) = app
        .get(
            "/v1/organizer/webhook-endpoints/not-a-uuid",
            Some(&organizer),
        )
        .await;
    assert!((400..500).contains(&status));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_endpoint_holds_at_most_its_cap_and_never_delays_the_others() {
    let app = hooked_app(|c| {
        c.webhooks.endpoint_concurrency = 2;
        c.webhooks.timeout = Duration::from_secs(5);
    })
    .await;
    let _relay = relay(&app);
    let slow = Receiver::start().await;
    let fast = Receiver::start().await;
    slow.slow(Duration::from_secs(2));
    let a = app.organizer("slow@example.com").await;
    let b = app.organizer("fast@example.com").await;
    let slow_endpoint = register(&app, &a, &slow.url, &["order.paid"]).await;
    let fast_endpoint = register(&app, &b, &fast.url, &["order.paid"]).await;
    for _ in 0..8 {
        ping(&app, &a, &slow_endpoint).await;
    }
    let started = Instant::now();
    for _ in 0..30 {
        ping(&app, &b, &fast_endpoint).await;
    }
    fast.wait_for(30).await;
    let fast_took = started.elapsed();
    // Eight slow deliveries at two at a time take 8 s; the fast ones wait
    // for none of them.
    assert!(
        fast_took < Duration::from_secs(5),
        "fast endpoint took {fast_took:?}"
    );
    assert!(slow.got().len() < 8, "the slow endpoint was not capped");
    let all = slow.wait_for(8).await;
    assert_eq!(all.len(), 8);
    assert!(
        slow.max_in_flight() <= 2,
        "{} at once",
        slow.max_in_flight()
    );
    assert_eq!(slow.max_in_flight(), 2, "the cap is used");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_events_publication_and_cancellation_are_reported_and_a_lost_job_is_swept_up() {
    let app = hooked_app(|_| {}).await;
    let receiver = Receiver::start().await;
    let organizer = app.organizer("lifecycle@example.com").await;
    let endpoint = register(
        &app,
        &organizer,
        &receiver.url,
        &["event.published", "event.cancelled", "order.refunded"],
    )
    .await;
    let event = app.published_event(&organizer, json!({})).await;
    let event_id = event["id"].as_str().unwrap();

    // The relay's push is lost (Redis answered, then forgot): the delivery
    // is marked queued but no job exists. The sweep finds it once overdue.
    let n = app
        .scalar(
            "WITH q AS (UPDATE webhook_deliveries SET queued_at = now(),
                               next_attempt_at = now() - interval '5 minutes'
                         WHERE queued_at IS NULL RETURNING 1)
             SELECT count(*) AS n FROM q",
        )
        .await;
    assert_eq!(n, 1, "one delivery: the publication");
    let swept = boxoffice_scheduler::run_sweep(&app.services, "lost_webhooks")
        .await
        .unwrap();
    assert_eq!(swept, 1);
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json()["type"], "event.published");
    assert_eq!(got[0].json()["data"]["id"], event_id);
    let again = boxoffice_scheduler::run_sweep(&app.services, "lost_webhooks")
        .await
        .unwrap();
    assert_eq!(again, 0, "delivered: nothing left to sweep");

    let _relay = relay(&app);
    let (status, body) = app
        .post(
            &format!("/v1/events/{event_id}/cancel"),
            json!({"message": "The venue flooded."}),
            Some(&organizer),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    let got = receiver.wait_for(2).await;
    let cancelled = got[1].json();
    assert_eq!(cancelled["type"], "event.cancelled", "{cancelled}");
    assert_eq!(cancelled["data"]["message"], "The venue flooded.");
    let path = format!(
        "/v1/organizer/webhook-endpoints/{}/deliveries?status=delivered",
        endpoint["id"].as_str().unwrap()
    );
    // Recorded once the answer is back, a moment after the receiver saw it.
    eventually(Duration::from_secs(10), || async {
        let (_, page) = app.get(&path, Some(&organizer)).await;
        let n = page["items"].as_array().map_or(0, Vec::len);
        if n == 2 {
            Ok(())
        } else {
            Err(page.to_string())
        }
    })
    .await;
}
