//! Reminders before an event starts: every ticket holder of a published
//! event gets one, about `REMINDER_WINDOW_HOURS` before its start.
//!
//! Each tick writes reminders in statements of [`BATCH`] (the holders not
//! yet reminded of the current start, see `NewEmail::write_reminders`) and
//! pushes their jobs, until the events due are done or the tick has spent
//! [`TICK_BUDGET`]: a 50,000-holder event is written over a few ticks, and
//! the other entries never wait on it for long. An event whose reminders
//! are all written is marked for its start (`reminded_for`) and not looked
//! at again unless its start moves.
//!
//! Exactly once per (event, start, holder): the dedupe key says so, whether
//! two schedulers race, one restarts mid-fan-out or a tick is late (it
//! catches up while the event has not started; a reminder whose event has
//! started, moved or been cancelled by its turn is skipped when sent).

use std::time::Instant;

use boxoffice_core::{
    Services,
    models::{Event, NewEmail},
};
use chrono::{DateTime, Utc};

use super::SweepError;

use super::{BATCH, TICK_BUDGET};
/// Events looked at per tick.
const EVENTS_PER_TICK: i64 = 20;

pub async fn run(services: &Services) -> Result<usize, SweepError> {
    run_at(services, Utc::now()).await
}

/// A tick as if it were `now` (tests move the clock).
pub async fn run_at(services: &Services, now: DateTime<Utc>) -> Result<usize, SweepError> {
    let started = Instant::now();
    let window = chrono::Duration::from_std(services.config.smtp.reminder_window)
        .unwrap_or(chrono::Duration::hours(24));
    let mut conn = services.db.get().await?;
    let events = Event::due_for_reminders(&mut conn, now, window, EVENTS_PER_TICK).await?;
    let mut written = 0;
    for event in events {
        loop {
            let ids =
                NewEmail::write_reminders(&mut conn, event.id, event.starts_at, BATCH).await?;
            super::push_emails(services, &ids).await;
            written += ids.len();
            if (ids.len() as i64) < BATCH {
                Event::mark_reminded(&mut conn, event.id, event.starts_at).await?;
                tracing::info!(event.id = %event.id, "reminders written");
                break;
            }
            if started.elapsed() >= TICK_BUDGET {
                tracing::info!(
                    written,
                    "reminders: tick budget spent; the next tick goes on"
                );
                return Ok(written);
            }
        }
    }
    Ok(written)
}
