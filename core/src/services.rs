//! The handles every role shares: configuration, the database pool, the queues
//! and the in-process worker health.

use std::sync::Arc;

use crate::{
    config::Config,
    db::{self, DbPool},
    health::WorkerHealth,
    queue::{self, Queues},
};

#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub db: DbPool,
    pub queues: Queues,
    pub health: WorkerHealth,
}

impl Services {
    /// Builds the pool (lazily connecting) and connects to Redis.
    pub async fn connect(config: Config) -> Result<Self, String> {
        let db = db::pool(&config.database)?;
        let conn = queue::connect(&config.redis.url)
            .await
            .map_err(|e| format!("redis at {}: {e}", db::redact(&config.redis.url)))?;
        let queues = Queues::new(conn, config.redis.namespace.clone());
        Ok(Self {
            config: Arc::new(config),
            db,
            queues,
            health: WorkerHealth::default(),
        })
    }

    pub fn jwt_secret(&self) -> &[u8] {
        self.config.auth.jwt_secret.as_bytes()
    }
}
