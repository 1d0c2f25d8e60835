//! A per-process, one-second snapshot of an event and its tiers for the
//! order endpoint. In a drop every POST is for the same event; reading it
//! once a second instead of twice per request takes two queries off the hot
//! path. Safe because the API's checks are only early feedback: the purchases
//! worker re-checks everything (status, tiers, windows, stock) against the
//! locked rows before it reserves a seat.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use boxoffice_core::models::{Event, Tier};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

const FRESH_FOR: Duration = Duration::from_secs(1);

type Entry = (Instant, Arc<(Event, Vec<Tier>)>);

#[derive(Default)]
pub struct Snapshots(Mutex<HashMap<Uuid, Entry>>);

impl Snapshots {
    pub async fn get(
        &self,
        conn: &mut AsyncPgConnection,
        event_id: Uuid,
    ) -> diesel::QueryResult<Arc<(Event, Vec<Tier>)>> {
        if let Some((at, snapshot)) = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&event_id)
            && at.elapsed() < FRESH_FOR
        {
            return Ok(snapshot.clone());
        }
        let event = Event::find(conn, event_id).await?;
        let tiers = Tier::for_event(conn, event_id).await?;
        let snapshot = Arc::new((event, tiers));
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        // Old entries go when the map is swept at the next miss.
        map.retain(|_, (at, _)| at.elapsed() < FRESH_FOR);
        map.insert(event_id, (Instant::now(), snapshot.clone()));
        Ok(snapshot)
    }

    /// Drops an event's snapshot (it was cancelled here: this process
    /// refuses its orders at once; other replicas within a second, and the
    /// purchases worker rejects whatever slips through).
    pub fn forget(&self, event_id: Uuid) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&event_id);
    }
}
