//! What goes out on the wire for events, tiers and images. Two audiences: the
//! public (no hidden tiers, no stock internals) and the event's managers.

use boxoffice_core::{
    fees::PlatformFee,
    media::MediaStore,
    models::{Event, EventImage, Tier},
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Public,
    Manager,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub id: Uuid,
    pub organizer_id: Uuid,
    pub status: String,
    pub title: String,
    pub description: String,
    pub category: String,
    pub venue_name: String,
    pub address: String,
    pub city: String,
    pub country: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub timezone: String,
    pub capacity: Option<i32>,
    pub cover_image_url: Option<String>,
    /// Refund policy: buyers may ask for a refund until this many hours
    /// before the start; `null`: no refunds on request.
    pub refund_until_hours: Option<i32>,
    /// The policy as a time: when refunds on request close (`null`: never
    /// open).
    pub refundable_until: Option<DateTime<Utc>>,
    /// The organizer's message, once cancelled.
    pub cancel_message: Option<String>,
    pub currency: String,
    pub max_tickets_per_buyer: Option<i32>,
    /// Ticket holders get a reminder before the start.
    pub reminders: bool,
    /// Named guests get their own ticket email.
    pub guest_emails: bool,
    /// Lowest price of the public tiers ("from €25").
    pub min_price_minor: Option<i64>,
    /// At least one visible tier is on sale with stock left.
    pub available: bool,
    pub published_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub images: Vec<ImageView>,
    pub tiers: Vec<TierView>,
    /// Managers only: the platform's fee on this event's sales, shown
    /// before they publish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_fee: Option<FeeView>,
}

/// The platform's fee on each paid order: a percentage of what was paid
/// plus a fixed amount per ticket, rounded half to even.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeeView {
    /// Hundredths of a percent (250 = 2.5 %).
    pub basis_points: i64,
    /// In the event's currency.
    pub fixed_per_ticket_minor: i64,
    /// What a one-ticket order of each tier leaves the organizer.
    pub net_per_ticket: Vec<TierNet>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TierNet {
    pub tier_id: Uuid,
    pub price_minor: i64,
    pub fee_minor: i64,
    pub net_minor: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImageView {
    pub id: Uuid,
    pub url: String,
    pub content_type: String,
    pub width: i32,
    pub height: i32,
    pub size_bytes: i64,
    pub created_at: DateTime<Utc>,
}

impl ImageView {
    pub fn new(image: &EventImage, media: &MediaStore) -> Self {
        Self {
            id: image.id,
            url: media.public_url(&image.object_key),
            content_type: image.content_type.clone(),
            width: image.width,
            height: image.height,
            size_bytes: image.size_bytes,
            created_at: image.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TierView {
    pub id: Uuid,
    pub event_id: Uuid,
    pub name: String,
    pub description: String,
    pub price_minor: i64,
    pub currency: String,
    pub quantity: i32,
    /// quantity − held − sold.
    pub remaining: i32,
    /// `not_started`, `on_sale`, `sold_out` or `ended`.
    pub sale_state: &'static str,
    /// At or under the organizer's "almost sold out" mark.
    pub low_stock: bool,
    pub sales_start_at: Option<DateTime<Utc>>,
    pub sales_end_at: Option<DateTime<Utc>>,
    pub min_per_order: i32,
    pub max_per_order: i32,
    pub hidden: bool,
    pub sort_order: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sold: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unlock_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low_stock_threshold: Option<i32>,
}

impl TierView {
    pub fn new(tier: &Tier, audience: Audience, now: DateTime<Utc>) -> Self {
        let manager = audience == Audience::Manager;
        Self {
            id: tier.id,
            event_id: tier.event_id,
            name: tier.name.clone(),
            description: tier.description.clone(),
            price_minor: tier.price_minor,
            currency: tier.currency.clone(),
            quantity: tier.quantity,
            remaining: tier.remaining(),
            sale_state: tier.sale_state(now).as_str(),
            low_stock: tier.is_low_stock(),
            sales_start_at: tier.sales_start_at,
            sales_end_at: tier.sales_end_at,
            min_per_order: tier.min_per_order,
            max_per_order: tier.max_per_order,
            hidden: tier.hidden,
            sort_order: tier.sort_order,
            held: manager.then_some(tier.held),
            sold: manager.then_some(tier.sold),
            unlock_code: if manager {
                tier.unlock_code.clone()
            } else {
                None
            },
            low_stock_threshold: if manager {
                tier.low_stock_threshold
            } else {
                None
            },
        }
    }
}

impl EventView {
    /// `tiers` must already be filtered for the audience (hidden tiers only
    /// for managers or with their unlock code).
    pub fn new(
        event: &Event,
        tiers: &[Tier],
        images: &[EventImage],
        audience: Audience,
        media: &MediaStore,
    ) -> Self {
        let now = Utc::now();
        let tiers: Vec<TierView> = tiers
            .iter()
            .map(|t| TierView::new(t, audience, now))
            .collect();
        Self {
            id: event.id,
            organizer_id: event.organizer_id,
            status: event.status.clone(),
            title: event.title.clone(),
            description: event.description.clone(),
            category: event.category.clone(),
            venue_name: event.venue_name.clone(),
            address: event.address.clone(),
            city: event.city.clone(),
            country: event.country.clone(),
            latitude: event.latitude,
            longitude: event.longitude,
            starts_at: event.starts_at,
            ends_at: event.ends_at,
            timezone: event.timezone.clone(),
            capacity: event.capacity,
            cover_image_url: event.cover_image_url.clone(),
            refund_until_hours: event.refund_until_hours,
            refundable_until: event.refundable_until(),
            cancel_message: event.cancel_message.clone(),
            currency: event.currency.clone(),
            max_tickets_per_buyer: event.max_tickets_per_buyer,
            reminders: event.reminders,
            guest_emails: event.guest_emails,
            min_price_minor: event.min_price_minor,
            available: tiers.iter().any(|t| !t.hidden && t.sale_state == "on_sale"),
            published_at: event.published_at,
            cancelled_at: event.cancelled_at,
            created_at: event.created_at,
            updated_at: event.updated_at,
            images: images.iter().map(|i| ImageView::new(i, media)).collect(),
            tiers,
            platform_fee: None,
        }
    }

    /// With the platform's fee, for the event's managers.
    pub fn with_fee(mut self, fee: &PlatformFee) -> Self {
        self.platform_fee = Some(FeeView {
            basis_points: fee.basis_points,
            fixed_per_ticket_minor: fee
                .fixed_per_ticket
                .get(&self.currency)
                .copied()
                .unwrap_or(0),
            net_per_ticket: self
                .tiers
                .iter()
                .map(|t| {
                    let fee_minor = fee.fee(t.price_minor, 1, &self.currency);
                    TierNet {
                        tier_id: t.id,
                        price_minor: t.price_minor,
                        fee_minor,
                        net_minor: t.price_minor - fee_minor,
                    }
                })
                .collect(),
        });
        self
    }
}
