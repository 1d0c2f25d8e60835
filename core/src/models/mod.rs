//! One file per entity: a row struct for reads, a `New*` struct for inserts,
//! queries as associated functions over a connection.

/// A status enum mapped to a text column: `as_str` for writes, `parse` for
/// reads, and nowhere else a status string.
macro_rules! text_status {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

pub mod attendee;
pub mod check_in;
pub mod discount;
pub mod email;
pub mod event;
pub mod event_image;
pub mod event_message;
pub mod event_search;
pub mod event_stats;
pub mod ledger;
pub mod order;
pub mod payment;
pub mod payout;
pub mod refresh_token;
pub mod ticket;
pub mod tier;
pub mod user;
pub mod user_token;
pub mod webhook;
pub mod webhook_inbox;

pub use attendee::{Attendee, AttendeeFilter};
pub use check_in::{
    Admission, CheckInRow, DoorScan, DoorTicket, Refusal, ScanBy, Scanned, Staff, TierCount,
};
pub use discount::{Discount, DiscountFields, DiscountUnavailable, NewDiscount};
pub use email::{EMAIL_STATUSES, EmailFilter, EmailRow, NewEmail, Suppression};
pub use event::{Event, EventFields, EventStatus, NewEvent};
pub use event_image::EventImage;
pub use event_message::{EventMessage, MessageProgress};
pub use event_search::{DateBound, EventSearch, Near, SearchHit, SearchSort, SortKey};
pub use ledger::Movement;
pub use order::{Decided, NewOrder, Order, OrderItem, OrderStatus, Placed, Verdict};
pub use payment::{Payment, PaymentStatus, Refund, RefundKind, RefundStatus};
pub use payout::{EventBalance, Payout, PayoutLine, PayoutStatus};
pub use refresh_token::{NewRefreshToken, RefreshToken, SessionRow};
pub use ticket::{Ticket, TicketStatus};
pub use tier::{NewTier, SaleState, Tier, TierFields, TierNames};
pub use user::{AccessSession, NewUser, Role, User};
pub use user_token::{TokenPurpose, UserToken};
pub use webhook::{
    Attempt, Claim, Claimed, Delivery, DeliveryRow, DeliveryStatus, EndpointChanges, NewEndpoint,
    Recorded, WebhookEndpoint,
};
pub use webhook_inbox::InboxEvent;

/// A row's id, as a raw statement's `RETURNING id` gives it.
#[derive(diesel::QueryableByName)]
pub(crate) struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: uuid::Uuid,
}

/// A `LIKE` pattern matching text that contains `q`, lowercased (compare
/// it with a lowercased column or a case-insensitive one), with `%`, `_`
/// and a backslash in `q` standing for themselves.
pub(crate) fn contains_pattern(q: &str) -> String {
    let escaped = q
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}
