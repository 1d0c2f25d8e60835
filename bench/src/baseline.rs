//! The machine's own limits, measured in the same run: pgbench on the naive
//! design's transaction (one guarded UPDATE of a hot row + one INSERT) and
//! redis-benchmark on the queue's list operations.

use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Baseline {
    /// Transactions/s of `UPDATE tier … WHERE taken + q <= capacity; INSERT order`.
    pub pg_hot_row_update_insert_tps: f64,
    pub pg_clients: u32,
    pub redis_rpush_per_sec: f64,
    pub redis_lpop_per_sec: f64,
}

const SCRIPT: &str = r"\set q random(1, 2)
BEGIN;
UPDATE tiers SET taken = taken + :q WHERE id = 1 AND taken + :q <= capacity;
INSERT INTO orders (tier, q) VALUES (1, :q);
END;
";

fn psql(server: &str, db: &str, sql: &str) -> Result<()> {
    let out = Command::new("psql")
        .args([
            &format!("{server}/{db}"),
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            sql,
        ])
        .output()
        .context("psql (install postgresql-client)")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// `server` is `postgres://user@host:port` (no database).
pub fn pgbench(server: &str, clients: u32, seconds: u32) -> Result<f64> {
    let db = "boxoffice_bench_baseline";
    psql(server, "postgres", &format!("DROP DATABASE IF EXISTS {db}"))?;
    psql(server, "postgres", &format!("CREATE DATABASE {db}"))?;
    psql(
        server,
        db,
        "CREATE TABLE tiers (id int PRIMARY KEY, capacity int NOT NULL, taken int NOT NULL, CHECK (taken <= capacity));
         INSERT INTO tiers VALUES (1, 2000000000, 0);
         CREATE TABLE orders (id bigserial PRIMARY KEY, tier int NOT NULL, q int NOT NULL, created_at timestamptz NOT NULL DEFAULT now());",
    )?;
    let script = std::env::temp_dir().join("boxoffice-bench-hot-row.sql");
    std::fs::write(&script, SCRIPT)?;
    let out = Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
            &script.to_string_lossy(),
            &format!("{server}/{db}"),
        ])
        .output()
        .context("pgbench (install postgresql-contrib / postgresql-client)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .with_context(|| {
            format!(
                "pgbench output: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    psql(server, "postgres", &format!("DROP DATABASE IF EXISTS {db}"))?;
    Ok(tps)
}

/// Requests/s of RPUSH and LPOP (what a push and a fetch cost at the core).
pub fn redis_benchmark(host: &str, port: u16) -> Result<(f64, f64)> {
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            host,
            "-p",
            &port.to_string(),
            "-q",
            "-n",
            "200000",
            "-c",
            "50",
            "-t",
            "rpush,lpop",
        ])
        .output()
        .context("redis-benchmark (install redis-tools)")?;
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    let rate = |name: &str| {
        text.lines()
            .rfind(|l| l.starts_with(name) && l.contains("requests per second"))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    match (rate("RPUSH"), rate("LPOP")) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => bail!("redis-benchmark output: {text}"),
    }
}

pub fn run(pg_server: &str, redis_host: &str, redis_port: u16) -> Result<Baseline> {
    let clients = 8;
    let tps = pgbench(pg_server, clients, 10)?;
    let (rpush, lpop) = redis_benchmark(redis_host, redis_port)?;
    Ok(Baseline {
        pg_hot_row_update_insert_tps: tps,
        pg_clients: clients,
        redis_rpush_per_sec: rpush,
        redis_lpop_per_sec: lpop,
    })
}
