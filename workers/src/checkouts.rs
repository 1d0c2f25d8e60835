//! Checkouts recorded in batches: the placing jobs of one worker process hand
//! the provider checkouts they opened to one task that writes all that wait
//! in one statement and one commit.
//!
//! Why: in a drop every sold order records its checkout, and on its own that
//! was the costliest statement of a sale (a commit per order, and a row
//! rewritten with every index of `orders`), paid while the next buyers' orders
//! wait for the same two cores. If a batch fails, each of its checkouts is
//! written on its own, so one bad row costs only itself.

use std::collections::HashMap;

use boxoffice_core::{Services, batch, db::DbPool, models::Order};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::jobs::JobError;

/// Checkouts written per statement at most.
const MAX_BATCH: usize = 256;

/// A checkout to record on its reserved order.
pub struct NewCheckout {
    pub order_id: Uuid,
    pub provider: &'static str,
    pub checkout_id: String,
    pub url: String,
}

/// `Some`: the order as written; `None`: it had a checkout already.
type Reply = oneshot::Sender<Result<Option<Order>, JobError>>;

#[derive(Clone)]
pub struct Checkouts {
    tx: mpsc::Sender<(NewCheckout, Reply)>,
}

impl Checkouts {
    /// Starts the recording task for this process, on connections of its own.
    pub fn start(services: &Services) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let db = batch::own_pool(services, batch::Planning::ByKey, batch::Commit::Durable);
        tokio::spawn(batch::drain(
            rx,
            MAX_BATCH,
            batch::WORKER_LINGER,
            batch::OWN_CONNECTIONS,
            move |checkouts| write(db.clone(), checkouts),
        ));
        Self { tx }
    }

    /// Records the checkout unless the order has one (first write wins: a
    /// retried job finds it set and reuses it).
    pub async fn record(&self, checkout: NewCheckout) -> Result<Option<Order>, JobError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || JobError::new("checkout recorder stopped");
        self.tx
            .send((checkout, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn write(db: DbPool, batch: Vec<(NewCheckout, Reply)>) {
    let (checkouts, replies): (Vec<NewCheckout>, Vec<Reply>) = batch.into_iter().unzip();
    let mut conn = match db.get().await {
        Ok(conn) => conn,
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(JobError::new(format!("database: {e}"))));
            }
            return;
        }
    };
    let rows: Vec<(Uuid, &str, &str, &str)> = checkouts
        .iter()
        .map(|c| {
            (
                c.order_id,
                c.provider,
                c.checkout_id.as_str(),
                c.url.as_str(),
            )
        })
        .collect();
    match Order::set_checkouts(&mut conn, &rows).await {
        Ok(written) => {
            let written: HashMap<Uuid, Order> = written.into_iter().map(|o| (o.id, o)).collect();
            for (checkout, reply) in checkouts.iter().zip(replies) {
                // The same order twice in a batch (a duplicated job): both
                // opened the provider's one checkout for it.
                let order = written.get(&checkout.order_id).cloned();
                let _ = reply.send(Ok(order));
            }
        }
        Err(e) => {
            tracing::warn!(checkouts = rows.len(), error = %e, "checkout batch failed; writing one by one");
            for (row, reply) in rows.iter().zip(replies) {
                let one = Order::set_checkouts(&mut conn, std::slice::from_ref(row))
                    .await
                    .map(|mut written| written.pop())
                    .map_err(JobError::from);
                let _ = reply.send(one);
            }
        }
    }
}
