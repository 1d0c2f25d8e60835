//! Ticket tiers: a price, a quantity and the stock counters (`held` for unpaid
//! reservations, `sold` for paid seats). The counters and the quantity live in
//! `tier_stock`, a row of their own (see the migration for why); a `Tier` is
//! always loaded with it. `held + sold <= quantity` is a CHECK constraint.
//! Payments do not touch that row: they record their seats in
//! `pending_sales`, which a settler folds into `sold` for many payments at
//! once, and which every read of a tier already counts as sold.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    prepared::Prepare,
    schema::{order_items, ticket_tiers, tier_stock},
};

/// Seats of a tier paid but not yet settled (`pending_sales`), in SQL.
macro_rules! unsettled {
    () => {
        "coalesce((SELECT sum(p.quantity) FROM pending_sales p \
         WHERE p.tier_id = tier_stock.tier_id), 0)::int4"
    };
}

type Counter = diesel::expression::SqlLiteral<diesel::sql_types::Integer>;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = ticket_tiers, check_for_backend(diesel::pg::Pg))]
pub struct Tier {
    pub id: Uuid,
    pub event_id: Uuid,
    pub name: String,
    pub description: String,
    pub price_minor: i64,
    pub currency: String,
    #[diesel(select_expression = tier_stock::quantity)]
    pub quantity: i32,
    #[diesel(
        select_expression = diesel::dsl::sql(concat!("tier_stock.held - ", unsettled!())),
        select_expression_type = Counter
    )]
    pub held: i32,
    #[diesel(
        select_expression = diesel::dsl::sql(concat!("tier_stock.sold + ", unsettled!())),
        select_expression_type = Counter
    )]
    pub sold: i32,
    pub sales_start_at: Option<DateTime<Utc>>,
    pub sales_end_at: Option<DateTime<Utc>>,
    pub min_per_order: i32,
    pub max_per_order: i32,
    pub hidden: bool,
    pub unlock_code: Option<String>,
    pub low_stock_threshold: Option<i32>,
    pub sort_order: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where a tier stands for a buyer right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaleState {
    NotStarted,
    OnSale,
    SoldOut,
    Ended,
}

impl SaleState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotStarted => "not_started",
            Self::OnSale => "on_sale",
            Self::SoldOut => "sold_out",
            Self::Ended => "ended",
        }
    }
}

#[derive(QueryableByName)]
struct Moved {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    tier_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    quantity: i32,
}

/// What an organizer sets; written whole (see `EventFields`). The quantity
/// goes to the tier's stock row.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = ticket_tiers, treat_none_as_null = true)]
pub struct TierFields {
    pub name: String,
    pub description: String,
    pub price_minor: i64,
    #[diesel(skip_insertion, skip_update)]
    pub quantity: i32,
    pub sales_start_at: Option<DateTime<Utc>>,
    pub sales_end_at: Option<DateTime<Utc>>,
    pub min_per_order: i32,
    pub max_per_order: i32,
    pub hidden: bool,
    pub unlock_code: Option<String>,
    pub low_stock_threshold: Option<i32>,
    pub sort_order: i32,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = ticket_tiers)]
pub struct NewTier {
    pub id: Uuid,
    pub event_id: Uuid,
    /// Always the event's currency: one order, one currency.
    pub currency: String,
    #[diesel(embed)]
    pub fields: TierFields,
}

impl NewTier {
    /// Writes the tier and its stock row; call inside a transaction.
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<Tier> {
        diesel::insert_into(ticket_tiers::table)
            .values(self)
            .execute(conn)
            .await?;
        diesel::insert_into(tier_stock::table)
            .values((
                tier_stock::tier_id.eq(self.id),
                tier_stock::quantity.eq(self.fields.quantity),
            ))
            .execute(conn)
            .await?;
        Tier::with_stock()
            .filter(ticket_tiers::id.eq(self.id))
            .select(Tier::as_select())
            .get_result(conn)
            .await
    }
}

impl Tier {
    /// Tiers joined with their stock: what every `Tier` is selected from.
    pub fn with_stock() -> diesel::dsl::InnerJoin<ticket_tiers::table, tier_stock::table> {
        ticket_tiers::table.inner_join(tier_stock::table)
    }

