//! A local stand-in for Paystack's API over real HTTP: bearer secret key,
//! JSON bodies with the fields Paystack documents, `{status, message, data}`
//! answers, unique references, and webhooks signed with the secret key
//! (`x-paystack-signature`, hex HMAC-SHA512).

use std::sync::{Arc, Mutex};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

pub const SECRET_KEY: &str = "sk_test_boxoffice_paystack";

/// A request as the fake received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: &'static str,
    pub path: String,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    seen: Vec<Seen>,
    /// Transactions by reference.
    transactions: Vec<Value>,
    refunds: Vec<Value>,
    webhook_url: Option<String>,
    next: u64,
    /// New refunds stay `pending` (Paystack's usual first answer).
    refunds_pending: bool,
}

#[derive(Clone)]
pub struct FakePaystack {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
    http: reqwest::Client,
}

fn answer(status: StatusCode, data: Value) -> Response {
    (
        status,
        Json(json!({"status": true, "message": "ok", "data": data})),
    )
        .into_response()
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"status": false, "message": message}))).into_response()
}

impl FakePaystack {
    pub async fn start() -> Self {
        boxoffice_core::install_crypto_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Self {
            inner: Arc::new(Mutex::new(Inner::default())),
            url: format!("http://{}", listener.local_addr().unwrap()),
            http: reqwest::Client::new(),
        };
        let app = Router::new()
            .route("/transaction/initialize", post(initialize))
            .route("/transaction/verify/{reference}", get(verify))
            .route("/refund", post(create_refund).get(list_refunds))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    pub fn send_webhooks_to(&self, url: String) {
        self.inner.lock().unwrap().webhook_url = Some(url);
    }

    pub fn refunds_stay_pending(&self) {
        self.inner.lock().unwrap().refunds_pending = true;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    /// Paystack processes every pending refund.
    pub fn process_refunds(&self) {
        for r in &mut self.inner.lock().unwrap().refunds {
            r["status"] = "processed".into();
        }
    }

    /// The buyer pays: the transaction succeeds and `charge.success` is
    /// sent, signed.
    pub async fn pay(&self, reference: &str) -> u16 {
        let data = {
            let mut inner = self.inner.lock().unwrap();
            let t = inner
                .transactions
                .iter_mut()
                .find(|t| t["reference"] == reference)
                .expect("a transaction");
            t["status"] = "success".into();
            t.clone()
        };
        self.webhook("charge.success", data, SECRET_KEY).await
    }

    pub async fn webhook(&self, event: &str, data: Value, key: &str) -> u16 {
        let url = self.inner.lock().unwrap().webhook_url.clone().unwrap();
        let body = serde_json::to_vec(&json!({"event": event, "data": data})).unwrap();
        let signature = boxoffice_core::payments::paystack::sign(key, &body);
        self.http
            .post(url)
            .header("content-type", "application/json")
            .header("x-paystack-signature", signature)
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }
}

/// Checks the key, records the request; `Err` is the answer to give.
fn accept(
    fake: &FakePaystack,
    method: &'static str,
    path: String,
    headers: &HeaderMap,
    body: Value,
    required: &[&str],
) -> Result<Value, Box<Response>> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    fake.inner.lock().unwrap().seen.push(Seen {
        method,
        path,
        body: body.clone(),
    });
    if auth != format!("Bearer {SECRET_KEY}") {
        return Err(Box::new(refuse(StatusCode::UNAUTHORIZED, "Invalid key")));
    }
    if let Some(missing) = required.iter().find(|f| body.get(**f).is_none()) {
        return Err(Box::new(refuse(
            StatusCode::BAD_REQUEST,
            &format!("{missing} is required"),
        )));
    }
    Ok(body)
}

async fn initialize(
    State(fake): State<FakePaystack>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let body = match accept(
        &fake,
        "POST",
        "/transaction/initialize".into(),
        &headers,
        body,
        &["email", "amount", "reference", "callback_url"],
    ) {
        Ok(body) => body,
        Err(answer) => return *answer,
    };
    let mut inner = fake.inner.lock().unwrap();
    if inner
        .transactions
        .iter()
        .any(|t| t["reference"] == body["reference"])
    {
        return refuse(StatusCode::BAD_REQUEST, "Duplicate Transaction Reference");
    }
    inner.next += 1;
    let n = inner.next;
    let access_code = format!("ac_{n}");
    inner.transactions.push(json!({
        "id": n,
        "reference": body["reference"],
        "amount": body["amount"],
        "currency": body["currency"],
        "status": "abandoned",
        "metadata": body["metadata"],
    }));
    answer(
        StatusCode::OK,
        json!({
            "authorization_url": format!("{}/checkout/{access_code}", fake.url),
            "access_code": access_code,
            "reference": body["reference"],
        }),
    )
}

async fn verify(
    State(fake): State<FakePaystack>,
    Path(reference): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(answer) = accept(
        &fake,
        "GET",
        format!("/transaction/verify/{reference}"),
        &headers,
        json!({}),
        &[],
    ) {
        return *answer;
    }
    let inner = fake.inner.lock().unwrap();
    match inner
        .transactions
        .iter()
        .find(|t| t["reference"] == reference.as_str())
    {
        Some(t) => answer(StatusCode::OK, t.clone()),
        None => refuse(StatusCode::BAD_REQUEST, "Transaction reference not found"),
    }
}

async fn list_refunds(
    State(fake): State<FakePaystack>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(answer) = accept(&fake, "GET", "/refund".into(), &headers, json!({}), &[]) {
        return *answer;
    }
    let transaction = query.get("transaction").cloned().unwrap_or_default();
    let inner = fake.inner.lock().unwrap();
    let refunds: Vec<Value> = inner
        .refunds
        .iter()
        .filter(|r| r["transaction"] == transaction.as_str())
        .cloned()
        .collect();
    answer(StatusCode::OK, json!(refunds))
}

async fn create_refund(
    State(fake): State<FakePaystack>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let body = match accept(
        &fake,
        "POST",
        "/refund".into(),
        &headers,
        body,
        &["transaction", "amount"],
    ) {
        Ok(body) => body,
        Err(answer) => return *answer,
    };
    let mut inner = fake.inner.lock().unwrap();
    if !inner
        .transactions
        .iter()
        .any(|t| t["reference"] == body["transaction"] && t["status"] == "success")
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Transaction not found or not successful",
        );
    }
    inner.next += 1;
    let n = inner.next;
    let pending = inner.refunds_pending;
    let refund = json!({
        "id": n,
        "transaction": body["transaction"],
        "amount": body["amount"],
        "currency": body["currency"],
        "merchant_note": body["merchant_note"],
        "status": if pending { "pending" } else { "processed" },
    });
    inner.refunds.push(refund.clone());
    answer(StatusCode::OK, refund)
}
