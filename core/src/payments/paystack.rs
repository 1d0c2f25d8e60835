//! Paystack over its REST API (JSON both ways, `{status, message, data}`
//! answers): transactions for payments, refunds, transfers to organizers'
//! recipients, and its webhooks (`x-paystack-signature`: hex HMAC-SHA512
//! of the raw body with the secret key).
//!
//! Paystack has no idempotency keys. A transaction's and a transfer's
//! `reference` are ours (order id, payout id) and unique at Paystack, so a
//! retry cannot make a second one (a transfer retry after a lost answer
//! finds the first by its reference). A refund carries our refund id in its
//! `merchant_note`; before asking for one we look for it among the
//! transaction's refunds, so a retry finds the first instead of refunding
//! twice, and a refund that stays pending is finished by the open-refunds
//! sweep asking again. Paystack cannot cancel an initialized transaction:
//! closing a checkout does nothing, and a payment that still arrives for a
//! cancelled order is given back (`pay`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::Sha512;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{
    Bank, BankAccount, Checkout, CheckoutRequest, EventKind, PaymentCheck, ProviderError,
    ProviderEvent, RefundRequest, RefundResult, RefundStatus, TransferRequest, TransferResult,
    TransferStatus, WebhookError, signature::SignatureError,
};
use crate::config::PaystackConfig;

#[derive(Clone)]
pub struct PaystackClient {
    http: reqwest::Client,
    base: String,
    secret_key: String,
    /// Bank lists per currency, kept for [`BANKS_TTL`]: they change
    /// rarely and organizers' forms ask for them often.
    banks: Arc<Mutex<HashMap<String, CachedBanks>>>,
}

/// A currency's banks and when they were fetched.
type CachedBanks = (Instant, Arc<Vec<Bank>>);

/// References one order's transactions may take (`create_checkout`).
const MAX_REFERENCES: usize = 4;

const BANKS_TTL: Duration = Duration::from_secs(3600);
/// Bank lists are a few hundred long; a list longer than this many pages
/// is a loop, not banks.
const MAX_BANK_PAGES: usize = 20;

/// How our refund id is written in a refund's `merchant_note`.
fn refund_note(refund_id: Uuid) -> String {
    format!("boxoffice refund {refund_id}")
}

fn refund_of_note(note: &str) -> Option<Uuid> {
    note.strip_prefix("boxoffice refund ")?.trim().parse().ok()
}

impl PaystackClient {
    pub fn new(
        config: &PaystackConfig,
        timeout: std::time::Duration,
    ) -> Result<Self, super::SetupError> {
        Ok(Self {
            http: super::client(timeout)?,
            base: config.api_url.clone(),
            secret_key: config.secret_key.clone(),
            banks: Arc::default(),
        })
    }

