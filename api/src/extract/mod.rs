mod auth;
mod client;
mod json;

pub use auth::{AuthUser, RequireAdmin};
pub use client::ClientInfo;
pub use json::Json;
