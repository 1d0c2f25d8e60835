//! The SMTP account's send rate (`SMTP_SEND_RATE` emails per second),
//! kept in Redis so that every workers process shares it: each email
//! reserves the next free slot of the account (one round trip) and waits
//! for it. Slots are spaced evenly, so the provider never sees a burst
//! above the rate.

use std::time::Duration;

use boxoffice_core::queue::Queues;
use redis::Script;

static RESERVE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    // The account's next free slot (µs, Redis' clock), moved on by one
    // interval; returns how long the caller waits for its slot.
    Script::new(
        r"local t = redis.call('TIME')
          local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
          local interval = tonumber(ARGV[1])
          local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
          if slot < now then slot = now end
          local next = slot + interval
          redis.call('SET', KEYS[1], string.format('%d', next),
                     'PX', math.floor((next - now) / 1000) + 1000)
          return slot - now",
    )
});

pub struct SendRate {
    queues: Queues,
    key: String,
    /// Between two emails of the account.
    interval_us: u64,
}

impl SendRate {
    /// `None` when the rate is 0 (no limit).
    pub fn new(queues: Queues, account: &str, per_sec: u32) -> Option<Self> {
        if per_sec == 0 {
            return None;
        }
        let key = format!("{}-smtp-rate:{account}", queues.namespace());
        Some(Self {
            queues,
            key,
            interval_us: 1_000_000 / u64::from(per_sec),
        })
    }

    /// Waits for this email's slot. If Redis cannot be asked, the email
    /// goes now: the job queue lives in the same Redis, so this is rare and
    /// brief, and mail is not held back for it.
    pub async fn wait_turn(&self) {
        let mut conn = self.queues.connection();
        let wait: Result<i64, _> = RESERVE
            .key(&self.key)
            .arg(self.interval_us)
            .invoke_async(&mut conn)
            .await;
        match wait {
            Ok(us) if us > 0 => tokio::time::sleep(Duration::from_micros(us as u64)).await,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "send rate unavailable; sending without it"),
        }
    }
}
