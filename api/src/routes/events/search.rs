//! `GET /v1/events`: search published events.
//!
//! | parameter | meaning |
//! |---|---|
//! | `q` | full text over title, venue, city, description (English stemming; `"exact phrase"`, `-word`, `or`) |
//! | `category`, `city`, `organizer_id` | exact filters (city case-insensitive) |
//! | `from`, `to` | start between, inclusive. A date (`2026-12-31`) is read in each event's own time zone; an RFC 3339 time is an exact instant (`to` exclusive). Without `from`, only events that have not ended. |
//! | `price_min`, `price_max` | some public tier priced in the range (minor units) |
//! | `available=true` | some public tier on sale now with stock left |
//! | `near=lat,lng`, `radius_km` (default 50) | within that great-circle distance; adds `distance_km` |
//! | `sort` | `starts_at` (default), `price`, `newest`, `distance` |
//! | `limit` (≤ 100, default 20), `cursor` | pagination |

use axum::extract::State;
use boxoffice_core::{
    catalog,
    models::{DateBound, EventSearch, Near, SearchHit, SearchSort, SortKey},
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult, FieldError},
    extract::{Json, Query},
    pagination::{self, Page},
    state::AppState,
};

const DEFAULT_RADIUS_KM: f64 = 50.0;
/// Half the Earth's circumference: anything farther is the same place.
const MAX_RADIUS_KM: f64 = 20_037.5;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Words of the title, venue or city; the last one may be a prefix.
    #[param(max_length = 200)]
    pub q: Option<String>,
    #[param(schema_with = crate::openapi::categories)]
    pub category: Option<String>,
    pub city: Option<String>,
    #[param(value_type = Option<Uuid>)]
    pub organizer_id: Option<String>,
    /// A day (`2026-12-31`, in the event's time zone) or an RFC 3339 time.
    #[param(schema_with = crate::openapi::day_or_time)]
    pub from: Option<String>,
    /// As `from`; not before it.
    #[param(schema_with = crate::openapi::day_or_time)]
    pub to: Option<String>,
    /// Minor units; not above `price_max`.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub price_min: Option<String>,
    #[param(value_type = Option<i64>, minimum = 0)]
    pub price_max: Option<String>,
    /// Only events with seats left.
    #[param(value_type = Option<bool>)]
    pub available: Option<String>,
    /// `latitude,longitude` in degrees, e.g. `48.8566,2.3522`.
    #[param(
        pattern = r"^-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?),-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?)$"
    )]
    pub near: Option<String>,
    /// Needs `near`.
    #[param(value_type = Option<f64>, exclusive_minimum = 0, maximum = 20037.5)]
    pub radius_km: Option<String>,
    /// `distance` needs `near`.
    #[param(value_type = Option<String>, pattern = "^(starts_at|price|newest|distance)$")]
    pub sort: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventSummary {
    pub id: Uuid,
    pub organizer_id: Uuid,
    pub title: String,
    pub category: String,
    pub venue_name: String,
    pub city: String,
    pub country: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub timezone: String,
    pub cover_image_url: Option<String>,
    pub currency: String,
    pub min_price_minor: Option<i64>,
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
}

impl From<SearchHit> for EventSummary {
    fn from(h: SearchHit) -> Self {
        Self {
            id: h.id,
            organizer_id: h.organizer_id,
            title: h.title,
            category: h.category,
            venue_name: h.venue_name,
            city: h.city,
            country: h.country,
            latitude: h.latitude,
            longitude: h.longitude,
            starts_at: h.starts_at,
            ends_at: h.ends_at,
            timezone: h.timezone,
            cover_image_url: h.cover_image_url,
            currency: h.currency,
            min_price_minor: h.min_price_minor,
            available: h.available,
            distance_km: h.distance_km,
        }
    }
}

/// The last row's sort key. It names its sort order so that a cursor reused
/// with another `sort` is refused instead of silently skipping rows.
#[derive(Debug, Serialize, Deserialize)]
struct SearchCursor {
    sort: String,
    key: CursorKey,
    id: Uuid,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CursorKey {
    Time(DateTime<Utc>),
    Price(i64),
    Distance(f64),
}

impl From<SortKey> for CursorKey {
    fn from(key: SortKey) -> Self {
        match key {
            SortKey::Time(t) => Self::Time(t),
            SortKey::Price(p) => Self::Price(p),
            SortKey::Distance(d) => Self::Distance(d),
        }
    }
}

fn date_bound(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> Option<DateBound> {
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Some(DateBound::Day(day));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(DateBound::Instant(t.with_timezone(&Utc)));
    }
    errors.push(FieldError::new(
        field,
        "must be a date (2026-12-31) or an RFC 3339 time (2026-12-31T20:00:00Z)",
    ));
    None
}

fn money(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
    match raw.parse::<i64>() {
        Ok(n) if n >= 0 => Some(n),
        _ => {
            errors.push(FieldError::new(
                field,
                "must be a whole number of minor units, 0 or more",
            ));
            None
        }
    }
}

fn near(raw: &str, errors: &mut Vec<FieldError>) -> Option<(f64, f64)> {
    let parsed = raw.split_once(',').and_then(|(lat, lng)| {
        let (lat, lng) = (
            lat.trim().parse::<f64>().ok()?,
            lng.trim().parse::<f64>().ok()?,
        );
        ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng)).then_some((lat, lng))
    });
    if parsed.is_none() {
        errors.push(FieldError::new(
            "near",
            "must be `latitude,longitude` in degrees, e.g. `48.8566,2.3522`",
        ));
    }
    parsed
}

