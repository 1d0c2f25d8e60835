//! The one integration-test binary: the real app on an ephemeral port, real
//! PostgreSQL (a fresh database per test, cloned from a migrated template),
//! real Redis (a unique namespace per test), a real SMTP server.

mod bench;
mod cli;
mod emails;
mod harness;
mod jobs;
mod messages;
mod paystack;
mod provider_faults;
mod queue;
mod reminders;
mod routes;
mod scheduler;
mod secrets_in_logs;
mod stripe;
