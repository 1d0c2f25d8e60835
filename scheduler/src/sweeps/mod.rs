//! Recovery sweeps: find rows stuck in an intermediate state and push their
//! job again. Safe because every job is idempotent.

pub mod emails;
pub mod events;
pub mod orders;