    /// One call; the answer's `data`.
    async fn call<R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        operation: &'static str,
    ) -> Result<R, ProviderError> {
        let answer = self.call_answer(method, path, body, operation).await?;
        serde_json::from_value(answer["data"].clone())
            .map_err(|e| ProviderError::Transient(format!("unexpected answer: {e}")))
    }

    /// One call; the whole answer (`data` and `meta`).
    async fn call_answer(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        operation: &'static str,
    ) -> Result<Value, ProviderError> {
        let started = std::time::Instant::now();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.secret_key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let sent = request.send().await;
        super::observe("paystack", operation, &sent, started);
        let response = sent.map_err(super::transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let answer: Value = response
            .json()
            .await
            .map_err(|e| ProviderError::Transient(format!("unreadable answer ({status}): {e}")))?;
        if status.is_success() && answer["status"] == true {
            return Ok(answer);
        }
        let message = answer["message"].as_str().unwrap_or_default();
        Err(super::failure(status, &headers, message))
    }

    /// Initializes the order's transaction, referenced by the order id.
    /// Paystack refuses a reference twice: when an earlier attempt's answer
    /// was lost (its page never reached the buyer, so it cannot be paid),
    /// the order takes a fresh reference, `{order id}-r{n}`.
    pub async fn create_checkout(&self, req: &CheckoutRequest) -> Result<Checkout, ProviderError> {
        let mut refused = String::new();
        for n in 0..MAX_REFERENCES {
            let reference = match n {
                0 => req.order_id.to_string(),
                n => format!("{}-r{n}", req.order_id),
            };
            let sent = self
                .call::<Value>(
                    Method::POST,
                    "/transaction/initialize",
                    Some(&json!({
                        "email": req.customer_email,
                        "amount": req.amount_minor,
                        "currency": req.currency,
                        "reference": reference,
                        "callback_url": req.return_url,
                        "metadata": {"order_id": req.order_id, "event_id": req.event_id},
                    })),
                    "checkout",
                )
                .await;
            let data = match sent {
                Err(ProviderError::Rejected(why)) if why.contains("Duplicate") => {
                    refused = why;
                    continue;
                }
                other => other?,
            };
            let url = data["authorization_url"]
                .as_str()
                .ok_or_else(|| ProviderError::Transient("no authorization_url".into()))?;
            return Ok(Checkout {
                id: reference,
                url: url.to_owned(),
            });
        }
        Err(ProviderError::Rejected(refused))
    }

    /// Asks Paystack whether the transaction `reference` succeeded, for
    /// this amount.
    pub async fn confirm_payment(
        &self,
        reference: &str,
        amount_minor: i64,
        currency: &str,
    ) -> Result<PaymentCheck, ProviderError> {
        let data: Value = self
            .call(
                Method::GET,
                &format!("/transaction/verify/{reference}"),
                None,
                "confirm_payment",
            )
            .await?;
        Ok(if data["status"] != "success" {
            PaymentCheck::NotPaid(format!(
                "transaction {reference} is {}",
                data["status"].as_str().unwrap_or("unknown")
            ))
        } else if data["amount"].as_i64() != Some(amount_minor)
            || !data["currency"]
                .as_str()
                .is_some_and(|c| c.eq_ignore_ascii_case(currency))
        {
            PaymentCheck::NotPaid("the transaction's amount differs from the event's".into())
        } else {
            PaymentCheck::Paid
        })
    }

    pub async fn refund(&self, req: &RefundRequest) -> Result<RefundResult, ProviderError> {
        let note = refund_note(req.refund_id);
        let earlier: Vec<Value> = self
            .call(
                Method::GET,
                &format!("/refund?transaction={}", req.payment_id),
                None,
                "refund",
            )
            .await?;
        let refund = match earlier
            .into_iter()
            .find(|r| r["merchant_note"] == note.as_str())
        {
            Some(refund) => refund,
            None => {
                self.call(
                    Method::POST,
                    "/refund",
                    Some(&json!({
                        "transaction": req.payment_id,
                        "amount": req.amount_minor,
                        "currency": req.currency,
                        "merchant_note": note,
                    })),
                    "refund",
                )
                .await?
            }
        };
        let status = match refund["status"].as_str() {
            Some("processed") => RefundStatus::Succeeded,
            Some("failed") => RefundStatus::Failed,
            _ => RefundStatus::Pending,
        };
        Ok(RefundResult {
            id: refund["id"].to_string(),
            status,
        })
    }

    /// Sends a payout, referenced by the payout id. Paystack refuses a
    /// reference it has seen: when an earlier attempt's answer was lost,
    /// that refusal is answered with the transfer the attempt made.
    pub async fn transfer(&self, req: &TransferRequest) -> Result<TransferResult, ProviderError> {
        let sent = self
            .call(
                Method::POST,
                "/transfer",
                Some(&json!({
                    "source": "balance",
                    "amount": req.amount_minor,
                    "currency": req.currency,
                    "recipient": req.destination,
                    "reference": req.payout_id,
                    "reason": format!("Boxoffice payout {}", req.payout_id),
                })),
                "transfer",
            )
            .await;
        let data: Value = match sent {
            Err(ProviderError::Rejected(why)) if why.to_ascii_lowercase().contains("reference") => {
                let path = format!("/transfer/verify/{}", req.payout_id);
                match self.call(Method::GET, &path, None, "transfer").await {
                    // No transfer of ours: the refusal was about something else.
                    Err(ProviderError::Rejected(_)) => return Err(ProviderError::Rejected(why)),
                    found => found?,
                }
            }
            other => other?,
        };
        let status = match data["status"].as_str() {
            Some("success") => TransferStatus::Paid,
            Some("failed" | "reversed") => TransferStatus::Failed,
            _ => TransferStatus::Pending,
        };
        Ok(TransferResult {
            id: data["transfer_code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            status,
        })
    }

    /// The banks organizers in `currency` can be paid into (`GET /bank`,
    /// every cursor page), from the cache when it is fresh.
    pub async fn banks(&self, currency: &str) -> Result<Arc<Vec<Bank>>, ProviderError> {
        if let Some((at, banks)) = self.banks.lock().expect("banks cache").get(currency)
            && at.elapsed() < BANKS_TTL
        {
            return Ok(banks.clone());
        }
        let mut banks = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_BANK_PAGES {
            let mut path = format!("/bank?currency={currency}&perPage=100&use_cursor=true");
            if let Some(next) = &cursor {
                path.push_str("&next=");
                path.push_str(
                    &url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>(),
                );
            }
            let answer = self.call_answer(Method::GET, &path, None, "banks").await?;
            let page: Vec<Value> = serde_json::from_value(answer["data"].clone())
                .map_err(|e| ProviderError::Transient(format!("unexpected answer: {e}")))?;
            banks.extend(
                page.iter()
                    .filter(|b| b["active"] != false)
                    .filter_map(|b| {
                        Some(Bank {
                            name: b["name"].as_str()?.to_owned(),
                            code: b["code"].as_str()?.to_owned(),
                            currency: b["currency"].as_str().unwrap_or(currency).to_owned(),
                            kind: b["type"].as_str().unwrap_or("nuban").to_owned(),
                        })
                    }),
            );
            cursor = answer["meta"]["next"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        let banks = Arc::new(banks);
        self.banks
            .lock()
            .expect("banks cache")
            .insert(currency.to_owned(), (Instant::now(), banks.clone()));
        Ok(banks)
    }

    /// Registers an organizer's bank account as a transfer recipient
    /// (`POST /transferrecipient`); its `recipient_code` is where their
    /// payouts go. Paystack answers an account it knows with the
    /// recipient it made before, so a retry makes no second one.
    pub async fn create_recipient(
        &self,
        account: &BankAccount,
        kind: &str,
    ) -> Result<String, ProviderError> {
        let data: Value = self
            .call(
                Method::POST,
                "/transferrecipient",
                Some(&json!({
                    "type": kind,
                    "name": account.account_name,
                    "account_number": account.account_number,
                    "bank_code": account.bank_code,
                    "currency": account.currency,
                })),
                "recipient",
            )
            .await?;
        data["recipient_code"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ProviderError::Transient("no recipient_code".into()))
    }

    pub fn verify_webhook(
        &self,
        header: &dyn Fn(&str) -> Option<String>,
        body: &[u8],
    ) -> Result<ProviderEvent, WebhookError> {
        verify_signature(
            &self.secret_key,
            header("x-paystack-signature").as_deref(),
            body,
        )?;
        parse_event(body)
    }
}

/// The `x-paystack-signature` of `body` (tests and the fake sign with it).
pub fn sign(secret_key: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha512>::new_from_slice(secret_key.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hex HMAC-SHA512 of the raw body with the secret key, compared in
/// constant time. No timestamp: replays are deduplicated by the inbox.
pub fn verify_signature(
    secret_key: &str,
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let offered = header
        .ok_or(SignatureError::Missing)?
        .trim()
        .to_ascii_lowercase();
    if bool::from(offered.as_bytes().ct_eq(sign(secret_key, body).as_bytes())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Maps a verified event onto what the workers apply.
pub fn parse_event(body: &[u8]) -> Result<ProviderEvent, WebhookError> {
    let event: Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::Payload(e.to_string()))?;
    let event_type = event["event"].as_str().unwrap_or_default().to_owned();
    let data = &event["data"];
    let reference = data["reference"].as_str().unwrap_or_default().to_owned();
    // Paystack's events carry no id of their own: the event, its object's
    // id and reference name one delivery of one fact.
    let id = format!("{event_type}:{}:{reference}", data["id"]);
    // Our references: an order's or a payout's id, an order's maybe with
    // a `-r{n}` suffix (`create_checkout`).
    let ours = |r: &str| r.get(..36)?.parse::<Uuid>().ok();
    let kind = match event_type.as_str() {
        "charge.success" => match ours(&reference) {
            Some(order_id) => EventKind::PaymentSucceeded {
                checkout_id: reference.clone(),
                order_id,
                // Refunds name the transaction by its reference.
                payment_id: reference.clone(),
                amount_minor: data["amount"]
                    .as_i64()
                    .ok_or_else(|| WebhookError::Payload("charge.success without amount".into()))?,
                currency: data["currency"].as_str().unwrap_or_default().to_uppercase(),
            },
            None => EventKind::Ignored,
        },
        "refund.processed" | "refund.failed" => {
            match data["merchant_note"].as_str().and_then(refund_of_note) {
                Some(refund_id) => {
                    let provider_refund_id = data["id"].to_string();
                    if event_type == "refund.processed" {
                        EventKind::RefundSucceeded {
                            provider_refund_id,
                            refund_id,
                        }
                    } else {
                        EventKind::RefundFailed {
                            provider_refund_id,
                            refund_id,
                        }
                    }
                }
                // Not ours, or without its note: the open-refunds sweep
                // asks Paystack for ours.
                None => EventKind::Ignored,
            }
        }
        "transfer.success" | "transfer.failed" | "transfer.reversed" => match ours(&reference) {
            Some(payout_id) => {
                let transfer_id = data["transfer_code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if event_type == "transfer.success" {
                    EventKind::TransferPaid {
                        transfer_id,
                        payout_id,
                    }
                } else {
                    EventKind::TransferFailed {
                        transfer_id,
                        payout_id,
                    }
                }
            }
            None => EventKind::Ignored,
        },
        _ => EventKind::Ignored,
    };
    Ok(ProviderEvent {
        id,
        event_type,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed with a plain HMAC outside this code (see
    /// `shared/notes/webhook-signatures.md`).
    const KEY: &str = "sk_test_xxx";
    const BODY: &[u8] = br#"{"event":"charge.success","data":{"reference":"ref_123"}}"#;
    const SIGNATURE: &str = "392ce474f0f9fed84befbcb9ee82dcc6cee67859246f7d7534a33278c8486c0c07581d2b6a609803159f69008b80f7a37a3586074349d4288dae9fcfc1e23879";

    #[test]
    fn the_vector_verifies_and_anything_else_does_not() {
        assert_eq!(sign(KEY, BODY), SIGNATURE);
        assert_eq!(verify_signature(KEY, Some(SIGNATURE), BODY), Ok(()));
        assert_eq!(
            verify_signature(KEY, Some(&SIGNATURE.to_uppercase()), BODY),
            Ok(())
        );
        let tampered = br#"{"event":"charge.success","data":{"reference":"ref_124"}}"#;
        assert_eq!(
            verify_signature(KEY, Some(SIGNATURE), tampered),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature("sk_test_other", Some(SIGNATURE), BODY),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(KEY, None, BODY),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(KEY, Some("abc"), BODY),
            Err(SignatureError::Mismatch)
        );
    }

    /// Vectors from a separate implementation (`scripts/fixtures/`).
    #[test]
    fn the_independent_vectors_get_their_verdicts() {
        let fixtures: Value =
            serde_json::from_str(include_str!("fixtures/paystack_signatures.json")).unwrap();
        let key = fixtures["key"].as_str().unwrap();
        let cases = fixtures["cases"].as_array().unwrap();
        assert!(cases.len() >= 5);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let body = case["body"].as_str().unwrap().as_bytes();
            let offered = case["signature"].as_str().unwrap();
            let verdict = verify_signature(key, Some(offered), body);
            if case["valid"] == true {
                assert_eq!(verdict, Ok(()), "{name}");
                assert_eq!(sign(key, body), offered, "{name}");
            } else {
                assert_eq!(verdict, Err(SignatureError::Mismatch), "{name}");
            }
        }
    }

    #[test]
    fn events_map_onto_what_the_workers_apply() {
        let order = Uuid::now_v7();
        let refund = Uuid::now_v7();
        let event = |kind: &str, data: Value| {
            serde_json::to_vec(&json!({"event": kind, "data": data})).unwrap()
        };
        let charge = json!({"id": 42, "reference": order, "amount": 5000, "currency": "NGN", "status": "success"});
        assert_eq!(
            parse_event(&event("charge.success", charge)).unwrap().kind,
            EventKind::PaymentSucceeded {
                checkout_id: order.to_string(),
                order_id: order,
                payment_id: order.to_string(),
                amount_minor: 5000,
                currency: "NGN".into(),
            }
        );
        // A fresh reference taken after a lost answer is still the order's.
        let again = format!("{order}-r1");
        let charge = json!({"id": 43, "reference": again, "amount": 5000, "currency": "NGN", "status": "success"});
        assert_eq!(
            parse_event(&event("charge.success", charge)).unwrap().kind,
            EventKind::PaymentSucceeded {
                checkout_id: again.clone(),
                order_id: order,
                payment_id: again,
                amount_minor: 5000,
                currency: "NGN".into(),
            }
        );
        let charge =
            json!({"id": 44, "reference": "by-hand-ref", "amount": 5000, "currency": "NGN"});
        assert_eq!(
            parse_event(&event("charge.success", charge)).unwrap().kind,
            EventKind::Ignored
        );
        let processed = json!({"id": 7, "transaction_reference": order, "status": "processed",
                               "merchant_note": refund_note(refund)});
        assert_eq!(
            parse_event(&event("refund.processed", processed))
                .unwrap()
                .kind,
            EventKind::RefundSucceeded {
                provider_refund_id: "7".into(),
                refund_id: refund
            }
        );
        let foreign = json!({"id": 8, "status": "processed", "merchant_note": "by hand"});
        assert_eq!(
            parse_event(&event("refund.processed", foreign))
                .unwrap()
                .kind,
            EventKind::Ignored
        );
        let payout = Uuid::now_v7();
        let reversed = json!({"id": 9, "reference": payout, "transfer_code": "TRF_1"});
        assert_eq!(
            parse_event(&event("transfer.reversed", reversed))
                .unwrap()
                .kind,
            EventKind::TransferFailed {
                transfer_id: "TRF_1".into(),
                payout_id: payout
            }
        );
    }
}
