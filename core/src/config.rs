//! Typed configuration from the environment (and an optional `.env`).
//!
//! Every variable, its default and its meaning is listed on [`Config::from_env`].
//! An error names the variable and what was wrong with it.

use std::{net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use crate::queue::QueueName;

/// Secret used when `JWT_SECRET` is unset. Fine on a laptop, refused in production.
pub const DEV_JWT_SECRET: &str = "dev-only-insecure-jwt-secret-change-me";

#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

fn bad(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
}

fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse<T: FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e| bad(name, format!("cannot parse {raw:?}: {e}"))),
    }
}

fn parse_secs(name: &'static str, default: u64) -> Result<Duration, ConfigError> {
    parse::<u64>(name, default).map(Duration::from_secs)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

/// An `APP_ENV` that is neither.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected `development` or `production`, got {0:?}")]
pub struct UnknownEnv(pub String);

impl FromStr for AppEnv {
    type Err = UnknownEnv;
    fn from_str(s: &str) -> Result<Self, UnknownEnv> {
        match s {
            "development" | "dev" => Ok(Self::Development),
            "production" | "prod" => Ok(Self::Production),
            other => Err(UnknownEnv(other.to_owned())),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: String,
    pub pool_size: usize,
    pub connect_timeout: Duration,
}

impl DatabaseConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            url: var("DATABASE_URL")
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/boxoffice".into()),
            pool_size: parse("DATABASE_POOL_SIZE", 16)?,
            connect_timeout: parse_secs("DATABASE_CONNECT_TIMEOUT_SECS", 5)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub url: String,
    /// Prefix of every key and queue name: lets tests (and several deployments)
    /// share one Redis without seeing each other's jobs.
    pub namespace: String,
}

impl RedisConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let namespace = var("REDIS_NAMESPACE").unwrap_or_else(|| "boxoffice".into());
        // apalis-redis builds key names with `:` separators and parses them back
        // on pub/sub; a `:` inside the queue name breaks that.
        if namespace.contains(':') || namespace.contains(char::is_whitespace) {
            return Err(bad("REDIS_NAMESPACE", "must not contain `:` or whitespace"));
        }
        Ok(Self {
            url: var("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            namespace,
        })
    }
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub addr: SocketAddr,
    /// Base for links in emails (verification, password reset).
    pub public_url: String,
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    /// Trust `X-Forwarded-For` for the client IP (only behind a proxy you run).
    pub trust_forwarded_for: bool,
    /// If set, `/metrics` wants `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// Origins allowed by CORS (`*` for any); empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// Requests per minute per client IP on `/v1` (0: off).
    pub ip_rate_limit: u32,
    /// Requests per minute per signed-in user on `/v1` (0: off).
    pub user_rate_limit: u32,
}

impl HttpConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let addr: SocketAddr = parse("HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?;
        let public_url = var("PUBLIC_URL").unwrap_or_else(|| format!("http://{addr}"));
        url::Url::parse(&public_url).map_err(|e| bad("PUBLIC_URL", e.to_string()))?;
        Ok(Self {
            addr,
            public_url: public_url.trim_end_matches('/').to_owned(),
            body_limit_bytes: parse("HTTP_BODY_LIMIT_BYTES", 256 * 1024)?,
            request_timeout: parse_secs("HTTP_REQUEST_TIMEOUT_SECS", 30)?,
            trust_forwarded_for: parse("TRUST_FORWARDED_FOR", false)?,
            metrics_token: var("METRICS_TOKEN"),
            cors_origins: var("CORS_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|o| o.trim().trim_end_matches('/').to_owned())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            ip_rate_limit: parse("IP_RATE_LIMIT", 1_200)?,
            user_rate_limit: parse("USER_RATE_LIMIT", 600)?,
        })
    }
}

#[derive(Debug, Clone)]
pub enum EmailTransportConfig {
    /// `SMTP_URL` in lettre's URL form (`smtp://user:pass@host:port`, `smtps://` for TLS).
    Smtp(String),
    /// Development without SMTP: each email is written as an `.eml` file here.
    Outbox(PathBuf),
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub transport: EmailTransportConfig,
    pub from: String,
    /// How long before an event's start its holders are reminded.
    pub reminder_window: Duration,
    /// Emails per second the SMTP account takes, shared by every workers
    /// process (`SMTP_SEND_RATE`; 0: no limit).
    pub send_rate: u32,
}

impl SmtpConfig {
    /// The account the send rate is kept for: the server and the user,
    /// never the password.
    pub fn account(&self) -> String {
        match &self.transport {
            EmailTransportConfig::Smtp(url) => url::Url::parse(url)
                .map(|u| {
                    format!(
                        "{}@{}:{}",
                        u.username(),
                        u.host_str().unwrap_or_default(),
                        u.port_or_known_default().unwrap_or_default()
                    )
                })
                .unwrap_or_default(),
            EmailTransportConfig::Outbox(_) => "outbox".into(),
        }
    }
}

impl SmtpConfig {
    pub fn from_env(env: AppEnv) -> Result<Self, ConfigError> {
        let transport = match var("SMTP_URL") {
            Some(url) => {
                let parsed = url::Url::parse(&url).map_err(|e| bad("SMTP_URL", e.to_string()))?;
                if !matches!(parsed.scheme(), "smtp" | "smtps") {
                    return Err(bad("SMTP_URL", "scheme must be smtp:// or smtps://"));
                }
                EmailTransportConfig::Smtp(url)
            }
            None if env == AppEnv::Production => {
                return Err(bad("SMTP_URL", "required in production"));
            }
            None => EmailTransportConfig::Outbox(
                var("EMAIL_OUTBOX_DIR")
                    .unwrap_or_else(|| "outbox".into())
                    .into(),
            ),
        };
        let from =
            var("EMAIL_FROM").unwrap_or_else(|| "Boxoffice <tickets@boxoffice.localhost>".into());
        from.parse::<lettre::message::Mailbox>()
            .map_err(|e| bad("EMAIL_FROM", format!("not a mailbox: {e}")))?;
        let hours: u64 = parse("REMINDER_WINDOW_HOURS", 24)?;
        if !(1..=720).contains(&hours) {
            return Err(bad("REMINDER_WINDOW_HOURS", "must be between 1 and 720"));
        }
        Ok(Self {
            transport,
            from,
            reminder_window: Duration::from_secs(hours * 3600),
            send_rate: parse("SMTP_SEND_RATE", 0)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub jwt_secret: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub email_token_ttl: Duration,
    /// Login attempts allowed per window, per account and per IP.
    pub login_attempts_per_window: u32,
    pub login_window: Duration,
    /// Registrations allowed per IP per hour.
    pub registrations_per_hour: u32,
}

impl AuthConfig {
    pub fn from_env(env: AppEnv) -> Result<Self, ConfigError> {
        let jwt_secret = var("JWT_SECRET").unwrap_or_else(|| DEV_JWT_SECRET.into());
        if env == AppEnv::Production {
            if jwt_secret == DEV_JWT_SECRET {
                return Err(bad(
                    "JWT_SECRET",
                    "the development default is refused in production",
                ));
            }
            if jwt_secret.len() < 32 {
                return Err(bad(
                    "JWT_SECRET",
                    "must be at least 32 characters in production",
                ));
            }
        }
        Ok(Self {
            jwt_secret,
            access_token_ttl: parse_secs("ACCESS_TOKEN_TTL_SECS", 15 * 60)?,
            refresh_token_ttl: parse_secs("REFRESH_TOKEN_TTL_SECS", 30 * 24 * 3600)?,
            email_token_ttl: parse_secs("EMAIL_TOKEN_TTL_SECS", 24 * 3600)?,
            login_attempts_per_window: parse("LOGIN_RATE_LIMIT", 10)?,
            login_window: parse_secs("LOGIN_RATE_WINDOW_SECS", 60)?,
            registrations_per_hour: parse("REGISTER_RATE_LIMIT", 20)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct CatalogConfig {
    /// How long a public event page may be served from Redis. Every change to
    /// the event, its tiers or its stock invalidates it at once; the TTL only
    /// bounds staleness if an invalidation is lost.
    pub event_cache_ttl: Duration,
}

impl CatalogConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            event_cache_ttl: Duration::from_millis(parse("EVENT_CACHE_TTL_MS", 5_000)?),
        })
    }
}

#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Where uploaded images go: a folder path or `file:///abs/path` (local
    /// disk), or `s3://bucket/prefix` (any S3-compatible store, configured by
    /// the usual `AWS_*` variables, `AWS_ENDPOINT` for non-AWS stores).
    pub store_url: String,
    /// Base of the public image URLs. Defaults to `{PUBLIC_URL}/media`, which
    /// the API serves from the store; point it at a CDN or bucket in production.
    pub public_url: String,
    pub max_image_bytes: usize,
    pub max_images_per_event: i64,
}

impl MediaConfig {
    pub fn from_env(http: &HttpConfig) -> Result<Self, ConfigError> {
        let store_url = var("OBJECT_STORE_URL").unwrap_or_else(|| "uploads".into());
        if store_url.contains("://") {
            let parsed =
                url::Url::parse(&store_url).map_err(|e| bad("OBJECT_STORE_URL", e.to_string()))?;
            if !matches!(parsed.scheme(), "file" | "s3" | "s3a" | "memory") {
                return Err(bad(
                    "OBJECT_STORE_URL",
                    "scheme must be file://, s3:// or memory://",
                ));
            }
        }
        let public_url =
            var("MEDIA_PUBLIC_URL").unwrap_or_else(|| format!("{}/media", http.public_url));
        url::Url::parse(&public_url).map_err(|e| bad("MEDIA_PUBLIC_URL", e.to_string()))?;
        Ok(Self {
            store_url,
            public_url: public_url.trim_end_matches('/').to_owned(),
            max_image_bytes: parse("MAX_IMAGE_BYTES", 5 * 1024 * 1024)?,
            max_images_per_event: parse("MAX_IMAGES_PER_EVENT", 12)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct OrdersConfig {
    /// How long a reservation holds seats while the buyer pays.
    pub reservation_ttl: Duration,
    /// Tickets in one order, across its tiers.
    pub max_tickets_per_order: i32,
    /// How long a row may sit in an intermediate state (pending order,
    /// unapplied webhook, open refund) before a sweep assumes its job was lost.
    pub recovery_grace: Duration,
}

impl OrdersConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let reservation_ttl = parse_secs("RESERVATION_TTL_SECS", 600)?;
        if reservation_ttl < Duration::from_secs(1) {
            return Err(bad("RESERVATION_TTL_SECS", "must be at least 1"));
        }
        Ok(Self {
            reservation_ttl,
            max_tickets_per_order: parse("MAX_TICKETS_PER_ORDER", 20)?,
            recovery_grace: parse_secs("RECOVERY_GRACE_SECS", 30)?,
        })
    }
}

/// The Standard Webhooks secret the built-in sandbox signs with when none is
/// configured. Development only: production requires real secrets.
pub const DEV_WEBHOOK_SECRET: &str = "whsec_Ym94b2ZmaWNlLXNhbmRib3gtZGV2LW9ubHktc2VjcmV0";
/// The sandbox API key used when none is configured (development only).
pub const DEV_SANDBOX_API_KEY: &str = "sk_sandbox_dev_only";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Sandbox,
    Stripe,
    Paystack,
}

impl ProviderKind {
    /// Its name in URLs (`/v1/webhooks/payments/{name}`) and in rows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Stripe => "stripe",
            Self::Paystack => "paystack",
        }
    }
}

/// Stripe, set up when `STRIPE_SECRET_KEY` is.
#[derive(Clone)]
pub struct StripeConfig {
    pub secret_key: String,
    /// Endpoint secrets (`whsec_…`), several during a rotation.
    pub webhook_secrets: Vec<String>,
    pub api_url: String,
}

impl std::fmt::Debug for StripeConfig {
    // Never print the key or the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_url", &self.api_url)
            .field("webhook_secrets", &self.webhook_secrets.len())
            .finish_non_exhaustive()
    }
}

/// Paystack, set up when `PAYSTACK_SECRET_KEY` is (it signs Paystack's
/// webhooks too).
#[derive(Clone)]
pub struct PaystackConfig {
    pub secret_key: String,
    pub api_url: String,
}

impl std::fmt::Debug for PaystackConfig {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaystackConfig")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl PaystackConfig {
    fn from_env() -> Result<Option<Self>, ConfigError> {
        let Some(secret_key) = var("PAYSTACK_SECRET_KEY") else {
            return Ok(None);
        };
        let api_url = var("PAYSTACK_API_URL")
            .unwrap_or_else(|| "https://api.paystack.co".into())
            .trim_end_matches('/')
            .to_owned();
        url::Url::parse(&api_url).map_err(|e| bad("PAYSTACK_API_URL", e.to_string()))?;
        Ok(Some(Self {
            secret_key,
            api_url,
        }))
    }
}

impl StripeConfig {
    fn from_env(env: AppEnv) -> Result<Option<Self>, ConfigError> {
        let Some(secret_key) = var("STRIPE_SECRET_KEY") else {
            return Ok(None);
        };
        let webhook_secrets: Vec<String> = var("STRIPE_WEBHOOK_SECRETS")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if webhook_secrets.iter().any(|s| !s.starts_with("whsec_")) {
            return Err(bad("STRIPE_WEBHOOK_SECRETS", "each must start with whsec_"));
        }
        if webhook_secrets.is_empty() && env == AppEnv::Production {
            return Err(bad(
                "STRIPE_WEBHOOK_SECRETS",
                "required in production with STRIPE_SECRET_KEY (Stripe's webhooks cannot be verified without it)",
            ));
        }
        let api_url = var("STRIPE_API_URL")
            .unwrap_or_else(|| "https://api.stripe.com".into())
            .trim_end_matches('/')
            .to_owned();
        url::Url::parse(&api_url).map_err(|e| bad("STRIPE_API_URL", e.to_string()))?;
        Ok(Some(Self {
            secret_key,
            webhook_secrets,
            api_url,
        }))
    }
}

#[derive(Debug, Clone)]
pub struct PaymentsConfig {
    /// The default provider: new checkouts go to it.
    pub provider: ProviderKind,
    /// The sandbox is set up (its webhooks accepted): when it is the
    /// default, and outside production.
    pub sandbox_enabled: bool,
    pub stripe: Option<StripeConfig>,
    pub paystack: Option<PaystackConfig>,
    /// Base URL of the sandbox's API (`PAYMENT_PROVIDER_URL`).
    pub provider_url: String,
    pub api_key: String,
    /// Secrets accepted on inbound webhooks; several during a rotation.
    pub webhook_secrets: Vec<String>,
    /// How old (or how far ahead) a webhook timestamp may be.
    pub webhook_tolerance: Duration,
    pub provider_timeout: Duration,
    /// Each provider's circuit breaker (`PAYMENT_BREAKER_OPEN_SECS`: how
    /// long it stays open).
    pub breaker: crate::payments::breaker::BreakerSettings,
    /// `PLATFORM_FEE_PERCENT` and `PLATFORM_FEE_FIXED`.
    pub platform_fee: crate::fees::PlatformFee,
    /// How long after an event ends its money is paid out
    /// (`PAYOUT_DELAY_SECS`, two days).
    pub payout_delay: Duration,
}

impl PaymentsConfig {
    pub fn from_env(env: AppEnv, http: &HttpConfig) -> Result<Self, ConfigError> {
        let provider = match var("PAYMENT_PROVIDER").as_deref() {
            None | Some("sandbox") => ProviderKind::Sandbox,
            Some("stripe") => ProviderKind::Stripe,
            Some("paystack") => ProviderKind::Paystack,
            Some(other) => {
                return Err(bad(
                    "PAYMENT_PROVIDER",
                    format!("unknown provider {other:?} (known: sandbox, stripe, paystack)"),
                ));
            }
        };
        let paystack = PaystackConfig::from_env()?;
        if provider == ProviderKind::Paystack && paystack.is_none() {
            return Err(bad(
                "PAYSTACK_SECRET_KEY",
                "required with PAYMENT_PROVIDER=paystack",
            ));
        }
        let stripe = StripeConfig::from_env(env)?;
        if provider == ProviderKind::Stripe && stripe.is_none() {
            return Err(bad(
                "STRIPE_SECRET_KEY",
                "required with PAYMENT_PROVIDER=stripe",
            ));
        }
        let sandbox_enabled = provider == ProviderKind::Sandbox || env != AppEnv::Production;
        let provider_url = var("PAYMENT_PROVIDER_URL")
            .unwrap_or_else(|| format!("{}/sandbox", http.public_url))
            .trim_end_matches('/')
            .to_owned();
        url::Url::parse(&provider_url).map_err(|e| bad("PAYMENT_PROVIDER_URL", e.to_string()))?;
        let api_key = var("PAYMENT_API_KEY").unwrap_or_else(|| DEV_SANDBOX_API_KEY.into());
        let webhook_secrets: Vec<String> = var("PAYMENT_WEBHOOK_SECRETS")
            .unwrap_or_else(|| DEV_WEBHOOK_SECRET.into())
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        for secret in &webhook_secrets {
            crate::payments::signature::decode_secret(secret)
                .map_err(|e| bad("PAYMENT_WEBHOOK_SECRETS", e.to_string()))?;
        }
        if env == AppEnv::Production
            && sandbox_enabled
            && (webhook_secrets.iter().any(|s| s == DEV_WEBHOOK_SECRET)
                || api_key == DEV_SANDBOX_API_KEY)
        {
            return Err(bad(
                "PAYMENT_WEBHOOK_SECRETS",
                "the development secrets are refused in production (set PAYMENT_WEBHOOK_SECRETS and PAYMENT_API_KEY)",
            ));
        }
        Ok(Self {
            provider,
            sandbox_enabled,
            stripe,
            paystack,
            provider_url,
            api_key,
            webhook_secrets,
            webhook_tolerance: parse_secs("PAYMENT_WEBHOOK_TOLERANCE_SECS", 300)?,
            provider_timeout: parse_secs("PAYMENT_PROVIDER_TIMEOUT_SECS", 15)?,
            breaker: crate::payments::breaker::BreakerSettings {
                open_for: parse_secs("PAYMENT_BREAKER_OPEN_SECS", 30)?,
                ..Default::default()
            },
            platform_fee: crate::fees::PlatformFee::parse(
                var("PLATFORM_FEE_PERCENT").as_deref().unwrap_or("0"),
                var("PLATFORM_FEE_FIXED").as_deref().unwrap_or(""),
            )
            .map_err(|e| bad("PLATFORM_FEE_PERCENT / PLATFORM_FEE_FIXED", e.to_string()))?,
            payout_delay: parse_secs("PAYOUT_DELAY_SECS", 2 * 24 * 3600)?,
        })
    }
}

/// The built-in sandbox provider (`boxoffice dev` mounts it at `/sandbox`).
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub api_key: String,
    /// Signs the webhooks it sends (Standard Webhooks, `whsec_...`).
    pub webhook_secret: String,
    /// Where it sends them.
    pub webhook_url: String,
    /// Its own public base URL (for hosted checkout links).
    pub public_url: String,
    /// Pay (or decline) every checkout by itself after a delay: demos, tests,
    /// benchmarks. `SANDBOX_AUTO_PAY=pay:200` / `decline:200` / unset.
    pub auto: Option<(AutoOutcome, Duration)>,
    /// Misbehaviour on purpose (`SANDBOX_FAULTS`): the fault suite's
    /// provider scenario, and a way to watch Boxoffice cope.
    pub faults: SandboxFaults,
}

