use std::{ops::Deref, sync::Arc};

use boxoffice_core::Services;

/// Everything a handler needs, behind one `Arc`.
pub struct App {
    pub services: Services,
    pub hub: Arc<crate::live::Hub>,
    /// Event + tiers for the order endpoint, one second fresh.
    pub snapshots: crate::snapshot::Snapshots,
    /// Batches this process's order inserts (see `order_writer`).
    pub orders: crate::order_writer::OrderWriter,
    /// Batches this process's webhook inbox inserts (see `inbox_writer`).
    pub inbox: crate::inbox_writer::InboxWriter,
    /// Batches this process's door scans (see `scan_writer`).
    pub scans: crate::scan_writer::ScanWriter,
}

#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

impl App {
    pub fn config(&self) -> &boxoffice_core::Config {
        &self.services.config
    }

    pub async fn db(&self) -> Result<boxoffice_core::db::DbConn, crate::error::ApiError> {
        Ok(self.services.db.get().await?)
    }
}
