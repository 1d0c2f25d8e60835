pub mod app;
pub mod db;
pub mod proxy;
pub mod shop;
pub mod smtp;
pub mod wait;

pub use app::TestApp;
pub use wait::eventually;
