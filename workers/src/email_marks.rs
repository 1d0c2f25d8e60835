//! Email claims and "sent" marks, batched: the email jobs of one worker
//! process hand them to one batcher that writes each kind for the whole
//! batch in one statement.
//!
//! Why: an email costs two single-row writes (claim, mark sent), each its
//! own commit; with dozens of emails in flight those commits were most of
//! the database's work. A claim stays a conditional UPDATE per row, so two
//! workers still never both claim one email.

use std::collections::HashMap;

use boxoffice_core::{
    Services,
    batch::{Answers, Batcher, Commit, Linger, Planning, Pool, Settings, Write},
    models::EmailRow,
};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::jobs::JobError;

pub enum Mark {
    /// Claim the row for sending.
    Claim(Uuid),
    /// Sent with this `Message-ID`.
    Sent(Uuid, String),
}

pub enum Marked {
    /// `Some`: claimed, send it; `None`: someone else has it, or it was sent.
    Claimed(Option<Box<EmailRow>>),
    Sent,
}

#[derive(Clone)]
pub struct EmailMarks(Batcher<Marks>);

pub struct Marks;

impl EmailMarks {
    /// Starts the batching task for this process, on connections of its own.
    pub fn start(services: &Services) -> Self {
        let settings = Settings {
            name: "email_marks",
            max: 256,
            // Every email waits on its claim and its mark, and with 64 in
            // flight the batches fill by themselves (a 2 ms linger: one
            // process 905, 950 → 1,019, 1,134 emails/s without it).
            linger: Linger::Never,
            in_flight: 1,
            pool: Pool::Own(Planning::ByKeyReplanned, Commit::Durable),
        };
        Self(Batcher::start(services, settings, Marks))
    }

    pub async fn claim(&self, id: Uuid) -> Result<Option<EmailRow>, JobError> {
        match self.0.write(Mark::Claim(id)).await? {
            Marked::Claimed(row) => Ok(row.map(|row| *row)),
            Marked::Sent => unreachable!("a claim is answered as a claim"),
        }
    }

    pub async fn sent(&self, id: Uuid, message_id: String) -> Result<(), JobError> {
        self.0.write(Mark::Sent(id, message_id)).await.map(drop)
    }
}

impl Write for Marks {
    type Item = Mark;
    type Done = Marked;
    type Error = JobError;

    async fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        marks: &[Mark],
    ) -> Answers<Marked, JobError> {
        let mut claims = Vec::new();
        let mut sent = Vec::new();
        for mark in marks {
            match mark {
                Mark::Claim(id) => claims.push(*id),
                Mark::Sent(id, message_id) => sent.push((*id, message_id.clone())),
            }
        }
        if !sent.is_empty() {
            EmailRow::mark_sent_many(conn, &sent).await?;
        }
        let mut claimed: HashMap<Uuid, EmailRow> = if claims.is_empty() {
            HashMap::new()
        } else {
            EmailRow::claim_many(conn, &claims)
                .await?
                .into_iter()
                .map(|row| (row.id, row))
                .collect()
        };
        // A job delivered twice may ask twice in one batch: the row was
        // claimed once, so only the first asker gets it.
        Ok(marks
            .iter()
            .map(|mark| {
                Ok(match mark {
                    Mark::Claim(id) => Marked::Claimed(claimed.remove(id).map(Box::new)),
                    Mark::Sent(..) => Marked::Sent,
                })
            })
            .collect())
    }
}
