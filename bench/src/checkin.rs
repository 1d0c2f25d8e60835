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
        peak_rss_mb: target.pid.and_then(hot_drop::peak_rss_mb),
    })
}
