//! Discount codes: managed by the event's organizer, checked by buyers.
//! Redemptions are counted when orders are placed (purchase pipeline).

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use boxoffice_core::{
    models::{Discount, DiscountFields, Event, EventStatus, NewDiscount, Tier},
    money::{self, DiscountAmount},
};
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult, FieldError, on_constraints},
    extract::{AuthUser, ClientInfo, Json, MaybeUser, merge, nullable},
    rate_limit,
    routes::events::{ensure_editable, load_managed, parse_id},
    state::AppState,
};

/// Code checks per IP per minute: enough for a checkout page, too few to
/// enumerate codes.
const CHECKS_PER_MINUTE: u32 = 30;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscountInput {
    /// 3–32 letters, digits, `-` or `_`; matched case-insensitively.
    #[schema(pattern = "^[A-Za-z0-9_-]{3,32}$")]
    pub code: Option<String>,
    /// A percentage off (up to two decimals, e.g. 12.5) ...
    #[schema(exclusive_minimum = 0, maximum = 100, multiple_of = 0.01)]
    pub percent_off: Option<f64>,
    /// ... or a fixed amount off the order, in the event's currency.
    #[schema(minimum = 1)]
    pub amount_off_minor: Option<i64>,
    /// Limits the code to these tiers; `null` or absent: every tier.
    #[schema(value_type = Option<Vec<Uuid>>)]
    #[serde(default, deserialize_with = "nullable")]
    pub tier_ids: Option<Option<Vec<Uuid>>>,
    #[schema(value_type = Option<i32>, minimum = 1)]
    #[serde(default, deserialize_with = "nullable")]
    pub max_redemptions: Option<Option<i32>>,
    /// Orders one buyer may place with the code.
    #[schema(value_type = Option<i32>, minimum = 1)]
    #[serde(default, deserialize_with = "nullable")]
    pub per_buyer_limit: Option<Option<i32>>,
    #[schema(value_type = Option<DateTime<Utc>>)]
    #[serde(default, deserialize_with = "nullable")]
    pub valid_from: Option<Option<DateTime<Utc>>>,
    #[schema(value_type = Option<DateTime<Utc>>)]
    #[serde(default, deserialize_with = "nullable")]
    pub valid_until: Option<Option<DateTime<Utc>>>,
    /// The order total (before the discount) must reach this.
    #[schema(value_type = Option<i64>, minimum = 0)]
    #[serde(default, deserialize_with = "nullable")]
    pub min_order_total_minor: Option<Option<i64>>,
    pub active: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DiscountView {
    pub id: Uuid,
    pub event_id: Uuid,
    pub code: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent_off: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_off_minor: Option<i64>,
    pub tier_ids: Option<Vec<Uuid>>,
    pub max_redemptions: Option<i32>,
    pub redemptions: i32,
    pub per_buyer_limit: Option<i32>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub min_order_total_minor: Option<i64>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn percent(basis_points: i64) -> f64 {
    basis_points as f64 / 100.0
}

impl From<&Discount> for DiscountView {
    fn from(d: &Discount) -> Self {
        let (percent_off, amount_off_minor) = match d.amount_off() {
            DiscountAmount::Percentage(bp) => (Some(percent(bp)), None),
            DiscountAmount::Fixed(amount) => (None, Some(amount)),
        };
        Self {
            id: d.id,
            event_id: d.event_id,
            code: d.code.clone(),
            kind: d.kind.clone(),
            percent_off,
            amount_off_minor,
            tier_ids: d.tiers(),
            max_redemptions: d.max_redemptions,
            redemptions: d.redemptions,
            per_buyer_limit: d.per_buyer_limit,
            valid_from: d.valid_from,
            valid_until: d.valid_until,
            min_order_total_minor: d.min_order_total_minor,
            active: d.active,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

impl DiscountInput {
    fn into_fields(
        self,
        base: Option<&Discount>,
        event_tiers: &[Tier],
    ) -> ApiResult<DiscountFields> {
        let mut errors = Vec::new();
        let current = base.map(Discount::fields);
        let code = self
            .code
            .or_else(|| current.as_ref().map(|c| c.code.clone()))
            .map(|c| c.trim().to_owned());
        match &code {
            None => errors.push(FieldError::new("code", "is required")),
            Some(c)
                if !(3..=32).contains(&c.len())
                    || !c
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') =>
            {
                errors.push(FieldError::new(
                    "code",
                    "must be 3 to 32 letters, digits, `-` or `_`",
                ));
            }
            Some(_) => {}
        }
        let amount = match (self.percent_off, self.amount_off_minor) {
            (Some(_), Some(_)) => {
                errors.push(FieldError::new(
                    "amount_off_minor",
                    "give either percent_off or amount_off_minor, not both",
                ));
                None
            }
            (Some(p), None) => {
                let bp = (p * 100.0).round();
                if !(p.is_finite() && p > 0.0 && p <= 100.0 && (p * 100.0 - bp).abs() < 1e-6) {
                    errors.push(FieldError::new(
                        "percent_off",
                        "must be above 0 and at most 100, with at most two decimals",
                    ));
                    None
                } else {
                    Some(DiscountAmount::Percentage(bp as i64))
                }
            }
            (None, Some(a)) => {
                if a <= 0 {
                    errors.push(FieldError::new("amount_off_minor", "must be above 0"));
                    None
                } else {
                    Some(DiscountAmount::Fixed(a))
                }
            }
            (None, None) => match base {
                Some(d) => Some(d.amount_off()),
                None => {
                    errors.push(FieldError::new(
                        "percent_off",
                        "give percent_off or amount_off_minor",
                    ));
                    None
                }
            },
        };
        let tier_ids = self
            .tier_ids
            .unwrap_or_else(|| base.and_then(Discount::tiers));
        if let Some(ids) = &tier_ids {
            if ids.is_empty() {
                errors.push(FieldError::new(
                    "tier_ids",
                    "must name at least one tier (or be null for every tier)",
                ));
            }
            if ids
                .iter()
                .any(|id| !event_tiers.iter().any(|t| t.id == *id))
            {
                errors.push(FieldError::new("tier_ids", "must be tiers of this event"));
            }
        }
        let max_redemptions = merge(
            self.max_redemptions,
            current.as_ref().and_then(|c| c.max_redemptions),
        );
        let per_buyer_limit = merge(
            self.per_buyer_limit,
            current.as_ref().and_then(|c| c.per_buyer_limit),
        );
        let valid_from = merge(self.valid_from, current.as_ref().and_then(|c| c.valid_from));
        let valid_until = merge(
            self.valid_until,
            current.as_ref().and_then(|c| c.valid_until),
        );
        let min_order_total_minor = merge(
            self.min_order_total_minor,
            current.as_ref().and_then(|c| c.min_order_total_minor),
        );
        if max_redemptions.is_some_and(|n| n < 1) {
            errors.push(FieldError::new("max_redemptions", "must be at least 1"));
        }
        if per_buyer_limit.is_some_and(|n| n < 1) {
            errors.push(FieldError::new("per_buyer_limit", "must be at least 1"));
        }
        if let (Some(from), Some(until)) = (valid_from, valid_until)
            && until <= from
        {
            errors.push(FieldError::new("valid_until", "must be after valid_from"));
        }
        if min_order_total_minor.is_some_and(|n| n < 0) {
            errors.push(FieldError::new(
                "min_order_total_minor",
                "must be 0 or more",
            ));
        }
        match (code, amount) {
            (Some(code), Some(amount)) if errors.is_empty() => {
                let (kind, amount) = match amount {
                    DiscountAmount::Percentage(bp) => ("percentage", bp),
                    DiscountAmount::Fixed(a) => ("fixed", a),
                };
                Ok(DiscountFields {
                    code,
                    kind: kind.into(),
                    amount,
                    tier_ids: tier_ids.map(|ids| ids.into_iter().map(Some).collect()),
                    max_redemptions,
                    per_buyer_limit,
                    valid_from,
                    valid_until,
                    min_order_total_minor,
                    active: self
                        .active
                        .or(current.as_ref().map(|c| c.active))
                        .unwrap_or(true),
                })
            }
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

const CODE_TAKEN: (&str, &str, &str) = (
    "discount_codes_event_code_key",
    "code",
    "is already used by another code of this event",
);

/// `POST /v1/events/{id}/discounts`
#[utoipa::path(
    post,
    path = "/v1/events/{id}/discounts",
    operation_id = "discounts_create",
    tag = "discounts",
    summary = "Create a discount code",
    params(("id" = String, Path, description = "Event id")),
    request_body = DiscountInput,
    responses((status = 201, description = "The code", body = DiscountView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::Unprocessable, crate::openapi::problems::BadRequest, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Path(event_id): Path<String>,
    Json(input): Json<DiscountInput>,
) -> ApiResult<(StatusCode, Json<DiscountView>)> {
    let mut conn = state.db().await?;
    let event = load_managed(&mut conn, &user, &event_id).await?;
    ensure_editable(&event)?;
    let tiers = Tier::for_event(&mut conn, event.id).await?;
    let fields = input.into_fields(None, &tiers)?;
    let discount = NewDiscount {
        id: Uuid::now_v7(),
        event_id: event.id,
        fields,
    }
    .insert(&mut conn)
    .await
    .map_err(on_constraints(&[CODE_TAKEN]))?;
    tracing::info!(event.id = %event.id, discount.id = %discount.id, "discount code created");
    Ok((StatusCode::CREATED, Json(DiscountView::from(&discount))))
}

/// `GET /v1/events/{id}/discounts`: the event's codes with their redemptions.
#[utoipa::path(
    get,
    path = "/v1/events/{id}/discounts",
    operation_id = "discounts_list",
    tag = "discounts",
    summary = "An event's codes with their redemptions",
    params(("id" = String, Path, description = "Event id")),
    responses((status = 200, description = "Codes", body = Vec<DiscountView>), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(event_id): Path<String>,
) -> ApiResult<Json<Vec<DiscountView>>> {
    let mut conn = state.db().await?;
    let event = load_managed(&mut conn, &user, &event_id).await?;
    let codes = Discount::for_event(&mut conn, event.id).await?;
    Ok(Json(codes.iter().map(DiscountView::from).collect()))
}

/// `PATCH /v1/events/{id}/discounts/{code}`: any subset of the fields;
/// `"active": false` switches a code off.
#[utoipa::path(
    patch,
    path = "/v1/events/{id}/discounts/{code}",
    operation_id = "discounts_update",
    tag = "discounts",
    summary = "Edit a code",
    params(("id" = String, Path, description = "Event id"), ("code" = String, Path, description = "The code (case-insensitive)")),
    request_body = DiscountInput,
    responses((status = 200, description = "The code", body = DiscountView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::Unprocessable, crate::openapi::problems::BadRequest, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, code)): Path<(String, String)>,
    Json(input): Json<DiscountInput>,
) -> ApiResult<Json<DiscountView>> {
    let mut conn = state.db().await?;
    let event = load_managed(&mut conn, &user, &event_id).await?;
    ensure_editable(&event)?;
    // Under the event's lock: reservation batches judge a code's cap under
    // it and write its redemptions last.
    let discount = conn
        .transaction::<_, ApiError, _>(async |conn| {
            Event::lock(conn, event.id).await?;
            let discount = Discount::find_by_code(conn, event.id, &code).await?;
            let tiers = Tier::for_event(conn, event.id).await?;
            let fields = input.into_fields(Some(&discount), &tiers)?;
            Discount::update_fields(conn, discount.id, &fields)
                .await
                .map_err(on_constraints(&[
                    CODE_TAKEN,
                    (
                        "discount_codes_redemptions_cap_check",
                        "max_redemptions",
                        "cannot be lower than the redemptions already made",
                    ),
                ]))
        })
        .await?;
    tracing::info!(event.id = %event.id, discount.id = %discount.id, "discount code updated");
    Ok(Json(DiscountView::from(&discount)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CodeCheck {
    pub code: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent_off: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_off_minor: Option<i64>,
    pub currency: String,
    pub min_order_total_minor: Option<i64>,
    pub per_buyer_limit: Option<i32>,
    pub valid_until: Option<DateTime<Utc>>,
    /// Each public tier the code applies to, with one ticket's price with the
    /// code (a fixed amount comes off once per order).
    pub tiers: Vec<TierPrice>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TierPrice {
    pub tier_id: Uuid,
    pub name: String,
    pub price_minor: i64,
    pub discounted_price_minor: i64,
    pub display: String,
}

/// The budget of discount-code guesses per IP and per user. The check
/// endpoint spends it on every check; orders spend it on every wrong code
/// and are refused once it is gone, right code or not. So codes cannot be
/// guessed through either faster than `CHECKS_PER_MINUTE`, while a popular
/// code used rightly by a crowd behind one address costs nothing.
fn code_buckets(client: &ClientInfo, user: Option<Uuid>) -> Vec<(String, u32)> {
    let mut buckets = vec![(format!("discount-check:{}", client.ip), CHECKS_PER_MINUTE)];
    if let Some(user) = user {
        buckets.push((format!("discount-check-user:{user}"), CHECKS_PER_MINUTE));
    }
    buckets
}

fn borrowed(buckets: &[(String, u32)]) -> Vec<(&str, u32)> {
    buckets.iter().map(|(b, n)| (b.as_str(), *n)).collect()
}

/// Spends one try of the caller's code budget (429 once it is gone).
pub async fn count_code_try(
    state: &AppState,
    client: &ClientInfo,
    user: Option<Uuid>,
) -> ApiResult<()> {
    let buckets = code_buckets(client, user);
    let window = std::time::Duration::from_secs(60);
    open_on_outage(rate_limit::hit(state, &borrowed(&buckets), window).await)
}

/// 429 if the caller's code budget is gone, spending nothing.
pub async fn code_tries_left(
    state: &AppState,
    client: &ClientInfo,
    user: Option<Uuid>,
) -> ApiResult<()> {
    open_on_outage(rate_limit::check(state, &borrowed(&code_buckets(client, user))).await)
}

/// As at the edge: a Redis outage must not stop sales with a code.
fn open_on_outage(verdict: ApiResult<()>) -> ApiResult<()> {
    match verdict {
        Err(ApiError::Unavailable(e)) => {
            tracing::warn!(error = %e, "discount code budget unreadable; let through");
            Ok(())
        }
        other => other,
    }
}

/// `GET /v1/events/{id}/discounts/{code}`: a buyer checks a code. Unknown
/// codes are 404; known but unusable ones (not started, expired, used up,
/// switched off) 422 with a code saying which. Rate limited per IP.
#[utoipa::path(
    get,
    path = "/v1/events/{id}/discounts/{code}",
    operation_id = "discounts_check",
    tag = "discounts",
    summary = "Check a code and see the prices it gives",
    params(("id" = String, Path, description = "Event id"), ("code" = String, Path, description = "The code (case-insensitive)")),
    responses((status = 200, description = "Usable", body = CodeCheck), crate::openapi::problems::NotFound, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited)
)]
pub async fn check(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    client: ClientInfo,
    Path((event_id, code)): Path<(String, String)>,
) -> ApiResult<Json<CodeCheck>> {
    count_code_try(&state, &client, user.as_ref().map(AuthUser::id)).await?;
    let event_id = parse_id(&event_id)?;
    let mut conn = state.db().await?;
    let event = Event::find(&mut conn, event_id).await?;
    let manager = user
        .as_ref()
        .is_some_and(|u| u.can_manage(event.organizer_id));
    if event.status() != EventStatus::Published && !manager {
        return Err(ApiError::NotFound);
    }
    let discount = Discount::find_by_code(&mut conn, event.id, code.trim()).await?;
    if let Err(why) = discount.check_usable(Utc::now()) {
        if why == boxoffice_core::models::DiscountUnavailable::Inactive && !manager {
            return Err(ApiError::NotFound);
        }
        return Err(ApiError::Unprocessable(why.code(), why.message().into()));
    }
    let tiers = Tier::for_event(&mut conn, event.id).await?;
    let view = DiscountView::from(&discount);
    let amount = discount.amount_off();
    Ok(Json(CodeCheck {
        code: discount.code.clone(),
        kind: discount.kind.clone(),
        percent_off: view.percent_off,
        amount_off_minor: view.amount_off_minor,
        currency: event.currency.clone(),
        min_order_total_minor: discount.min_order_total_minor,
        per_buyer_limit: discount.per_buyer_limit,
        valid_until: discount.valid_until,
        tiers: tiers
            .iter()
            .filter(|t| !t.hidden && discount.applies_to(t.id))
            .map(|t| {
                let discounted = t.price_minor - amount.off(t.price_minor);
                TierPrice {
                    tier_id: t.id,
                    name: t.name.clone(),
                    price_minor: t.price_minor,
                    discounted_price_minor: discounted,
                    display: money::format(discounted, &t.currency),
                }
            })
            .collect(),
    }))
}
