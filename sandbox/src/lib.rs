//! The sandbox payment provider: a fake that behaves like a real one, so the
//! whole purchase flow runs with no account anywhere. Boxoffice talks to it
//! only over HTTP, exactly as it would to Stripe:
//!
//! - `POST /v1/checkout/sessions` (Bearer API key, `Idempotency-Key`) opens a
//!   checkout for an amount and a merchant reference;
//! - `GET /checkout/{id}` is the hosted page (amount, description, Pay and
//!   Decline buttons);
//! - `POST /v1/checkout/sessions/{id}/expire` closes an open checkout;
//! - `POST /v1/refunds` refunds (part of) a payment;
//! - `POST /v1/transfers` pays an amount out to a recipient (an organizer's
//!   payout account; recipients starting `acct_fail` are refused, to
//!   exercise failed payouts);
//! - every outcome is sent as a webhook signed per Standard Webhooks and
//!   retried with backoff until acknowledged (2xx).
//!
//! `SANDBOX_AUTO_PAY=pay:<ms>` settles each checkout by itself (demos, tests,
//! benchmarks). State is in memory: a restart forgets open checkouts, as a
//! sandbox may. Late payments (after the merchant's reservation ended) are
//! accepted on purpose, so that path of the merchant can be exercised.

mod page;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use boxoffice_core::{
    config::{AutoOutcome, SandboxConfig},
    payments::{sandbox::wire, signature},
};
use serde_json::json;
use tokio::{net::TcpListener, sync::watch};

#[derive(Debug, Clone)]
struct Session {
    id: String,
    request: wire::CreateSession,
    status: &'static str,
    payment_id: Option<String>,
}

#[derive(Debug, Clone)]
struct PaymentRecord {
    amount_minor: i64,
    refunded_minor: i64,
    currency: String,
}

#[derive(Default)]
struct Books {
    sessions: HashMap<String, Session>,
    /// Idempotency-Key → the object it created (session or refund id).
    idempotency: HashMap<String, String>,
    payments: HashMap<String, PaymentRecord>,
    refunds: HashMap<String, wire::Refund>,
    transfers: HashMap<String, wire::Transfer>,
}

struct Inner {
    config: SandboxConfig,
    key: Vec<u8>,
    /// Where webhooks go; settable after start (tests learn the merchant's
    /// port only once it is bound).
    webhook_url: RwLock<String>,
    /// Its own base URL, for hosted checkout links (settable likewise).
    public_url: RwLock<String>,
    books: Mutex<Books>,
    http: reqwest::Client,
    /// Webhook deliveries acknowledged, for the status page and tests.
    delivered: Mutex<u64>,
    /// Refund requests to answer with 503 before serving again (an outage
    /// of the provider's refunds, for tests).
    failing_refunds: Mutex<u32>,
}

