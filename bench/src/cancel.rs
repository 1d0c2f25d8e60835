//! Event cancellation: a drop sells `orders` paid orders (one buyer each),
//! their confirmations go out, then the organizer cancels the event and we
//! time until every paid order's refund has `succeeded` and every refund
//! email is `sent`. Meanwhile a small paced drop sells another event on the
//! same server; its POST latency is compared with the same drop run alone
//! just before.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use diesel::{QueryableByName, sql_types};
use diesel_async::RunQueryDsl;
use serde::Serialize;

use crate::hot_drop::{self, Target};

#[derive(Debug, Serialize)]
pub struct Run {
    pub worker_processes: usize,
    pub paid_orders: i64,
    /// From the cancel request to the last refund `succeeded`.
    pub refunds_secs: f64,
    pub refunds_per_sec: f64,
    /// From the cancel request to the last refund email `sent`.
    pub emails_secs: f64,
    pub refunds_succeeded: i64,
    pub refund_emails_sent: i64,
    /// Orders with more than one refund (must be 0).
    pub refunded_twice: i64,
    /// The small drop's POST p99, alone and during the cancellation.
    pub side_drop_post_p99_ms_solo: f64,
    pub side_drop_post_p99_ms_during: f64,
    /// The `dev` process's peak over the whole run (the sale included).
    pub peak_rss_mb: Option<f64>,
    /// Its peak from the cancel request on (the sale's is the hot drop's).
    pub cancellation_peak_rss_mb: Option<f64>,
    /// Refunds succeeded in each second from the cancel request.
    pub refunds_by_second: Vec<i64>,
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = sql_types::BigInt)]
    n: i64,
}

/// One `… AS n` bigint of the target's database.
pub(crate) async fn count(target: &Target, sql: &str) -> Result<i64> {
    let mut conn = target.db.get().await?;
    let rows: Vec<N> = diesel::sql_query(sql).load(&mut conn).await?;
    Ok(<[N]>::first(&rows).map_or(0, |r| r.n))
}

#[derive(QueryableByName)]
struct BySecond {
    #[diesel(sql_type = sql_types::Integer)]
    second: i32,
    #[diesel(sql_type = sql_types::BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct S {
    #[diesel(sql_type = sql_types::Double)]
    s: f64,
}

/// One `… AS s` float8 of the target's database.
async fn seconds(target: &Target, sql: &str) -> Result<f64> {
    let mut conn = target.db.get().await?;
    let rows: Vec<S> = diesel::sql_query(sql).load(&mut conn).await?;
    <[S]>::first(&rows).map(|r| r.s).context("no row")
}

/// The small drop sold beside the cancellation: 2,000 buyers at 400/s.
fn side_drop() -> hot_drop::Params {
    hot_drop::Params {
        seats: 200,
        tiers: 1,
        buyers: 2_000,
        concurrency: 64,
        rate: Some(400.0),
        reservation_ttl: Duration::from_secs(600),
        settle_timeout: Duration::from_secs(120),
        warmup_buyers: 0,
    }
}

