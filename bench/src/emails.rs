//! Email throughput: order confirmations (text, HTML, one QR code per ticket
//! inline, an `.ics` attachment) rendered and sent over SMTP into a local
//! sink by real worker processes. A small drop sells a few orders first, so
//! every email renders a real paid order; then `count` more confirmations of
//! those orders are queued at once and timed until the last is `sent`.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use boxoffice_core::{Config, Services, jobs::SendEmail, queue::Schedule};
use diesel::{QueryableByName, sql_types};
use diesel_async::RunQueryDsl;
use serde::Serialize;
use uuid::Uuid;

use crate::{
    hot_drop::{self, Target},
    smtp_sink::SmtpSink,
};

#[derive(Debug, Serialize)]
pub struct Run {
    pub processes: usize,
    pub emails: usize,
    pub sent: i64,
    pub received_by_sink: usize,
    pub secs: f64,
    pub sent_per_sec: f64,
}

#[derive(QueryableByName)]
struct Paid {
    #[diesel(sql_type = sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = sql_types::Uuid)]
    buyer_id: Uuid,
    #[diesel(sql_type = sql_types::Text)]
    email: String,
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = sql_types::BigInt)]
    n: i64,
}

pub async fn measure(
    target: &Target,
    config: &Config,
    sink: &SmtpSink,
    processes: usize,
    count: usize,
) -> Result<Run> {
    let sold = hot_drop::run(
        target,
        &hot_drop::Params {
            seats: 40,
            tiers: 1,
            buyers: 40,
            concurrency: 8,
            rate: None,
            reservation_ttl: Duration::from_secs(600),
            settle_timeout: Duration::from_secs(60),
            warmup_buyers: 0,
        },
    )
    .await?;
    if sold.paid_orders == 0 {
        bail!("the warm-up drop sold nothing");
    }
    let mut conn = target.db.get().await?;
    let paid: Vec<Paid> = diesel::sql_query(
        "SELECT o.id, o.buyer_id, u.email FROM orders o JOIN users u ON u.id = o.buyer_id
          WHERE o.status = 'paid' ORDER BY o.id",
    )
    .load(&mut conn)
    .await?;
    let ids: Vec<Uuid> = (0..count).map(|_| Uuid::now_v7()).collect();
    let pick = |i: usize| &paid[i % paid.len()];
    diesel::sql_query(
        "INSERT INTO email_log (id, dedupe_key, template, to_address, user_id, params)
         SELECT id, 'bench:' || id::text, 'order_confirmation', email, user_id,
                jsonb_build_object('order_id', order_id)
           FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[])
                AS e(id, email, user_id, order_id)",
    )
    .bind::<sql_types::Array<sql_types::Uuid>, _>(&ids)
    .bind::<sql_types::Array<sql_types::Text>, _>(
        (0..count)
            .map(|i| pick(i).email.clone())
            .collect::<Vec<_>>(),
    )
    .bind::<sql_types::Array<sql_types::Uuid>, _>(
        (0..count).map(|i| pick(i).buyer_id).collect::<Vec<_>>(),
    )
    .bind::<sql_types::Array<sql_types::Uuid>, _>(
        (0..count).map(|i| pick(i).id).collect::<Vec<_>>(),
    )
    .execute(&mut conn)
    .await?;

    let services = Services::connect(config.clone())
        .await
        .map_err(anyhow::Error::msg)?;
    let before = sink.count();
    let started = Instant::now();
    let jobs: Vec<SendEmail> = ids.iter().map(|&email_id| SendEmail { email_id }).collect();
    services.queues.push_many(&jobs, Schedule::now()).await?;
    let sent_sql = "SELECT count(*)::bigint AS n FROM email_log
                     WHERE dedupe_key LIKE 'bench:%' AND status = 'sent'";
    let deadline = started + Duration::from_secs(300);
    // Watch the sink, not the table: a count over `email_log` every few
    // milliseconds would take Postgres time from the workers measured.
    while sink.count() - before < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut sent = 0;
    while Instant::now() < deadline {
        let rows: Vec<N> = diesel::sql_query(sent_sql).load(&mut conn).await?;
        sent = <[N]>::first(&rows).map_or(0, |r| r.n);
        if sent >= count as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(Run {
        processes,
        emails: count,
        sent,
        received_by_sink: sink.count() - before,
        secs,
        sent_per_sec: sent as f64 / secs,
    })
}