    /// Moves a tier's counters by the given amounts (negative releases); the
    /// CHECKs refuse anything that would oversell or go below zero.
    pub async fn move_stock(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        held: i32,
        sold: i32,
    ) -> QueryResult<()> {
        diesel::update(tier_stock::table.find(id))
            .set((
                tier_stock::held.eq(tier_stock::held + held),
                tier_stock::sold.eq(tier_stock::sold + sold),
            ))
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Records paid seats as sold without touching the tiers' stock rows (in
    /// the payments' transaction): `(order item, tier, seats)` each.
    /// `settle_sales` moves them there later.
    pub async fn record_sales(
        conn: &mut AsyncPgConnection,
        sales: &[(Uuid, Uuid, i32)],
    ) -> QueryResult<()> {
        use diesel::sql_types::{Array, Integer, Uuid as SqlUuid};
        diesel::sql_query(
            "INSERT INTO pending_sales (order_item_id, tier_id, quantity)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[])
             ON CONFLICT DO NOTHING",
        )
        .bind::<Array<SqlUuid>, _>(sales.iter().map(|s| s.0).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(sales.iter().map(|s| s.1).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(sales.iter().map(|s| s.2).collect::<Vec<_>>())
        .prepared()
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Refunded seats go back on sale: `(order item, tier, seats)` each. A
    /// sale not yet settled is settled first (its seats are still counted
    /// as held), so the counters stay exact whichever came first.
    pub async fn return_seats(
        conn: &mut AsyncPgConnection,
        seats: &[(Uuid, Uuid, i32)],
    ) -> QueryResult<()> {
        use crate::schema::pending_sales;
        let items: Vec<Uuid> = seats.iter().map(|s| s.0).collect();
        let unsettled: Vec<(Uuid, i32)> = diesel::delete(
            pending_sales::table.filter(pending_sales::order_item_id.eq_any(&items)),
        )
        .returning((pending_sales::tier_id, pending_sales::quantity))
        .get_results(conn)
        .await?;
        // (held, sold) per tier, in tier order as everywhere.
        let mut moves = std::collections::BTreeMap::<Uuid, (i32, i32)>::new();
        for (tier_id, n) in unsettled {
            let m = moves.entry(tier_id).or_default();
            m.0 -= n;
            m.1 += n;
        }
        for &(_, tier_id, n) in seats {
            moves.entry(tier_id).or_default().1 -= n;
        }
        for (tier_id, (held, sold)) in moves {
            Tier::move_stock(conn, tier_id, held, sold).await?;
        }
        Ok(())
    }

    /// Moves recorded sales from held to sold: one stock update per tier for
    /// however many payments came in. Rows another settler holds are skipped;
    /// tiers are updated in id order, as everywhere. Returns the seats moved.
    pub async fn settle_sales(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
        use diesel_async::AsyncConnection;
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            let moved: Vec<(Uuid, i32)> = diesel::sql_query(
                "DELETE FROM pending_sales WHERE order_item_id IN (
                     SELECT order_item_id FROM pending_sales
                      LIMIT 10000 FOR UPDATE SKIP LOCKED)
                 RETURNING tier_id, quantity",
            )
            .load::<Moved>(conn)
            .await?
            .into_iter()
            .map(|m| (m.tier_id, m.quantity))
            .collect();
            let mut by_tier = std::collections::BTreeMap::<Uuid, i32>::new();
            for (tier_id, n) in &moved {
                *by_tier.entry(*tier_id).or_default() += n;
            }
            for (tier_id, n) in &by_tier {
                Tier::move_stock(conn, *tier_id, -n, *n).await?;
            }
            Ok(by_tier.values().map(|n| i64::from(*n)).sum())
        })
        .await
    }

    pub fn remaining(&self) -> i32 {
        (self.quantity - self.held - self.sold).max(0)
    }

    pub fn sale_state(&self, now: DateTime<Utc>) -> SaleState {
        if self.sales_start_at.is_some_and(|t| now < t) {
            SaleState::NotStarted
        } else if self.sales_end_at.is_some_and(|t| now >= t) {
            SaleState::Ended
        } else if self.remaining() == 0 {
            SaleState::SoldOut
        } else {
            SaleState::OnSale
        }
    }

    /// True when stock is at or under the organizer's "almost sold out" mark.
    pub fn is_low_stock(&self) -> bool {
        self.low_stock_threshold
            .is_some_and(|t| self.remaining() > 0 && self.remaining() <= t)
    }

    pub fn fields(&self) -> TierFields {
        TierFields {
            name: self.name.clone(),
            description: self.description.clone(),
            price_minor: self.price_minor,
            quantity: self.quantity,
            sales_start_at: self.sales_start_at,
            sales_end_at: self.sales_end_at,
            min_per_order: self.min_per_order,
            max_per_order: self.max_per_order,
            hidden: self.hidden,
            unlock_code: self.unlock_code.clone(),
            low_stock_threshold: self.low_stock_threshold,
            sort_order: self.sort_order,
        }
    }

    /// An event's tiers in display order.
    pub async fn for_event(conn: &mut AsyncPgConnection, event_id: Uuid) -> QueryResult<Vec<Tier>> {
        Tier::with_stock()
            .filter(ticket_tiers::event_id.eq(event_id))
            .select(Tier::as_select())
            .order((
                ticket_tiers::sort_order,
                ticket_tiers::price_minor,
                ticket_tiers::id,
            ))
            .prepared()
            .load(conn)
            .await
    }

    /// The names of these tiers, hidden ones included (orders and tickets
    /// name what was bought, whoever may see the tier now).
    pub async fn names(
        conn: &mut AsyncPgConnection,
        ids: impl IntoIterator<Item = Uuid>,
    ) -> QueryResult<TierNames> {
        let mut ids: Vec<Uuid> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let rows: Vec<(Uuid, String)> = ticket_tiers::table
            .filter(ticket_tiers::id.eq_any(&ids))
            .select((ticket_tiers::id, ticket_tiers::name))
            .load(conn)
            .await?;
        Ok(TierNames(rows.into_iter().collect()))
    }

    /// Tiers of several events at once (list pages), in display order.
    pub async fn for_events(
        conn: &mut AsyncPgConnection,
        event_ids: &[Uuid],
    ) -> QueryResult<Vec<Tier>> {
        Tier::with_stock()
            .filter(ticket_tiers::event_id.eq_any(event_ids))
            .select(Tier::as_select())
            .order((
                ticket_tiers::sort_order,
                ticket_tiers::price_minor,
                ticket_tiers::id,
            ))
            .prepared()
            .load(conn)
            .await
    }

    pub async fn find_in_event(
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
        id: Uuid,
    ) -> QueryResult<Tier> {
        Tier::with_stock()
            .filter(ticket_tiers::id.eq(id))
            .filter(ticket_tiers::event_id.eq(event_id))
            .select(Tier::as_select())
            .prepared()
            .get_result(conn)
            .await
    }

    /// Rewrites the organizer's fields (call inside a transaction). Stock
    /// counters are not touched, and the CHECK on `held + sold <= quantity`
    /// refuses a quantity below what is already reserved or sold, even if a
    /// reservation lands meanwhile.
    pub async fn update_fields(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        fields: &TierFields,
    ) -> QueryResult<Tier> {
        diesel::update(ticket_tiers::table.find(id))
            .set(fields)
            .execute(conn)
            .await?;
        diesel::update(tier_stock::table.find(id))
            .set(tier_stock::quantity.eq(fields.quantity))
            .execute(conn)
            .await?;
        Tier::with_stock()
            .filter(ticket_tiers::id.eq(id))
            .select(Tier::as_select())
            .get_result(conn)
            .await
    }

    /// Deletes a tier nobody holds, bought or ordered; `false` otherwise (hide
    /// it instead). Pending orders point at their tier, so `order_items`
    /// is checked too.
    pub async fn delete_unsold(
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
        id: Uuid,
    ) -> QueryResult<bool> {
        let stocked = tier_stock::table
            .filter(tier_stock::tier_id.eq(id))
            .filter(tier_stock::held.ne(0).or(tier_stock::sold.ne(0)));
        let n = diesel::delete(
            ticket_tiers::table
                .find(id)
                .filter(ticket_tiers::event_id.eq(event_id))
                .filter(diesel::dsl::not(diesel::dsl::exists(stocked)))
                .filter(diesel::dsl::not(diesel::dsl::exists(
                    order_items::table.filter(order_items::tier_id.eq(id)),
                ))),
        )
        .execute(conn)
        .await;
        match n {
            Ok(n) => Ok(n == 1),
            // An order item written between the check and the delete.
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            )) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sum of the event's tier quantities, leaving one tier out (the one being
    /// changed).
    pub async fn total_quantity(
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
        except: Option<Uuid>,
    ) -> QueryResult<i64> {
        let mut query = Tier::with_stock()
            .filter(ticket_tiers::event_id.eq(event_id))
            .select(diesel::dsl::sum(tier_stock::quantity))
            .into_boxed();
        if let Some(id) = except {
            query = query.filter(ticket_tiers::id.ne(id));
        }
        Ok(query.get_result::<Option<i64>>(conn).await?.unwrap_or(0))
    }

    pub async fn set_currency(
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
        currency: &str,
    ) -> QueryResult<usize> {
        diesel::update(ticket_tiers::table.filter(ticket_tiers::event_id.eq(event_id)))
            .set(ticket_tiers::currency.eq(currency))
            .execute(conn)
            .await
    }
}

/// Tier names by id, for views of what was bought.
#[derive(Debug, Default)]
pub struct TierNames(std::collections::HashMap<Uuid, String>);

impl TierNames {
    pub fn of(&self, id: Uuid) -> String {
        self.0.get(&id).cloned().unwrap_or_default()
    }
}

impl<'a> FromIterator<&'a Tier> for TierNames {
    fn from_iter<I: IntoIterator<Item = &'a Tier>>(tiers: I) -> Self {
        Self(tiers.into_iter().map(|t| (t.id, t.name.clone())).collect())
    }
}
