//! Outgoing webhook throughput: `deliveries` events for nine organizers'
//! fast endpoints and `slow` more for a tenth endpoint that answers after
//! 5 s, all written at once through `webhook_publish()` (the function the
//! outbox triggers call), the slow ones first so they are ahead in the
//! queue. Measured from the write to the last fast delivery received by a
//! local receiver over real HTTP: the relay, the queue, the claims, the
//! signing and the POSTs. The slow endpoint must hold at most its cap of
//! attempts in flight and must not slow the others.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use axum::{Router, extract::State, http::StatusCode, routing::post};
use diesel_async::RunQueryDsl;
use serde::Serialize;

use crate::{
    cancel::count,
    hot_drop::{self, Target},
};

#[derive(Debug, Serialize)]
pub struct Run {
    pub deliveries: usize,
    pub slow_deliveries: usize,
    /// Fast deliveries received per second, from the write to the last.
    pub per_sec: f64,
    pub seconds: f64,
    /// Slow deliveries received by then.
    pub slow_received: usize,
    /// Most attempts the slow endpoint had in flight at once.
    pub slow_max_in_flight: usize,
    /// Fast deliveries the receiver saw twice (must be 0).
    pub duplicates: i64,
    pub peak_rss_mb: Option<f64>,
}

#[derive(Default)]
struct Seen {
    fast: AtomicUsize,
    slow: AtomicUsize,
    slow_in_flight: AtomicUsize,
    slow_max: AtomicUsize,
    last: Mutex<Option<Instant>>,
    ids: Mutex<std::collections::HashSet<String>>,
    duplicates: AtomicUsize,
}

async fn fast(State(seen): State<Arc<Seen>>, headers: axum::http::HeaderMap) -> StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if !seen.ids.lock().unwrap().insert(id) {
        seen.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    seen.fast.fetch_add(1, Ordering::Relaxed);
    *seen.last.lock().unwrap() = Some(Instant::now());
    StatusCode::NO_CONTENT
}

async fn slow(State(seen): State<Arc<Seen>>) -> StatusCode {
    let now = seen.slow_in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    seen.slow_max.fetch_max(now, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(5)).await;
    seen.slow_in_flight.fetch_sub(1, Ordering::Relaxed);
    seen.slow.fetch_add(1, Ordering::Relaxed);
    StatusCode::OK
}

pub async fn measure(target: &Target, deliveries: usize, slow_deliveries: usize) -> Result<Run> {
    let seen = Arc::new(Seen::default());
    let router = Router::new()
        .route("/fast/{n}", post(fast))
        .route("/slow", post(slow))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    // Ten organizers, each with one endpoint; the tenth is slow.
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let mut conn = target.db.get().await?;
    diesel::sql_query(format!(
        "WITH o AS (
             INSERT INTO users (id, email, password_hash, display_name, role)
             SELECT gen_random_uuid(), 'hooks-' || n || '-{tag}@example.com', 'x', 'Hooks ' || n, 'organizer'
               FROM generate_series(1, 10) n
          RETURNING id, display_name
         )
         INSERT INTO webhook_endpoints (id, organizer_id, url, secret, event_types)
         SELECT gen_random_uuid(), id,
                CASE WHEN display_name = 'Hooks 10' THEN 'http://127.0.0.1:{port}/slow'
                     ELSE 'http://127.0.0.1:{port}/fast/' || display_name END,
                '{secret}', '{{order.paid}}'
           FROM o",
        secret = boxoffice_core::webhooks::new_secret(),
    ))
    .execute(&mut conn)
    .await?;
    let publish = |organizers: &str, n: usize| {
        format!(
            "WITH o AS (SELECT array_agg(id ORDER BY email) AS ids FROM users
                         WHERE email LIKE 'hooks-%-{tag}@example.com' AND {organizers})
             SELECT webhook_publish(array_agg(o.ids[1 + g % array_length(o.ids, 1)]),
                    array_agg('order.paid'::text),
                    array_agg(jsonb_build_object('n', g, 'total_minor', 2500, 'currency', 'EUR')))
               FROM generate_series(1, {n}) g, o"
        )
    };
    let started = Instant::now();
    // Slow first: its deliveries are ahead of the others in the queue.
    for (organizers, n) in [
        ("display_name = 'Hooks 10'", slow_deliveries),
        ("display_name <> 'Hooks 10'", deliveries),
    ] {
        diesel::sql_query(publish(organizers, n))
            .execute(&mut conn)
            .await?;
    }
    drop(conn);
    let written = started.elapsed();
    eprintln!("webhooks: {deliveries} + {slow_deliveries} slow written in {written:.2?}");

    let deadline = started + Duration::from_secs(300);
    while AtomicUsize::load(&seen.fast, Ordering::Relaxed) < deliveries {
        if Instant::now() > deadline {
            bail!(
                "{} of {deliveries} fast deliveries after 300 s",
                AtomicUsize::load(&seen.fast, Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let last = seen.last.lock().unwrap().unwrap_or_else(Instant::now);
    let seconds = (last - started).as_secs_f64();
    let delivered = count(
        target,
        "SELECT count(*)::bigint AS n FROM webhook_deliveries WHERE status = 'delivered'",
    )
    .await?;
    eprintln!("webhooks: {delivered} delivered in the database");
    server.abort();
    Ok(Run {
        deliveries,
        slow_deliveries,
        per_sec: deliveries as f64 / seconds,
        seconds,
        slow_received: AtomicUsize::load(&seen.slow, Ordering::Relaxed),
        slow_max_in_flight: AtomicUsize::load(&seen.slow_max, Ordering::Relaxed),
        duplicates: AtomicUsize::load(&seen.duplicates, Ordering::Relaxed) as i64,
        peak_rss_mb: target.pid.and_then(hot_drop::peak_rss_mb),
    })
}
