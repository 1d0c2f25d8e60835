//! An organizer's money: where payouts go, what their events owe them (from
//! the ledger), and the payouts sent. Admins see any organizer's with
//! `organizer_id`.

use axum::extract::State;
use boxoffice_core::{
    models::{EventBalance, Payout, PayoutLine, Role, User},
    payments::{BankAccount, ProviderError},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult, FieldError},
    extract::{AuthUser, Json, Query},
    pagination::{self, Page},
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutAccountRequest {
    /// The recipient id the payment provider gave the organizer's account
    /// (Stripe: a connected account `acct_…`; Paystack: a recipient
    /// `RCP_…`). Either this or `bank`.
    #[schema(pattern = "^[!-~]{1,255}$")]
    pub account_id: Option<String>,
    /// A bank account for Boxoffice to register with a provider that takes
    /// them (Paystack; banks from `GET /v1/payments/banks`). Either this or
    /// `account_id`.
    pub bank: Option<BankAccountRequest>,
    /// The provider of that account (one set up on this platform, e.g.
    /// `stripe`): it takes the organizer's checkouts and payouts. Absent:
    /// the platform's default, or with `bank` the provider that takes it.
    pub provider: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BankAccountRequest {
    /// A `code` from `GET /v1/payments/banks`.
    pub bank_code: String,
    #[schema(pattern = "^[0-9]{6,20}$")]
    pub account_number: String,
    /// The name the account is held in.
    #[schema(min_length = 1, max_length = 100)]
    pub account_name: String,
    /// ISO 4217: the currency the account is paid in.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PayoutAccountView {
    pub account_id: Option<String>,
    /// `null`: the platform's default provider.
    pub provider: Option<String>,
}

/// `PUT /v1/organizer/payout-account`
#[utoipa::path(
    put,
    path = "/v1/organizer/payout-account",
    operation_id = "payouts_set_account",
    tag = "payouts",
    summary = "Where the caller's payouts go",
    request_body = PayoutAccountRequest,
    responses((status = 200, description = "Saved", body = PayoutAccountView), crate::openapi::problems::BadRequest, crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn set_account(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<PayoutAccountRequest>,
) -> ApiResult<Json<PayoutAccountView>> {
    user.require(Role::Organizer)?;
    let (account, provider) = match (req.account_id.as_deref(), req.bank) {
        (Some(account), None) => (account_id(account)?, req.provider),
        (None, Some(bank)) => {
            let provider =
                crate::routes::banks::bank_provider(&state, req.provider.as_deref(), "provider")?;
            let account = bank_account(bank)?;
            let banks = provider.banks(&account.currency).await?;
            if !banks.iter().any(|b| b.code == account.bank_code) {
                return Err(ApiError::Validation(vec![FieldError::new(
                    "bank.bank_code",
                    format!(
                        "not a bank {} pays {} into (GET /v1/payments/banks)",
                        provider.name(),
                        account.currency
                    ),
                )]));
            }
            let recipient = match provider.register_bank_account(&account).await {
                Err(ProviderError::Rejected(detail)) => {
                    tracing::info!(user.id = %user.id(), %detail, "bank account refused");
                    return Err(ApiError::Validation(vec![FieldError::new(
                        "bank.account_number",
                        "the provider could not verify this account at this bank",
                    )]));
                }
                other => other?,
            };
            (recipient, Some(provider.name().to_owned()))
        }
        _ => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "account_id",
                "give either account_id or bank",
            )]));
        }
    };
    let names = state.services.payments.names();
    if let Some(provider) = &provider
        && !names.contains(&provider.as_str())
    {
        return Err(ApiError::Validation(vec![FieldError::new(
            "provider",
            format!("must be one of the providers set up: {}", names.join(", ")),
        )]));
    }
    let mut conn = state.db().await?;
    let user =
        User::set_payout_account(&mut conn, user.id(), &account, provider.as_deref()).await?;
    tracing::info!(user.id = %user.id, provider = ?user.payment_provider, "payout account set");
    Ok(Json(PayoutAccountView {
        account_id: user.payout_account,
        provider: user.payment_provider,
    }))
}

/// A recipient id as providers write them, or a 422.
fn account_id(raw: &str) -> ApiResult<String> {
    let account = raw.trim();
    if account.is_empty()
        || account.len() > 255
        || account.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::Validation(vec![FieldError::new(
            "account_id",
            "must be the provider's recipient id: 1–255 characters, no spaces",
        )]));
    }
    Ok(account.to_owned())
}

