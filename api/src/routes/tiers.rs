//! Ticket tiers of an event: created, edited and deleted by its managers.
//! Every write locks the event row, so the capacity check across tiers holds
//! under concurrent edits; the stock CHECK holds under concurrent sales.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use boxoffice_core::models::{Event, NewTier, Tier, TierFields};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult, FieldError, on_constraint},
    extract::{AuthUser, Json, nullable},
    routes::events::{
        ensure_editable, load_managed, parse_id,
        views::{Audience, TierView},
    },
    state::AppState,
    validate,
};

/// The body of POST (`name`, `price_minor` and `quantity` required, the
/// rest defaulted) and PATCH (any subset; `null` clears an optional field).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierInput {
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[schema(minimum = 0, maximum = 100_000_000_000_i64)]
    pub price_minor: Option<i64>,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: Option<i32>,
    #[schema(value_type = Option<DateTime<Utc>>)]
    #[serde(default, deserialize_with = "nullable")]
    pub sales_start_at: Option<Option<DateTime<Utc>>>,
    #[schema(value_type = Option<DateTime<Utc>>)]
    #[serde(default, deserialize_with = "nullable")]
    pub sales_end_at: Option<Option<DateTime<Utc>>>,
    #[schema(minimum = 1, maximum = 100)]
    pub min_per_order: Option<i32>,
    /// Not below `min_per_order`.
    #[schema(minimum = 1, maximum = 100)]
    pub max_per_order: Option<i32>,
    /// Hidden tiers are shown and sold only to holders of the unlock code.
    pub hidden: Option<bool>,
    #[schema(value_type = Option<String>, min_length = 4, max_length = 64)]
    #[serde(default, deserialize_with = "nullable")]
    pub unlock_code: Option<Option<String>>,
    /// "Almost sold out" once remaining stock is at or under this.
    #[schema(value_type = Option<i32>, minimum = 0)]
    #[serde(default, deserialize_with = "nullable")]
    pub low_stock_threshold: Option<Option<i32>>,
    pub sort_order: Option<i32>,
}

/// The body of `POST /v1/events/{id}/tiers` in the document: `TierInput`
/// with what a new tier needs required.
pub struct NewTierInput;

impl utoipa::PartialSchema for NewTierInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::required_on_create::<TierInput>(&["name", "price_minor", "quantity"])
    }
}

impl utoipa::ToSchema for NewTierInput {}

/// A price ceiling that no ticket reaches, but that keeps order totals far
/// from overflowing.
const MAX_PRICE_MINOR: i64 = 100_000_000_000;
const MAX_QUANTITY: i32 = 1_000_000;

