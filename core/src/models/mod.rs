//! One file per entity: a row struct for reads, a `New*` struct for inserts,
//! queries as associated functions over a connection.

pub mod discount;
pub mod email;
pub mod event;
pub mod event_image;
pub mod event_search;
pub mod order;
pub mod payment;
pub mod refresh_token;
pub mod ticket;
pub mod tier;
pub mod user;
pub mod user_token;
pub mod webhook_inbox;

pub use discount::{Discount, DiscountFields, DiscountUnavailable, NewDiscount};
pub use email::{EmailRow, NewEmail};
pub use event::{Event, EventFields, EventStatus, NewEvent};
pub use event_image::EventImage;
pub use event_search::{DateBound, EventSearch, Near, SearchHit, SearchSort, SortKey};
pub use order::{Decided, NewOrder, Order, OrderItem, OrderStatus, Placed, Verdict};
pub use payment::{LedgerRefs, Leg, Payment, Refund, post_ledger, post_ledgers};
pub use refresh_token::{NewRefreshToken, RefreshToken, SessionRow};
pub use ticket::Ticket;
pub use tier::{NewTier, SaleState, Tier, TierFields};
pub use user::{AccessSession, NewUser, Role, User};
pub use user_token::{TokenPurpose, UserToken};
pub use webhook_inbox::InboxEvent;

/// A row's id, as a raw statement's `RETURNING id` gives it.
#[derive(diesel::QueryableByName)]
pub(crate) struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: uuid::Uuid,
}
