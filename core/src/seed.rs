//! `boxoffice seed`: demo accounts and a handful of published events with
//! tiers and a discount code, so a first run has something to browse and buy.
//! Idempotent: fixed ids and emails, every insert `ON CONFLICT DO NOTHING`.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    auth::password,
    models::{
        DiscountFields, Event, EventFields, NewDiscount, NewEvent, NewTier, Role, TierFields, User,
    },
    schema::{discount_codes, events, users},
};

/// Printed after seeding. Demo-only: `seed` refuses to run in production.
pub const DEMO_PASSWORD: &str = "demo-violet-otter-42";

pub const DEMO_ACCOUNTS: [(Role, &str, &str); 3] = [
    (Role::Admin, "admin@boxoffice.localhost", "Ada Admin"),
    (
        Role::Organizer,
        "organizer@boxoffice.localhost",
        "Olu Organizer",
    ),
    (
        Role::Attendee,
        "attendee@boxoffice.localhost",
        "Ana Attendee",
    ),
];

#[derive(Debug)]
pub struct SeedReport {
    pub users_created: usize,
    pub events_created: usize,
    pub events: Vec<(Uuid, String)>,
}

struct Spec {
    n: u128,
    title: &'static str,
    description: &'static str,
    category: &'static str,
    venue: &'static str,
    address: &'static str,
    city: &'static str,
    country: &'static str,
    lat_lng: (f64, f64),
    timezone: &'static str,
    currency: &'static str,
    days_ahead: i64,
    hours: i64,
    /// (name, price in minor units, quantity)
    tiers: &'static [(&'static str, i64, i32)],
}

const SPECS: &[Spec] = &[
    Spec {
        n: 1,
        title: "Midnight Jazz Quartet",
        description: "Four players, one long night of standards and new work in a cellar club.",
        category: "music",
        venue: "Le Caveau",
        address: "5 Rue de la Huchette",
        city: "Paris",
        country: "FR",
        lat_lng: (48.8529, 2.3469),
        timezone: "Europe/Paris",
        currency: "EUR",
        days_ahead: 21,
        hours: 3,
        tiers: &[("General admission", 2500, 120), ("Front row", 6000, 20)],
    },
    Spec {
        n: 2,
        title: "Techno Marathon",
        description: "Twelve hours, three rooms, one sound system the neighbours know well.",
        category: "nightlife",
        venue: "Kraftwerk",
        address: "Köpenicker Str. 70",
        city: "Berlin",
        country: "DE",
        lat_lng: (52.5106, 13.4197),
        timezone: "Europe/Berlin",
        currency: "EUR",
        days_ahead: 35,
        hours: 12,
        tiers: &[("Early bird", 3000, 500), ("Regular", 4500, 1500)],
    },
    Spec {
        n: 3,
        title: "Web Platform Conference",
        description: "Two days of talks on browsers, standards and the people who build them.",
        category: "conference",
        venue: "Centro de Congressos",
        address: "Praça das Indústrias",
        city: "Lisbon",
        country: "PT",
        lat_lng: (38.7005, -9.1966),
        timezone: "Europe/Lisbon",
        currency: "EUR",
        days_ahead: 60,
        hours: 32,
        tiers: &[("Conference pass", 39900, 800), ("Student", 9900, 100)],
    },
    Spec {
        n: 4,
        title: "Stand-up Saturday",
        description: "Five comics, one microphone, no heckling (some heckling).",
        category: "comedy",
        venue: "The Basement",
        address: "27 Greek Street",
        city: "London",
        country: "GB",
        lat_lng: (51.5138, -0.1308),
        timezone: "Europe/London",
        currency: "GBP",
        days_ahead: 14,
        hours: 2,
        tiers: &[("Seat", 1800, 90)],
    },
    Spec {
        n: 5,
        title: "Indie Film Night",
        description: "Short films from first-time directors, with a Q&A after each block.",
        category: "film",
        venue: "Shimokita Cinema",
        address: "2-10-15 Kitazawa, Setagaya",
        city: "Tokyo",
        country: "JP",
        lat_lng: (35.6613, 139.6680),
        timezone: "Asia/Tokyo",
        currency: "JPY",
        days_ahead: 28,
        hours: 4,
        tiers: &[("Ticket", 2000, 150)],
    },
];

