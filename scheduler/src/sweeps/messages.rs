//! Organizers' messages: each is fanned out into one email per ticket
//! holder (see `EventMessage::write_emails`), in statements of [`BATCH`]
//! until the tick has spent [`TICK_BUDGET`]; a message is marked fanned out
//! when a batch comes back short. A message whose fan-out stopped halfway (a
//! restart, a lost leader) is simply taken up by the next tick: the dedupe
//! key makes every holder's email exactly once.

use std::time::Instant;

use boxoffice_core::{Services, models::EventMessage};

use super::{BATCH, SweepError, TICK_BUDGET};

/// Messages looked at per tick.
const MESSAGES_PER_TICK: i64 = 20;

pub async fn run(services: &Services) -> Result<usize, SweepError> {
    let started = Instant::now();
    let mut conn = services.db.get().await?;
    let mut written = 0;
    for message in EventMessage::fanning_out(&mut conn, MESSAGES_PER_TICK).await? {
        loop {
            let ids = message.write_emails(&mut conn, BATCH).await?;
            super::push_emails(services, &ids).await;
            written += ids.len();
            if (ids.len() as i64) < BATCH {
                EventMessage::mark_fanned_out(&mut conn, message.id).await?;
                tracing::info!(message.id = %message.id, "message fanned out");
                break;
            }
            if started.elapsed() >= TICK_BUDGET {
                return Ok(written);
            }
        }
    }
    Ok(written)
}
