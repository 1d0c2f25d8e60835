//! Door scans, batched: the scan requests of one API process hand their
//! scans to one batcher that decides all that wait in one statement and
//! one commit (`check_in::admit_many`), then answers each.
//!
//! Why: at the door every scan was its own statement and commit, and with
//! 50 scanners on two cores the p99 was the queue in front of them
//! (docs/PERFORMANCE.md, "Check-in"). An answer means what it meant: an
//! admission is committed; two scans of one ticket admit it once, in a
//! batch as across batches. If the batch statement fails, each scan is
//! decided on its own.

use boxoffice_core::{
    Services,
    batch::{self, Answers, Batcher, Commit, Linger, Planning, Pool, Settings, Write},
    models::{Admission, DoorScan, Refusal, check_in},
};
use diesel_async::AsyncPgConnection;

use crate::error::ApiError;

#[derive(Clone)]
pub struct ScanWriter(Batcher<Scans>);

pub struct Scans;

impl ScanWriter {
    /// Starts the deciding task for this process, on connections of its own.
    pub fn start(services: &Services) -> Self {
        let settings = Settings {
            name: "door_scans",
            max: 128,
            linger: Linger::WhenBusy(batch::API_LINGER),
            // One at a time: two ran no faster (docs/PERFORMANCE.md), and
            // batches of one process then never wait on each other's
            // ticket locks (those of other processes lock in id order).
            in_flight: 1,
            pool: Pool::Own(Planning::ByKey, Commit::Durable),
        };
        Self(Batcher::start(services, settings, Scans))
    }

    pub async fn admit(&self, scan: DoorScan) -> Result<Result<Admission, Refusal>, ApiError> {
        self.0.write(scan).await
    }
}

impl Write for Scans {
    type Item = DoorScan;
    type Done = Result<Admission, Refusal>;
    type Error = ApiError;

    async fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        scans: &[DoorScan],
    ) -> Answers<Result<Admission, Refusal>, ApiError> {
        Ok(check_in::admit_many(conn, scans)
            .await?
            .into_iter()
            .map(Ok)
            .collect())
    }
}
