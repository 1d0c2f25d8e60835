//! Benchmarks: the hot ticket drop, queue throughput, and the machine's own
//! baseline, measured in one run. `boxoffice-bench --help`.

pub mod baseline;
pub mod cancel;
pub mod checkin;
pub mod emails;
pub mod faults;
pub mod hot_drop;
pub mod queue;
pub mod reminders;
pub mod smtp_sink;
pub mod stats;
pub mod webhooks;
