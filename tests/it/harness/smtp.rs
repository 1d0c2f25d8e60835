//! The embedded SMTP server lives in the bench crate (its email benchmark
//! sends into it too).

pub use boxoffice_bench::smtp_sink::SmtpSink;
