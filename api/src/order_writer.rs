//! Order inserts, batched: the order requests of one API process hand their
//! rows to one task that writes everything waiting in one statement.
//!
//! Why: in a drop, one insert and one commit per request was most of what the
//! database did for the API (a statement, a WAL flush, foreign-key checks, per
//! order). While a batch is written the next one fills, so batches grow with
//! load and stay at one order when idle (no added latency). The rows and the
//! answers are exactly those of `Order::place`: if the batch statement fails
//! (one bad row fails them all), each order is written on its own, so only
//! the bad one gets the error.
//!
//! The orders it creates are enqueued for the purchases queue here too, in
//! one push per batch (one Redis script run instead of one per order), and
//! only then answered: a `202` still means the order is committed and
//! queued. If Redis is down the committed orders stay `pending` and the
//! scheduler's sweep enqueues them; their requests get a 503, and a retry
//! with the same key returns the same order.

use std::collections::HashMap;

use boxoffice_core::{
    Services, batch,
    db::DbPool,
    jobs::OrderJob,
    models::{AccessSession, NewOrder, Order, OrderItem, Placed, User},
    queue::{Queues, Schedule},
};
use diesel_async::AsyncPgConnection;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{error::ApiError, extract::INVALID_TOKEN};

/// Orders written per statement at most.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<Placed, ApiError>>;

struct Request {
    order: NewOrder,
    items: Vec<OrderItem>,
    session: AccessSession,
    reply: Reply,
}

#[derive(Clone)]
pub struct OrderWriter {
    tx: mpsc::Sender<Request>,
}

impl OrderWriter {
    /// Starts the writing task for this process, on connections of its own.
    pub fn start(services: &Services) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(
            batch::own_pool(services, batch::Planning::ByKey, batch::Commit::Durable),
            services.queues.clone(),
            rx,
        ));
        Self { tx }
    }

    /// Writes the order and enqueues it (or finds the one its idempotency key
    /// already made, which is not enqueued again here), if the buyer's access
    /// session is still good; else `INVALID_TOKEN`.
    pub async fn place(
        &self,
        order: NewOrder,
        items: Vec<OrderItem>,
        session: AccessSession,
    ) -> Result<Placed, ApiError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || ApiError::Unavailable("order writer stopped".into());
        self.tx
            .send(Request {
                order,
                items,
                session,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(db: DbPool, queues: Queues, mut rx: mpsc::Receiver<Request>) {
    while let Some(requests) = batch::next(&mut rx, MAX_BATCH, batch::API_LINGER).await {
        let answers = write(&db, requests).await;
        // The next batch is written while this one is pushed.
        tokio::spawn(enqueue_and_answer(queues.clone(), answers));
    }
}

type Answer = (Reply, Result<Placed, ApiError>);

async fn write(db: &DbPool, batch: Vec<Request>) -> Vec<Answer> {
    let mut conn = match db.get().await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::warn!(error = %e, "order writer has no connection");
            return batch
                .into_iter()
                .map(|r| (r.reply, Err(ApiError::Unavailable("database".into()))))
                .collect();
        }
    };
    let rows: Vec<(&NewOrder, &[OrderItem], AccessSession)> = batch
        .iter()
        .map(|r| (&r.order, r.items.as_slice(), r.session))
        .collect();
    let started = std::time::Instant::now();
    let written = Order::place_many(&mut conn, &rows).await;
    tracing::debug!(
        orders = rows.len(),
        ms = started.elapsed().as_secs_f64() * 1e3,
        "order batch"
    );
    drop(rows);
    let mut created: HashMap<Uuid, Order> = match written {
        Ok(orders) => orders.into_iter().map(|o| (o.id, o)).collect(),
        Err(e) => {
            tracing::warn!(orders = batch.len(), error = %e, "order batch failed; writing one by one");
            HashMap::new()
        }
    };
    let mut answers = Vec::with_capacity(batch.len());
    for request in batch {
        let placed = match created.remove(&request.order.id) {
            Some(order) => Ok(Placed::Created(order)),
            // A reused key (the existing order), an ended session, or the
            // batch failed.
            None => place_one(&mut conn, &request).await,
        };
        answers.push((request.reply, placed));
    }
    answers
}

async fn place_one(conn: &mut AsyncPgConnection, request: &Request) -> Result<Placed, ApiError> {
    User::find_for_access_token(conn, request.session)
        .await?
        .ok_or(INVALID_TOKEN)?;
    Ok(Order::place(conn, &request.order, &request.items, request.session).await?)
}

/// Pushes the placing jobs of the orders this batch created, then answers.
async fn enqueue_and_answer(queues: Queues, answers: Vec<Answer>) {
    let jobs: Vec<OrderJob> = answers
        .iter()
        .filter_map(|(_, placed)| match placed {
            Ok(Placed::Created(order)) => Some(OrderJob::Place { order_id: order.id }),
            _ => None,
        })
        .collect();
    let pushed = if jobs.is_empty() {
        Ok(0)
    } else {
        queues.push_many(&jobs, Schedule::now()).await
    };
    if let Err(e) = &pushed {
        tracing::warn!(orders = jobs.len(), error = %e, "enqueue placed orders");
    }
    for (reply, placed) in answers {
        let answer = match (placed, &pushed) {
            (Ok(Placed::Created(order)), Err(e)) => Err(ApiError::Unavailable(format!(
                "enqueue order {}: {e}",
                order.id
            ))),
            (placed, _) => placed,
        };
        let _ = reply.send(answer);
    }
}
