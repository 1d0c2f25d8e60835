//! The hot drop: one event, S seats in T tiers, B buyers (orders of 1–2
//! tickets, buyer i in tier i mod T) at concurrency C, against a running
//! Boxoffice whose sandbox provider auto-pays. Client-side: POST latency and
//! acceptance rate. Server-side, from the database: when each order was
//! decided and paid, seats sold, emails sent and how long after the last
//! payment the last one went; from `/proc`: CPU seconds of the server,
//! Postgres and Redis through the drop.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use boxoffice_core::{auth::jwt, db::DbPool};
use diesel::{QueryableByName, sql_types};
use diesel_async::RunQueryDsl;
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::stats::{Summary, summarize};

#[derive(Debug, Clone)]
pub struct Params {
    pub seats: i32,
    /// Tiers the seats are split into (1: the classic hot drop).
    pub tiers: usize,
    pub buyers: usize,
    pub concurrency: usize,
    /// `None`: closed loop, each of the C clients sends its next order as
    /// soon as the last is answered (the saturation throughput). `Some(r)`:
    /// buyer i arrives at i / r seconds (open loop, at most C in flight),
    /// and latency counts from that arrival, so time spent waiting for a
    /// free client is not hidden (no coordinated omission).
    pub rate: Option<f64>,
    /// The server's reservation TTL (decision time = reserved_until − TTL).
    pub reservation_ttl: Duration,
    /// How long to wait for every order to settle.
    pub settle_timeout: Duration,
    /// Buyers of a warm-up sale on another event (seats: one in twenty),
    /// at the same rate and concurrency, before the measured drop; 0: none.
    /// A drop meets a server that has been running: its connections open,
    /// its statements planned, its caches filled. Without the warm-up the
    /// first second measures a cold start instead (connections opened and
    /// every statement planned again on each, in the drop's busiest second).
    pub warmup_buyers: usize,
}

/// Where the server is and how to reach its database and sign tokens for it.
#[derive(Clone)]
pub struct Target {
    pub api_url: String,
    pub db: DbPool,
    pub jwt_secret: String,
    /// The server process, to sample its memory (`None`: not sampled).
    pub pid: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    /// The drop's event, and a token of its organizer's (not reported).
    pub event_id: String,
    #[serde(skip)]
    pub organizer_token: String,
    pub seats: i32,
    pub buyers: usize,
    pub concurrency: usize,
    /// Buyers of the warm-up sale before this drop (0: a cold start).
    pub warmup_buyers: usize,
    /// Orders offered per second (`None`: closed loop).
    pub offered_per_sec: Option<f64>,
    pub post_wall_secs: f64,
    pub accepted_per_sec: f64,
    pub post_latency_ms: Summary,
    /// POST latency by the second the buyer arrived in: where in the drop
    /// the tail comes from.
    pub post_latency_by_second: Vec<SecondLatency>,
    /// Orders decided (reserved or rejected) per second, first POST to last decision.
    pub decided_per_sec: f64,
    pub time_to_decided_ms: Summary,
    pub time_to_paid_ms: Summary,
    /// Where a paid order's time went, each from its POST: decided, the
    /// provider's webhook received, the payment applied.
    pub paid_stages_ms: PaidStages,
    pub seats_sold: i64,
    pub seats_held_after: i64,
    pub oversold: bool,
    pub orders_by_status: Vec<(String, i64)>,
    pub paid_orders: i64,
    pub emails_sent: i64,
    pub errors: Vec<(String, usize)>,
    pub peak_rss_mb: Option<f64>,
    /// Mean time inside a job, per queue, from the server's own metrics.
    pub mean_job_ms: Vec<(String, f64)>,
    pub tiers: usize,
    /// CPU seconds from the drop's start until its last email, per process
    /// group (`None` where `/proc` could not be read).
    pub cpu_secs: Option<CpuSecs>,
    /// The same per 1,000 orders placed: whether cost grows linearly.
    pub cpu_ms_per_1000_orders: Option<CpuSecs>,
    /// From the last payment applied to the last confirmation sent.
    pub last_payment_to_last_email_ms: Option<f64>,
}

/// CPU time of the server, of Postgres (every `postgres` process, and what
/// its postmaster's exited children used) and of Redis.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuSecs {
    pub server: f64,
    pub postgres: f64,
    pub redis: f64,
}

impl CpuSecs {
    fn minus(self, before: CpuSecs) -> CpuSecs {
        CpuSecs {
            server: self.server - before.server,
            postgres: self.postgres - before.postgres,
            redis: self.redis - before.redis,
        }
    }

