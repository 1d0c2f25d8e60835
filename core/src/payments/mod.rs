//! Payment providers. Boxoffice talks to each over its real HTTP API, exactly
//! as it would to Stripe; the built-in sandbox is simply the default one.
//! Which adapter runs is chosen by config (`PAYMENT_PROVIDER`).

pub mod breaker;
pub mod circuits;
pub mod paystack;
pub mod sandbox;
pub mod signature;
pub mod stripe;

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{PaymentsConfig, ProviderKind};

/// What we ask a provider for when an order has seats reserved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckoutRequest {
    /// Our order id: the provider's reference and idempotency key, so a
    /// retried call returns the same checkout.
    pub order_id: Uuid,
    pub event_id: Uuid,
    pub amount_minor: i64,
    /// A line per tier, for providers that show them (`Provider::itemizes`);
    /// empty otherwise, or when a discount makes the lines not add up to
    /// the amount.
    pub lines: Vec<CheckoutLine>,
    pub currency: String,
    pub description: String,
    pub customer_email: String,
    /// Where the hosted page sends the buyer afterwards.
    pub return_url: String,
    /// When the checkout stops accepting payment (the reservation's end).
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckoutLine {
    pub name: String,
    pub unit_amount_minor: i64,
    pub quantity: i32,
}

impl CheckoutRequest {
    /// The lines if they add up to the amount, else one line of the total.
    pub fn lines_or_total(&self) -> Vec<CheckoutLine> {
        let sum: i64 = self
            .lines
            .iter()
            .map(|l| l.unit_amount_minor * i64::from(l.quantity))
            .sum();
        if !self.lines.is_empty() && sum == self.amount_minor {
            self.lines.clone()
        } else {
            vec![CheckoutLine {
                name: self.description.clone(),
                unit_amount_minor: self.amount_minor,
                quantity: 1,
            }]
        }
    }
}

/// What the provider says of a payment a webhook reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentCheck {
    Paid,
    /// Not (or not yet, or not this order's, or not this amount): the
    /// webhook is not acted on.
    NotPaid(String),
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

/// A bank organizers can be paid into.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Bank {
    pub name: String,
    /// What a bank account names it by.
    pub code: String,
    pub currency: String,
    /// The provider's kind of account (Paystack: `nuban`, `ghipss`,
    /// `basa`, `mobile_money`).
    pub kind: String,
}

/// An organizer's bank account, to be registered as a payout recipient.
#[derive(Debug, Clone)]
pub struct BankAccount {
    pub bank_code: String,
    pub account_number: String,
    pub account_name: String,
    pub currency: String,
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
    /// Not called: the provider's circuit is open after repeated failures
    /// (`breaker`). The job waits this long and tries again, no attempt
    /// spent.
    #[error("provider circuit open; again in {retry_in:?}")]
    CircuitOpen { retry_in: std::time::Duration },
    /// The provider answered 429 with a `Retry-After`: the job waits that
    /// long, no attempt spent (the breaker counts it as a failure).
    #[error("provider rate limited; again in {retry_in:?}")]
    RateLimited { retry_in: std::time::Duration },
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

/// Every provider set up by config, and the default one (new checkouts go
/// to it). The others still take their webhooks, refunds and payouts, so
/// orders in flight survive a switch of the default.
#[derive(Clone)]
pub struct Providers {
    all: Vec<Provider>,
    default: usize,
}

impl Providers {
    pub fn from_config(config: &PaymentsConfig) -> Result<Self, SetupError> {
        let mut adapters = Vec::new();
        if config.sandbox_enabled {
            adapters.push(Adapter::Sandbox(sandbox::SandboxClient::new(config)?));
        }
        if let Some(stripe) = &config.stripe {
            adapters.push(Adapter::Stripe(stripe::StripeClient::new(
                stripe,
                config.provider_timeout,
                config.webhook_tolerance,
            )?));
        }
        if let Some(paystack) = &config.paystack {
            adapters.push(Adapter::Paystack(paystack::PaystackClient::new(
                paystack,
                config.provider_timeout,
            )?));
        }
        let all: Vec<Provider> = adapters
            .into_iter()
            .map(|adapter| Provider {
                breaker: Arc::new(breaker::Breaker::new(adapter.name(), config.breaker)),
                adapter,
            })
            .collect();
        let default = all
            .iter()
            .position(|p| p.name() == config.provider.as_str())
            .expect("config refuses a default provider that is not set up");
        Ok(Self { all, default })
    }

