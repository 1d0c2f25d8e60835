//! A local stand-in for Stripe's API over real HTTP: it checks each request
//! the way Stripe documents it (method, path, bearer key, form fields,
//! `Idempotency-Key`), answers with Stripe's shapes (objects, and
//! `{"error": {...}}` with 4xx/429/5xx), replays an idempotent request's
//! first answer, and sends signed webhooks (`Stripe-Signature`) to the app.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

pub const SECRET_KEY: &str = "sk_test_boxoffice_fake";
pub const WEBHOOK_SECRET: &str = "whsec_fake_endpoint_secret";

/// A request as the fake received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: &'static str,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub form: HashMap<String, String>,
    pub at: std::time::Instant,
}

#[derive(Default)]
struct Inner {
    seen: Vec<Seen>,
    sessions: HashMap<String, Value>,
    /// Idempotency key → (the request's form, the answer).
    replies: HashMap<String, (HashMap<String, String>, Value)>,
    /// Answers to give instead of the next ones: (status, body), and a
    /// `Retry-After` to send with it.
    failures: Vec<((u16, Value), Option<u64>)>,
    webhook_url: Option<String>,
    next: u64,
    /// The next request waits this long before it is handled.
    stall_next: Option<std::time::Duration>,
}

#[derive(Clone)]
pub struct FakeStripe {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
    http: reqwest::Client,
}

fn error(status: u16, kind: &str, message: &str) -> (u16, Value) {
    (status, json!({"error": {"type": kind, "message": message}}))
}