    fn per_1000(self, orders: usize) -> CpuSecs {
        let k = 1_000_000.0 / orders.max(1) as f64;
        CpuSecs {
            server: self.server * k,
            postgres: self.postgres * k,
            redis: self.redis * k,
        }
    }
}

/// `(comm, utime + stime, cutime + cstime)` in seconds, from `/proc/<pid>/stat`.
fn proc_cpu(pid: &str) -> Option<(String, f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = stat.rsplit_once(") ")?;
    let comm = head.split_once(" (")?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the state (field 3): utime is field 14, stime 15, cutime 16,
    // cstime 17 (1-based over the whole line).
    let tick = |i: usize| fields.get(i - 3)?.parse::<f64>().ok();
    let hz = 100.0;
    Some((
        comm,
        (tick(14)? + tick(15)?) / hz,
        (tick(16)? + tick(17)?) / hz,
    ))
}

/// The CPU used so far by the server, Postgres and Redis.
fn cpu_now(server: u32) -> Option<CpuSecs> {
    let mut total = CpuSecs {
        server: proc_cpu(&server.to_string())?.1,
        ..CpuSecs::default()
    };
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Some((comm, own, children)) = proc_cpu(&pid) else {
            continue;
        };
        match comm.as_str() {
            // The postmaster's children's time covers backends that exited.
            "postgres" => total.postgres += own + children,
            "redis-server" => total.redis += own,
            _ => {}
        }
    }
    Some(total)
}

#[derive(Debug, Serialize)]
pub struct SecondLatency {
    pub second: u32,
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn by_second<T>(results: &[(f64, f64, T)]) -> Vec<SecondLatency> {
    let mut seconds: std::collections::BTreeMap<u32, Vec<f64>> = Default::default();
    for (arrived, ms, _) in results {
        seconds.entry(*arrived as u32).or_default().push(*ms);
    }
    seconds
        .into_iter()
        .map(|(second, values)| {
            let s = summarize(values);
            SecondLatency {
                second,
                count: s.count,
                p50_ms: s.p50,
                p99_ms: s.p99,
            }
        })
        .collect()
}

/// Mean job duration per queue between two Prometheus text pages
/// (`boxoffice_job_duration_seconds_{sum,count}{queue="..."}`): the jobs of
/// this drop, not of a warm-up before it.
fn mean_job_ms(before: &str, after: &str) -> Vec<(String, f64)> {
    let value = |metrics: &str, suffix: &str, queue: &str| {
        let head = format!("boxoffice_job_duration_seconds_{suffix}{{queue=\"{queue}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&head))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    let delta = |suffix: &str, queue: &str| {
        Some(value(after, suffix, queue)? - value(before, suffix, queue).unwrap_or(0.0))
    };
    ["purchases", "payments", "emails"]
        .into_iter()
        .filter_map(|q| {
            let (sum, count) = (delta("sum", q)?, delta("count", q)?);
            (count > 0.0).then(|| (q.to_owned(), sum / count * 1000.0))
        })
        .collect()
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = sql_types::Text)]
    key: String,
    #[diesel(sql_type = sql_types::BigInt)]
    n: i64,
}

#[derive(Debug, Serialize)]
pub struct PaidStages {
    pub decided: Summary,
    pub webhook_received: Summary,
    pub applied: Summary,
}

#[derive(QueryableByName)]
struct Stages {
    #[diesel(sql_type = sql_types::Double)]
    decided: f64,
    #[diesel(sql_type = sql_types::Double)]
    received: f64,
    #[diesel(sql_type = sql_types::Double)]
    applied: f64,
}

#[derive(QueryableByName)]
struct Ms {
    #[diesel(sql_type = sql_types::Double)]
    ms: f64,
}