/// The running sandbox; cheap to clone.
/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("SANDBOX_WEBHOOK_SECRET: {0}")]
    WebhookSecret(#[from] signature::SecretError),
    #[error("http client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

#[derive(Clone)]
pub struct Sandbox(Arc<Inner>);

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Result<Self, SetupError> {
        let key = signature::decode_secret(&config.webhook_secret)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()?;
        Ok(Self(Arc::new(Inner {
            webhook_url: RwLock::new(config.webhook_url.clone()),
            public_url: RwLock::new(config.public_url.clone()),
            config,
            key,
            books: Mutex::default(),
            http,
            delivered: Mutex::new(0),
            failing_refunds: Mutex::new(0),
        })))
    }

    pub fn set_webhook_url(&self, url: String) {
        *self.0.webhook_url.write().expect("lock") = url;
    }

    pub fn set_public_url(&self, url: String) {
        *self.0.public_url.write().expect("lock") = url;
    }

    /// The next `n` refund requests fail with 503, as in an outage.
    pub fn fail_next_refunds(&self, n: u32) {
        *self.0.failing_refunds.lock().expect("lock") = n;
    }

    /// Transfers made (each once, whatever the retries), for tests.
    pub fn transfers(&self) -> usize {
        self.0.books.lock().expect("lock").transfers.len()
    }

    pub fn delivered_webhooks(&self) -> u64 {
        *self.0.delivered.lock().expect("lock")
    }

    /// The routes, to be nested under `/sandbox`.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/v1/checkout/sessions", post(create_session))
            .route("/v1/checkout/sessions/{id}", get(get_session))
            .route("/v1/checkout/sessions/{id}/expire", post(expire_session))
            .route("/v1/refunds", post(create_refund))
            .route("/v1/transfers", post(create_transfer))
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                misbehave,
            ));
        Router::new()
            .merge(api)
            .route("/checkout/{id}", get(checkout_page))
            .route("/checkout/{id}/pay", post(pay))
            .route("/checkout/{id}/decline", post(decline))
            .layer(axum::middleware::map_response(security_headers))
            .with_state(self.clone())
    }

    /// Serves the sandbox alone (`boxoffice sandbox`), under `/sandbox`.
    pub async fn bind(
        &self,
        addr: SocketAddr,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<
        (
            SocketAddr,
            impl Future<Output = std::io::Result<()>> + use<>,
        ),
        String,
    > {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("sandbox {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let app = Router::new().nest("/sandbox", self.router());
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        });
        Ok((local, async move { server.await }))
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|key| key == self.0.config.api_key)
    }

    /// Settles an open checkout once; a second settle is a no-op.
    fn settle(&self, id: &str, outcome: AutoOutcome) -> Option<Session> {
        let mut books = self.0.books.lock().expect("lock");
        let session = books.sessions.get_mut(id)?;
        if session.status != "open" {
            return Some(session.clone());
        }
        let settled = match outcome {
            AutoOutcome::Pay => {
                let payment_id = format!("pay_{}", uuid::Uuid::now_v7().simple());
                session.status = "paid";
                session.payment_id = Some(payment_id.clone());
                let record = PaymentRecord {
                    amount_minor: session.request.amount_minor,
                    refunded_minor: 0,
                    currency: session.request.currency.clone(),
                };
                let session = session.clone();
                books.payments.insert(payment_id, record);
                session
            }
            AutoOutcome::Decline => {
                session.status = "declined";
                session.clone()
            }
        };
        drop(books);
        let event_type = if outcome == AutoOutcome::Pay {
            "checkout.completed"
        } else {
            "checkout.declined"
        };
        self.send_webhook(wire::Event {
            id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
            event_type: event_type.into(),
            created: chrono::Utc::now().timestamp(),
            data: wire::EventData {
                checkout_id: Some(settled.id.clone()),
                reference: settled.request.reference.clone(),
                payment_id: settled.payment_id.clone(),
                amount_minor: settled.request.amount_minor,
                currency: settled.request.currency.clone(),
                ..Default::default()
            },
        });
        Some(settled)
    }

    /// Delivers in the background, retrying with exponential backoff (0.25 s
    /// doubling to 30 s, for about ten minutes) until a 2xx. The same
    /// `webhook-id` every time, so the receiver can deduplicate; each attempt
    /// is signed afresh with its own timestamp.
    fn send_webhook(&self, event: wire::Event) {
        let copies = self.0.config.faults.webhook_copies.max(1);
        for _ in 0..copies {
            // Copies (SANDBOX_FAULTS) each leave after a delay of their
            // own, so they arrive out of order with the other events'.
            let delay = match copies {
                1 => Duration::ZERO,
                _ => Duration::from_millis(rand::random_range(0..1_500)),
            };
            self.deliver(event.clone(), delay);
        }
    }

    fn deliver(&self, event: wire::Event, after: Duration) {
        let sandbox = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let body = serde_json::to_vec(&event).expect("events serialize");
            let mut delay = Duration::from_millis(250);
            for attempt in 1..=30 {
                let url = sandbox.0.webhook_url.read().expect("lock").clone();
                let timestamp = chrono::Utc::now().timestamp();
                let signed = signature::sign(&sandbox.0.key, &event.id, timestamp, &body);
                let result = sandbox
                    .0
                    .http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("webhook-id", &event.id)
                    .header("webhook-timestamp", timestamp.to_string())
                    .header("webhook-signature", signed)
                    .body(body.clone())
                    .send()
                    .await;
                match result {
                    Ok(r) if r.status().is_success() => {
                        *sandbox.0.delivered.lock().expect("lock") += 1;
                        return;
                    }
                    Ok(r) => {
                        tracing::debug!(event = %event.id, attempt, status = %r.status(), "webhook refused; will retry")
                    }
                    Err(e) => {
                        tracing::debug!(event = %event.id, attempt, error = %e, "webhook not delivered; will retry")
                    }
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            tracing::warn!(event = %event.id, "webhook abandoned after 30 attempts");
        });
    }
}

