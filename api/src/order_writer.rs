//! Order inserts, batched: the order requests of one API process hand their
//! rows to one batcher that writes everything waiting in one statement.
//!
//! Why: in a drop, one insert and one commit per request was most of what the
//! database did for the API (a statement, a WAL flush, foreign-key checks, per
//! order). The rows and the answers are exactly those of `Order::place`: an
//! order the batch statement left out (a reused key, an ended session) is
//! looked up on its own, and if the statement fails (one bad row fails them
//! all) each order is written on its own, so only the bad one gets the error.
//!
//! The orders it creates are enqueued for the purchases queue here too, in
//! one push per batch (one Redis script run instead of one per order), and
//! only then answered. A `202` means the order is committed: if Redis is
//! down it stays `pending` and the scheduler's sweep enqueues it (at once
//! when Redis comes back empty), so the buyer is told it was taken rather
//! than asked to retry (RELIABILITY.md, "Clients during an outage"). Only
//! an order that could not be written gets a 503.

use std::collections::HashMap;

use boxoffice_core::{
    Services,
    batch::{self, Answers, Batcher, Commit, Linger, Planning, Pool, Settings, Write},
    jobs::OrderJob,
    models::{AccessSession, NewOrder, Order, OrderItem, Placed, User},
    queue::{Queues, Schedule},
};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::{error::ApiError, extract::INVALID_TOKEN};

/// One order to write, for the buyer's access session.
pub struct Request {
    order: NewOrder,
    items: Vec<OrderItem>,
    session: AccessSession,
}

#[derive(Clone)]
pub struct OrderWriter(Batcher<Orders>);

pub struct Orders {
    queues: Queues,
}

impl OrderWriter {
    /// Starts the writing task for this process, on connections of its own.
    pub fn start(services: &Services) -> Self {
        let settings = Settings {
            name: "orders",
            max: 256,
            linger: Linger::WhenBusy(batch::API_LINGER),
            // Two in flight cost Postgres 6–7 % more CPU for no clear gain
            // (docs/PERFORMANCE.md); the next batch is written while this
            // one is pushed (`after` holds no slot).
            in_flight: 1,
            pool: Pool::Own(Planning::ByKey, Commit::Durable),
        };
        let queues = services.queues.clone();
        Self(Batcher::start(services, settings, Orders { queues }))
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
        self.0
            .write(Request {
                order,
                items,
                session,
            })
            .await
    }
}

impl Write for Orders {
    type Item = Request;
    type Done = Placed;
    type Error = ApiError;

    async fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        requests: &[Request],
    ) -> Answers<Placed, ApiError> {
        let rows: Vec<(&NewOrder, &[OrderItem], AccessSession)> = requests
            .iter()
            .map(|r| (&r.order, r.items.as_slice(), r.session))
            .collect();
        let mut created: HashMap<Uuid, Order> = Order::place_many(conn, &rows)
            .await?
            .into_iter()
            .map(|o| (o.id, o))
            .collect();
        let mut answers = Vec::with_capacity(requests.len());
        for request in requests {
            answers.push(match created.remove(&request.order.id) {
                Some(order) => Ok(Placed::Created(order)),
                // A reused key (the existing order), or an ended session.
                None => self.one(conn, request).await,
            });
        }
        Ok(answers)
    }

    async fn one(
        &self,
        conn: &mut AsyncPgConnection,
        request: &Request,
    ) -> Result<Placed, ApiError> {
        User::find_for_access_token(conn, request.session)
            .await?
            .ok_or(INVALID_TOKEN)?;
        Ok(Order::place(conn, &request.order, &request.items, request.session).await?)
    }

    /// Pushes the placing jobs of the orders this batch created; if that
    /// fails they are still answered as placed: committed, and the sweep
    /// enqueues them.
    async fn after(&self, _: &[Request], answers: &mut [Result<Placed, ApiError>]) {
        let jobs: Vec<OrderJob> = answers
            .iter()
            .filter_map(|placed| match placed {
                Ok(Placed::Created(order)) => Some(OrderJob::Place { order_id: order.id }),
                _ => None,
            })
            .collect();
        if jobs.is_empty() {
            return;
        }
        if let Err(e) = self.queues.push_many(&jobs, Schedule::now()).await {
            tracing::warn!(orders = jobs.len(), error = %e, "placed orders not enqueued; retrying");
            tokio::spawn(push_when_back(self.queues.clone(), jobs));
        }
    }
}

/// Pushes accepted orders once Redis takes them again, so they are placed
/// the moment it is back (the scheduler's sweep is the net for a process
/// that dies first, but it waits out its grace). The push is idempotent.
async fn push_when_back(queues: Queues, jobs: Vec<OrderJob>) {
    let mut wait = std::time::Duration::from_millis(250);
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(wait).await;
        if queues.push_many(&jobs, Schedule::now()).await.is_ok() {
            tracing::info!(
                orders = jobs.len(),
                "placed orders enqueued after an outage"
            );
            return;
        }
        wait = (wait * 2).min(std::time::Duration::from_secs(2));
    }
}