/// `SANDBOX_FAULTS=slow:0.1:10000,error:0.1,throttle:0.1,webhook-copies:3`:
/// a share of API answers held back (10 % by 10 s), a share of requests done
/// and then answered 500 (the caller cannot tell it was done), a share
/// refused with 429 before anything is done, and every webhook sent three
/// times, each copy after its own random delay (so out of order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SandboxFaults {
    pub slow: Option<(f64, Duration)>,
    pub errors: f64,
    pub throttled: f64,
    pub webhook_copies: u32,
}

impl SandboxFaults {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let share = |v: &str| match v.parse::<f64>() {
            Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
            _ => Err(format!("{v:?} is not a share between 0 and 1")),
        };
        let mut faults = Self::default();
        for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let mut parts = item.split(':');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some("slow"), Some(p), Some(ms), None) => {
                    let ms: u64 = ms
                        .parse()
                        .map_err(|_| format!("{ms:?} is not milliseconds"))?;
                    faults.slow = Some((share(p)?, Duration::from_millis(ms)));
                }
                (Some("error"), Some(p), None, None) => faults.errors = share(p)?,
                (Some("throttle"), Some(p), None, None) => faults.throttled = share(p)?,
                (Some("webhook-copies"), Some(n), None, None) => {
                    faults.webhook_copies = match n.parse() {
                        Ok(n @ 1..=10) => n,
                        _ => return Err(format!("{n:?} is not a number of copies from 1 to 10")),
                    }
                }
                _ => {
                    return Err(format!(
                        "{item:?}: expected slow:<share>:<ms>, error:<share>, throttle:<share> or webhook-copies:<n>"
                    ));
                }
            }
        }
        Ok(faults)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoOutcome {
    Pay,
    Decline,
}

