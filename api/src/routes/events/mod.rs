//! Events: organizers create, edit, publish and delete them; everyone finds
//! published ones.

pub mod calendar;
pub mod cancel;
pub mod detail;
pub mod manage;
pub mod search;
pub mod views;

use boxoffice_core::{
    catalog::{self, timezones},
    models::{Event, EventFields, Role},
    money,
};
use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult, FieldError},
    extract::{AuthUser, merge, nullable},
    validate,
};

/// Ids in paths are parsed by hand: a malformed id is simply not found (404
/// problem+json), never axum's plain-text 400.
pub fn parse_id(raw: &str) -> ApiResult<Uuid> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

/// The event, if `user` may manage it. Attendees get 403; an organizer who
/// does not own it gets 404, as if it did not exist, so ids leak nothing.
pub async fn load_managed(
    conn: &mut AsyncPgConnection,
    user: &AuthUser,
    raw_id: &str,
) -> ApiResult<Event> {
    user.require(Role::Organizer)?;
    let event = Event::find(conn, parse_id(raw_id)?).await?;
    if !user.can_manage(event.organizer_id) {
        return Err(ApiError::NotFound);
    }
    Ok(event)
}

/// Cancelled and completed events are history: 409 on any change.
pub fn ensure_editable(event: &Event) -> ApiResult<()> {
    if event.is_editable() {
        Ok(())
    } else {
        Err(ApiError::Conflict(
            "event_closed",
            format!(
                "The event is {}; it can no longer be changed.",
                event.status
            ),
        ))
    }
}

/// The body of `POST /v1/events` and `PATCH /v1/events/{id}`. On PATCH an
/// absent field keeps its value and `null` clears an optional one.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    #[schema(min_length = 1, max_length = 200)]
    pub title: Option<String>,
    #[schema(max_length = 20000)]
    pub description: Option<String>,
    #[schema(schema_with = crate::openapi::categories)]
    pub category: Option<String>,
    #[schema(max_length = 200)]
    pub venue_name: Option<String>,
    #[schema(max_length = 500)]
    pub address: Option<String>,
    #[schema(max_length = 100)]
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. `FR`.
    #[schema(pattern = "^[A-Za-z]{2}$")]
    pub country: Option<String>,
    #[schema(value_type = Option<f64>, minimum = -90, maximum = 90)]
    #[serde(default, deserialize_with = "nullable")]
    pub latitude: Option<Option<f64>>,
    #[schema(value_type = Option<f64>, minimum = -180, maximum = 180)]
    #[serde(default, deserialize_with = "nullable")]
    pub longitude: Option<Option<f64>>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    /// IANA name, e.g. `Europe/Paris`.
    pub timezone: Option<String>,
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 10_000_000)]
    #[serde(default, deserialize_with = "nullable")]
    pub capacity: Option<Option<i32>>,
    #[schema(value_type = Option<String>, format = "uri", max_length = 2048)]
    #[serde(default, deserialize_with = "nullable")]
    pub cover_image_url: Option<Option<String>>,
    /// Refunds are allowed until this many hours before the start.
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 8760)]
    #[serde(default, deserialize_with = "nullable")]
    pub refund_until_hours: Option<Option<i32>>,
    /// ISO 4217, e.g. `EUR`.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: Option<String>,
    /// Tickets one buyer may hold across all their orders.
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "nullable")]
    pub max_tickets_per_buyer: Option<Option<i32>>,
    /// Ticket holders get a reminder before the start (default on).
    pub reminders: Option<bool>,
    /// Named guests get their own ticket email (default on).
    pub guest_emails: Option<bool>,
}

/// The body of `POST /v1/events` in the document: `EventInput` with what
/// a new event needs required.
pub struct NewEventInput;

impl utoipa::PartialSchema for NewEventInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::required_on_create::<EventInput>(&[
            "title",
            "category",
            "timezone",
            "currency",
            "starts_at",
            "ends_at",
        ])
    }
}

impl utoipa::ToSchema for NewEventInput {}

fn required<T>(value: Option<T>, field: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    if value.is_none() {
        errors.push(FieldError::new(field, "is required"));
    }
    value
}

