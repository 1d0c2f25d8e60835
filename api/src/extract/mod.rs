mod auth;
mod client;
mod json;
mod patch;
mod query;

pub use auth::{AuthUser, MaybeUser, RequireAdmin};
pub use client::ClientInfo;
pub use json::Json;
pub use patch::{merge, nullable};
pub use query::Query;