impl SandboxConfig {
    pub fn from_env(http: &HttpConfig, payments: &PaymentsConfig) -> Result<Self, ConfigError> {
        let auto = match var("SANDBOX_AUTO_PAY") {
            None => None,
            Some(raw) => {
                let (outcome, ms) = raw.split_once(':').unwrap_or((raw.as_str(), "0"));
                let outcome = match outcome {
                    "pay" => AutoOutcome::Pay,
                    "decline" => AutoOutcome::Decline,
                    _ => return Err(bad("SANDBOX_AUTO_PAY", "expected pay:<ms> or decline:<ms>")),
                };
                let ms: u64 = ms
                    .parse()
                    .map_err(|_| bad("SANDBOX_AUTO_PAY", "expected pay:<ms> or decline:<ms>"))?;
                Some((outcome, Duration::from_millis(ms)))
            }
        };
        let webhook_secret = var("SANDBOX_WEBHOOK_SECRET").unwrap_or_else(|| {
            payments
                .webhook_secrets
                .first()
                .cloned()
                .unwrap_or_else(|| DEV_WEBHOOK_SECRET.into())
        });
        crate::payments::signature::decode_secret(&webhook_secret)
            .map_err(|e| bad("SANDBOX_WEBHOOK_SECRET", e.to_string()))?;
        Ok(Self {
            api_key: var("SANDBOX_API_KEY").unwrap_or_else(|| payments.api_key.clone()),
            webhook_secret,
            webhook_url: var("SANDBOX_WEBHOOK_URL")
                .unwrap_or_else(|| format!("{}/v1/webhooks/payments/sandbox", http.public_url)),
            public_url: var("SANDBOX_PUBLIC_URL")
                .unwrap_or_else(|| format!("{}/sandbox", http.public_url))
                .trim_end_matches('/')
                .to_owned(),
            auto,
            faults: match var("SANDBOX_FAULTS") {
                None => SandboxFaults::default(),
                Some(raw) => SandboxFaults::parse(&raw).map_err(|e| bad("SANDBOX_FAULTS", e))?,
            },
        })
    }
}