impl TierInput {
    fn into_fields(self, base: Option<&Tier>) -> ApiResult<TierFields> {
        let mut errors = Vec::new();
        let current = base.map(Tier::fields);
        let name = self
            .name
            .or_else(|| current.as_ref().map(|c| c.name.clone()));
        let price_minor = self.price_minor.or(current.as_ref().map(|c| c.price_minor));
        let quantity = self.quantity.or(current.as_ref().map(|c| c.quantity));
        for (field, missing) in [
            ("name", name.is_none()),
            ("price_minor", price_minor.is_none()),
            ("quantity", quantity.is_none()),
        ] {
            if missing {
                errors.push(FieldError::new(field, "is required"));
            }
        }
        let fields = TierFields {
            name: name.unwrap_or_default().trim().to_owned(),
            description: self
                .description
                .or_else(|| current.as_ref().map(|c| c.description.clone()))
                .unwrap_or_default()
                .trim()
                .to_owned(),
            price_minor: price_minor.unwrap_or(0),
            quantity: quantity.unwrap_or(1),
            sales_start_at: self
                .sales_start_at
                .unwrap_or_else(|| current.as_ref().and_then(|c| c.sales_start_at)),
            sales_end_at: self
                .sales_end_at
                .unwrap_or_else(|| current.as_ref().and_then(|c| c.sales_end_at)),
            min_per_order: self
                .min_per_order
                .or(current.as_ref().map(|c| c.min_per_order))
                .unwrap_or(1),
            max_per_order: self
                .max_per_order
                .or(current.as_ref().map(|c| c.max_per_order))
                .unwrap_or(10),
            hidden: self
                .hidden
                .or(current.as_ref().map(|c| c.hidden))
                .unwrap_or(false),
            unlock_code: self
                .unlock_code
                .unwrap_or_else(|| current.as_ref().and_then(|c| c.unlock_code.clone()))
                .map(|c| c.trim().to_owned()),
            low_stock_threshold: self
                .low_stock_threshold
                .unwrap_or_else(|| current.as_ref().and_then(|c| c.low_stock_threshold)),
            sort_order: self
                .sort_order
                .or(current.as_ref().map(|c| c.sort_order))
                .unwrap_or(0),
        };
        if errors.is_empty() {
            validate::length("name", &fields.name, 1, 100, &mut errors);
        }
        validate::length("description", &fields.description, 0, 2_000, &mut errors);
        if !(0..=MAX_PRICE_MINOR).contains(&fields.price_minor) {
            errors.push(FieldError::new(
                "price_minor",
                format!("must be between 0 and {MAX_PRICE_MINOR}"),
            ));
        }
        if !(1..=MAX_QUANTITY).contains(&fields.quantity) {
            errors.push(FieldError::new(
                "quantity",
                format!("must be between 1 and {MAX_QUANTITY}"),
            ));
        }
        if let (Some(start), Some(end)) = (fields.sales_start_at, fields.sales_end_at)
            && end <= start
        {
            errors.push(FieldError::new(
                "sales_end_at",
                "must be after sales_start_at",
            ));
        }
        if !(1..=100).contains(&fields.min_per_order) {
            errors.push(FieldError::new(
                "min_per_order",
                "must be between 1 and 100",
            ));
        }
        if !(fields.min_per_order..=100).contains(&fields.max_per_order) {
            errors.push(FieldError::new(
                "max_per_order",
                "must be between min_per_order and 100",
            ));
        }
        match &fields.unlock_code {
            Some(code) => validate::length("unlock_code", code, 4, 64, &mut errors),
            None if fields.hidden => errors.push(FieldError::new(
                "unlock_code",
                "is required for a hidden tier (nobody could buy it otherwise)",
            )),
            None => {}
        }
        if fields
            .low_stock_threshold
            .is_some_and(|t| t < 0 || t >= fields.quantity)
        {
            errors.push(FieldError::new(
                "low_stock_threshold",
                "must be between 0 and quantity - 1",
            ));
        }
        if errors.is_empty() {
            Ok(fields)
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// The event, locked and checked for the caller and for edits.
async fn lock_event(
    conn: &mut AsyncPgConnection,
    user: &AuthUser,
    raw_id: &str,
) -> ApiResult<Event> {
    let event = load_managed(conn, user, raw_id).await?;
    let event = Event::lock(conn, event.id).await?;
    ensure_editable(&event)?;
    Ok(event)
}

async fn check_capacity(
    conn: &mut AsyncPgConnection,
    event: &Event,
    except: Option<Uuid>,
    quantity: i32,
) -> ApiResult<()> {
    if let Some(capacity) = event.capacity {
        let others = Tier::total_quantity(conn, event.id, except).await?;
        if others + i64::from(quantity) > i64::from(capacity) {
            return Err(ApiError::validation(
                "quantity",
                &format!(
                    "would take the tiers past the event's capacity of {capacity} ({} left)",
                    (i64::from(capacity) - others).max(0)
                ),
            ));
        }
    }
    Ok(())
}

/// `POST /v1/events/{id}/tiers`
#[utoipa::path(
    post,
    path = "/v1/events/{id}/tiers",
    operation_id = "tiers_create",
    tag = "tiers",
    summary = "Add a ticket tier",
    params(("id" = String, Path, description = "Event id")),
    request_body = NewTierInput,
    responses((status = 201, description = "The tier", body = crate::routes::events::views::TierView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::Unprocessable, crate::openapi::problems::BadRequest, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Path(event_id): Path<String>,
    Json(input): Json<TierInput>,
) -> ApiResult<(StatusCode, Json<TierView>)> {
    let fields = input.into_fields(None)?;
    let mut conn = state.db().await?;
    let tier = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let event = lock_event(conn, &user, &event_id).await?;
            check_capacity(conn, &event, None, fields.quantity).await?;
            Ok(NewTier {
                id: Uuid::now_v7(),
                event_id: event.id,
                currency: event.currency.clone(),
                fields,
            }
            .insert(conn)
            .await?)
        })
        .await?;
    state
        .services
        .event_cache
        .invalidate_or_log(tier.event_id)
        .await;
    tracing::info!(event.id = %tier.event_id, tier.id = %tier.id, "tier created");
    Ok((
        StatusCode::CREATED,
        Json(TierView::new(&tier, Audience::Manager, Utc::now())),
    ))
}

/// `PATCH /v1/events/{id}/tiers/{tier_id}`. Lowering the quantity below what
/// is held + sold is refused by the database's CHECK, so a reservation landing
/// during the edit cannot be oversold.
#[utoipa::path(
    patch,
    path = "/v1/events/{id}/tiers/{tier_id}",
    operation_id = "tiers_update",
    tag = "tiers",
    summary = "Edit a tier",
    params(("id" = String, Path, description = "Event id"), ("tier_id" = String, Path, description = "Tier id")),
    request_body = TierInput,
    responses((status = 200, description = "The tier", body = crate::routes::events::views::TierView), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::Unprocessable, crate::openapi::problems::BadRequest, crate::openapi::problems::UnsupportedMediaType, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, tier_id)): Path<(String, String)>,
    Json(input): Json<TierInput>,
) -> ApiResult<Json<TierView>> {
    let tier_id = parse_id(&tier_id)?;
    let mut conn = state.db().await?;
    let tier = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let event = lock_event(conn, &user, &event_id).await?;
            let tier = Tier::find_in_event(conn, event.id, tier_id).await?;
            let fields = input.into_fields(Some(&tier))?;
            check_capacity(conn, &event, Some(tier.id), fields.quantity).await?;
            Tier::update_fields(conn, tier.id, &fields)
                .await
                .map_err(on_constraint(
                    "tier_stock_inventory_check",
                    "quantity",
                    "cannot be lower than the tickets already reserved or sold",
                ))
        })
        .await?;
    state
        .services
        .event_cache
        .invalidate_or_log(tier.event_id)
        .await;
    tracing::info!(event.id = %tier.event_id, tier.id = %tier.id, "tier updated");
    Ok(Json(TierView::new(&tier, Audience::Manager, Utc::now())))
}

