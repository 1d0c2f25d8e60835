//! Email claims and "sent" marks, batched: the email jobs of one worker
//! process hand them to one task that writes each kind for the whole batch
//! in one statement.
//!
//! Why: an email costs two single-row writes (claim, mark sent), each its
//! own commit; with dozens of emails in flight those commits were most of
//! the database's work. A claim stays a conditional UPDATE per row, so two
//! workers still never both claim one email.

use std::{collections::HashMap, time::Duration};

use boxoffice_core::{Services, batch, db::DbPool, models::EmailRow};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Rows written per statement at most.
const MAX_BATCH: usize = 256;

enum Mark {
    /// `Some`: claimed, send it; `None`: someone else has it, or it was sent.
    Claim(Uuid, oneshot::Sender<Result<Option<EmailRow>, String>>),
    /// Sent with this `Message-ID`.
    Sent(Uuid, String, oneshot::Sender<Result<(), String>>),
}

#[derive(Clone)]
pub struct EmailMarks {
    tx: mpsc::Sender<Mark>,
}

impl EmailMarks {
    /// Starts the batching task for this process, on connections of its own.
    pub fn start(services: &Services) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(
            batch::own_pool(services, batch::Planning::ByKey, batch::Commit::Durable),
            rx,
        ));
        Self { tx }
    }

    pub async fn claim(&self, id: Uuid) -> Result<Option<EmailRow>, String> {
        let (reply, answer) = oneshot::channel();
        self.send(Mark::Claim(id, reply)).await?;
        answer.await.map_err(|_| GONE.to_owned())?
    }

    pub async fn sent(&self, id: Uuid, message_id: String) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.send(Mark::Sent(id, message_id, reply)).await?;
        answer.await.map_err(|_| GONE.to_owned())?
    }

    async fn send(&self, mark: Mark) -> Result<(), String> {
        self.tx.send(mark).await.map_err(|_| GONE.to_owned())
    }
}

const GONE: &str = "the email marks task stopped";

async fn run(db: DbPool, mut rx: mpsc::Receiver<Mark>) {
    // No linger: every email waits on its claim and its mark, and with 64
    // in flight the batches fill by themselves (a 2 ms linger: one process
    // 905, 950 → 1,019, 1,134 emails/s without it).
    while let Some(batch) = batch::next(&mut rx, MAX_BATCH, Duration::ZERO).await {
        let (mut claim_ids, mut claim_replies) = (Vec::new(), Vec::new());
        let (mut sent, mut sent_replies) = (Vec::new(), Vec::new());
        for mark in batch {
            match mark {
                Mark::Claim(id, reply) => {
                    claim_ids.push(id);
                    claim_replies.push(reply);
                }
                Mark::Sent(id, message_id, reply) => {
                    sent.push((id, message_id));
                    sent_replies.push(reply);
                }
            }
        }
        let mut conn = db
            .get()
            .await
            .map_err(|e| format!("email marks have no connection: {e}"));
        if !sent.is_empty() {
            let done = match &mut conn {
                Ok(conn) => EmailRow::mark_sent_many(conn, &sent)
                    .await
                    .map(drop)
                    .map_err(|e| format!("mark sent: {e}")),
                Err(e) => Err(e.clone()),
            };
            for reply in sent_replies {
                let _ = reply.send(done.clone());
            }
        }
        if !claim_ids.is_empty() {
            let claimed = match &mut conn {
                Ok(conn) => EmailRow::claim_many(conn, &claim_ids)
                    .await
                    .map_err(|e| format!("claim: {e}")),
                Err(e) => Err(e.clone()),
            };
            let mut claimed = claimed.map(|rows| {
                rows.into_iter()
                    .map(|row| (row.id, row))
                    .collect::<HashMap<Uuid, EmailRow>>()
            });
            // A job delivered twice may ask twice in one batch: the row was
            // claimed once, so only the first asker gets it.
            for (id, reply) in claim_ids.into_iter().zip(claim_replies) {
                let answer = match &mut claimed {
                    Ok(rows) => Ok(rows.remove(&id)),
                    Err(e) => Err(e.clone()),
                };
                let _ = reply.send(answer);
            }
        }
    }
}
