mod admin_users;
mod auth;
mod bad_input;
mod health;
mod sessions;