/// A bank account's fields, checked before the provider is asked.
fn bank_account(bank: BankAccountRequest) -> ApiResult<BankAccount> {
    let mut errors = Vec::new();
    let currency = crate::routes::banks::currency(&bank.currency, "bank.currency");
    if let Err(ApiError::Validation(e)) = &currency {
        errors.extend(e.iter().cloned());
    }
    let code = bank.bank_code.trim();
    if code.is_empty() || code.len() > 32 || code.chars().any(char::is_whitespace) {
        errors.push(FieldError::new("bank.bank_code", "must be a bank's code"));
    }
    let number = bank.account_number.trim();
    if !(6..=20).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
        errors.push(FieldError::new(
            "bank.account_number",
            "must be the account's number: 6–20 digits",
        ));
    }
    let name = bank.account_name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "bank.account_name",
            "must be the name the account is held in: 1–100 characters",
        ));
    }
    match currency {
        Ok(currency) if errors.is_empty() => Ok(BankAccount {
            bank_code: code.to_owned(),
            account_number: number.to_owned(),
            account_name: name.to_owned(),
            currency,
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BalanceParams {
    /// Admins only: another organizer's.
    pub organizer_id: Option<Uuid>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BalanceView {
    pub organizer_id: Uuid,
    pub payout_account: Option<String>,
    /// Per currency.
    pub currencies: Vec<CurrencyBalance>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CurrencyBalance {
    pub currency: String,
    /// Owed for events that can be paid out now (the next payout, if
    /// positive; negative is carried).
    pub payable_minor: i64,
    /// Owed for events not over yet (or within the payout delay).
    pub pending_minor: i64,
    pub events: Vec<EventBalanceView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventBalanceView {
    pub event_id: Uuid,
    pub title: String,
    /// Paid in, less refunds, the platform's fees and earlier payouts.
    pub owed_minor: i64,
    pub payable_from: DateTime<Utc>,
}

/// The organizer whose money is asked about.
fn whose(user: &AuthUser, asked: Option<Uuid>) -> ApiResult<Uuid> {
    user.require(Role::Organizer)?;
    match asked {
        Some(id) if user.is_admin() => Ok(id),
        Some(id) if id != user.id() => Err(ApiError::Forbidden),
        _ => Ok(user.id()),
    }
}

/// `GET /v1/organizer/balance`
#[utoipa::path(
    get,
    path = "/v1/organizer/balance",
    operation_id = "payouts_balance",
    tag = "payouts",
    summary = "What the caller's events owe them, per currency and event",
    params(BalanceParams),
    responses((status = 200, description = "The balance", body = BalanceView), crate::openapi::problems::BadRequest, crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn balance(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<BalanceParams>,
) -> ApiResult<Json<BalanceView>> {
    let organizer_id = whose(&user, params.organizer_id)?;
    let mut conn = state.db().await?;
    let organizer = User::find(&mut conn, organizer_id).await?;
    let balances = Payout::balances(
        &mut conn,
        organizer_id,
        state.config().payments.payout_delay,
    )
    .await?;
    Ok(Json(BalanceView {
        organizer_id,
        payout_account: organizer.payout_account,
        currencies: by_currency(balances, Utc::now()),
    }))
}

fn by_currency(balances: Vec<EventBalance>, now: DateTime<Utc>) -> Vec<CurrencyBalance> {
    let mut currencies: Vec<CurrencyBalance> = Vec::new();
    for b in balances {
        let i = match currencies.iter().position(|c| c.currency == b.currency) {
            Some(i) => i,
            None => {
                currencies.push(CurrencyBalance {
                    currency: b.currency.clone(),
                    payable_minor: 0,
                    pending_minor: 0,
                    events: Vec::new(),
                });
                currencies.len() - 1
            }
        };
        let c = &mut currencies[i];
        if b.payable_from <= now {
            c.payable_minor += b.owed_minor;
        } else {
            c.pending_minor += b.owed_minor;
        }
        c.events.push(EventBalanceView {
            event_id: b.event_id,
            title: b.title,
            owed_minor: b.owed_minor,
            payable_from: b.payable_from,
        });
    }
    currencies
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PayoutListParams {
    /// Admins only: another organizer's.
    pub organizer_id: Option<Uuid>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PayoutView {
    pub id: Uuid,
    /// `pending`, `processing`, `paid` or `failed`.
    pub status: String,
    pub amount_minor: i64,
    pub currency: String,
    pub destination: String,
    pub provider_transfer_id: Option<String>,
    pub lines: Vec<PayoutLineView>,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PayoutLineView {
    pub event_id: Uuid,
    pub amount_minor: i64,
}

/// `GET /v1/organizer/payouts`, newest first.
#[utoipa::path(
    get,
    path = "/v1/organizer/payouts",
    operation_id = "payouts_list",
    tag = "payouts",
    summary = "The caller's payouts, with a line per event",
    params(PayoutListParams),
    responses((status = 200, description = "A page of payouts", body = crate::pagination::Page<PayoutView>), crate::openapi::problems::BadRequest, crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<PayoutListParams>,
) -> ApiResult<Json<Page<PayoutView>>> {
    let organizer_id = whose(&user, params.organizer_id)?;
    let limit = pagination::limit_only(params.limit)?;
    let after = pagination::created_after(params.cursor.as_deref())?;
    let mut conn = state.db().await?;
    let rows = Payout::for_organizer(&mut conn, organizer_id, after, limit + 1).await?;
    let (payouts, next_cursor) = pagination::created_page(rows, limit, |p| (p.created_at, p.id));
    let ids: Vec<Uuid> = payouts.iter().map(|p| p.id).collect();
    let lines: Vec<PayoutLine> = Payout::lines_of(&mut conn, &ids).await?;
    let items = payouts
        .into_iter()
        .map(|p| PayoutView {
            lines: lines
                .iter()
                .filter(|l| l.payout_id == p.id)
                .map(|l| PayoutLineView {
                    event_id: l.event_id,
                    amount_minor: l.amount_minor,
                })
                .collect(),
            id: p.id,
            status: p.status,
            amount_minor: p.amount_minor,
            currency: p.currency,
            destination: p.destination,
            provider_transfer_id: p.provider_transfer_id,
            created_at: p.created_at,
            paid_at: p.paid_at,
        })
        .collect();
    Ok(Json(Page { items, next_cursor }))
}
