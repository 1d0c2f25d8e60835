//! The handles every role shares: configuration, the database pool, the queues
//! and the in-process worker health.

use std::sync::Arc;

use crate::{
    catalog::EventCache,
    config::Config,
    db::{self, DbPool},
    health::WorkerHealth,
    live::Live,
    media::MediaStore,
    payments::Providers,
    queue::{self, Queues},
};

/// Why the shared handles could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("redis at {url}: {source}")]
    Redis {
        /// Redacted.
        url: String,
        #[source]
        source: crate::queue::QueueError,
    },
    #[error("payment provider: {0}")]
    Payments(#[from] crate::payments::SetupError),
    #[error(transparent)]
    Media(#[from] crate::media::StoreSetupError),
}

#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub db: DbPool,
    pub queues: Queues,
    pub health: WorkerHealth,
    pub event_cache: EventCache,
    pub media: MediaStore,
    pub live: Live,
    /// The payment providers set up, and the default.
    pub payments: Providers,
}

impl Services {
    /// Builds the pool (lazily connecting) and connects to Redis.
    pub async fn connect(config: Config) -> Result<Self, ServicesError> {
        let db = db::pool(&config.database)?;
        let conn =
            queue::connect(&config.redis.url)
                .await
                .map_err(|source| ServicesError::Redis {
                    url: db::redact(&config.redis.url),
                    source,
                })?;
        let event_cache = EventCache::new(
            conn.clone(),
            &config.redis.namespace,
            config.catalog.event_cache_ttl,
        );
        let live = Live::new(conn.clone(), &config.redis.namespace);
        let queues = Queues::new(conn, config.redis.namespace.clone());
        let payments = Providers::from_config(&config.payments)?;
        let media = MediaStore::from_config(&config.media)?;
        Ok(Self {
            config: Arc::new(config),
            db,
            queues,
            health: WorkerHealth::default(),
            event_cache,
            media,
            live,
            payments,
        })
    }

    /// The same services over a pool of their own, its connections named
    /// `role` (whatever the process's were called), for a role that shares
    /// its process with others (`dev`): an API busy with a ticket drop must
    /// not make the workers queue for its connections.
    pub fn for_role(&self, role: &str, pool_size: usize) -> Result<Self, ServicesError> {
        let mut config = (*self.config).clone();
        // A later `-c` in `options` wins over an earlier one.
        config.database.url = db::with_setting(&config.database.url, "application_name", role);
        config.database.pool_size = pool_size;
        let db = db::pool(&config.database)?;
        Ok(Self {
            db,
            config: Arc::new(config),
            ..self.clone()
        })
    }

    pub fn jwt_secret(&self) -> &[u8] {
        self.config.auth.jwt_secret.as_bytes()
    }
}