impl FakeStripe {
    pub async fn start() -> Self {
        boxoffice_core::install_crypto_provider();
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fake = Self {
            inner,
            url,
            http: reqwest::Client::new(),
        };
        let app = Router::new()
            .route("/v1/checkout/sessions", post(create_session))
            .route("/v1/checkout/sessions/{id}", get(get_session))
            .route("/v1/checkout/sessions/{id}/expire", post(expire_session))
            .route("/v1/refunds", post(create_refund))
            .route("/v1/transfers", post(create_transfer))
            .layer(axum::middleware::from_fn_with_state(fake.clone(), stall))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    /// Where the app takes Stripe's webhooks.
    pub fn send_webhooks_to(&self, url: String) {
        self.inner.lock().unwrap().webhook_url = Some(url);
    }

    /// The next `n` calls are answered with `status` (and Stripe's error
    /// body) instead.
    pub fn fail_next(&self, n: usize, status: u16) {
        let mut inner = self.inner.lock().unwrap();
        for _ in 0..n {
            inner
                .failures
                .push((error(status, "api_error", "fake outage"), None));
        }
    }

    /// The next request is handled only after `wait` (never, if the
    /// caller hangs up first).
    pub fn stall_next(&self, wait: std::time::Duration) {
        self.inner.lock().unwrap().stall_next = Some(wait);
    }

    /// The next call is answered 429 with `Retry-After: {secs}`.
    pub fn throttle_next(&self, secs: u64) {
        self.inner.lock().unwrap().failures.push((
            error(429, "rate_limit_error", "Too many requests"),
            Some(secs),
        ));
    }

    /// A new object id: `{prefix}_test_{n}`.
    fn next_id(&self, prefix: &str) -> String {
        let mut inner = self.inner.lock().unwrap();
        inner.next += 1;
        format!("{prefix}_test_{}", inner.next)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    pub fn session_count(&self) -> usize {
        self.inner.lock().unwrap().sessions.len()
    }

    pub fn session(&self, id: &str) -> Option<Value> {
        self.inner.lock().unwrap().sessions.get(id).cloned()
    }

    /// The buyer pays on Stripe's page: the session completes, then
    /// `checkout.session.completed` is sent, signed.
    pub async fn pay(&self, session_id: &str) -> u16 {
        let session = {
            let mut inner = self.inner.lock().unwrap();
            let session = inner.sessions.get_mut(session_id).expect("a session");
            session["status"] = "complete".into();
            session["payment_status"] = "paid".into();
            session["payment_intent"] = format!("pi_{}", &session_id[3..]).into();
            session.clone()
        };
        self.webhook("checkout.session.completed", session).await
    }

    /// Sends an event of `kind` about `object`, signed with the endpoint
    /// secret (or `secret`); returns the app's status.
    pub async fn webhook(&self, kind: &str, object: Value) -> u16 {
        self.webhook_signed(kind, object, WEBHOOK_SECRET, 0).await
    }

    pub async fn webhook_signed(&self, kind: &str, object: Value, secret: &str, skew: i64) -> u16 {
        let (url, n) = {
            let mut inner = self.inner.lock().unwrap();
            inner.next += 1;
            (
                inner.webhook_url.clone().expect("a webhook url"),
                inner.next,
            )
        };
        let body = serde_json::to_vec(&json!({
            "id": format!("evt_fake_{n}"),
            "object": "event",
            "type": kind,
            "data": {"object": object},
        }))
        .unwrap();
        let t = chrono::Utc::now().timestamp() + skew;
        let signature = boxoffice_core::payments::stripe::sign(secret, t, &body);
        self.http
            .post(url)
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }
}

/// A request's form fields.
type Form = HashMap<String, String>;

/// Checks the bearer key and the form, records the request, replays an
/// idempotent one; `Err` is the answer to give instead.
fn accept(
    fake: &FakeStripe,
    method: &'static str,
    path: String,
    headers: &HeaderMap,
    body: &[u8],
    required: &[&str],
) -> Result<(Form, Option<String>), Box<Response>> {
    let reply = |(status, body): (u16, Value)| {
        Box::new((StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response())
    };
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {SECRET_KEY}") {
        return Err(reply(error(
            401,
            "invalid_request_error",
            "Invalid API Key provided",
        )));
    }
    if method == "POST" {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("application/x-www-form-urlencoded") {
            return Err(reply(error(
                400,
                "invalid_request_error",
                "form-encoded bodies only",
            )));
        }
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut inner = fake.inner.lock().unwrap();
    inner.seen.push(Seen {
        method,
        path,
        idempotency_key: key.clone(),
        form: form.clone(),
        at: std::time::Instant::now(),
    });
    if !inner.failures.is_empty() {
        let (failure, retry_after) = inner.failures.remove(0);
        let mut response = reply(failure);
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", secs.to_string().parse().unwrap());
        }
        return Err(response);
    }
    if let Some(missing) = required.iter().find(|f| !form.contains_key(**f)) {
        return Err(reply(error(
            400,
            "invalid_request_error",
            &format!("Missing required param: {missing}."),
        )));
    }
    if let Some(key) = &key
        && let Some((first, answer)) = inner.replies.get(key)
    {
        return Err(if *first == form {
            reply((200, answer.clone()))
        } else {
            reply(error(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
            ))
        });
    }
    Ok((form, key))
}

fn remember(fake: &FakeStripe, key: Option<String>, form: HashMap<String, String>, answer: &Value) {
    if let Some(key) = key {
        fake.inner
            .lock()
            .unwrap()
            .replies
            .insert(key, (form, answer.clone()));
    }
}

async fn create_session(
    State(fake): State<FakeStripe>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let required = [
        "mode",
        "success_url",
        "cancel_url",
        "client_reference_id",
        "expires_at",
        "line_items[0][price_data][currency]",
        "line_items[0][price_data][unit_amount]",
        "line_items[0][price_data][product_data][name]",
        "line_items[0][quantity]",
    ];
    let (form, key) = match accept(
        &fake,
        "POST",
        "/v1/checkout/sessions".into(),
        &headers,
        &body,
        &required,
    ) {
        Ok(ok) => ok,
        Err(answer) => return *answer,
    };
    let expires_at: i64 = form["expires_at"].parse().unwrap_or(0);
    let now = chrono::Utc::now().timestamp();
    if !(now + 30 * 60..=now + 24 * 3600).contains(&expires_at) {
        let (s, b) = error(
            400,
            "invalid_request_error",
            "expires_at must be 30 minutes to 24 hours away",
        );
        return (StatusCode::from_u16(s).unwrap(), axum::Json(b)).into_response();
    }
    let mut total = 0i64;
    let mut i = 0;
    while let Some(amount) = form.get(&format!("line_items[{i}][price_data][unit_amount]")) {
        let quantity: i64 = form[&format!("line_items[{i}][quantity]")].parse().unwrap();
        total += amount.parse::<i64>().unwrap() * quantity;
        i += 1;
    }
    let id = fake.next_id("cs");
    let session = json!({
        "id": id,
        "object": "checkout.session",
        "url": format!("{}/pay/{id}", fake.url),
        "status": "open",
        "payment_status": "unpaid",
        "payment_intent": null,
        "amount_total": total,
        "currency": form["line_items[0][price_data][currency]"],
        "client_reference_id": form["client_reference_id"],
        "metadata": {"order_id": form.get("metadata[order_id]"), "event_id": form.get("metadata[event_id]")},
    });
    fake.inner
        .lock()
        .unwrap()
        .sessions
        .insert(id, session.clone());
    remember(&fake, key, form, &session);
    axum::Json(session).into_response()
}

async fn get_session(
    State(fake): State<FakeStripe>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(answer) = accept(
        &fake,
        "GET",
        format!("/v1/checkout/sessions/{id}"),
        &headers,
        b"",
        &[],
    ) {
        return *answer;
    }
    match fake.session(&id) {
        Some(session) => axum::Json(session).into_response(),
        None => {
            let (s, b) = error(404, "invalid_request_error", "No such checkout.session");
            (StatusCode::from_u16(s).unwrap(), axum::Json(b)).into_response()
        }
    }
}

async fn expire_session(
    State(fake): State<FakeStripe>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(answer) = accept(
        &fake,
        "POST",
        format!("/v1/checkout/sessions/{id}/expire"),
        &headers,
        &body,
        &[],
    ) {
        return *answer;
    }
    let mut inner = fake.inner.lock().unwrap();
    let Some(session) = inner.sessions.get_mut(&id) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(error(404, "invalid_request_error", "No such checkout.session").1),
        )
            .into_response();
    };
    if session["status"] != "open" {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                error(
                    400,
                    "invalid_request_error",
                    "Only Checkout Sessions with a status of `open` can be expired.",
                )
                .1,
            ),
        )
            .into_response();
    }
    session["status"] = "expired".into();
    axum::Json(session.clone()).into_response()
}

