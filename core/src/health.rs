//! Liveness of the in-process queue workers, for `/readyz` and metrics.
//! A worker that stopped (Redis error, crashed stream) is marked down until its
//! supervisor has restarted it.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
    time::SystemTime,
};

use serde::Serialize;

use crate::queue::QueueName;

#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    pub name: String,
    pub running: bool,
    pub restarts: u32,
    pub last_error: Option<String>,
    /// Stopped on purpose by ops (`pause`): not a failure.
    pub paused: bool,
    #[serde(with = "unix_secs")]
    pub since: SystemTime,
}

#[derive(Debug, Clone, Default)]
pub struct WorkerHealth(Arc<Mutex<BTreeMap<QueueName, WorkerStatus>>>);

impl WorkerHealth {
    pub fn up(&self, queue: QueueName, name: &str) {
        // A panic elsewhere while it was held leaves the map whole (each
        // change is one insert): carry on with it.
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let restarts = map.get(&queue).map_or(0, |s| s.restarts);
        map.insert(
            queue,
            WorkerStatus {
                name: name.to_owned(),
                running: true,
                restarts,
                last_error: None,
                paused: false,
                since: SystemTime::now(),
            },
        );
    }

    pub fn down(&self, queue: QueueName, error: Option<String>) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(status) = map.get_mut(&queue) {
            status.running = false;
            status.since = SystemTime::now();
            if error.is_some() {
                status.restarts += 1;
                status.last_error = error;
            }
        }
    }

    pub fn paused(&self, queue: QueueName) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(status) = map.get_mut(&queue) {
            status.running = false;
            status.paused = true;
            status.since = SystemTime::now();
        }
    }

    pub fn snapshot(&self) -> BTreeMap<QueueName, WorkerStatus> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// True when every registered worker is running (and vacuously true for a
    /// process that runs none).
    pub fn all_running(&self) -> bool {
        self.0
            .lock()
            .expect("health lock")
            .values()
            .all(|s| s.running || s.paused)
    }
}

mod unix_secs {
    use std::time::{SystemTime, UNIX_EPOCH};
    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs())
    }
}
