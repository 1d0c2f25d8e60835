//! Check-in at a big event's door: `scanners` concurrent scanners scan
//! every ticket of a `tickets`-ticket event twice, the two scans of a
//! ticket taken one after the other from a shared list so that they race
//! (as two gates would when a guest tries twice). Every ticket must be
//! admitted exactly once. Then the organizer's stats and attendee search
//! of that event are timed.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use diesel::{QueryableByName, sql_types::Text};
use diesel_async::RunQueryDsl;
use serde::Serialize;

use crate::{
    cancel::count,
    hot_drop::{self, Target},
    reminders::big_event,
    stats::{Summary, summarize},
};

#[derive(Debug, Serialize)]
pub struct Run {
    pub tickets: i64,
    pub scanners: usize,
    pub scans: usize,
    pub scans_per_sec: f64,
    /// Every scan's latency (ms), admitted or refused.
    pub scan_ms: Summary,
    pub admitted: usize,
    /// Refused as already in (the second scan of each ticket).
    pub already_in: usize,
    /// Other answers (must be 0).
    pub errors: usize,
    /// Tickets with more than one standing check-in (must be 0).
    pub double_admissions: i64,
    pub stats_ms: Summary,
    pub search_ms: Summary,
    /// The whole attendee list as CSV, streamed: rows, seconds, and how far
    /// the server's RSS rose above where it stood before (sampled every
    /// 20 ms).
    pub csv_rows: usize,
    pub csv_secs: f64,
    pub csv_rss_growth_mb: Option<f64>,
    pub peak_rss_mb: Option<f64>,
}

#[derive(QueryableByName)]
struct Code {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    code: String,
}

pub async fn measure(target: &Target, tickets: usize, scanners: usize) -> Result<Run> {
    let (sale, _) = big_event(target, tickets).await?;
    let event = sale.event_id.clone();
    let codes: Vec<Code> = {
        let mut conn = target.db.get().await?;
        diesel::sql_query(format!(
            "SELECT id::text AS id, code FROM tickets WHERE event_id = '{event}' ORDER BY id"
        ))
        .load(&mut conn)
        .await?
    };
    // Holders are addresses; the sale's buyers hold several tickets each.
    let holders = codes.len() as i64;
    let secret = target.jwt_secret.as_bytes();
    // Each payload twice in a row: the two scans race.
    let scans: Arc<Vec<String>> = Arc::new(
        codes
            .iter()
            .flat_map(|c| {
                let payload =
                    boxoffice_core::tickets::qr_payload(secret, c.id.parse().unwrap(), &c.code);
                [payload.clone(), payload]
            })
            .collect(),
    );
    eprintln!("checkin: {holders} tickets, {} scans", scans.len());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(scanners)
        .timeout(Duration::from_secs(30))
        .build()?;
    let api = target.api_url.trim_end_matches('/').to_owned();
    let url = format!("{api}/v1/events/{event}/check-ins");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for gate in 0..scanners {
        let (http, url, scans, next) = (http.clone(), url.clone(), scans.clone(), next.clone());
        let token = sale.organizer_token.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(code) = scans.get(i) else { break };
                let sent = Instant::now();
                let status = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"code": code, "device": format!("gate {gate}")}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                seen.push((status, sent.elapsed().as_secs_f64() * 1000.0));
            }
            seen
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await?);
    }
    let secs = started.elapsed().as_secs_f64();
    let admitted = outcomes.iter().filter(|(s, _)| *s == 201).count();
    let already_in = outcomes.iter().filter(|(s, _)| *s == 409).count();
    let double_admissions = count(
        target,
        &format!(
            "SELECT count(*)::bigint AS n FROM (SELECT ticket_id FROM check_ins
              WHERE event_id = '{event}' AND undone_at IS NULL
              GROUP BY ticket_id HAVING count(*) > 1) twice"
        ),
    )
    .await?;
    if admitted as i64 != holders {
        bail!("{admitted} of {holders} tickets admitted");
    }

    let timed = |path: String| {
        let (http, token) = (http.clone(), sale.organizer_token.clone());
        async move {
            let sent = Instant::now();
            let ok = http
                .get(&path)
                .bearer_auth(&token)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            ok.then(|| sent.elapsed().as_secs_f64() * 1000.0)
        }
    };
    let mut stats = Vec::new();
    let mut search = Vec::new();
    for i in 0..50 {
        stats.extend(timed(format!("{api}/v1/events/{event}/stats")).await);
        search.extend(
            timed(format!(
                "{api}/v1/events/{event}/attendees?q=holder{}",
                (i * 997) % holders.max(1)
            ))
            .await,
        );
    }
    if stats.len() < 50 || search.len() < 50 {
        bail!("stats or search failed");
    }

    let rss_before = target.pid.and_then(hot_drop::rss_mb);
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (pid, sampling) = (target.pid, sampling.clone());
        tokio::spawn(async move {
            let mut high: Option<f64> = None;
            while std::sync::atomic::AtomicBool::load(&sampling, Ordering::Relaxed) {
                if let Some(mb) = pid.and_then(hot_drop::rss_mb) {
                    high = Some(high.map_or(mb, |h| h.max(mb)));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            high
        })
    };
    let sent = Instant::now();
    let mut response = http
        .get(format!("{api}/v1/events/{event}/attendees?format=csv"))
        .bearer_auth(&sale.organizer_token)
        .timeout(Duration::from_secs(300))
        .send()
        .await?
        .error_for_status()?;
    let mut newlines = 0;
    while let Some(chunk) = response.chunk().await? {
        newlines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let csv_secs = sent.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    let rss_high = sampler.await?;
    // The header line is not an attendee.
    let csv_rows = newlines.saturating_sub(1);
    if csv_rows as i64 != holders {
        bail!("{csv_rows} CSV rows for {holders} holders");
    }
    Ok(Run {
        tickets: holders,
        scanners,
        scans: outcomes.len(),
        scans_per_sec: outcomes.len() as f64 / secs,
        scan_ms: summarize(outcomes.iter().map(|(_, ms)| *ms).collect()),
        admitted,
        already_in,
        errors: outcomes.len() - admitted - already_in,
        double_admissions,
        stats_ms: summarize(stats),
        search_ms: summarize(search),
        csv_rows,
        csv_secs,
        csv_rss_growth_mb: rss_before.zip(rss_high).map(|(b, h)| (h - b).max(0.0)),
        peak_rss_mb: target.pid.and_then(hot_drop::peak_rss_mb),
    })
}