async fn create_refund(
    State(fake): State<FakeStripe>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, key) = match accept(
        &fake,
        "POST",
        "/v1/refunds".into(),
        &headers,
        &body,
        &["payment_intent", "amount", "metadata[refund_id]"],
    ) {
        Ok(ok) => ok,
        Err(answer) => return *answer,
    };
    let id = fake.next_id("re");
    let refund = json!({
        "id": id,
        "object": "refund",
        "amount": form["amount"].parse::<i64>().unwrap(),
        "payment_intent": form["payment_intent"],
        "status": "succeeded",
        "metadata": {"refund_id": form["metadata[refund_id]"]},
    });
    remember(&fake, key, form, &refund);
    // Card refunds are also told as `charge.refunded`.
    let (fake2, object) = (fake.clone(), refund.clone());
    tokio::spawn(async move {
        fake2
            .webhook(
                "charge.refunded",
                json!({"id": "ch_test", "object": "charge", "refunds": {"data": [object]}}),
            )
            .await;
    });
    axum::Json(refund).into_response()
}

async fn create_transfer(
    State(fake): State<FakeStripe>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, key) = match accept(
        &fake,
        "POST",
        "/v1/transfers".into(),
        &headers,
        &body,
        &["amount", "currency", "destination", "metadata[payout_id]"],
    ) {
        Ok(ok) => ok,
        Err(answer) => return *answer,
    };
    let id = fake.next_id("tr");
    let transfer = json!({
        "id": id,
        "object": "transfer",
        "amount": form["amount"].parse::<i64>().unwrap(),
        "currency": form["currency"],
        "destination": form["destination"],
        "reversed": false,
        "metadata": {"payout_id": form["metadata[payout_id]"]},
    });
    remember(&fake, key, form, &transfer);
    axum::Json(transfer).into_response()
}

/// Holds a request back when `stall_next` asked for it.
async fn stall(
    State(fake): State<FakeStripe>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let wait = fake.inner.lock().unwrap().stall_next.take();
    if let Some(wait) = wait {
        tokio::time::sleep(wait).await;
    }
    next.run(request).await
}
