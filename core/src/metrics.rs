//! Process-wide Prometheus metrics. Each process (API, workers, scheduler)
//! counts what it does; the API's `/metrics` also samples shared state
//! (queue depths, orders by status, held seats) at scrape time.

use std::sync::OnceLock;

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<Labels, Counter>,
    pub http_duration: Family<Labels, Histogram>,
    pub jobs: Family<Labels, Counter>,
    pub job_duration: Family<Labels, Histogram>,
    pub webhook_signature_failures: Family<Labels, Counter>,
    pub provider_requests: Family<Labels, Counter>,
    pub provider_duration: Family<Labels, Histogram>,
    pub emails: Family<Labels, Counter>,
    pub batch_fallbacks: Family<Labels, Counter>,
    pub scheduler_tick_delay: Family<Labels, Histogram>,
    pub provider_circuit: Family<Labels, Gauge>,
    pub provider_circuit_opens: Family<Labels, Counter>,
    pub queue_jobs: Family<Labels, Gauge>,
    pub orders: Family<Labels, Gauge>,
    pub seats: Family<Labels, Gauge>,
}

fn tick_delay_buckets() -> Histogram {
    Histogram::new([0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 60.0])
}

fn latency_buckets() -> Histogram {
    // 1 ms … ~16 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 15,
    ))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("boxoffice");
        let m = Self {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_buckets),
            jobs: Family::default(),
            job_duration: Family::new_with_constructor(latency_buckets),
            webhook_signature_failures: Family::default(),
            provider_requests: Family::default(),
            provider_duration: Family::new_with_constructor(latency_buckets),
            emails: Family::default(),
            batch_fallbacks: Family::default(),
            scheduler_tick_delay: Family::new_with_constructor(tick_delay_buckets),
            provider_circuit: Family::default(),
            provider_circuit_opens: Family::default(),
            queue_jobs: Family::default(),
            orders: Family::default(),
            seats: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            m.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and method",
            m.http_duration.clone(),
        );
        registry.register(
            "jobs",
            "Job deliveries by queue and outcome (ok, failed)",
            m.jobs.clone(),
        );
        registry.register(
            "job_duration_seconds",
            "Job delivery duration by queue",
            m.job_duration.clone(),
        );
        registry.register(
            "webhook_signature_failures",
            "Inbound webhooks refused for their signature",
            m.webhook_signature_failures.clone(),
        );
        registry.register(
            "provider_requests",
            "Payment provider calls by operation and outcome",
            m.provider_requests.clone(),
        );
        registry.register(
            "provider_request_duration_seconds",
            "Payment provider call latency",
            m.provider_duration.clone(),
        );
        registry.register(
            "emails",
            "Emails by outcome (sent, failed)",
            m.emails.clone(),
        );
        registry.register(
            "batch_fallbacks",
            "Batches that failed whole and were written item by item, by batcher",
            m.batch_fallbacks.clone(),
        );
        registry.register(
            "payment_provider_circuit",
            "Each provider's circuit breaker in this process: 0 closed, 1 open, 2 half-open",
            m.provider_circuit.clone(),
        );
        registry.register(
            "payment_provider_circuit_opens",
            "Times a provider's circuit opened in this process",
            m.provider_circuit_opens.clone(),
        );
        registry.register(
            "scheduler_tick_delay_seconds",
            "How late each scheduler entry ran after its due time, by schedule",
            m.scheduler_tick_delay.clone(),
        );
        registry.register(
            "queue_jobs",
            "Jobs per queue and state, sampled at scrape",
            m.queue_jobs.clone(),
        );
        registry.register(
            "orders",
            "Orders per status, sampled at scrape",
            m.orders.clone(),
        );
        registry.register(
            "seats",
            "Seats held (reserved, unpaid) and sold, sampled at scrape",
            m.seats.clone(),
        );
        Self { registry, ..m }
    }

    /// The Prometheus text exposition (OpenMetrics flavour).
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Shorthand for a label set.
pub fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}