/// Ids that look like (and sort like) the v7 ids the app makes.
fn demo_id(kind: u128, n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | (kind << 16) | n)
}

pub fn demo_event_id(n: u128) -> Uuid {
    demo_id(1, n)
}

/// Why the demo data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Hash(#[from] password::HashError),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
}

pub async fn seed(conn: &mut AsyncPgConnection) -> Result<SeedReport, SeedError> {
    let hash = password::hash(DEMO_PASSWORD.into()).await?;
    let report = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            let mut users_created = 0;
            for (i, (role, email, name)) in DEMO_ACCOUNTS.iter().enumerate() {
                users_created += diesel::insert_into(users::table)
                    .values((
                        users::id.eq(demo_id(0, i as u128 + 1)),
                        users::email.eq(*email),
                        users::password_hash.eq(&hash),
                        users::display_name.eq(*name),
                        users::role.eq(role.as_str()),
                        users::email_verified_at.eq(diesel::dsl::now),
                    ))
                    .on_conflict(users::email)
                    .do_nothing()
                    .execute(conn)
                    .await?;
            }
            let organizer = User::find_by_email(conn, DEMO_ACCOUNTS[1].1)
                .await?
                .ok_or(diesel::result::Error::NotFound)?;
            // Dates are relative to the first seed; later runs keep them.
            let start_of_today = Utc::now()
                .date_naive()
                .and_hms_opt(18, 0, 0)
                .expect("valid time")
                .and_utc();
            let mut events_created = 0;
            let mut listed = Vec::new();
            for spec in SPECS {
                let event_id = demo_event_id(spec.n);
                let starts_at = start_of_today + Duration::days(spec.days_ahead);
                let event = NewEvent {
                    id: event_id,
                    organizer_id: organizer.id,
                    fields: EventFields {
                        title: spec.title.into(),
                        description: spec.description.into(),
                        category: spec.category.into(),
                        venue_name: spec.venue.into(),
                        address: spec.address.into(),
                        city: spec.city.into(),
                        country: spec.country.into(),
                        latitude: Some(spec.lat_lng.0),
                        longitude: Some(spec.lat_lng.1),
                        starts_at,
                        ends_at: starts_at + Duration::hours(spec.hours),
                        timezone: spec.timezone.into(),
                        capacity: None,
                        cover_image_url: None,
                        refund_until_hours: Some(48),
                        currency: spec.currency.into(),
                        max_tickets_per_buyer: Some(10),
                        reminders: true,
                        guest_emails: true,
                    },
                };
                let created = diesel::insert_into(events::table)
                    .values(&event)
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                events_created += created;
                // An event seeded before has its tiers already.
                let tiers = if created == 1 { spec.tiers } else { &[] };
                for (i, (name, price, quantity)) in tiers.iter().enumerate() {
                    let tier = NewTier {
                        id: demo_id(2, spec.n * 16 + i as u128),
                        event_id,
                        currency: spec.currency.into(),
                        fields: TierFields {
                            name: (*name).into(),
                            description: String::new(),
                            price_minor: *price,
                            quantity: *quantity,
                            sales_start_at: None,
                            sales_end_at: None,
                            min_per_order: 1,
                            max_per_order: 10,
                            hidden: false,
                            unlock_code: None,
                            low_stock_threshold: Some((*quantity / 10).max(1)),
                            sort_order: i as i32,
                        },
                    };
                    tier.insert(conn).await?;
                }
                Event::publish(conn, event_id).await?;
                listed.push((event_id, spec.title.to_owned()));
            }
            let discount = NewDiscount {
                id: demo_id(3, 1),
                event_id: demo_event_id(1),
                fields: DiscountFields {
                    code: "WELCOME10".into(),
                    kind: "percentage".into(),
                    amount: 1_000,
                    tier_ids: None,
                    max_redemptions: Some(100),
                    per_buyer_limit: Some(1),
                    valid_from: None,
                    valid_until: None,
                    min_order_total_minor: None,
                    active: true,
                },
            };
            diesel::insert_into(discount_codes::table)
                .values(&discount)
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            Ok(SeedReport {
                users_created,
                events_created,
                events: listed,
            })
        })
        .await?;
    Ok(report)
}
