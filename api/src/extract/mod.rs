mod auth;
mod client;
mod json;
mod patch;
mod query;

pub use auth::{AuthUser, Bearer, INVALID_TOKEN, MaybeUser, RequireAdmin, bearer_token};
pub use client::ClientInfo;
pub use json::{Json, JsonOrEmpty};
pub use patch::{merge, nullable};
pub use query::Query;
