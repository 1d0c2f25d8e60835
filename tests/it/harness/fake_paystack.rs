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
    recipients: Vec<Value>,
    transfers: Vec<Value>,
    /// The next transfer is made but its answer lost (a 502 instead).
    lose_next_transfer_answer: bool,
    /// The same for the next transaction initialized.
    lose_next_initialize_answer: bool,
}

/// An account number Paystack cannot resolve at any bank.
pub const UNKNOWN_ACCOUNT: &str = "0000000000";

/// Paystack's NGN banks, two cursor pages; one inactive.
fn bank_page(currency: &str, cursor: Option<&str>) -> (Value, Value) {
    let bank = |name: &str, code: &str, active: bool| {
        json!({"name": name, "slug": name.to_lowercase().replace(' ', "-"), "code": code,
               "longcode": "", "country": "Nigeria", "currency": "NGN", "type": "nuban",
               "active": active, "is_deleted": false})
    };
    match (currency, cursor) {
        ("NGN", None) => (
            json!([
                bank("Access Bank", "044", true),
                bank("Closed Bank", "990", false)
            ]),
            json!({"next": "YmFuazoy", "previous": null, "perPage": 100}),
        ),
        ("NGN", Some("YmFuazoy")) => (
            json!([bank("Guaranty Trust Bank", "058", true)]),
            json!({"next": null, "previous": "YmFuazox", "perPage": 100}),
        ),
        _ => (
            json!([]),
            json!({"next": null, "previous": null, "perPage": 100}),
        ),
    }
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
            .route("/bank", get(list_banks))
            .route("/transferrecipient", post(create_recipient))
            .route("/transfer", post(create_transfer))
            .route("/transfer/verify/{reference}", get(verify_transfer))
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

    /// The next transaction is initialized at Paystack but the app gets
    /// a 502.
    pub fn lose_next_initialize_answer(&self) {
        self.inner.lock().unwrap().lose_next_initialize_answer = true;
    }

    /// The references of the transactions initialized, in order.
    pub fn references(&self) -> Vec<String> {
        let inner = self.inner.lock().unwrap();
        inner
            .transactions
            .iter()
            .map(|t| t["reference"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The next transfer is made at Paystack but the app gets a 502.
    pub fn lose_next_transfer_answer(&self) {
        self.inner.lock().unwrap().lose_next_transfer_answer = true;
    }

    pub fn transfers(&self) -> Vec<Value> {
        self.inner.lock().unwrap().transfers.clone()
    }

    /// Paystack completes the transfer `reference` and says so.
    pub async fn complete_transfer(&self, reference: &str) -> u16 {
        let data = {
            let mut inner = self.inner.lock().unwrap();
            let t = inner
                .transfers
                .iter_mut()
                .find(|t| t["reference"] == reference)
                .expect("a transfer");
            t["status"] = "success".into();
            t.clone()
        };
        self.webhook("transfer.success", data, SECRET_KEY).await
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
    if std::mem::take(&mut inner.lose_next_initialize_answer) {
        return refuse(StatusCode::BAD_GATEWAY, "upstream timed out");
    }
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

async fn list_banks(
    State(fake): State<FakePaystack>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(answer) = accept(&fake, "GET", "/bank".into(), &headers, json!(query), &[]) {
        return *answer;
    }
    let currency = query.get("currency").map(String::as_str).unwrap_or("NGN");
    let (data, meta) = bank_page(currency, query.get("next").map(String::as_str));
    (
        StatusCode::OK,
        Json(json!({"status": true, "message": "Banks retrieved", "data": data, "meta": meta})),
    )
        .into_response()
}

async fn create_recipient(
    State(fake): State<FakePaystack>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let body = match accept(
        &fake,
        "POST",
        "/transferrecipient".into(),
        &headers,
        body,
        &["type", "name", "account_number", "bank_code"],
    ) {
        Ok(body) => body,
        Err(answer) => return *answer,
    };
    if body["account_number"] == UNKNOWN_ACCOUNT {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Could not resolve account name. Check parameters or try again.",
        );
    }
    let mut inner = fake.inner.lock().unwrap();
    // A known account is answered with its recipient, as Paystack does.
    if let Some(known) = inner.recipients.iter().find(|r| {
        r["details"]["account_number"] == body["account_number"]
            && r["details"]["bank_code"] == body["bank_code"]
    }) {
        return answer(StatusCode::OK, known.clone());
    }
    inner.next += 1;
    let recipient = json!({
        "id": inner.next,
        "recipient_code": format!("RCP_fake{}", inner.next),
        "type": body["type"],
        "name": body["name"],
        "currency": body["currency"],
        "active": true,
        "details": {"account_number": body["account_number"], "bank_code": body["bank_code"]},
    });
    inner.recipients.push(recipient.clone());
    answer(StatusCode::CREATED, recipient)
}

async fn create_transfer(
    State(fake): State<FakePaystack>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let body = match accept(
        &fake,
        "POST",
        "/transfer".into(),
        &headers,
        body,
        &["source", "amount", "recipient", "reference"],
    ) {
        Ok(body) => body,
        Err(answer) => return *answer,
    };
    let mut inner = fake.inner.lock().unwrap();
    if !inner
        .recipients
        .iter()
        .any(|r| r["recipient_code"] == body["recipient"])
    {
        return refuse(StatusCode::BAD_REQUEST, "Recipient specified is invalid");
    }
    if inner
        .transfers
        .iter()
        .any(|t| t["reference"] == body["reference"])
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Transfer reference already exists. Please use a unique reference",
        );
    }
    inner.next += 1;
    let transfer = json!({
        "id": inner.next,
        "transfer_code": format!("TRF_fake{}", inner.next),
        "reference": body["reference"],
        "amount": body["amount"],
        "currency": body["currency"],
        "recipient": body["recipient"],
        "status": "pending",
    });
    inner.transfers.push(transfer.clone());
    if std::mem::take(&mut inner.lose_next_transfer_answer) {
        return refuse(StatusCode::BAD_GATEWAY, "upstream timed out");
    }
    answer(StatusCode::OK, transfer)
}

async fn verify_transfer(
    State(fake): State<FakePaystack>,
    Path(reference): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(answer) = accept(
        &fake,
        "GET",
        format!("/transfer/verify/{reference}"),
        &headers,
        json!({}),
        &[],
    ) {
        return *answer;
    }
    let inner = fake.inner.lock().unwrap();
    match inner
        .transfers
        .iter()
        .find(|t| t["reference"] == reference.as_str())
    {
        Some(t) => answer(StatusCode::OK, t.clone()),
        None => refuse(StatusCode::NOT_FOUND, "Transfer not found"),
    }
}
