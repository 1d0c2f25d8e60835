//! A Redis leader lock with a fencing check: `SET NX PX`, renewed by its
//! holder, released only by its holder (compare-and-delete in Lua).

use std::time::Duration;

use boxoffice_core::Services;
use redis::{AsyncCommands, Script, aio::ConnectionManager};

const LEASE: Duration = Duration::from_secs(15);

pub struct LeaderLock {
    conn: ConnectionManager,
    key: String,
    namespace: String,
    token: String,
}

static RENEW: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then
              return redis.call('PEXPIRE', KEYS[1], ARGV[2])
          end
          return 0",
    )
});

static RELEASE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then
              return redis.call('DEL', KEYS[1])
          end
          return 0",
    )
});

impl LeaderLock {
    pub fn new(services: &Services, name: &str) -> Self {
        let namespace = services.queues.namespace().to_owned();
        Self {
            conn: services.queues.connection(),
            key: format!("{namespace}-leader:{name}"),
            namespace,
            token: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// True while this instance is the leader.
    pub async fn acquire_or_renew(&self) -> bool {
        let mut conn = self.conn.clone();
        let renewed: Result<u32, _> = RENEW
            .key(&self.key)
            .arg(&self.token)
            .arg(LEASE.as_millis() as u64)
            .invoke_async(&mut conn)
            .await;
        if matches!(renewed, Ok(1)) {
            return true;
        }
        let acquired: Result<Option<String>, _> = redis::cmd("SET")
            .arg(&self.key)
            .arg(&self.token)
            .arg("NX")
            .arg("PX")
            .arg(LEASE.as_millis() as u64)
            .query_async(&mut conn)
            .await;
        match acquired {
            Ok(Some(_)) => {
                tracing::info!(lock = %self.key, "became scheduler leader");
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "leader lock unavailable");
                false
            }
        }
    }

    /// Claims one tick of one schedule; false if another instance fired it.
    pub async fn claim_tick(&self, schedule: &str, tick: i64) -> bool {
        let mut conn = self.conn.clone();
        let key = format!("{}-tick:{schedule}:{tick}", self.namespace);
        let claimed: Result<Option<String>, _> = redis::cmd("SET")
            .arg(&key)
            .arg(&self.token)
            .arg("NX")
            .arg("EX")
            .arg(3600)
            .query_async(&mut conn)
            .await;
        matches!(claimed, Ok(Some(_)))
    }

    pub async fn release(&self) {
        let mut conn = self.conn.clone();
        let _: Result<u32, _> = RELEASE
            .key(&self.key)
            .arg(&self.token)
            .invoke_async(&mut conn)
            .await;
    }

    /// Who holds the lock, for tests and ops.
    pub async fn holder(&self) -> Option<String> {
        let mut conn = self.conn.clone();
        conn.get(&self.key).await.ok().flatten()
    }
}
