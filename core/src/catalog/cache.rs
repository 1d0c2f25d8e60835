//! The public event page (event, images, tiers with availability) cached in
//! Redis, so a ticket drop's thousands of page views do not each cost a
//! database round trip.
//!
//! Invalidation is exact, not just a TTL: each event has a generation counter
//! and pages are stored under their generation. A writer bumps the generation
//! after its commit; a reader that loaded the page before that commit stores it
//! under the old generation, where nobody looks any more. So a slow reader can
//! never put a stale page back (the classic read-then-set race). The TTL only
//! bounds staleness if a bump is lost (Redis unreachable right after a commit).

use std::time::Duration;

use redis::{AsyncCommands, aio::ConnectionManager};
use uuid::Uuid;

/// Generation counters outlive any page by far; they only need to outlive it.
const GENERATION_TTL_SECS: i64 = 24 * 3600;

static READ: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"local gen = redis.call('GET', KEYS[1]) or '0'
          return {gen, redis.call('GET', KEYS[1] .. ':v' .. gen)}",
    )
});

#[derive(Clone)]
pub struct EventCache {
    conn: ConnectionManager,
    prefix: String,
    ttl: Duration,
}

/// What a read found: the page if cached, and the generation to store under.
pub struct Cached {
    pub generation: u64,
    pub page: Option<String>,
}

impl EventCache {
    pub fn new(conn: ConnectionManager, namespace: &str, ttl: Duration) -> Self {
        Self {
            conn,
            prefix: format!("{namespace}-cache:event"),
            ttl,
        }
    }

    /// The braces make the key a Redis Cluster hash tag, so a page and its
    /// generation counter always live on the same node.
    fn key(&self, event_id: Uuid) -> String {
        format!("{}:{{{event_id}}}", self.prefix)
    }

    pub async fn get(&self, event_id: Uuid) -> redis::RedisResult<Cached> {
        let (generation, page): (Option<u64>, Option<String>) = READ
            .key(self.key(event_id))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(Cached {
            generation: generation.unwrap_or(0),
            page,
        })
    }

    pub async fn put(&self, event_id: Uuid, generation: u64, page: &str) -> redis::RedisResult<()> {
        let key = format!("{}:v{generation}", self.key(event_id));
        let ttl_ms = self.ttl.as_millis().max(1) as u64;
        self.conn.clone().pset_ex(key, page, ttl_ms).await
    }

    /// Call after the commit that changed the event, its tiers or its stock.
    pub async fn invalidate(&self, event_id: Uuid) -> redis::RedisResult<()> {
        let key = self.key(event_id);
        redis::pipe()
            .incr(&key, 1)
            .ignore()
            .expire(&key, GENERATION_TTL_SECS)
            .ignore()
            .query_async(&mut self.conn.clone())
            .await
    }

    /// Invalidation that must not fail the caller: the write is committed and
    /// the TTL bounds how long the old page can live.
    pub async fn invalidate_or_log(&self, event_id: Uuid) {
        if let Err(e) = self.invalidate(event_id).await {
            tracing::warn!(event.id = %event_id, error = %e, "event cache invalidation failed; the TTL will expire the page");
        }
    }
}