/// The server's Prometheus page (empty if it cannot be read).
async fn metrics(http: &reqwest::Client, target: &Target) -> String {
    match http.get(format!("{}/metrics", target.api_url)).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn count(db: &DbPool, sql: &str) -> Result<i64> {
    let mut conn = db.get().await?;
    let rows: Vec<Row> = diesel::sql_query(sql).load(&mut conn).await?;
    Ok(<[Row]>::first(&rows).map_or(0, |r| r.n))
}

/// Users with a live session each, straight in the database (registering
/// 20,000 people through argon2 would measure password hashing instead), and
/// an access token for each, signed as the server signs them.
pub async fn make_buyers(
    target: &Target,
    run: &str,
    n: usize,
    role: &str,
) -> Result<Vec<(Uuid, String)>> {
    let mut conn = target.db.get().await?;
    let now = chrono::Utc::now();
    let mut out = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
        let ids: Vec<Uuid> = chunk.iter().map(|_| Uuid::now_v7()).collect();
        let emails: Vec<String> = chunk
            .iter()
            .map(|i| format!("bench-{run}-{role}-{i}@bench.invalid"))
            .collect();
        let hashes: Vec<Vec<u8>> = chunk
            .iter()
            .map(|_| Uuid::new_v4().as_bytes().to_vec())
            .collect();
        diesel::sql_query(
            "INSERT INTO users (id, email, password_hash, display_name, role, email_verified_at)
             SELECT id, email, 'bench-no-login', 'Bench Buyer', $3, now()
               FROM unnest($1::uuid[], $2::text[]) AS u(id, email)",
        )
        .bind::<sql_types::Array<sql_types::Uuid>, _>(&ids)
        .bind::<sql_types::Array<sql_types::Text>, _>(&emails)
        .bind::<sql_types::Text, _>(role)
        .execute(&mut conn)
        .await?;
        diesel::sql_query(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at)
             SELECT gen_random_uuid(), id, id, hash, now() + interval '1 day'
               FROM unnest($1::uuid[], $2::bytea[]) AS t(id, hash)",
        )
        .bind::<sql_types::Array<sql_types::Uuid>, _>(&ids)
        .bind::<sql_types::Array<sql_types::Binary>, _>(&hashes)
        .execute(&mut conn)
        .await?;
        for id in ids {
            let token = jwt::encode(
                &jwt::Claims {
                    sub: id,
                    role: role.into(),
                    sid: id,
                    ver: 0,
                    iat: now.timestamp(),
                    exp: now.timestamp() + 3600,
                },
                target.jwt_secret.as_bytes(),
            );
            out.push((id, token));
        }
    }
    Ok(out)
}

pub fn rss_mb(pid: u32) -> Option<f64> {
    status_mb(pid, "VmRSS:")
}

/// The process's peak resident memory over its life (`VmHWM`).
pub fn peak_rss_mb(pid: u32) -> Option<f64> {
    status_mb(pid, "VmHWM:")
}

fn status_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

pub async fn run(target: &Target, params: &Params) -> Result<Report> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(params.concurrency)
        .timeout(Duration::from_secs(60))
        .build()?;
    if params.warmup_buyers > 0 {
        let warmup = Params {
            seats: (params.warmup_buyers / 20).max(1) as i32,
            buyers: params.warmup_buyers,
            warmup_buyers: 0,
            ..params.clone()
        };
        let report = sell(target, &http, &warmup).await.context("warm-up sale")?;
        eprintln!(
            "hot drop: warm-up sale of {} buyers done ({} seats sold)",
            report.buyers, report.seats_sold
        );
    }
    let mut report = sell(target, &http, params).await?;
    report.warmup_buyers = params.warmup_buyers;
    Ok(report)
}

