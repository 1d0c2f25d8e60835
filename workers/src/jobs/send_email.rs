//! Renders and sends one `email_log` row.
//!
//! Idempotent: the row is claimed with a conditional UPDATE (`pending`/`failed`
//! → `sending`) before anything is sent, and marked `sent` after, so a second
//! delivery of the job finds nothing to claim. The one unavoidable window (the
//! SMTP server accepted, the process died before `sent` was written) re-sends
//! with the same `Message-ID`, which receivers use to drop duplicates.

use std::time::Duration;

use boxoffice_core::{
    Services,
    jobs::SendEmail,
    models::{EmailRow, email::SENDING_LEASE_SECS},
};

use super::{JobError, Perform};
use crate::{
    WorkerCtx,
    emails::{self, EmailError},
    mailer::MailError,
};

impl Perform for SendEmail {
    async fn perform(&self, ctx: &WorkerCtx, attempt: u32) -> Result<(), JobError> {
        ctx.selling.email_turn().await;
        let Some(email) = ctx.email_marks.claim(self.email_id).await? else {
            tracing::debug!(email.id = %self.email_id, "email already sent or being sent; nothing to do");
            return Ok(());
        };
        let _lease = Lease::keep(&ctx.services, email.id);
        // No connection is held while rendering (which takes its own) or
        // talking SMTP: a slow mail server must not drain the pool.
        let rendered = match emails::render(&email, &ctx.services).await {
            Ok(rendered) => rendered,
            Err(EmailError::Obsolete(why)) => {
                email_outcome("skipped");
                let mut conn = ctx.services.db.get().await?;
                EmailRow::mark_skipped(&mut conn, email.id, why).await?;
                tracing::info!(email.id = %email.id, template = %email.template, why, "email skipped");
                return Ok(());
            }
            Err(e) => {
                let error = JobError::from(e);
                let mut conn = ctx.services.db.get().await?;
                match &error {
                    // Waiting cannot fix it: the row says so, and no sweep
                    // takes it up again.
                    JobError::Permanent(message) => {
                        EmailRow::mark_failed(&mut conn, email.id, message).await?
                    }
                    // Released at once, so the retry can claim it.
                    JobError::Transient(message) | JobError::Deferred(_, message) => {
                        EmailRow::mark_for_retry(
                            &mut conn,
                            email.id,
                            message,
                            chrono::Duration::zero(),
                        )
                        .await?
                    }
                };
                return Err(error);
            }
        };
        if let Some(rate) = &ctx.send_rate {
            rate.wait_turn().await;
        }
        let message_id = format!("<{}@boxoffice>", email.id);
        match ctx
            .mailer
            .send(&email.to_address, &message_id, rendered)
            .await
        {
            Ok(()) => {
                email_outcome("sent");
                // The server has it: that must be written down, or the
                // email goes again once the lease ends. A database that is
                // restarting is waited for (the lease is renewed meanwhile).
                let mut wait = Duration::from_millis(200);
                while let Err(e) = ctx.email_marks.sent(email.id, message_id.clone()).await {
                    if wait > Duration::from_secs(8) {
                        return Err(e);
                    }
                    tracing::warn!(email.id = %email.id, error = %e, "email sent but not yet marked; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                tracing::info!(email.id = %email.id, template = %email.template, attempt, "email sent");
                Ok(())
            }
            Err(e @ (MailError::Refused(_) | MailError::Message(_))) => {
                // The server's reply (5xx) or why it cannot be built: another
                // attempt would fail the same way.
                email_outcome("failed");
                let mut conn = ctx.services.db.get().await?;
                EmailRow::mark_failed(&mut conn, email.id, &e.to_string()).await?;
                tracing::warn!(email.id = %email.id, template = %email.template, error = %e, "email refused for good");
                Err(JobError::permanent(format!("smtp: {e}")))
            }
            Err(e @ MailError::Unavailable(_)) => {
                // A 4xx reply, a refused connection, a timeout: the server is
                // away or busy, for seconds or for hours. Waited for off the
                // worker's slots (a re-push, not the delivery's few quick
                // retries, which a minute-long outage would exhaust into the
                // dead set), for as long as a mail server would.
                let mut conn = ctx.services.db.get().await?;
                let age = chrono::Utc::now() - email.created_at;
                if age > chrono::Duration::days(GIVE_UP_DAYS) {
                    email_outcome("failed");
                    EmailRow::mark_failed(&mut conn, email.id, &e.to_string()).await?;
                    tracing::warn!(email.id = %email.id, error = %e, "email undeliverable for days; given up");
                    return Err(JobError::permanent(format!("smtp: {e}")));
                }
                email_outcome("retried");
                let wait = retry_in(email.attempts, age);
                let after = chrono::Duration::from_std(wait).unwrap_or_default();
                EmailRow::mark_for_retry(&mut conn, email.id, &e.to_string(), after).await?;
                Err(JobError::Deferred(wait, format!("smtp: {e}")))
            }
        }
    }
}

/// How long an email the server keeps deferring is tried (RFC 5321
/// §4.5.4.1 asks for at least 4–5 days; three is what a ticket email is
/// worth).
const GIVE_UP_DAYS: i64 = 3;

/// The wait before the next try of an email after its `attempts`-th:
/// doubling from 1 s, at most 15 s while it is young (the end of a short
/// outage is noticed within seconds), then every 5 minutes.
fn retry_in(attempts: i32, age: chrono::Duration) -> Duration {
    if age > chrono::Duration::minutes(15) {
        return Duration::from_secs(300);
    }
    Duration::from_secs(1 << attempts.clamp(1, 5).saturating_sub(1)).min(Duration::from_secs(15))
}

fn email_outcome(outcome: &str) {
    boxoffice_core::metrics::metrics()
        .emails
        .get_or_create(&boxoffice_core::metrics::labels([("outcome", outcome)]))
        .inc();
}

/// Keeps an email's claim while this worker sends it: renewed every third
/// of the lease until dropped, so only a dead worker's claim runs out.
struct Lease(tokio::task::JoinHandle<()>);

impl Lease {
    fn keep(services: &Services, id: uuid::Uuid) -> Self {
        let db = services.db.clone();
        Self(tokio::spawn(async move {
            let every = Duration::from_secs(SENDING_LEASE_SECS as u64 / 3);
            loop {
                tokio::time::sleep(every).await;
                // A failed renewal is tried again next time; the lease
                // outlasts a database restart.
                if let Ok(mut conn) = db.get().await
                    && let Ok(false) = EmailRow::renew_claim(&mut conn, id).await
                {
                    return;
                }
            }
        }))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_to_15_s_then_wait_5_minutes() {
        let young = chrono::Duration::seconds(30);
        let waits: Vec<u64> = (1..=7).map(|a| retry_in(a, young).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 15, 15, 15]);
        assert_eq!(retry_in(0, young).as_secs(), 1);
        assert_eq!(retry_in(3, chrono::Duration::minutes(20)).as_secs(), 300);
    }
}