/// `SANDBOX_FAULTS` on the API: a share of requests refused with 429
/// before anything is done, a share answered late, a share done and then
/// answered 500.
async fn misbehave(
    State(sandbox): State<Sandbox>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let faults = &sandbox.0.config.faults;
    let hit = |share: f64| share > 0.0 && rand::random::<f64>() < share;
    if hit(faults.throttled) {
        let mut response = error(StatusCode::TOO_MANY_REQUESTS, "slow down (SANDBOX_FAULTS)");
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return response;
    }
    let response = next.run(request).await;
    if let Some((share, delay)) = faults.slow
        && hit(share)
    {
        tokio::time::sleep(delay).await;
    }
    if hit(faults.errors) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error (SANDBOX_FAULTS)",
        );
    }
    response
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn session_json(sandbox: &Sandbox, s: &Session) -> serde_json::Value {
    json!({
        "id": s.id,
        "url": format!("{}/checkout/{}", sandbox.0.public_url.read().expect("lock"), s.id),
        "status": s.status,
        "reference": s.request.reference,
        "amount_minor": s.request.amount_minor,
        "currency": s.request.currency,
        "payment_id": s.payment_id,
    })
}

async fn create_session(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Result<Json<wire::CreateSession>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if !sandbox.authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "invalid API key");
    }
    let Ok(Json(request)) = body else {
        return error(StatusCode::BAD_REQUEST, "invalid body");
    };
    if request.amount_minor < 0 || request.currency.len() != 3 {
        return error(StatusCode::BAD_REQUEST, "invalid amount or currency");
    }
    let key = idempotency_key(&headers);
    let (session, created) = {
        let mut books = sandbox.0.books.lock().expect("lock");
        let existing = key
            .as_ref()
            .and_then(|k| books.idempotency.get(k))
            .and_then(|id| books.sessions.get(id))
            .cloned();
        match existing {
            Some(s) => (s, false),
            None => {
                let session = Session {
                    id: format!("cs_{}", uuid::Uuid::now_v7().simple()),
                    request,
                    status: "open",
                    payment_id: None,
                };
                if let Some(k) = key {
                    books.idempotency.insert(k, session.id.clone());
                }
                books.sessions.insert(session.id.clone(), session.clone());
                (session, true)
            }
        }
    };
    if created && let Some((outcome, delay)) = sandbox.0.config.auto {
        let (sandbox, id) = (sandbox.clone(), session.id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            sandbox.settle(&id, outcome);
        });
    }
    Json(session_json(&sandbox, &session)).into_response()
}

async fn get_session(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !sandbox.authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "invalid API key");
    }
    let books = sandbox.0.books.lock().expect("lock");
    match books.sessions.get(&id) {
        Some(s) => Json(session_json(&sandbox, s)).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such session"),
    }
}

async fn create_refund(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Result<Json<wire::CreateRefund>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if !sandbox.authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "invalid API key");
    }
    let Ok(Json(request)) = body else {
        return error(StatusCode::BAD_REQUEST, "invalid body");
    };
    {
        let mut failing = sandbox.0.failing_refunds.lock().expect("lock");
        if *failing > 0 {
            *failing -= 1;
            return error(StatusCode::SERVICE_UNAVAILABLE, "refunds are unavailable");
        }
    }
    let key = idempotency_key(&headers);
    let refund = {
        let mut books = sandbox.0.books.lock().expect("lock");
        if let Some(existing) = key
            .as_ref()
            .and_then(|k| books.idempotency.get(k))
            .and_then(|id| books.refunds.get(id))
        {
            return Json(existing.clone()).into_response();
        }
        let Some(payment) = books.payments.get_mut(&request.payment_id) else {
            return error(StatusCode::NOT_FOUND, "no such payment");
        };
        if request.amount_minor <= 0
            || request.currency != payment.currency
            || payment.refunded_minor + request.amount_minor > payment.amount_minor
        {
            return error(
                StatusCode::BAD_REQUEST,
                "refund exceeds the payment or currency differs",
            );
        }
        payment.refunded_minor += request.amount_minor;
        let refund = wire::Refund {
            id: format!("re_{}", uuid::Uuid::now_v7().simple()),
            status: "succeeded".into(),
        };
        if let Some(k) = key {
            books.idempotency.insert(k, refund.id.clone());
        }
        books.refunds.insert(refund.id.clone(), refund.clone());
        refund
    };
    sandbox.send_webhook(wire::Event {
        id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
        event_type: "refund.succeeded".into(),
        created: chrono::Utc::now().timestamp(),
        data: wire::EventData {
            refund_id: Some(refund.id.clone()),
            reference: request.reference,
            payment_id: Some(request.payment_id),
            amount_minor: request.amount_minor,
            currency: request.currency,
            ..Default::default()
        },
    });
    Json(refund).into_response()
}

