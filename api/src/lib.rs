//! The HTTP API: a thin axum layer that validates, writes rows and enqueues.

mod error;
mod extract;
mod inbox_writer;
mod live;
mod middleware;
pub mod openapi;
mod order_writer;
mod pagination;
mod rate_limit;
mod router;
mod routes;
mod scan_writer;
mod snapshot;
mod state;
mod validate;

use std::{net::SocketAddr, sync::Arc};

use boxoffice_core::Services;
use tokio::{net::TcpListener, sync::watch};

pub use error::ApiError;
pub use router::router;
pub use state::{App, AppState};

/// The configured address could not be listened on.
#[derive(Debug, thiserror::Error)]
#[error("HTTP_ADDR {addr}: {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// Binds the configured address (port 0 picks a free one) and returns the bound
/// address with the server future, which ends after `shutdown` turns true and
/// open requests finish.
pub async fn bind(
    services: Services,
    shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, impl Future<Output = std::io::Result<()>>), BindError> {
    bind_with(services, shutdown, None).await
}

/// [`bind`], with extra routes served beside the API (`boxoffice dev` mounts
/// the sandbox payment provider at `/sandbox`).
pub async fn bind_with(
    services: Services,
    mut shutdown: watch::Receiver<bool>,
    extra: Option<axum::Router>,
) -> Result<(SocketAddr, impl Future<Output = std::io::Result<()>>), BindError> {
    let addr = services.config.http.addr;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| BindError { addr, source })?;
    let hub = live::Hub::start(&services, shutdown.clone());
    let orders = order_writer::OrderWriter::start(&services);
    let inbox = inbox_writer::InboxWriter::start(&services);
    let scans = scan_writer::ScanWriter::start(&services);
    let mut app = router(AppState(Arc::new(App {
        services,
        hub,
        snapshots: Default::default(),
        orders,
        inbox,
        scans,
    })));
    if let Some(extra) = extra {
        app = app.merge(extra);
    }
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    });
    Ok((local, async move { server.await }))
}
