//! One file per entity: a row struct for reads, a `New*` struct for inserts,
//! queries as associated functions over a connection.

pub mod email;
pub mod refresh_token;
pub mod user;
pub mod user_token;

pub use email::{EmailRow, NewEmail};
pub use refresh_token::{NewRefreshToken, RefreshToken, SessionRow};
pub use user::{NewUser, Role, User};
pub use user_token::{TokenPurpose, UserToken};