async fn checkout_page(State(sandbox): State<Sandbox>, Path(id): Path<String>) -> Response {
    let session = sandbox
        .0
        .books
        .lock()
        .expect("lock")
        .sessions
        .get(&id)
        .cloned();
    match session {
        Some(s) => Html(page::checkout(
            &id,
            &s.request.description,
            s.request.amount_minor,
            &s.request.currency,
            s.status,
        ))
        .into_response(),
        None => (StatusCode::NOT_FOUND, Html(page::not_found())).into_response(),
    }
}

async fn finish(sandbox: Sandbox, id: String, outcome: AutoOutcome) -> Response {
    match sandbox.settle(&id, outcome) {
        // The merchant closed it: nothing is charged.
        Some(s) if s.status == "expired" => (
            StatusCode::CONFLICT,
            Html(page::checkout(
                &id,
                &s.request.description,
                s.request.amount_minor,
                &s.request.currency,
                s.status,
            )),
        )
            .into_response(),
        Some(s) => Redirect::to(&s.request.return_url).into_response(),
        None => (StatusCode::NOT_FOUND, Html(page::not_found())).into_response(),
    }
}

/// `POST /v1/checkout/sessions/{id}/expire`: the merchant closes an open
/// checkout (it can no longer be paid; `checkout.expired` follows). Closing
/// it again answers the same; a paid one is refused with 409.
async fn expire_session(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !sandbox.authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "invalid API key");
    }
    let (session, closed_now) = {
        let mut books = sandbox.0.books.lock().expect("lock");
        let Some(session) = books.sessions.get_mut(&id) else {
            return error(StatusCode::NOT_FOUND, "no such session");
        };
        let closed_now = session.status == "open";
        if closed_now {
            session.status = "expired";
        }
        (session.clone(), closed_now)
    };
    match session.status {
        "expired" => {
            if closed_now {
                sandbox.send_webhook(wire::Event {
                    id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
                    event_type: "checkout.expired".into(),
                    created: chrono::Utc::now().timestamp(),
                    data: wire::EventData {
                        checkout_id: Some(session.id.clone()),
                        reference: session.request.reference.clone(),
                        amount_minor: session.request.amount_minor,
                        currency: session.request.currency.clone(),
                        ..Default::default()
                    },
                });
            }
            Json(session_json(&sandbox, &session)).into_response()
        }
        status => error(StatusCode::CONFLICT, &format!("the session is {status}")),
    }
}

async fn pay(State(sandbox): State<Sandbox>, Path(id): Path<String>) -> Response {
    finish(sandbox, id, AutoOutcome::Pay).await
}

async fn decline(State(sandbox): State<Sandbox>, Path(id): Path<String>) -> Response {
    finish(sandbox, id, AutoOutcome::Decline).await
}

/// `POST /v1/transfers`: pays out at once (`paid`, then `transfer.paid`);
/// the same `Idempotency-Key` answers the same transfer.
async fn create_transfer(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Result<Json<wire::CreateTransfer>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if !sandbox.authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "invalid API key");
    }
    let Ok(Json(request)) = body else {
        return error(StatusCode::BAD_REQUEST, "invalid body");
    };
    if request.amount_minor <= 0 || request.currency.len() != 3 || request.destination.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid amount, currency or destination",
        );
    }
    if request.destination.starts_with("acct_fail") {
        return error(
            StatusCode::PAYMENT_REQUIRED,
            "the recipient cannot receive transfers",
        );
    }
    let key = idempotency_key(&headers);
    let transfer = {
        let mut books = sandbox.0.books.lock().expect("lock");
        if let Some(existing) = key
            .as_ref()
            .and_then(|k| books.idempotency.get(k))
            .and_then(|id| books.transfers.get(id))
        {
            return Json(existing.clone()).into_response();
        }
        let transfer = wire::Transfer {
            id: format!("tr_{}", uuid::Uuid::now_v7().simple()),
            status: "paid".into(),
        };
        if let Some(k) = key {
            books.idempotency.insert(k, transfer.id.clone());
        }
        books
            .transfers
            .insert(transfer.id.clone(), transfer.clone());
        transfer
    };
    sandbox.send_webhook(wire::Event {
        id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
        event_type: "transfer.paid".into(),
        created: chrono::Utc::now().timestamp(),
        data: wire::EventData {
            transfer_id: Some(transfer.id.clone()),
            reference: request.reference,
            amount_minor: request.amount_minor,
            currency: request.currency,
            ..Default::default()
        },
    });
    Json(transfer).into_response()
}

/// A payment page must never be framed (clickjacking the Pay button) nor
/// load anything but its own inline style, wherever it is mounted.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'self'; frame-ancestors 'none'",
        ),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    response
}