    /// Where new checkouts go.
    pub fn default_provider(&self) -> &Provider {
        &self.all[self.default]
    }

    pub fn all(&self) -> &[Provider] {
        &self.all
    }

    /// Several providers are set up (an organizer may use another than the
    /// default).
    pub fn several(&self) -> bool {
        self.all.len() > 1
    }

    /// The names of the providers set up.
    pub fn names(&self) -> Vec<&'static str> {
        self.all.iter().map(Provider::name).collect()
    }

    /// An organizer's choice if it is set up, else the default.
    pub fn for_organizer(&self, chosen: Option<&str>) -> &Provider {
        chosen
            .and_then(|name| self.named(name))
            .unwrap_or_else(|| self.default_provider())
    }

    /// The provider of that name, if set up (a checkout, payment, refund or
    /// payout row names the one it went to).
    pub fn named(&self, name: &str) -> Option<&Provider> {
        self.all.iter().find(|p| p.name() == name)
    }

    /// The provider of that name, or an error to retry: a row naming one
    /// that is not set up waits (with the job's backoff, then in the dead
    /// set) until it is configured again.
    pub fn for_row(&self, name: &str) -> Result<&Provider, ProviderError> {
        self.named(name)
            .ok_or_else(|| ProviderError::Transient(format!("provider {name:?} is not configured")))
    }
}

/// One provider's API client.
#[derive(Clone)]
enum Adapter {
    Sandbox(sandbox::SandboxClient),
    Stripe(stripe::StripeClient),
    Paystack(paystack::PaystackClient),
}

impl Adapter {
    fn name(&self) -> &'static str {
        match self {
            Self::Sandbox(_) => ProviderKind::Sandbox.as_str(),
            Self::Stripe(_) => ProviderKind::Stripe.as_str(),
            Self::Paystack(_) => ProviderKind::Paystack.as_str(),
        }
    }
}

/// One provider: its client behind its circuit breaker (every call to
/// its API goes through the breaker; verifying a webhook calls nothing).
#[derive(Clone)]
pub struct Provider {
    adapter: Adapter,
    breaker: Arc<breaker::Breaker>,
}

