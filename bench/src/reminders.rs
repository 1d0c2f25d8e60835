//! Reminders of a big event: a small drop sells real orders, more holders
//! are added beside them (tickets as the purchase writes them, each to its
//! own address) up to `holders`, then the organizer moves the event's start
//! into the reminder window. The server's own scheduler picks it up on its
//! next tick and fans it out; we time from the first reminder written to
//! the last one accepted by the SMTP sink, and read how late the
//! scheduler's other entries ran meanwhile from its metrics.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use diesel_async::RunQueryDsl;
use serde::Serialize;

use crate::{
    cancel::count,
    hot_drop::{self, Target},
    smtp_sink::SmtpSink,
};

#[derive(Debug, Serialize)]
pub struct Run {
    pub holders: i64,
    /// From the organizer's move to the first reminder written (the
    /// scheduler's tick, every 5 s).
    pub to_first_written_secs: f64,
    /// From the first reminder written to the last accepted by the sink.
    pub tick_to_last_email_secs: f64,
    pub reminders_per_sec: f64,
    pub reminders_sent: i64,
    /// Holders with more than one reminder (must be 0).
    pub reminded_twice: i64,
    /// Ticks of the scheduler's other entries during the run, and how many
    /// ran more than 2 s late.
    pub other_ticks: u64,
    pub other_ticks_late_over_2s: u64,
    /// The latest bucket any other entry's tick fell in (seconds).
    pub other_ticks_worst_bucket: f64,
    /// The `dev` process's peak (API, workers and scheduler in one).
    pub peak_rss_mb: Option<f64>,
}

/// Per schedule other than `reminders`: (bucket bound, cumulative count)
/// of `scheduler_tick_delay_seconds`, from the metrics text.
fn tick_buckets(metrics: &str) -> Vec<(String, f64, u64)> {
    metrics
        .lines()
        .filter(|l| l.starts_with("boxoffice_scheduler_tick_delay_seconds_bucket{"))
        .filter_map(|l| {
            let schedule = l.split("schedule=\"").nth(1)?.split('"').next()?;
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let n = l.rsplit(' ').next()?.parse().ok()?;
            (schedule != "reminders").then(|| (schedule.to_owned(), le, n))
        })
        .collect()
}

/// (ticks, ticks over 2 s, worst bucket) between two scrapes.
fn other_ticks(before: &str, after: &str) -> (u64, u64, f64) {
    let before = tick_buckets(before);
    let got = |s: &str, le: f64| {
        before
            .iter()
            .find(|(b, l, _)| b == s && *l == le)
            .map_or(0, |(_, _, n)| *n)
    };
    let mut ticks = 0;
    let mut late = 0;
    let mut worst: f64 = 0.0;
    let after = tick_buckets(after);
    for (schedule, le, n) in &after {
        let delta = n - got(schedule, *le);
        if le.is_infinite() {
            ticks += delta;
        }
        if *le == 2.0 {
            let total = after
                .iter()
                .find(|(s, l, _)| s == schedule && l.is_infinite())
                .map_or(0, |(_, _, n)| *n - got(schedule, f64::INFINITY));
            late += total - delta;
        }
    }
    // The smallest bound under which every other tick of the run fell.
    let mut bounds: Vec<f64> = after.iter().map(|(_, le, _)| *le).collect();
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();
    for le in bounds {
        let under: u64 = after
            .iter()
            .filter(|(_, l, _)| *l == le)
            .map(|(s, _, n)| n - got(s, le))
            .sum();
        if under == ticks {
            worst = le;
            break;
        }
    }
    (ticks, late, worst)
}

