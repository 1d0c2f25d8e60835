//! The banks organizers can be paid into, for the payout-account form:
//! listed by a provider that registers bank accounts itself (Paystack),
//! cached by its client.

use axum::extract::State;
use boxoffice_core::payments::{Bank, Provider};
use serde::{Deserialize, Serialize};

use crate::{
    error::{ApiError, ApiResult, FieldError},
    extract::{AuthUser, Json, Query},
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BanksParams {
    /// ISO 4217, e.g. `NGN`, `GHS`, `ZAR`, `KES`.
    #[param(pattern = "^[A-Za-z]{3}$")]
    pub currency: String,
    /// A provider set up here that takes bank accounts; absent: the first.
    pub provider: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BanksView {
    pub provider: &'static str,
    pub currency: String,
    pub banks: Vec<BankView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BankView {
    pub name: String,
    /// What `PUT /v1/organizer/payout-account` takes as `bank.bank_code`.
    pub code: String,
    /// The provider's kind of account (`nuban`, `ghipss`, `basa`, `mobile_money`).
    #[serde(rename = "type")]
    pub kind: String,
}

impl From<&Bank> for BankView {
    fn from(b: &Bank) -> Self {
        Self {
            name: b.name.clone(),
            code: b.code.clone(),
            kind: b.kind.clone(),
        }
    }
}

/// `GET /v1/payments/banks`
#[utoipa::path(
    get,
    path = "/v1/payments/banks",
    operation_id = "banks_list",
    tag = "payouts",
    summary = "Banks an organizer can be paid into",
    params(BanksParams),
    responses((status = 200, description = "Banks", body = BanksView), crate::openapi::problems::BadRequest, crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::Unprocessable, crate::openapi::problems::Unavailable, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<BanksParams>,
) -> ApiResult<Json<BanksView>> {
    user.require(boxoffice_core::models::Role::Organizer)?;
    let currency = currency(&params.currency, "currency")?;
    let provider = bank_provider(&state, params.provider.as_deref(), "provider")?;
    let banks = provider.banks(&currency).await?;
    Ok(Json(BanksView {
        provider: provider.name(),
        currency,
        banks: banks.iter().map(BankView::from).collect(),
    }))
}

/// A currency code as providers take it, or a 422 on `field`.
pub(crate) fn currency(raw: &str, field: &str) -> ApiResult<String> {
    let code = raw.trim().to_ascii_uppercase();
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(ApiError::Validation(vec![FieldError::new(
            field,
            "must be a three-letter ISO 4217 code",
        )]))
    }
}

/// The provider that registers bank accounts: `name` if given (422 on
/// `field` if it is not set up or takes none), else the first set up.
pub(crate) fn bank_provider<'a>(
    state: &'a AppState,
    name: Option<&str>,
    field: &str,
) -> ApiResult<&'a Provider> {
    let payments = &state.services.payments;
    let found = match name {
        Some(name) => payments.named(name).filter(|p| p.lists_banks()),
        None => payments.all().iter().find(|p| p.lists_banks()),
    };
    found.ok_or_else(|| {
        let takers: Vec<&str> = payments
            .all()
            .iter()
            .filter(|p| p.lists_banks())
            .map(Provider::name)
            .collect();
        ApiError::Validation(vec![FieldError::new(
            field,
            if takers.is_empty() {
                "no provider set up here takes bank accounts (Paystack does)".to_owned()
            } else {
                format!("must be one of: {}", takers.join(", "))
            },
        )])
    })
}
