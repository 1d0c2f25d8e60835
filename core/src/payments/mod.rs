//! Payment providers. Boxoffice talks to each over its real HTTP API, exactly
//! as it would to Stripe; the built-in sandbox is simply the default one.
//! Which adapter runs is chosen by config (`PAYMENT_PROVIDER`).

pub mod sandbox;
pub mod signature;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{PaymentsConfig, ProviderKind};

/// What we ask a provider for when an order has seats reserved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckoutRequest {
    /// Our order id: the provider's reference and idempotency key, so a
    /// retried call returns the same checkout.
    pub order_id: Uuid,
    pub amount_minor: i64,
    pub currency: String,
    pub description: String,
    pub customer_email: String,
    /// Where the hosted page sends the buyer afterwards.
    pub return_url: String,
    /// When the checkout stops accepting payment (the reservation's end).
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Checkout {
    pub id: String,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundRequest {
    /// Our refund id: reference and idempotency key.
    pub refund_id: Uuid,
    /// The provider's id of the payment being refunded.
    pub payment_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Succeeded,
    Pending,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefundResult {
    pub id: String,
    pub status: RefundStatus,
}

/// Money sent to an organizer's account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferRequest {
    /// Our payout id: reference and idempotency key.
    pub payout_id: Uuid,
    /// The organizer's recipient id at the provider.
    pub destination: String,
    pub amount_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    Paid,
    Pending,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TransferResult {
    pub id: String,
    pub status: TransferStatus,
}

/// A provider event, verified and reduced to what Boxoffice acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderEvent {
    pub id: String,
    pub event_type: String,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The buyer paid.
    PaymentSucceeded {
        checkout_id: String,
        order_id: Uuid,
        payment_id: String,
        amount_minor: i64,
        currency: String,
    },
    /// The buyer's payment was declined or the checkout abandoned.
    PaymentFailed { checkout_id: String, order_id: Uuid },
    RefundSucceeded {
        provider_refund_id: String,
        refund_id: Uuid,
    },
    RefundFailed {
        provider_refund_id: String,
        refund_id: Uuid,
    },
    TransferPaid {
        transfer_id: String,
        payout_id: Uuid,
    },
    TransferFailed {
        transfer_id: String,
        payout_id: Uuid,
    },
    /// Anything else: stored, acknowledged, not acted on.
    Ignored,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Worth retrying: timeouts, 5xx, 429, connection errors.
    #[error("provider unavailable: {0}")]
    Transient(String),
    /// Retrying will not help: the provider refused the request.
    #[error("provider refused: {0}")]
    Rejected(String),
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("signature: {0}")]
    Signature(#[from] signature::SignatureError),
    #[error("payload: {0}")]
    Payload(String),
}

/// Why a provider adapter could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("http client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("PAYMENT_WEBHOOK_SECRETS: {0}")]
    WebhookSecret(#[from] signature::SecretError),
}

/// The adapter chosen by config.
#[derive(Clone)]
pub enum Provider {
    Sandbox(sandbox::SandboxClient),
}

impl Provider {
    pub fn from_config(config: &PaymentsConfig) -> Result<Self, SetupError> {
        match config.provider {
            ProviderKind::Sandbox => Ok(Self::Sandbox(sandbox::SandboxClient::new(config)?)),
        }
    }

    /// The path segment of its inbound webhook URL.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sandbox(_) => "sandbox",
        }
    }

    pub async fn create_checkout(&self, req: &CheckoutRequest) -> Result<Checkout, ProviderError> {
        match self {
            Self::Sandbox(c) => c.create_checkout(req).await,
        }
    }

    /// Closes an open checkout so that it can no longer be paid. Refused
    /// (`Rejected`) if it was paid already.
    pub async fn expire_checkout(&self, checkout_id: &str) -> Result<(), ProviderError> {
        match self {
            Self::Sandbox(c) => c.expire_checkout(checkout_id).await,
        }
    }

    pub async fn refund(&self, req: &RefundRequest) -> Result<RefundResult, ProviderError> {
        match self {
            Self::Sandbox(c) => c.refund(req).await,
        }
    }

    /// Sends a payout to the organizer's account, once per payout id.
    pub async fn transfer(&self, req: &TransferRequest) -> Result<TransferResult, ProviderError> {
        match self {
            Self::Sandbox(c) => c.transfer(req).await,
        }
    }

    /// Verifies the signature over the raw body, then parses the event.
    pub fn verify_webhook(
        &self,
        header: &dyn Fn(&str) -> Option<String>,
        body: &[u8],
        now: i64,
    ) -> Result<ProviderEvent, WebhookError> {
        match self {
            Self::Sandbox(c) => c.verify_webhook(header, body, now),
        }
    }
}

/// Maps a reqwest failure to retry-or-not.
pub(crate) fn transport_error(e: reqwest::Error) -> ProviderError {
    ProviderError::Transient(if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        // reqwest's Display never includes headers (where the key is).
        e.to_string()
    })
}

pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, SetupError> {
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(64)
        .build()?)
}