#[derive(Debug, Clone)]
pub struct WorkersConfig {
    /// Queues this process drains (`--queues`); all of them by default.
    pub queues: Vec<QueueName>,
    /// Overrides every queue's own concurrency (`--concurrency`).
    pub concurrency: Option<usize>,
    /// How long in-flight jobs get to finish on shutdown.
    pub shutdown_timeout: Duration,
    /// Emails started per second while this process places orders or
    /// applies payments (0: no limit); see `workers::selling`.
    pub emails_per_sec_while_selling: u32,
    /// An event cancellation's refunds started per second while this
    /// process sells (0: no limit); see `workers::selling`.
    pub refunds_per_sec_while_selling: u32,
}

impl WorkersConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let queues = match var("WORKER_QUEUES") {
            None => QueueName::ALL.to_vec(),
            Some(list) => {
                QueueName::parse_list(&list).map_err(|e| bad("WORKER_QUEUES", e.to_string()))?
            }
        };
        Ok(Self {
            queues,
            concurrency: var("WORKER_CONCURRENCY")
                .map(|v| {
                    v.parse()
                        .map_err(|e| bad("WORKER_CONCURRENCY", format!("{e}")))
                })
                .transpose()?,
            shutdown_timeout: parse_secs("WORKER_SHUTDOWN_TIMEOUT_SECS", 30)?,
            emails_per_sec_while_selling: parse("EMAILS_PER_SEC_WHILE_SELLING", 20)?,
            refunds_per_sec_while_selling: parse("REFUNDS_PER_SEC_WHILE_SELLING", 50)?,
        })
    }
}

