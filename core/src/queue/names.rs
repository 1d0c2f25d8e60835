use std::{fmt, str::FromStr, time::Duration};

use super::RetryPolicy;

/// Every queue. Work that must not wait behind other work gets its own queue:
/// apalis-redis ignores priorities, so purchases never sit behind emails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum QueueName {
    Purchases,
    Payments,
    Refunds,
    Payouts,
    Emails,
    Webhooks,
}

/// Per-queue knobs, set in one place.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    /// Jobs run at once per worker process.
    pub concurrency: usize,
    /// Tasks taken per fetch.
    pub fetch_batch: usize,
    /// Time one attempt may take before it counts as failed.
    pub attempt_timeout: Duration,
    pub retry: RetryPolicy,
}

impl QueueName {
    pub const ALL: [QueueName; 6] = [
        Self::Purchases,
        Self::Payments,
        Self::Refunds,
        Self::Payouts,
        Self::Emails,
        Self::Webhooks,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purchases => "purchases",
            Self::Payments => "payments",
            Self::Refunds => "refunds",
            Self::Payouts => "payouts",
            Self::Emails => "emails",
            Self::Webhooks => "webhooks",
        }
    }

    /// Parses `--queues purchases,emails`.
    pub fn parse_list(list: &str) -> Result<Vec<Self>, UnknownQueue> {
        let mut queues = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let queue = name.parse()?;
            if !queues.contains(&queue) {
                queues.push(queue);
            }
        }
        if queues.is_empty() {
            return Err(UnknownQueue(String::new()));
        }
        Ok(queues)
    }

    pub fn settings(self) -> QueueSettings {
        let retry = |max_attempts, base_ms, max_ms| RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(base_ms),
            max_delay: Duration::from_millis(max_ms),
        };
        match self {
            // Short, latency-critical; a failure is almost always transient
            // (provider blip), and the order stays recoverable by its sweep.
            // Jobs mostly wait on the process's reservation batcher, so many
            // in flight means big batches (see workers/src/reserve.rs).
            Self::Purchases => QueueSettings {
                concurrency: 1024,
                fetch_batch: 256,
                attempt_timeout: Duration::from_secs(20),
                retry: retry(5, 200, 5_000),
            },
            // Wide: jobs mostly wait on the process's payment batcher, so
            // many in flight means big batches (see workers/src/pay.rs).
            Self::Payments => QueueSettings {
                concurrency: 512,
                fetch_batch: 256,
                attempt_timeout: Duration::from_secs(20),
                retry: retry(8, 500, 30_000),
            },
            // A refund mostly waits on the provider; an event cancellation
            // sends thousands at once.
            Self::Refunds | Self::Payouts => QueueSettings {
                concurrency: 32,
                fetch_batch: 10,
                attempt_timeout: Duration::from_secs(30),
                retry: retry(8, 1_000, 60_000),
            },
            // Wide: a message mostly waits on the SMTP server's replies.
            Self::Emails => QueueSettings {
                concurrency: 64,
                fetch_batch: 50,
                attempt_timeout: Duration::from_secs(30),
                retry: retry(5, 1_000, 60_000),
            },
            // Wide: an attempt mostly waits on the receiver, and one slow
            // receiver holds at most WEBHOOK_ENDPOINT_CONCURRENCY (8) slots.
            // Not wider: at 128 the claims queue for the database pool and
            // the rate halves (docs/PERFORMANCE.md).
            Self::Webhooks => QueueSettings {
                concurrency: 64,
                fetch_batch: 50,
                attempt_timeout: Duration::from_secs(30),
                retry: retry(5, 1_000, 60_000),
            },
        }
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no queue's (empty: no name at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown queue {0:?} (known: {known})", known = QueueName::ALL.map(QueueName::as_str).join(", "))]
pub struct UnknownQueue(pub String);

impl FromStr for QueueName {
    type Err = UnknownQueue;
    fn from_str(s: &str) -> Result<Self, UnknownQueue> {
        Self::ALL
            .into_iter()
            .find(|q| q.as_str() == s)
            .ok_or_else(|| UnknownQueue(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_rejects_unknown_names() {
        assert_eq!(
            QueueName::parse_list("emails, purchases,emails").unwrap(),
            vec![QueueName::Emails, QueueName::Purchases]
        );
        assert_eq!(
            QueueName::parse_list("emails,nope"),
            Err(UnknownQueue("nope".into()))
        );
        assert!(QueueName::parse_list(" , ").is_err());
    }
}