/// `DELETE /v1/events/{id}/tiers/{tier_id}`: only a tier nobody has reserved,
/// bought or ordered; otherwise 409 (hide it instead).
#[utoipa::path(
    delete,
    path = "/v1/events/{id}/tiers/{tier_id}",
    operation_id = "tiers_delete",
    tag = "tiers",
    summary = "Delete an unsold tier",
    params(("id" = String, Path, description = "Event id"), ("tier_id" = String, Path, description = "Tier id")),
    responses((status = 204, description = "Deleted"), crate::openapi::problems::Unauthorized, crate::openapi::problems::Forbidden, crate::openapi::problems::NotFound, crate::openapi::problems::Conflict, crate::openapi::problems::RateLimited),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, tier_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let tier_id = parse_id(&tier_id)?;
    let mut conn = state.db().await?;
    let event_id = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let event = lock_event(conn, &user, &event_id).await?;
            let tier = Tier::find_in_event(conn, event.id, tier_id).await?;
            if !Tier::delete_unsold(conn, event.id, tier.id).await? {
                return Err(ApiError::Conflict(
                    "tier_has_sales",
                    "This tier has reservations or sales; hide it instead of deleting it.".into(),
                ));
            }
            Ok(event.id)
        })
        .await?;
    state.services.event_cache.invalidate_or_log(event_id).await;
    tracing::info!(event.id = %event_id, tier.id = %tier_id, "tier deleted");
    Ok(StatusCode::NO_CONTENT)
}