/// Outgoing webhooks.
#[derive(Debug, Clone)]
pub struct WebhooksConfig {
    /// Loopback receivers (`WEBHOOKS_ALLOW_LOOPBACK`): local testing only,
    /// refused in production.
    pub allow_loopback: bool,
    /// Plain-HTTP receivers: outside production only.
    pub allow_http: bool,
    /// The waits before the 2nd, 3rd, … attempt; spent, the delivery is
    /// `exhausted` (`WEBHOOK_RETRY_SCHEDULE_SECS`).
    pub retry_schedule: Vec<Duration>,
    /// An endpoint failing this long without a success is disabled and its
    /// owner emailed (`WEBHOOK_DISABLE_AFTER_SECS`, 3 days).
    pub disable_after: Duration,
    /// One attempt's whole time (`WEBHOOK_TIMEOUT_SECS`); connecting gets 5 s.
    pub timeout: Duration,
    /// Attempts in flight to one endpoint at once, across all workers
    /// (`WEBHOOK_ENDPOINT_CONCURRENCY`): a slow receiver holds at most this
    /// many worker slots.
    pub endpoint_concurrency: i64,
}

impl WebhooksConfig {
    pub fn from_env(env: AppEnv) -> Result<Self, ConfigError> {
        let allow_loopback = parse("WEBHOOKS_ALLOW_LOOPBACK", false)?;
        if allow_loopback && env == AppEnv::Production {
            return Err(bad("WEBHOOKS_ALLOW_LOOPBACK", "refused in production"));
        }
        let raw = var("WEBHOOK_RETRY_SCHEDULE_SECS")
            .unwrap_or_else(|| "5,300,1800,7200,18000,36000,36000".to_owned());
        let retry_schedule = raw
            .split(',')
            .map(|s| s.trim().parse::<u64>().map(Duration::from_secs))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                bad(
                    "WEBHOOK_RETRY_SCHEDULE_SECS",
                    format!("cannot parse {raw:?}: {e}"),
                )
            })?;
        let endpoint_concurrency = parse("WEBHOOK_ENDPOINT_CONCURRENCY", 8)?;
        if endpoint_concurrency < 1 {
            return Err(bad("WEBHOOK_ENDPOINT_CONCURRENCY", "must be at least 1"));
        }
        Ok(Self {
            allow_loopback,
            allow_http: env != AppEnv::Production,
            retry_schedule,
            disable_after: parse_secs("WEBHOOK_DISABLE_AFTER_SECS", 3 * 24 * 3600)?,
            timeout: parse_secs("WEBHOOK_TIMEOUT_SECS", 15)?,
            endpoint_concurrency,
        })
    }

    /// Where deliveries may go.
    pub fn policy(&self) -> crate::webhooks::guard::Policy {
        crate::webhooks::guard::Policy {
            allow_http: self.allow_http,
            allow_loopback: self.allow_loopback,
        }
    }
}

