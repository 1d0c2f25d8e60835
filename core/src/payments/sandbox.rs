//! The sandbox provider's API as seen from Boxoffice (its server side lives in
//! the `boxoffice-sandbox` crate; both share the wire types below).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    Checkout, CheckoutRequest, EventKind, ProviderError, ProviderEvent, RefundRequest,
    RefundResult, TransferRequest, TransferResult, TransferStatus, WebhookError, signature,
};
use crate::config::PaymentsConfig;

/// Wire types of the sandbox API and of the webhooks it sends.
pub mod wire {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct CreateSession {
        pub reference: String,
        pub amount_minor: i64,
        pub currency: String,
        pub description: String,
        pub customer_email: String,
        pub return_url: String,
        pub expires_at: i64,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Session {
        pub id: String,
        pub url: String,
        pub status: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct CreateRefund {
        pub reference: String,
        pub payment_id: String,
        pub amount_minor: i64,
        pub currency: String,
        pub reason: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Refund {
        pub id: String,
        pub status: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct CreateTransfer {
        pub reference: String,
        pub destination: String,
        pub amount_minor: i64,
        pub currency: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Transfer {
        pub id: String,
        pub status: String,
    }

    /// `checkout.completed`, `checkout.declined`, `checkout.expired`,
    /// `refund.succeeded`, `refund.failed`, `transfer.paid`, `transfer.failed`.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Event {
        pub id: String,
        #[serde(rename = "type")]
        pub event_type: String,
        pub created: i64,
        pub data: EventData,
    }

    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    pub struct EventData {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub checkout_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub refund_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub transfer_id: Option<String>,
        /// The merchant's reference: our order id (checkouts), refund id or
        /// payout id (transfers).
        pub reference: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub payment_id: Option<String>,
        #[serde(default)]
        pub amount_minor: i64,
        #[serde(default)]
        pub currency: String,
    }
}

#[derive(Clone)]
pub struct SandboxClient {
    http: reqwest::Client,
    base: String,
    api_key: String,
    webhook_keys: Vec<Vec<u8>>,
    tolerance_secs: i64,
}

#[derive(Deserialize, Serialize)]
struct ErrorBody {
    error: String,
}

impl SandboxClient {
    pub fn new(config: &PaymentsConfig) -> Result<Self, super::SetupError> {
        Ok(Self {
            http: super::client(config.provider_timeout)?,
            base: config.provider_url.clone(),
            api_key: config.api_key.clone(),
            webhook_keys: config
                .webhook_secrets
                .iter()
                .map(|s| signature::decode_secret(s))
                .collect::<Result<_, _>>()?,
            tolerance_secs: config.webhook_tolerance.as_secs() as i64,
        })
    }

    async fn post<B: Serialize, R: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        idempotency_key: &str,
        body: &B,
    ) -> Result<R, ProviderError> {
        let started = std::time::Instant::now();
        let sent = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.api_key)
            .header("idempotency-key", idempotency_key)
            .json(body)
            .send()
            .await;
        let operation = if path.contains("refund") {
            "refund"
        } else if path.contains("transfer") {
            "transfer"
        } else if path.ends_with("/expire") {
            "expire_checkout"
        } else {
            "checkout"
        };
        super::observe("sandbox", operation, &sent, started);
        let response = sent.map_err(super::transport_error)?;
        let status = response.status();
        if status.is_success() {
            return response
                .json()
                .await
                .map_err(|e| ProviderError::Transient(format!("unreadable answer: {e}")));
        }
        let headers = response.headers().clone();
        let detail = response
            .json::<ErrorBody>()
            .await
            .map(|b| b.error)
            .unwrap_or_default();
        Err(super::failure(status, &headers, &detail))
    }

    pub async fn create_checkout(&self, req: &CheckoutRequest) -> Result<Checkout, ProviderError> {
        let session: wire::Session = self
            .post(
                "/v1/checkout/sessions",
                &format!("checkout:{}", req.order_id),
                &wire::CreateSession {
                    reference: req.order_id.to_string(),
                    amount_minor: req.amount_minor,
                    currency: req.currency.clone(),
                    description: req.description.clone(),
                    customer_email: req.customer_email.clone(),
                    return_url: req.return_url.clone(),
                    expires_at: req.expires_at,
                },
            )
            .await?;
        Ok(Checkout {
            id: session.id,
            url: session.url,
        })
    }

    pub async fn expire_checkout(&self, checkout_id: &str) -> Result<(), ProviderError> {
        let _: wire::Session = self
            .post(
                &format!("/v1/checkout/sessions/{checkout_id}/expire"),
                &format!("expire:{checkout_id}"),
                &serde_json::json!({}),
            )
            .await?;
        Ok(())
    }

    pub async fn transfer(&self, req: &TransferRequest) -> Result<TransferResult, ProviderError> {
        let transfer: wire::Transfer = self
            .post(
                "/v1/transfers",
                &format!("transfer:{}", req.payout_id),
                &wire::CreateTransfer {
                    reference: req.payout_id.to_string(),
                    destination: req.destination.clone(),
                    amount_minor: req.amount_minor,
                    currency: req.currency.clone(),
                },
            )
            .await?;
        let status = match transfer.status.as_str() {
            "paid" => TransferStatus::Paid,
            "failed" => TransferStatus::Failed,
            _ => TransferStatus::Pending,
        };
        Ok(TransferResult {
            id: transfer.id,
            status,
        })
    }

    pub async fn refund(&self, req: &RefundRequest) -> Result<RefundResult, ProviderError> {
        let refund: wire::Refund = self
            .post(
                "/v1/refunds",
                &format!("refund:{}", req.refund_id),
                &wire::CreateRefund {
                    reference: req.refund_id.to_string(),
                    payment_id: req.payment_id.clone(),
                    amount_minor: req.amount_minor,
                    currency: req.currency.clone(),
                    reason: req.reason.clone(),
                },
            )
            .await?;
        let status = match refund.status.as_str() {
            "succeeded" => super::RefundStatus::Succeeded,
            "failed" => super::RefundStatus::Failed,
            _ => super::RefundStatus::Pending,
        };
        Ok(RefundResult {
            id: refund.id,
            status,
        })
    }

    pub fn verify_webhook(
        &self,
        header: &dyn Fn(&str) -> Option<String>,
        body: &[u8],
        now: i64,
    ) -> Result<ProviderEvent, WebhookError> {
        signature::verify(
            &self.webhook_keys,
            header("webhook-id").as_deref(),
            header("webhook-timestamp").as_deref(),
            header("webhook-signature").as_deref(),
            body,
            now,
            self.tolerance_secs,
        )?;
        let event: wire::Event =
            serde_json::from_slice(body).map_err(|e| WebhookError::Payload(e.to_string()))?;
        let reference = || {
            event
                .data
                .reference
                .parse::<Uuid>()
                .map_err(|_| WebhookError::Payload("reference is not one of ours".into()))
        };
        let missing =
            |what: &str| WebhookError::Payload(format!("{} without {what}", event.event_type));
        let kind = match event.event_type.as_str() {
            "checkout.completed" => EventKind::PaymentSucceeded {
                checkout_id: event
                    .data
                    .checkout_id
                    .clone()
                    .ok_or_else(|| missing("checkout_id"))?,
                order_id: reference()?,
                payment_id: event
                    .data
                    .payment_id
                    .clone()
                    .ok_or_else(|| missing("payment_id"))?,
                amount_minor: event.data.amount_minor,
                currency: event.data.currency.clone(),
            },
            "checkout.declined" | "checkout.expired" => EventKind::PaymentFailed {
                checkout_id: event
                    .data
                    .checkout_id
                    .clone()
                    .ok_or_else(|| missing("checkout_id"))?,
                order_id: reference()?,
            },
            "refund.succeeded" => EventKind::RefundSucceeded {
                provider_refund_id: event
                    .data
                    .refund_id
                    .clone()
                    .ok_or_else(|| missing("refund_id"))?,
                refund_id: reference()?,
            },
            "refund.failed" => EventKind::RefundFailed {
                provider_refund_id: event
                    .data
                    .refund_id
                    .clone()
                    .ok_or_else(|| missing("refund_id"))?,
                refund_id: reference()?,
            },
            "transfer.paid" => EventKind::TransferPaid {
                transfer_id: event
                    .data
                    .transfer_id
                    .clone()
                    .ok_or_else(|| missing("transfer_id"))?,
                payout_id: reference()?,
            },
            "transfer.failed" => EventKind::TransferFailed {
                transfer_id: event
                    .data
                    .transfer_id
                    .clone()
                    .ok_or_else(|| missing("transfer_id"))?,
                payout_id: reference()?,
            },
            _ => EventKind::Ignored,
        };
        Ok(ProviderEvent {
            id: event.id,
            event_type: event.event_type,
            kind,
        })
    }
}
