//! Discount codes, per event, case-insensitive (citext). Redemptions are
//! counted by the purchase pipeline in the transaction that reserves stock,
//! with a guarded UPDATE and a CHECK (`redemptions <= max_redemptions`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{money::DiscountAmount, schema::discount_codes};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = discount_codes, check_for_backend(diesel::pg::Pg))]
pub struct Discount {
    pub id: Uuid,
    pub event_id: Uuid,
    pub code: String,
    pub kind: String,
    pub amount: i64,
    pub tier_ids: Option<Vec<Option<Uuid>>>,
    pub max_redemptions: Option<i32>,
    pub redemptions: i32,
    pub per_buyer_limit: Option<i32>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub min_order_total_minor: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub active: bool,
}

/// Why a code cannot be used right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscountUnavailable {
    Inactive,
    NotStarted,
    Expired,
    Exhausted,
}

impl DiscountUnavailable {
    pub fn code(self) -> &'static str {
        match self {
            Self::Inactive => "discount_inactive",
            Self::NotStarted => "discount_not_started",
            Self::Expired => "discount_expired",
            Self::Exhausted => "discount_exhausted",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::Inactive => "This code is no longer active.",
            Self::NotStarted => "This code is not valid yet.",
            Self::Expired => "This code has expired.",
            Self::Exhausted => "This code has been used up.",
        }
    }
}

/// What an organizer sets; written whole (see `EventFields`).
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = discount_codes, treat_none_as_null = true)]
pub struct DiscountFields {
    pub code: String,
    pub kind: String,
    pub amount: i64,
    pub tier_ids: Option<Vec<Option<Uuid>>>,
    pub max_redemptions: Option<i32>,
    pub per_buyer_limit: Option<i32>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub min_order_total_minor: Option<i64>,
    pub active: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = discount_codes)]
pub struct NewDiscount {
    pub id: Uuid,
    pub event_id: Uuid,
    #[diesel(embed)]
    pub fields: DiscountFields,
}

impl NewDiscount {
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<Discount> {
        diesel::insert_into(discount_codes::table)
            .values(self)
            .returning(Discount::as_returning())
            .get_result(conn)
            .await
    }
}

impl Discount {
    pub fn amount_off(&self) -> DiscountAmount {
        if self.kind == "percentage" {
            DiscountAmount::Percentage(self.amount)
        } else {
            DiscountAmount::Fixed(self.amount)
        }
    }

    /// The tiers it is limited to; `None` means every tier.
    pub fn tiers(&self) -> Option<Vec<Uuid>> {
        self.tier_ids
            .as_ref()
            .map(|ids| ids.iter().flatten().copied().collect())
    }

    pub fn applies_to(&self, tier_id: Uuid) -> bool {
        self.tier_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(&Some(tier_id)))
    }

    pub fn remaining_redemptions(&self) -> Option<i32> {
        self.max_redemptions
            .map(|max| (max - self.redemptions).max(0))
    }

    pub fn check_usable(&self, now: DateTime<Utc>) -> Result<(), DiscountUnavailable> {
        if !self.active {
            Err(DiscountUnavailable::Inactive)
        } else if self.valid_from.is_some_and(|t| now < t) {
            Err(DiscountUnavailable::NotStarted)
        } else if self.valid_until.is_some_and(|t| now >= t) {
            Err(DiscountUnavailable::Expired)
        } else if self.remaining_redemptions() == Some(0) {
            Err(DiscountUnavailable::Exhausted)
        } else {
            Ok(())
        }
    }

    pub fn fields(&self) -> DiscountFields {
        DiscountFields {
            code: self.code.clone(),
            kind: self.kind.clone(),
            amount: self.amount,
            tier_ids: self.tier_ids.clone(),
            max_redemptions: self.max_redemptions,
            per_buyer_limit: self.per_buyer_limit,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            min_order_total_minor: self.min_order_total_minor,
            active: self.active,
        }
    }

    pub async fn for_event(
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
    ) -> QueryResult<Vec<Discount>> {
        discount_codes::table
            .filter(discount_codes::event_id.eq(event_id))
            .select(Discount::as_select())
            .order((discount_codes::created_at, discount_codes::id))
            .load(conn)
            .await
    }

    /// By code, case-insensitively (the column is citext).
    pub async fn find_by_code(
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
        code: &str,
    ) -> QueryResult<Discount> {
        discount_codes::table
            .filter(discount_codes::event_id.eq(event_id))
            .filter(discount_codes::code.eq(code))
            .select(Discount::as_select())
            .first(conn)
            .await
    }

    pub async fn update_fields(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        fields: &DiscountFields,
    ) -> QueryResult<Discount> {
        diesel::update(discount_codes::table.find(id))
            .set(fields)
            .returning(Discount::as_returning())
            .get_result(conn)
            .await
    }

    /// Adds `n` uses (negative: gives them back). The redemption cap is a
    /// CHECK constraint; callers judge it first under the event's lock.
    pub async fn redeem(conn: &mut AsyncPgConnection, id: Uuid, n: i32) -> QueryResult<usize> {
        diesel::update(discount_codes::table.find(id))
            .set(discount_codes::redemptions.eq(discount_codes::redemptions + n))
            .execute(conn)
            .await
    }

    /// Takes one use if the code has one left; `false` if it is used up.
    pub async fn redeem_if_left(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
        let has_use_left = discount_codes::max_redemptions
            .is_null()
            .or(discount_codes::redemptions.lt(discount_codes::max_redemptions.assume_not_null()));
        let taken = diesel::update(discount_codes::table.find(id).filter(has_use_left))
            .set(discount_codes::redemptions.eq(discount_codes::redemptions + 1))
            .execute(conn)
            .await?;
        Ok(taken == 1)
    }
}