/// A sold event with `holders` ticket holders: a small drop sells real
/// orders, and tickets are added beside them (as the purchase writes them,
/// each to its own address, codes `BENCH{n}`) up to `holders`. Returns the
/// sale and the holders.
pub async fn big_event(target: &Target, holders: usize) -> Result<(hot_drop::Report, i64)> {
    let sale = hot_drop::run(
        target,
        &hot_drop::Params {
            seats: 400,
            tiers: 1,
            buyers: 200,
            concurrency: 32,
            rate: None,
            reservation_ttl: Duration::from_secs(600),
            settle_timeout: Duration::from_secs(120),
            warmup_buyers: 0,
        },
    )
    .await
    .context("the sale")?;
    if sale.paid_orders == 0 {
        bail!("the sale sold nothing");
    }
    let event = &sale.event_id;
    let sold = count(
        target,
        &format!(
            "SELECT count(DISTINCT lower(attendee_email))::bigint AS n FROM tickets
              WHERE event_id = '{event}'"
        ),
    )
    .await?;
    let more = (holders as i64 - sold).max(0);
    {
        let mut conn = target.db.get().await?;
        diesel::sql_query(format!(
            "INSERT INTO tickets (id, order_id, order_item_id, event_id, tier_id, owner_id, code,
                                  seat_index, attendee_name, attendee_email, status)
             SELECT gen_random_uuid(), t.order_id, t.order_item_id, t.event_id, t.tier_id,
                    t.owner_id, 'BENCH' || g, 1000 + g, 'Holder ' || g,
                    'holder' || g || '@bench.test', 'valid'
               FROM (SELECT * FROM tickets WHERE event_id = '{event}' LIMIT 1) t,
                    generate_series(1, {more}) g"
        ))
        .execute(&mut conn)
        .await?;
        diesel::sql_query("ANALYZE tickets")
            .execute(&mut conn)
            .await?;
    }
    Ok((sale, sold + more))
}

pub async fn measure(target: &Target, sink: &SmtpSink, holders: usize) -> Result<Run> {
    let (sale, holders) = big_event(target, holders).await?;
    let event = &sale.event_id;
    eprintln!("reminders: {holders} holders");

    let http = reqwest::Client::new();
    let api = target.api_url.trim_end_matches('/');
    let metrics = || async {
        match http.get(format!("{api}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    };
    let scrape_before = metrics().await;
    let before = sink.count();
    let starts = chrono::Utc::now() + chrono::Duration::hours(23);
    let moved = Instant::now();
    http.patch(format!("{api}/v1/events/{event}"))
        .bearer_auth(&sale.organizer_token)
        .json(&serde_json::json!({
            "starts_at": starts.to_rfc3339(),
            "ends_at": (starts + chrono::Duration::hours(3)).to_rfc3339(),
        }))
        .send()
        .await?
        .error_for_status()
        .context("move the event")?;
    let written_sql =
        "SELECT count(*)::bigint AS n FROM email_log WHERE template = 'event_reminder'";
    let deadline = moved + Duration::from_secs(600);
    while count(target, written_sql).await? == 0 {
        if Instant::now() > deadline {
            bail!("no reminder written");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_written = Instant::now();
    // Watch the sink, not the table (a count every few ms would take
    // Postgres time from what is measured).
    while sink.count() - before < holders as usize {
        if Instant::now() > deadline {
            bail!("{} of {holders} reminders sent", sink.count() - before);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let last = Instant::now();
    let scrape_after = metrics().await;
    let (other, late, worst) = other_ticks(&scrape_before, &scrape_after);
    let sent = count(
        target,
        "SELECT count(*)::bigint AS n FROM email_log WHERE template = 'event_reminder' AND status = 'sent'",
    )
    .await?;
    let reminded_twice = count(
        target,
        "SELECT count(*)::bigint AS n FROM (SELECT lower(to_address) FROM email_log
          WHERE template = 'event_reminder' GROUP BY 1 HAVING count(*) > 1) twice",
    )
    .await?;
    let secs = (last - first_written).as_secs_f64();
    Ok(Run {
        holders,
        to_first_written_secs: (first_written - moved).as_secs_f64(),
        tick_to_last_email_secs: secs,
        reminders_per_sec: holders as f64 / secs,
        reminders_sent: sent,
        reminded_twice,
        other_ticks: other,
        other_ticks_late_over_2s: late,
        other_ticks_worst_bucket: worst,
        peak_rss_mb: target.pid.and_then(hot_drop::peak_rss_mb),
    })
}
