pub mod app;
pub mod db;
pub mod proxy;
pub mod smtp;

pub use app::TestApp;