/// The whole configuration.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `APP_ENV` | `development` | `production` refuses default secrets and requires `SMTP_URL` |
/// | `DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/boxoffice` | PostgreSQL |
/// | `DATABASE_POOL_SIZE` | `16` | connections per process |
/// | `REDIS_URL` | `redis://127.0.0.1:6379` | queues, rate limits, pub/sub |
/// | `REDIS_NAMESPACE` | `boxoffice` | prefix of every queue and key |
/// | `HTTP_ADDR` | `127.0.0.1:8080` | API listen address |
/// | `PUBLIC_URL` | `http://{HTTP_ADDR}` | base for links in emails |
/// | `METRICS_TOKEN` | unset | bearer token `/metrics` asks for |
/// | `CORS_ORIGINS` | unset | comma-separated origins (or `*`) allowed by CORS |
/// | `IP_RATE_LIMIT` / `USER_RATE_LIMIT` | 1200 / 600 | requests per minute per client IP / per user on `/v1` (0: off) |
/// | `SMTP_URL` | unset: `.eml` files in `EMAIL_OUTBOX_DIR` (`outbox`) | `smtp://user:pass@host:port`, `smtps://` for TLS |
/// | `EMAIL_FROM` | `Boxoffice <tickets@boxoffice.localhost>` | sender |
/// | `REMINDER_WINDOW_HOURS` | 24 | ticket holders are reminded this long before an event starts |
/// | `JWT_SECRET` | a development value | signs access tokens and email tokens |
/// | `ACCESS_TOKEN_TTL_SECS` / `REFRESH_TOKEN_TTL_SECS` | 900 / 2592000 | token lifetimes |
/// | `LOGIN_RATE_LIMIT` / `LOGIN_RATE_WINDOW_SECS` | 10 / 60 | login attempts per account and per IP |
/// | `REGISTER_RATE_LIMIT` | 20 | registrations per IP per hour |
/// | `EVENT_CACHE_TTL_MS` | 5000 | longest a public event page is served from Redis if an invalidation is lost |
/// | `OBJECT_STORE_URL` | `uploads` | event images: a folder, `file:///path` or `s3://bucket/prefix` (+ `AWS_*`) |
/// | `MEDIA_PUBLIC_URL` | `{PUBLIC_URL}/media` | base of public image URLs (served by the API by default) |
/// | `MAX_IMAGE_BYTES` / `MAX_IMAGES_PER_EVENT` | 5 MiB / 12 | upload limits |
/// | `RESERVATION_TTL_SECS` / `MAX_TICKETS_PER_ORDER` | 600 / 20 | how long seats are held while the buyer pays; order size |
/// | `RECOVERY_GRACE_SECS` | 30 | age after which sweeps re-enqueue stuck orders, webhooks, refunds |
/// | `PAYMENT_PROVIDER` | `sandbox` | the default payment provider (`sandbox`, `stripe`, `paystack`) |
/// | `STRIPE_SECRET_KEY` / `STRIPE_WEBHOOK_SECRETS` / `STRIPE_API_URL` | unset | Stripe, set up when the key is |
/// | `PAYSTACK_SECRET_KEY` / `PAYSTACK_API_URL` | unset | Paystack, set up when the key is |
/// | `PAYMENT_PROVIDER_URL` | `{PUBLIC_URL}/sandbox` | its API base URL |
/// | `PAYMENT_API_KEY` | a development key | its secret API key |
/// | `PAYMENT_WEBHOOK_SECRETS` | a development secret | comma-separated `whsec_...` secrets accepted on inbound webhooks (rotation) |
/// | `PAYMENT_WEBHOOK_TOLERANCE_SECS` / `PAYMENT_PROVIDER_TIMEOUT_SECS` | 300 / 15 | webhook timestamp window; provider call timeout |
/// | `SANDBOX_AUTO_PAY` | unset | `pay:<ms>` / `decline:<ms>`: the sandbox settles every checkout itself |
/// | `SANDBOX_FAULTS` | unset | the sandbox misbehaves on purpose: `slow:<share>:<ms>,error:<share>,throttle:<share>,webhook-copies:<n>` (see [`SandboxFaults`]) |
/// | `SANDBOX_WEBHOOK_URL` / `SANDBOX_PUBLIC_URL` | `{PUBLIC_URL}/v1/webhooks/payments/sandbox` / `{PUBLIC_URL}/sandbox` | where the sandbox sends webhooks; its own links |
/// | `SANDBOX_WEBHOOK_SECRET` / `SANDBOX_API_KEY` | the first accepted secret / `PAYMENT_API_KEY` | the sandbox's side |
/// | `WORKER_QUEUES` / `WORKER_CONCURRENCY` | all / per queue | what a workers process drains |
/// | `EMAILS_PER_SEC_WHILE_SELLING` | 20 | emails a workers process starts per second while it also places orders or applies payments (0: no limit) |
/// | `REFUNDS_PER_SEC_WHILE_SELLING` | 50 | an event cancellation's refunds a workers process starts per second while a sale runs in it or, for one that sells nothing, in any other (0: no limit); with N processes serving refunds, divide it by N |
/// | `WEBHOOKS_ALLOW_LOOPBACK` | `false` | outgoing webhooks may go to 127.0.0.1 / ::1 (local testing; refused in production) |
/// | `WEBHOOK_RETRY_SCHEDULE_SECS` | `5,300,1800,7200,18000,36000,36000` | waits between a delivery's attempts |
/// | `WEBHOOK_DISABLE_AFTER_SECS` / `WEBHOOK_TIMEOUT_SECS` / `WEBHOOK_ENDPOINT_CONCURRENCY` | 259200 / 15 / 8 | failing this long disables an endpoint; one attempt's time; attempts in flight per endpoint |
/// | `RUST_LOG` | `info` | log filter; `LOG_FORMAT=json` for JSON lines |
#[derive(Debug, Clone)]
pub struct Config {
    pub env: AppEnv,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub http: HttpConfig,
    pub smtp: SmtpConfig,
    pub auth: AuthConfig,
    pub catalog: CatalogConfig,
    pub media: MediaConfig,
    pub orders: OrdersConfig,
    pub payments: PaymentsConfig,
    pub sandbox: SandboxConfig,
    pub workers: WorkersConfig,
    pub webhooks: WebhooksConfig,
}

