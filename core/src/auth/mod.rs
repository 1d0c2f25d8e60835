//! Credentials: password hashes, access tokens, opaque refresh / email tokens.

pub mod jwt;
pub mod password;
pub mod tokens;
