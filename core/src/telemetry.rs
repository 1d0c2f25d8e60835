//! Logging: compact lines in development, JSON lines with `LOG_FORMAT=json`
//! (the production default). Identifiers go in fields (`request_id`,
//! `order.id`), so they can be searched.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::AppEnv;

pub fn init(env: AppEnv) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,apalis=warn,apalis_core=warn,apalis_redis=warn,tower_http=info")
    });
    let json = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("pretty") | Ok("compact") => false,
        _ => env == AppEnv::Production,
    };
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .try_init()
    } else {
        registry.with(fmt::layer().compact()).try_init()
    };
    // A second init (tests, `dev` calling several roles) keeps the first.
    let _ = result;
}