impl SearchParams {
    fn into_search(self) -> ApiResult<EventSearch> {
        let mut errors = Vec::new();
        let text = self
            .q
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty());
        if text.as_ref().is_some_and(|q| q.chars().count() > 200) {
            errors.push(FieldError::new("q", "must be at most 200 characters"));
        }
        let category = self.category.filter(|c| !c.is_empty());
        if let Some(c) = &category
            && !catalog::is_category(c)
        {
            errors.push(FieldError::new(
                "category",
                format!("must be one of: {}", catalog::CATEGORIES.join(", ")),
            ));
        }
        let organizer_id = self.organizer_id.and_then(|raw| {
            let id = raw.parse::<Uuid>().ok();
            if id.is_none() {
                errors.push(FieldError::new("organizer_id", "must be a UUID"));
            }
            id
        });
        let from = self
            .from
            .and_then(|raw| date_bound("from", &raw, &mut errors));
        let to = self.to.and_then(|raw| date_bound("to", &raw, &mut errors));
        let out_of_order = match (from, to) {
            (Some(DateBound::Day(a)), Some(DateBound::Day(b))) => a > b,
            (Some(DateBound::Instant(a)), Some(DateBound::Instant(b))) => a >= b,
            _ => false,
        };
        if out_of_order {
            errors.push(FieldError::new("to", "must not be before from"));
        }
        let price_min = self
            .price_min
            .and_then(|raw| money("price_min", &raw, &mut errors));
        let price_max = self
            .price_max
            .and_then(|raw| money("price_max", &raw, &mut errors));
        if let (Some(min), Some(max)) = (price_min, price_max)
            && min > max
        {
            errors.push(FieldError::new("price_max", "must not be below price_min"));
        }
        let available_only = match self.available.as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(_) => {
                errors.push(FieldError::new("available", "must be true or false"));
                false
            }
        };
        let point = self.near.and_then(|raw| near(&raw, &mut errors));
        let radius_km = match self.radius_km {
            None => DEFAULT_RADIUS_KM,
            Some(raw) => match raw.parse::<f64>() {
                Ok(r) if r > 0.0 && r <= MAX_RADIUS_KM => r,
                _ => {
                    errors.push(FieldError::new(
                        "radius_km",
                        format!("must be a number of km above 0 and at most {MAX_RADIUS_KM}"),
                    ));
                    DEFAULT_RADIUS_KM
                }
            },
        };
        if point.is_none()
            && !errors.iter().any(|e| e.field == "near")
            && radius_km != DEFAULT_RADIUS_KM
        {
            errors.push(FieldError::new("radius_km", "needs `near`"));
        }
        let sort = match self.sort.as_deref() {
            None => SearchSort::StartsAt,
            Some(raw) => SearchSort::parse(raw).unwrap_or_else(|| {
                errors.push(FieldError::new(
                    "sort",
                    "must be starts_at, price, newest or distance",
                ));
                SearchSort::StartsAt
            }),
        };
        if sort == SearchSort::Distance
            && point.is_none()
            && !errors.iter().any(|e| e.field == "near")
        {
            errors.push(FieldError::new("near", "is required to sort by distance"));
        }
        let limit = pagination::limit(self.limit, &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let after = match self.cursor.as_deref() {
            None => None,
            Some(raw) => {
                let cursor: SearchCursor = pagination::decode(raw)?;
                let key = match (sort, cursor.key) {
                    (SearchSort::StartsAt | SearchSort::Newest, CursorKey::Time(t)) => {
                        SortKey::Time(t)
                    }
                    (SearchSort::Price, CursorKey::Price(p)) => SortKey::Price(p),
                    (SearchSort::Distance, CursorKey::Distance(d)) => SortKey::Distance(d),
                    _ => return Err(pagination::invalid_cursor()),
                };
                if cursor.sort != sort.as_str() {
                    return Err(pagination::invalid_cursor());
                }
                Some((key, cursor.id))
            }
        };
        Ok(EventSearch {
            text,
            category,
            city: self
                .city
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty()),
            from,
            to,
            price_min,
            price_max,
            available_only,
            organizer_id,
            near: point.map(|(latitude, longitude)| Near {
                latitude,
                longitude,
                radius_km,
            }),
            sort,
            after,
            limit: limit + 1,
        })
    }
}

#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "events_list",
    tag = "events",
    summary = "Search published events",
    params(SearchParams),
    responses((status = 200, description = "A page of events", body = crate::pagination::Page<EventSummary>), crate::openapi::problems::BadRequest, crate::openapi::problems::Unprocessable, crate::openapi::problems::RateLimited)
)]
pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<SearchParams>,
) -> ApiResult<Json<Page<EventSummary>>> {
    let search = params.into_search()?;
    let limit = search.limit - 1;
    let mut conn = state.db().await?;
    let rows = search.run(&mut conn).await?;
    let (hits, more) = pagination::split(rows, limit);
    let next_cursor = more.then(|| {
        let last = hits.last().expect("a full page has a last row");
        pagination::encode(&SearchCursor {
            sort: search.sort.as_str().to_owned(),
            key: last.sort_key(search.sort).into(),
            id: last.id,
        })
    });
    Ok(Json(Page {
        items: hits.into_iter().map(EventSummary::from).collect(),
        next_cursor,
    }))
}