impl Config {
    /// Reads `.env` if present, then the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is worth failing on.
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(bad(".env", e.to_string())),
        }
        let env = parse("APP_ENV", AppEnv::Development)?;
        let http = HttpConfig::from_env()?;
        let smtp = SmtpConfig::from_env(env)?;
        let auth = AuthConfig::from_env(env)?;
        let payments = PaymentsConfig::from_env(env, &http)?;
        let sandbox = SandboxConfig::from_env(&http, &payments)?;
        Ok(Self {
            env,
            database: DatabaseConfig::from_env()?,
            redis: RedisConfig::from_env()?,
            smtp,
            auth,
            catalog: CatalogConfig::from_env()?,
            media: MediaConfig::from_env(&http)?,
            orders: OrdersConfig::from_env()?,
            payments,
            sandbox,
            http,
            workers: WorkersConfig::from_env()?,
            webhooks: WebhooksConfig::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_faults_parse_and_refuse_nonsense() {
        let f =
            SandboxFaults::parse("slow:0.1:10000, error:0.2,throttle:0,webhook-copies:3").unwrap();
        assert_eq!(f.slow, Some((0.1, Duration::from_secs(10))));
        assert_eq!((f.errors, f.throttled, f.webhook_copies), (0.2, 0.0, 3));
        assert_eq!(SandboxFaults::parse("").unwrap(), SandboxFaults::default());
        for bad in [
            "error:2",
            "slow:0.1",
            "webhook-copies:0",
            "webhook-copies:11",
            "flaky:0.1",
            "error:x",
        ] {
            assert!(SandboxFaults::parse(bad).is_err(), "{bad}");
        }
    }
}