impl EventInput {
    /// Merges the input over `base` (the current row on PATCH) and checks the
    /// result as a whole, so a PATCH of `ends_at` alone is still checked
    /// against the stored `starts_at`.
    pub async fn into_fields(
        self,
        conn: &mut AsyncPgConnection,
        base: Option<&Event>,
    ) -> ApiResult<EventFields> {
        let mut errors = Vec::new();
        let current = base.map(Event::fields);
        let keep = |f: fn(&EventFields) -> String| current.as_ref().map(f);
        let title = self.title.or_else(|| keep(|c| c.title.clone()));
        let category = self.category.or_else(|| keep(|c| c.category.clone()));
        let timezone = self.timezone.or_else(|| keep(|c| c.timezone.clone()));
        let currency = self.currency.or_else(|| keep(|c| c.currency.clone()));
        let starts_at = self.starts_at.or(current.as_ref().map(|c| c.starts_at));
        let ends_at = self.ends_at.or(current.as_ref().map(|c| c.ends_at));
        let title = required(title, "title", &mut errors);
        let category = required(category, "category", &mut errors);
        let timezone = required(timezone, "timezone", &mut errors);
        let currency = required(currency, "currency", &mut errors);
        let starts_at = required(starts_at, "starts_at", &mut errors);
        let ends_at = required(ends_at, "ends_at", &mut errors);
        let text = |v: Option<String>, f: fn(&EventFields) -> String| {
            v.or_else(|| keep(f)).unwrap_or_default().trim().to_owned()
        };
        let description = text(self.description, |c| c.description.clone());
        let venue_name = text(self.venue_name, |c| c.venue_name.clone());
        let address = text(self.address, |c| c.address.clone());
        let city = text(self.city, |c| c.city.clone());
        let country = text(self.country, |c| c.country.clone()).to_ascii_uppercase();
        let latitude = merge(self.latitude, current.as_ref().and_then(|c| c.latitude));
        let longitude = merge(self.longitude, current.as_ref().and_then(|c| c.longitude));
        let capacity = merge(self.capacity, current.as_ref().and_then(|c| c.capacity));
        let refund_until_hours = merge(
            self.refund_until_hours,
            current.as_ref().and_then(|c| c.refund_until_hours),
        );
        let max_tickets_per_buyer = merge(
            self.max_tickets_per_buyer,
            current.as_ref().and_then(|c| c.max_tickets_per_buyer),
        );
        let reminders = self
            .reminders
            .or(current.as_ref().map(|c| c.reminders))
            .unwrap_or(true);
        let guest_emails = self
            .guest_emails
            .or(current.as_ref().map(|c| c.guest_emails))
            .unwrap_or(true);
        let cover_image_url = self
            .cover_image_url
            .unwrap_or_else(|| current.as_ref().and_then(|c| c.cover_image_url.clone()))
            .map(|u| u.trim().to_owned());

        if let Some(title) = &title {
            validate::length("title", title, 1, 200, &mut errors);
        }
        validate::length("description", &description, 0, 20_000, &mut errors);
        validate::length("venue_name", &venue_name, 0, 200, &mut errors);
        validate::length("address", &address, 0, 500, &mut errors);
        validate::length("city", &city, 0, 100, &mut errors);
        if !country.is_empty() && !catalog::is_country(&country) {
            errors.push(FieldError::new(
                "country",
                "must be an ISO 3166-1 alpha-2 code such as `FR`",
            ));
        }
        if let Some(category) = &category
            && !catalog::is_category(category)
        {
            errors.push(FieldError::new(
                "category",
                format!("must be one of: {}", catalog::CATEGORIES.join(", ")),
            ));
        }
        if latitude.is_some_and(|lat| !(lat.is_finite() && (-90.0..=90.0).contains(&lat))) {
            errors.push(FieldError::new("latitude", "must be between -90 and 90"));
        }
        if longitude.is_some_and(|lng| !(lng.is_finite() && (-180.0..=180.0).contains(&lng))) {
            errors.push(FieldError::new("longitude", "must be between -180 and 180"));
        }
        match (latitude, longitude) {
            (None, Some(_)) => {
                errors.push(FieldError::new("latitude", "is required with longitude"))
            }
            (Some(_), None) => {
                errors.push(FieldError::new("longitude", "is required with latitude"))
            }
            _ => {}
        }
        if let (Some(starts), Some(ends)) = (starts_at, ends_at) {
            if ends <= starts {
                errors.push(FieldError::new("ends_at", "must be after starts_at"));
            } else if ends - starts > chrono::Duration::days(366) {
                errors.push(FieldError::new(
                    "ends_at",
                    "must be within 366 days of starts_at",
                ));
            }
            // Only a start being set or moved must lie ahead: editing the
            // title of an event under way is fine.
            let moved = current.as_ref().is_none_or(|c| c.starts_at != starts);
            if moved && starts <= Utc::now() {
                errors.push(FieldError::new("starts_at", "must be in the future"));
            }
        }
        let currency = currency.and_then(|c| {
            let found = money::currency(&c);
            if found.is_none() {
                errors.push(FieldError::new(
                    "currency",
                    "is not a supported ISO 4217 currency code",
                ));
            }
            found.map(str::to_owned)
        });
        if capacity.is_some_and(|c| !(1..=10_000_000).contains(&c)) {
            errors.push(FieldError::new(
                "capacity",
                "must be between 1 and 10000000",
            ));
        }
        if refund_until_hours.is_some_and(|h| !(0..=8_760).contains(&h)) {
            errors.push(FieldError::new(
                "refund_until_hours",
                "must be between 0 and 8760",
            ));
        }
        if max_tickets_per_buyer.is_some_and(|n| !(1..=1_000).contains(&n)) {
            errors.push(FieldError::new(
                "max_tickets_per_buyer",
                "must be between 1 and 1000",
            ));
        }
        if let Some(url) = &cover_image_url {
            validate::http_url("cover_image_url", url, &mut errors);
        }
        if let Some(tz) = &timezone
            && !timezones::is_valid(conn, tz).await?
        {
            errors.push(FieldError::new(
                "timezone",
                "is not an IANA time zone such as `Europe/Paris`",
            ));
        }
        match (title, category, timezone, currency, starts_at, ends_at) {
            (
                Some(title),
                Some(category),
                Some(timezone),
                Some(currency),
                Some(starts_at),
                Some(ends_at),
            ) if errors.is_empty() => Ok(EventFields {
                title: title.trim().to_owned(),
                description,
                category,
                venue_name,
                address,
                city,
                country,
                latitude,
                longitude,
                starts_at,
                ends_at,
                timezone,
                capacity,
                cover_image_url,
                refund_until_hours,
                currency,
                max_tickets_per_buyer,
                reminders,
                guest_emails,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}
