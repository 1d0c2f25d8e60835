pub mod app;
pub mod browser;
pub mod db;
pub mod fake_paystack;
pub mod fake_stripe;
pub mod proxy;
pub mod shop;
pub mod smtp;
pub mod wait;

pub use app::TestApp;
pub use wait::eventually;

/// True when a 422 problem names `field` among its field errors.
pub fn blames(problem: &serde_json::Value, field: &str) -> bool {
    problem["errors"]
        .as_array()
        .is_some_and(|errors| errors.iter().any(|e| e["field"] == field))
}
