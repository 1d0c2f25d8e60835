//! Checkouts recorded in batches: the placing jobs of one worker process hand
//! the provider checkouts they opened to one batcher that writes all that
//! wait in one statement and one commit.
//!
//! Why: in a drop every sold order records its checkout, and on its own that
//! was the costliest statement of a sale (a commit per order, and a row
//! rewritten with every index of `orders`), paid while the next buyers' orders
//! wait for the same two cores.

use std::collections::HashMap;

use boxoffice_core::{
    Services,
    batch::{self, Answers, Batcher, Commit, Linger, Planning, Pool, Settings, Write},
    models::Order,
};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::jobs::JobError;

/// A checkout to record on its reserved order.
pub struct NewCheckout {
    pub order_id: Uuid,
    pub provider: &'static str,
    pub checkout_id: String,
    pub url: String,
}

impl NewCheckout {
    fn row(&self) -> (Uuid, &str, &str, &str) {
        (self.order_id, self.provider, &self.checkout_id, &self.url)
    }
}

#[derive(Clone)]
pub struct Checkouts(Batcher<Recorder>);

pub struct Recorder;

impl Checkouts {
    /// Starts the recording task for this process, on connections of its own.
    pub fn start(services: &Services) -> Self {
        let settings = Settings {
            name: "checkouts",
            max: 256,
            linger: Linger::WhenBusy(batch::WORKER_LINGER),
            in_flight: batch::OWN_CONNECTIONS,
            pool: Pool::Own(Planning::ByKeyReplanned, Commit::Durable),
        };
        Self(Batcher::start(services, settings, Recorder))
    }

    /// Records the checkout unless the order has one (first write wins: a
    /// retried job finds it set and reuses it). `Some`: the order as
    /// written; `None`: it had a checkout already.
    pub async fn record(&self, checkout: NewCheckout) -> Result<Option<Order>, JobError> {
        self.0.write(checkout).await
    }
}

impl Write for Recorder {
    type Item = NewCheckout;
    type Done = Option<Order>;
    type Error = JobError;

    async fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        checkouts: &[NewCheckout],
    ) -> Answers<Option<Order>, JobError> {
        let rows: Vec<_> = checkouts.iter().map(NewCheckout::row).collect();
        let written: HashMap<Uuid, Order> = Order::set_checkouts(conn, &rows)
            .await?
            .into_iter()
            .map(|o| (o.id, o))
            .collect();
        // The same order twice in a batch (a duplicated job): both opened
        // the provider's one checkout for it.
        Ok(checkouts
            .iter()
            .map(|c| Ok(written.get(&c.order_id).cloned()))
            .collect())
    }
}