impl Provider {
    /// The path segment of its inbound webhook URL, and its name in rows.
    pub fn name(&self) -> &'static str {
        self.adapter.name()
    }

    /// It shows the buyer a line per tier (`CheckoutRequest::lines`).
    pub fn itemizes(&self) -> bool {
        matches!(self.adapter, Adapter::Stripe(_))
    }

    pub fn circuit(&self) -> breaker::CircuitState {
        self.breaker.state()
    }

    pub async fn create_checkout(&self, req: &CheckoutRequest) -> Result<Checkout, ProviderError> {
        self.breaker
            .call(async {
                match &self.adapter {
                    Adapter::Sandbox(c) => c.create_checkout(req).await,
                    Adapter::Stripe(c) => c.create_checkout(req).await,
                    Adapter::Paystack(c) => c.create_checkout(req).await,
                }
            })
            .await
    }

    /// Closes an open checkout so that it can no longer be paid. Refused
    /// (`Rejected`) if it was paid already. Paystack cannot: a payment that
    /// still arrives is given back.
    pub async fn expire_checkout(&self, checkout_id: &str) -> Result<(), ProviderError> {
        match &self.adapter {
            Adapter::Sandbox(c) => self.breaker.call(c.expire_checkout(checkout_id)).await,
            Adapter::Stripe(c) => self.breaker.call(c.expire_checkout(checkout_id)).await,
            // No call: nothing to teach the breaker.
            Adapter::Paystack(_) => Ok(()),
        }
    }

    /// Before a reported payment is applied: asks the provider whether the
    /// checkout is paid, for this order and amount (a valid signature
    /// proves where a webhook came from, not that it is current). The
    /// sandbox's own webhooks are taken as they are.
    pub async fn confirm_payment(
        &self,
        checkout_id: &str,
        order_id: Uuid,
        amount_minor: i64,
        currency: &str,
    ) -> Result<PaymentCheck, ProviderError> {
        match &self.adapter {
            Adapter::Sandbox(_) => Ok(PaymentCheck::Paid),
            Adapter::Stripe(c) => {
                self.breaker
                    .call(c.confirm_payment(checkout_id, order_id, amount_minor, currency))
                    .await
            }
            // The checkout id is the transaction's reference: our order id.
            Adapter::Paystack(c) => {
                self.breaker
                    .call(c.confirm_payment(checkout_id, amount_minor, currency))
                    .await
            }
        }
    }

    pub async fn refund(&self, req: &RefundRequest) -> Result<RefundResult, ProviderError> {
        self.breaker
            .call(async {
                match &self.adapter {
                    Adapter::Sandbox(c) => c.refund(req).await,
                    Adapter::Stripe(c) => c.refund(req).await,
                    Adapter::Paystack(c) => c.refund(req).await,
                }
            })
            .await
    }

    /// Sends a payout to the organizer's account, once per payout id.
    pub async fn transfer(&self, req: &TransferRequest) -> Result<TransferResult, ProviderError> {
        self.breaker
            .call(async {
                match &self.adapter {
                    Adapter::Sandbox(c) => c.transfer(req).await,
                    Adapter::Stripe(c) => c.transfer(req).await,
                    Adapter::Paystack(c) => c.transfer(req).await,
                }
            })
            .await
    }

    /// It pays organizers into bank accounts it registers itself
    /// ([`Self::banks`], [`Self::register_bank_account`]); the others take
    /// an account id made on their side.
    pub fn lists_banks(&self) -> bool {
        matches!(self.adapter, Adapter::Paystack(_))
    }

    /// The banks organizers in `currency` can be paid into (cached).
    pub async fn banks(&self, currency: &str) -> Result<Arc<Vec<Bank>>, ProviderError> {
        match &self.adapter {
            Adapter::Paystack(c) => self.breaker.call(c.banks(currency)).await,
            _ => Ok(Arc::default()),
        }
    }

    /// Registers an organizer's bank account with the provider; the answer
    /// is the recipient id their payouts go to. The bank code must be one
    /// of [`Self::banks`] (the caller checks, to say which field is wrong).
    pub async fn register_bank_account(
        &self,
        account: &BankAccount,
    ) -> Result<String, ProviderError> {
        let Adapter::Paystack(c) = &self.adapter else {
            return Err(ProviderError::Rejected(format!(
                "{} takes no bank accounts",
                self.name()
            )));
        };
        let banks = self.banks(&account.currency).await?;
        let bank = banks
            .iter()
            .find(|b| b.code == account.bank_code)
            .ok_or_else(|| ProviderError::Rejected("unknown bank code".into()))?;
        self.breaker
            .call(c.create_recipient(account, &bank.kind))
            .await
    }

    /// Verifies the signature over the raw body, then parses the event.
    pub fn verify_webhook(
        &self,
        header: &dyn Fn(&str) -> Option<String>,
        body: &[u8],
        now: i64,
    ) -> Result<ProviderEvent, WebhookError> {
        match &self.adapter {
            Adapter::Sandbox(c) => c.verify_webhook(header, body, now),
            Adapter::Stripe(c) => c.verify_webhook(header, body, now),
            Adapter::Paystack(c) => c.verify_webhook(header, body),
        }
    }
}

/// Counts a provider call and its time in `/metrics`.
pub(crate) fn observe(
    provider: &'static str,
    operation: &'static str,
    sent: &Result<reqwest::Response, reqwest::Error>,
    started: std::time::Instant,
) {
    let outcome = match sent {
        Ok(r) if r.status().is_success() => "ok",
        Ok(_) => "refused",
        Err(_) => "error",
    };
    let m = crate::metrics::metrics();
    m.provider_requests
        .get_or_create(&crate::metrics::labels([
            ("provider", provider),
            ("operation", operation),
            ("outcome", outcome),
        ]))
        .inc();
    m.provider_duration
        .get_or_create(&crate::metrics::labels([
            ("provider", provider),
            ("operation", operation),
        ]))
        .observe(started.elapsed().as_secs_f64());
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

/// A provider's answer that is not a success: 5xx and 429 are worth
/// retrying (a 429's `Retry-After` is honoured, up to five minutes),
/// anything else is final.
pub(crate) fn failure(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    detail: &str,
) -> ProviderError {
    use reqwest::StatusCode;
    if status == StatusCode::TOO_MANY_REQUESTS
        && let Some(seconds) = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return ProviderError::RateLimited {
            retry_in: Duration::from_secs(seconds.clamp(1, 300)),
        };
    }
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        ProviderError::Transient(format!("{status} {detail}"))
    } else {
        ProviderError::Rejected(format!("{status} {detail}"))
    }
}

pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, SetupError> {
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(64)
        .build()?)
}