/// One sale, on an event of its own.
async fn sell(target: &Target, http: &reqwest::Client, params: &Params) -> Result<Report> {
    let run = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let api = target.api_url.trim_end_matches('/');

    // The event: created and published through the API, as an organizer would.
    let (_, organizer) = make_buyers(target, &run, 1, "organizer").await?.remove(0);
    let start = chrono::Utc::now() + chrono::Duration::days(30);
    let event: serde_json::Value = http
        .post(format!("{api}/v1/events"))
        .bearer_auth(&organizer)
        .json(
            &json!({"title": format!("Hot drop {run}"), "category": "music", "city": "Paris",
                      "starts_at": start, "ends_at": start + chrono::Duration::hours(3),
                      "timezone": "Europe/Paris", "currency": "EUR"}),
        )
        .send()
        .await?
        .error_for_status()
        .context("create event")?
        .json()
        .await?;
    let event_id = event["id"].as_str().context("event id")?.to_owned();
    // No tier without a seat (a small warm-up sale has fewer seats).
    let tiers = params.tiers.clamp(1, params.seats.max(1) as usize);
    let mut tier_ids = Vec::with_capacity(tiers);
    for t in 0..tiers {
        // The seats split evenly; the first tiers take the remainder.
        let share =
            params.seats / tiers as i32 + i32::from((t as i32) < params.seats % tiers as i32);
        let tier: serde_json::Value = http
            .post(format!("{api}/v1/events/{event_id}/tiers"))
            .bearer_auth(&organizer)
            .json(
                &json!({"name": format!("Tier {}", t + 1), "price_minor": 4900 + 1000 * t as i64,
                          "quantity": share, "max_per_order": 2}),
            )
            .send()
            .await?
            .error_for_status()
            .context("create tier")?
            .json()
            .await?;
        tier_ids.push(tier["id"].as_str().context("tier id")?.to_owned());
    }
    http.post(format!("{api}/v1/events/{event_id}/publish"))
        .bearer_auth(&organizer)
        .send()
        .await?
        .error_for_status()
        .context("publish")?;
    let buyers = make_buyers(target, &run, params.buyers, "attendee").await?;

    // Memory, sampled through the drop.
    let stop_sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = target.pid.map(|pid| {
        let stop = stop_sampling.clone();
        tokio::spawn(async move {
            let mut peak: f64 = 0.0;
            while !std::sync::atomic::AtomicBool::load(&stop, std::sync::atomic::Ordering::Relaxed)
            {
                match rss_mb(pid) {
                    Some(mb) => peak = peak.max(mb),
                    None => break,
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        })
    });

    // Every request is built before the drop: the client shares the
    // machine with the server, so during the drop it only sends.
    let url = format!("{api}/v1/events/{event_id}/orders");
    let requests = buyers
        .iter()
        .enumerate()
        .map(|(i, (_, token))| {
            http.post(&url)
                .bearer_auth(token)
                .header("idempotency-key", format!("drop-{i}"))
                .json(
                    &json!({"items": [{"tier_id": tier_ids[i % tiers], "quantity": (i % 2) + 1}]}),
                )
                .build()
        })
        .collect::<reqwest::Result<Vec<reqwest::Request>>>()?;

    let metrics_before = metrics(http, target).await;
    let cpu_before = target.pid.and_then(cpu_now);
    // The drop.
    eprintln!(
        "hot drop: {} buyers signed in; the drop starts",
        buyers.len()
    );
    let started = Instant::now();
    let results: Vec<(f64, f64, Result<u16, String>)> =
        futures::stream::iter(requests.into_iter().enumerate())
            .map(|(i, request)| async move {
                let t = match params.rate {
                    Some(rate) => {
                        let arrival = started + Duration::from_secs_f64(i as f64 / rate);
                        tokio::time::sleep_until(arrival.into()).await;
                        arrival
                    }
                    None => Instant::now(),
                };
                let result = http
                    .execute(request)
                    .await
                    .map(|r| r.status().as_u16())
                    .map_err(|e| {
                        if e.is_timeout() {
                            "timeout".to_owned()
                        } else {
                            "connection".to_owned()
                        }
                    });
                let arrived = t.duration_since(started).as_secs_f64();
                (arrived, t.elapsed().as_secs_f64() * 1000.0, result)
            })
            .buffer_unordered(params.concurrency)
            .collect()
            .await;
    let post_wall = started.elapsed().as_secs_f64();
    let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
    let mut accepted = 0usize;
    for (_, _, r) in &results {
        match r {
            Ok(202) => accepted += 1,
            Ok(code) => *errors.entry(format!("http {code}")).or_default() += 1,
            Err(kind) => *errors.entry(kind.clone()).or_default() += 1,
        }
    }
    let latencies: Vec<f64> = results.iter().map(|(_, ms, _)| *ms).collect();
    let post_latency_by_second = by_second(&results);
    let seconds: Vec<String> = post_latency_by_second
        .iter()
        .map(|s| format!("{}s {:.0}/{:.0}", s.second, s.p50_ms, s.p99_ms))
        .collect();
    eprintln!(
        "hot drop: POST p50/p99 ms by second of arrival: {}",
        seconds.join(", ")
    );
    // The first two seconds (the sale's) closer up.
    let tenths: Vec<(f64, f64, ())> = results
        .iter()
        .filter(|(arrived, _, _)| *arrived < 2.0)
        .map(|(arrived, ms, _)| (arrived * 10.0, *ms, ()))
        .collect();
    let tenths: Vec<String> = by_second(&tenths)
        .iter()
        .map(|s| {
            format!(
                "{:.1}s {:.0}/{:.0}",
                f64::from(s.second) / 10.0,
                s.p50_ms,
                s.p99_ms
            )
        })
        .collect();
    eprintln!("hot drop: by 100 ms: {}", tenths.join(", "));

    // Wait until every order is final: no pending, no unpaid hold left.
    let deadline = Instant::now() + params.settle_timeout;
    let open_sql = format!(
        "SELECT 'open' AS key, count(*)::bigint AS n FROM orders
          WHERE event_id = '{event_id}' AND status IN ('pending', 'awaiting_payment')"
    );
    loop {
        let open = count(&target.db, &open_sql).await?;
        if open == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("{open} orders still open after {:?}", params.settle_timeout);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let paid = count(
        &target.db,
        &format!("SELECT 'paid' AS key, count(*)::bigint AS n FROM orders WHERE event_id = '{event_id}' AND status = 'paid'"),
    )
    .await?;
    // Emails follow payments by a little.
    let email_sql = format!(
        "SELECT 'sent' AS key, count(*)::bigint AS n FROM email_log e JOIN orders o
           ON e.dedupe_key = 'order_confirmation:' || o.id::text
          WHERE o.event_id = '{event_id}' AND e.status = 'sent'"
    );
    let mut emails = 0;
    while Instant::now() < deadline + Duration::from_secs(60) {
        emails = count(&target.db, &email_sql).await?;
        if emails >= paid {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cpu_secs = match (cpu_before, target.pid.and_then(cpu_now)) {
        (Some(before), Some(after)) => Some(after.minus(before)),
        _ => None,
    };
    // The sampler ends when told; it returns the highest reading.
    let peak_rss = match sampler {
        Some(task) => {
            stop_sampling.store(true, std::sync::atomic::Ordering::Relaxed);
            task.await.ok()
        }
        None => None,
    };

    let mean_job_ms = mean_job_ms(&metrics_before, &metrics(http, target).await);

    let mut conn = target.db.get().await?;
    let ttl_ms = params.reservation_ttl.as_millis() as f64;
    // Decision time: a reservation's end minus the TTL is when its batch ran;
    // a rejection's last update is its decision.
    let decided: Vec<Ms> = diesel::sql_query(format!(
        "SELECT CASE WHEN reserved_until IS NOT NULL
                     THEN extract(epoch FROM reserved_until - created_at) * 1000 - {ttl_ms}
                     ELSE extract(epoch FROM updated_at - created_at) * 1000 END::float8 AS ms
           FROM orders WHERE event_id = '{event_id}'"
    ))
    .load(&mut conn)
    .await?;
    let paid_ms: Vec<Ms> = diesel::sql_query(format!(
        "SELECT (extract(epoch FROM paid_at - created_at) * 1000)::float8 AS ms
           FROM orders WHERE event_id = '{event_id}' AND paid_at IS NOT NULL"
    ))
    .load(&mut conn)
    .await?;
    let stages: Vec<Stages> = diesel::sql_query(format!(
        "SELECT (extract(epoch FROM o.reserved_until - o.created_at) * 1000 - {ttl_ms})::float8 AS decided,
                (extract(epoch FROM w.received_at - o.created_at) * 1000)::float8 AS received,
                (extract(epoch FROM o.paid_at - o.created_at) * 1000)::float8 AS applied
           FROM orders o
           JOIN webhook_inbox w ON w.payload->'event'->'kind'->>'order_id' = o.id::text
          WHERE o.event_id = '{event_id}' AND o.paid_at IS NOT NULL"
    ))
    .load(&mut conn)
    .await?;
    let stage = |f: fn(&Stages) -> f64| summarize(stages.iter().map(f).collect());
    let paid_stages_ms = PaidStages {
        decided: stage(|s| s.decided),
        webhook_received: stage(|s| s.received),
        applied: stage(|s| s.applied),
    };
    let span: Vec<Ms> = diesel::sql_query(format!(
        "SELECT (extract(epoch FROM max(coalesce(reserved_until - interval '{ttl_ms} milliseconds', updated_at)) - min(created_at)) * 1000)::float8 AS ms
           FROM orders WHERE event_id = '{event_id}'"
    ))
    .load(&mut conn)
    .await?;
    let by_status: Vec<Row> = diesel::sql_query(format!(
        "SELECT status AS key, count(*)::bigint AS n FROM orders WHERE event_id = '{event_id}' GROUP BY status ORDER BY status"
    ))
    .load(&mut conn)
    .await?;
    // Payments are settled into the stock row shortly after; wait for it so
    // the counters below are the row's own.
    let unsettled_sql = format!(
        "SELECT 'n' AS key, count(*)::bigint AS n FROM pending_sales p
           JOIN ticket_tiers t ON t.id = p.tier_id WHERE t.event_id = '{event_id}'"
    );
    while count(&target.db, &unsettled_sql).await? > 0
        && Instant::now() < deadline + Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stock: Vec<Row> = diesel::sql_query(format!(
        "SELECT 'sold' AS key, coalesce(sum(s.sold), 0)::bigint AS n
           FROM tier_stock s JOIN ticket_tiers t ON t.id = s.tier_id WHERE t.event_id = '{event_id}'
         UNION ALL
         SELECT 'held', coalesce(sum(s.held), 0)::bigint
           FROM tier_stock s JOIN ticket_tiers t ON t.id = s.tier_id WHERE t.event_id = '{event_id}'"
    ))
    .load(&mut conn)
    .await?;
    let sold = stock.iter().find(|r| r.key == "sold").map_or(0, |r| r.n);
    let held = stock.iter().find(|r| r.key == "held").map_or(0, |r| r.n);
    let email_lag: Vec<Ms> = diesel::sql_query(format!(
        "SELECT coalesce(extract(epoch FROM max(e.sent_at) - max(o.paid_at)) * 1000, -1)::float8 AS ms
           FROM orders o JOIN email_log e ON e.dedupe_key = 'order_confirmation:' || o.id::text
          WHERE o.event_id = '{event_id}' AND o.paid_at IS NOT NULL"
    ))
    .load(&mut conn)
    .await?;
    let decided_count = decided.len() as f64;
    let span_secs = <[Ms]>::first(&span)
        .map_or(0.0, |s| s.ms / 1000.0)
        .max(1e-3);
    Ok(Report {
        event_id: event_id.clone(),
        organizer_token: organizer.clone(),
        seats: params.seats,
        buyers: params.buyers,
        concurrency: params.concurrency,
        warmup_buyers: 0,
        offered_per_sec: params.rate,
        post_wall_secs: post_wall,
        accepted_per_sec: accepted as f64 / post_wall,
        post_latency_ms: summarize(latencies),
        post_latency_by_second,
        decided_per_sec: decided_count / span_secs,
        time_to_decided_ms: summarize(decided.into_iter().map(|m| m.ms.max(0.0)).collect()),
        time_to_paid_ms: summarize(paid_ms.into_iter().map(|m| m.ms).collect()),
        paid_stages_ms,
        seats_sold: sold,
        seats_held_after: held,
        oversold: sold > i64::from(params.seats),
        orders_by_status: by_status.into_iter().map(|r| (r.key, r.n)).collect(),
        paid_orders: paid,
        emails_sent: emails,
        errors: errors.into_iter().collect(),
        peak_rss_mb: peak_rss,
        mean_job_ms,
        tiers,
        cpu_secs,
        cpu_ms_per_1000_orders: cpu_secs.map(|c| c.per_1000(params.buyers)),
        last_payment_to_last_email_ms: <[Ms]>::first(&email_lag)
            .map(|m| m.ms)
            .filter(|ms| *ms >= 0.0),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn latencies_are_grouped_by_the_second_of_arrival() {
        let results = [
            (0.1, 10.0, ()),
            (0.9, 30.0, ()),
            (2.0, 5.0, ()),
            (2.5, 7.0, ()),
            (2.99, 9.0, ()),
        ];
        let seconds: Vec<(u32, usize, f64, f64)> = super::by_second(&results)
            .into_iter()
            .map(|s| (s.second, s.count, s.p50_ms, s.p99_ms))
            .collect();
        assert_eq!(seconds, vec![(0, 2, 30.0, 30.0), (2, 3, 7.0, 9.0)]);
    }

    #[test]
    fn mean_job_time_counts_only_the_jobs_since_the_first_page() {
        let before = "boxoffice_job_duration_seconds_sum{queue=\"purchases\"} 1.0\n\
                      boxoffice_job_duration_seconds_count{queue=\"purchases\"} 100\n";
        let after = "boxoffice_job_duration_seconds_sum{queue=\"purchases\"} 1.5\n\
                     boxoffice_job_duration_seconds_count{queue=\"purchases\"} 200\n\
                     boxoffice_job_duration_seconds_sum{queue=\"emails\"} 0.2\n\
                     boxoffice_job_duration_seconds_count{queue=\"emails\"} 10\n";
        assert_eq!(
            super::mean_job_ms(before, after),
            vec![("purchases".to_owned(), 5.0), ("emails".to_owned(), 20.0)]
        );
    }
}