pub async fn measure(target: &Target, worker_processes: usize, orders: usize) -> Result<Run> {
    // Each buyer takes 1–2 seats: twice the seats sells every order.
    let sale = hot_drop::run(
        target,
        &hot_drop::Params {
            seats: (orders * 2) as i32,
            tiers: 1,
            buyers: orders,
            concurrency: 128,
            rate: None,
            reservation_ttl: Duration::from_secs(600),
            settle_timeout: Duration::from_secs(300),
            warmup_buyers: 0,
        },
    )
    .await
    .context("the sale")?;
    if sale.emails_sent < sale.paid_orders {
        bail!("the sale's confirmations are not all out");
    }
    eprintln!("cancel: {} paid orders sold", sale.paid_orders);
    let solo = hot_drop::run(target, &side_drop())
        .await
        .context("side drop alone")?;

    let sale_peak_rss_mb = target.pid.and_then(hot_drop::peak_rss_mb);
    // From here the kernel's peak (VmHWM) is the cancellation's.
    if let Some(pid) = target.pid {
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("reset the peak RSS")?;
    }
    let http = reqwest::Client::new();
    let api = target.api_url.trim_end_matches('/');
    let started = Instant::now();
    // The end times are read from the rows' own timestamps, against the
    // database's clock at the start: exact, and the polling below only
    // has to notice that it is over (a poll every 100 ms of two counts
    // over the tables cost the box about a tenth of a core).
    let started_at = seconds(
        target,
        "SELECT extract(epoch FROM clock_timestamp())::float8 AS s",
    )
    .await?;
    let side = tokio::spawn({
        let target = target.clone();
        async move { hot_drop::run(&target, &side_drop()).await }
    });
    http.post(format!("{api}/v1/events/{}/cancel", sale.event_id))
        .bearer_auth(&sale.organizer_token)
        .json(&serde_json::json!({"message": "Benchmark cancellation"}))
        .send()
        .await?
        .error_for_status()
        .context("cancel")?;
    let deadline = started + Duration::from_secs(600);
    let succeeded_sql = "SELECT count(*)::bigint AS n FROM refunds
                          WHERE kind = 'event_cancelled' AND status = 'succeeded'";
    let sent_sql = "SELECT count(*)::bigint AS n FROM email_log
                     WHERE template = 'refund_notice' AND status = 'sent'";
    let (mut succeeded, mut sent) = (0, 0);
    while Instant::now() < deadline && sent < sale.paid_orders {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if succeeded < sale.paid_orders {
            succeeded = count(target, succeeded_sql).await?;
        } else {
            sent = count(target, sent_sql).await?;
        }
    }
    if sent < sale.paid_orders {
        bail!("not finished in time: {succeeded} refunds, {sent} emails");
    }
    let refunds_secs = seconds(
        target,
        "SELECT extract(epoch FROM max(updated_at))::float8 AS s FROM refunds
          WHERE kind = 'event_cancelled' AND status = 'succeeded'",
    )
    .await?
        - started_at;
    let by_second: Vec<BySecond> = {
        let mut conn = target.db.get().await?;
        diesel::sql_query(
            "SELECT floor(extract(epoch FROM updated_at) - $1)::int AS second, count(*)::bigint AS n
               FROM refunds WHERE kind = 'event_cancelled' AND status = 'succeeded'
              GROUP BY 1 ORDER BY 1",
        )
        .bind::<sql_types::Double, _>(started_at)
        .load(&mut conn)
        .await?
    };
    let mut refunds_by_second = Vec::new();
    for row in by_second {
        let second = usize::try_from(row.second).unwrap_or(0);
        if refunds_by_second.len() <= second {
            refunds_by_second.resize(second + 1, 0);
        }
        refunds_by_second[second] += row.n;
    }
    let emails_secs = seconds(
        target,
        "SELECT extract(epoch FROM max(sent_at))::float8 AS s FROM email_log
          WHERE template = 'refund_notice' AND status = 'sent'",
    )
    .await?
        - started_at;
    let during = side.await?.context("side drop during the cancellation")?;
    let cancellation_peak_rss_mb = target.pid.and_then(hot_drop::peak_rss_mb);
    let refunded_twice = count(
        target,
        "SELECT count(*)::bigint AS n FROM (SELECT order_id FROM refunds
          GROUP BY order_id HAVING count(*) > 1) twice",
    )
    .await?;
    Ok(Run {
        worker_processes,
        paid_orders: sale.paid_orders,
        refunds_secs,
        refunds_per_sec: sale.paid_orders as f64 / refunds_secs,
        emails_secs,
        refunds_succeeded: succeeded,
        refund_emails_sent: sent,
        refunded_twice,
        side_drop_post_p99_ms_solo: solo.post_latency_ms.p99,
        side_drop_post_p99_ms_during: during.post_latency_ms.p99,
        peak_rss_mb: match (sale_peak_rss_mb, cancellation_peak_rss_mb) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        },
        cancellation_peak_rss_mb,
        refunds_by_second,
    })
}
