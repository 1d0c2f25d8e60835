//! `boxoffice-bench`: run with `./scripts/bench.sh` (builds in release first).

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use boxoffice_bench::{baseline, emails, hot_drop, queue, stats::median};
use boxoffice_core::{Config, Services, config::DatabaseConfig, db, queue::QueueName};
use clap::{Parser, Subcommand};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "boxoffice-bench",
    about = "Hot drop, queue throughput and machine baseline"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Everything, in one run: baseline, queue throughput, hot drop.
    All {
        #[command(flatten)]
        drop: DropArgs,
        #[command(flatten)]
        queue: QueueArgs,
        #[command(flatten)]
        emails: EmailArgs,
        /// Where the JSON report goes.
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// The hot ticket drop against a freshly started `boxoffice dev`.
    HotDrop {
        #[command(flatten)]
        drop: DropArgs,
    },
    /// Cancel an event with `--orders` paid orders and time its refunds and
    /// emails, with 1 and 2 worker processes, while a small drop sells.
    Cancel {
        #[arg(long, default_value_t = 10_000)]
        orders: usize,
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        processes: Vec<usize>,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// An event with `--holders` ticket holders enters the reminder window:
    /// time from the scheduler's tick to the last reminder accepted by the
    /// SMTP sink, the other scheduler entries' delay, RSS; one `dev`
    /// process (one workers process) per run.
    Reminders {
        #[arg(long, default_value_t = 50_000)]
        holders: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// Check-in at a `--tickets`-ticket event from `--scanners` concurrent
    /// scanners, every ticket scanned twice at once: scans/s, p99, double
    /// admissions; then stats and attendee search p99. One `dev` process
    /// per run.
    Checkin {
        #[arg(long, default_value_t = 50_000)]
        tickets: usize,
        #[arg(long, default_value_t = 50)]
        scanners: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// Outgoing webhooks: `--deliveries` to nine fast local endpoints and
    /// `--slow` to one that answers after 5 s. One `dev` process per run.
    Webhooks {
        #[arg(long, default_value_t = 10_000)]
        deliveries: usize,
        #[arg(long, default_value_t = 200)]
        slow: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// Confirmation emails into a local SMTP sink with 1 and 2 worker processes.
    Emails {
        #[command(flatten)]
        emails: EmailArgs,
    },
    /// The stadium profile beside the hot drop, both closed loop in one
    /// run: 50,000 seats in 4 tiers for 200,000 buyers, against the
    /// 1,000-seat drop; decided/s against the baseline, CPU per 1,000
    /// orders, last payment to last email, peak RSS.
    Stadium {
        #[command(flatten)]
        drop: DropArgs,
        #[arg(long, default_value_t = 50_000)]
        stadium_seats: i32,
        #[arg(long, default_value_t = 200_000)]
        stadium_buyers: usize,
        #[arg(long, default_value_t = 4)]
        stadium_tiers: usize,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// Queue throughput with 1, 2, 4 worker processes.
    Queue {
        #[command(flatten)]
        queue: QueueArgs,
    },
    /// pgbench and redis-benchmark on this machine.
    Baseline,
    /// The fault suite (RELIABILITY.md): each scenario strikes a drop on a
    /// cluster of real processes over a private PostgreSQL and Redis, then
    /// checks the end state and times the recovery. Exits non-zero when a
    /// scenario fails.
    Faults {
        /// Scenarios to run (default: all).
        #[arg(long, value_enum, value_delimiter = ',')]
        scenarios: Vec<boxoffice_bench::faults::Scenario>,
        #[arg(long, default_value_t = 300)]
        buyers: usize,
        #[arg(long, default_value_t = 300)]
        seats: i32,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Buyers arriving per second.
        #[arg(long, default_value_t = 30.0)]
        rate: f64,
        /// The boxoffice binary (default: next to this one).
        #[arg(long)]
        boxoffice: Option<PathBuf>,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// (internal) one queue worker process for `queue`.
    #[command(hide = true)]
    QueueWorker {
        #[arg(long)]
        queue: String,
        #[arg(long)]
        concurrency: usize,
    },
}

#[derive(clap::Args, Clone)]
struct DropArgs {
    #[arg(long, default_value_t = 1_000)]
    seats: i32,
    #[arg(long, default_value_t = 20_000)]
    buyers: usize,
    /// Tiers the seats are split into.
    #[arg(long, default_value_t = 1)]
    tiers: usize,
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Buyers of a warm-up sale on another event before each measured
    /// drop (0: measure the drop on a cold, just-started server).
    #[arg(long, default_value_t = 2_000)]
    warmup_buyers: usize,
    /// Offer orders at this rate (per second, open loop) instead of as
    /// fast as C clients get answers. `all` runs both: closed loop, then
    /// paced at the measured baseline rate.
    #[arg(long)]
    rate: Option<f64>,
    /// The boxoffice binary (default: next to this one).
    #[arg(long)]
    boxoffice: Option<PathBuf>,
}

#[derive(clap::Args, Clone)]
struct EmailArgs {
    #[arg(long, default_value_t = 5_000)]
    emails: usize,
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    email_processes: Vec<usize>,
}

#[derive(clap::Args, Clone)]
struct QueueArgs {
    #[arg(long, default_value_t = 20_000)]
    jobs: u64,
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    processes: Vec<usize>,
    #[arg(long, default_value_t = 64)]
    queue_concurrency: usize,
}

fn sibling(name: &str) -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    Ok(me.with_file_name(name))
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn pg_server(config: &Config) -> String {
    let url = &config.database.url;
    url.rsplit_once('/')
        .map_or(url.clone(), |(server, _)| server.to_owned())
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `boxoffice dev` of its own (database, Redis namespace, port) for one
/// run; `Drop` does not clean up, `finish` does.
struct DevServer {
    server: Server,
    api: String,
    db_url: String,
    tag: String,
    outbox: PathBuf,
    exe: PathBuf,
}

impl DevServer {
    async fn start(
        config: &Config,
        boxoffice: Option<&PathBuf>,
        run: usize,
        smtp_port: Option<u16>,
    ) -> Result<Self> {
        let exe = match boxoffice {
            Some(p) => p.clone(),
            None => sibling("boxoffice")?,
        };
        let port = free_port()?;
        let tag = format!("{}{run}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
        let db_url = format!("{}/boxoffice_bench_{tag}", pg_server(config));
        let outbox = std::env::temp_dir().join(format!("boxoffice-bench-outbox-{tag}"));
        let mut command = Command::new(&exe);
        command.arg("dev");
        Self::env(&mut command, config, &db_url, &tag, &outbox, smtp_port);
        command
            .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("PUBLIC_URL", format!("http://127.0.0.1:{port}"))
            .env(
                "SANDBOX_AUTO_PAY",
                std::env::var("BENCH_AUTO_PAY").unwrap_or_else(|_| "pay:100".into()),
            )
            .env("IP_RATE_LIMIT", "0")
            .env("USER_RATE_LIMIT", "0")
            .env(
                "RESERVATION_TTL_SECS",
                RESERVATION_TTL.as_secs().to_string(),
            );
        let child = command
            .spawn()
            .with_context(|| format!("start {}", exe.display()))?;
        let server = Server(child);
        let api = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{api}/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            if std::time::Instant::now() > deadline {
                bail!("boxoffice dev did not become ready");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(Self {
            server,
            api,
            db_url,
            tag,
            outbox,
            exe,
        })
    }

    /// The load generator's view of this server.
    fn target(&self, config: &Config) -> Result<hot_drop::Target> {
        Ok(hot_drop::Target {
            api_url: self.api.clone(),
            db: self.pool()?,
            jwt_secret: config.auth.jwt_secret.clone(),
            pid: Some(self.server.0.id()),
        })
    }

    /// What every process of the run shares.
    fn env(
        command: &mut Command,
        config: &Config,
        db_url: &str,
        tag: &str,
        outbox: &std::path::Path,
        smtp_port: Option<u16>,
    ) {
        command
            .env("DATABASE_URL", db_url)
            .env("REDIS_URL", &config.redis.url)
            .env("REDIS_NAMESPACE", format!("bench{tag}"))
            .env("EMAIL_OUTBOX_DIR", outbox)
            .env(
                "RUST_LOG",
                std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            // Per role (API, workers); with the scheduler's, the reservation
            // batcher's and ours it stays under PostgreSQL's default 100.
            .env(
                "DATABASE_POOL_SIZE",
                std::env::var("BENCH_POOL_SIZE").unwrap_or_else(|_| "32".into()),
            )
            .env("JWT_SECRET", &config.auth.jwt_secret)
            // The webhooks bench's receiver is on this machine.
            .env("WEBHOOKS_ALLOW_LOOPBACK", "true")
            .env_remove("APP_ENV");
        match smtp_port {
            Some(port) => command.env("SMTP_URL", format!("smtp://127.0.0.1:{port}")),
            None => command.env_remove("SMTP_URL"),
        };
    }

    /// Another `boxoffice workers` process on the same database and queues.
    fn extra_workers(
        &self,
        config: &Config,
        queues: &str,
        smtp_port: Option<u16>,
    ) -> Result<Server> {
        let mut command = Command::new(&self.exe);
        command
            .arg("workers")
            .env("WORKER_QUEUES", queues)
            // The sandbox provider is the dev server's (`{PUBLIC_URL}/sandbox`).
            .env("PUBLIC_URL", &self.api);
        Self::env(
            &mut command,
            config,
            &self.db_url,
            &self.tag,
            &self.outbox,
            smtp_port,
        );
        Ok(Server(command.spawn().context("start boxoffice workers")?))
    }

    fn pool(&self) -> Result<db::DbPool> {
        db::pool(&DatabaseConfig {
            url: self.db_url.clone(),
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
        })
        .map_err(anyhow::Error::msg)
    }

    fn namespace(&self) -> String {
        format!("bench{}", self.tag)
    }

    /// Stops the server and removes what the run left: Redis keys (a drop
    /// leaves hundreds of thousands), the outbox, the database.
    async fn finish(self, config: &Config) {
        let namespace = self.namespace();
        drop(self.server);
        if let Ok(conn) = boxoffice_core::queue::connect(&config.redis.url).await {
            let _ = boxoffice_core::queue::Queues::new(conn, namespace)
                .purge_namespace()
                .await;
        }
        let _ = std::fs::remove_dir_all(&self.outbox);
        let _ = Command::new("psql")
            .args([
                &format!("{}/postgres", pg_server(config)),
                "-qc",
                &format!(
                    "DROP DATABASE IF EXISTS boxoffice_bench_{} WITH (FORCE)",
                    self.tag
                ),
            ])
            .output();
    }
}

/// Long enough that no reservation expires during a run.
const RESERVATION_TTL: Duration = Duration::from_secs(600);

/// One hot drop against a fresh `boxoffice dev` (own database, namespace, port).
async fn one_drop(config: &Config, args: &DropArgs, run: usize) -> Result<hot_drop::Report> {
    // Confirmations go out over SMTP, as in production: the dev outbox's
    // one file per email costs an inode allocation each, whose price
    // depends on what the filesystem deleted lately, not on our code.
    let sink = boxoffice_bench::smtp_sink::SmtpSink::counting().await;
    let dev = DevServer::start(config, args.boxoffice.as_ref(), run, Some(sink.port)).await?;
    let pool = dev.pool()?;
    let target = hot_drop::Target {
        api_url: dev.api.clone(),
        db: pool,
        jwt_secret: config.auth.jwt_secret.clone(),
        pid: Some(dev.server.0.id()),
    };
    let report = hot_drop::run(
        &target,
        &hot_drop::Params {
            seats: args.seats,
            tiers: args.tiers,
            buyers: args.buyers,
            concurrency: args.concurrency,
            rate: args.rate,
            reservation_ttl: RESERVATION_TTL,
            settle_timeout: Duration::from_secs(300),
            warmup_buyers: args.warmup_buyers,
        },
    )
    .await;
    drop(target);
    dev.finish(config).await;
    drop(sink);
    report
}

/// Confirmation emails (QR codes, calendar file) into a local SMTP sink with
/// 1 and 2 worker processes: a `boxoffice dev` sells a few orders, then
/// `count` more confirmations of them are queued at once.
async fn email_runs(
    config: &Config,
    args: &EmailArgs,
    boxoffice: Option<&PathBuf>,
) -> Result<Vec<emails::Run>> {
    let mut runs = Vec::new();
    for &processes in &args.email_processes {
        let sink = boxoffice_bench::smtp_sink::SmtpSink::counting().await;
        let dev = DevServer::start(config, boxoffice, processes, Some(sink.port)).await?;
        let mut extra = Vec::new();
        for _ in 1..processes {
            extra.push(dev.extra_workers(config, "emails", Some(sink.port))?);
        }
        let pool = dev.pool()?;
        let target = hot_drop::Target {
            api_url: dev.api.clone(),
            db: pool.clone(),
            jwt_secret: config.auth.jwt_secret.clone(),
            pid: None,
        };
        let mut queue_config = config.clone();
        queue_config.redis.namespace = dev.namespace();
        let run = emails::measure(&target, &queue_config, &sink, processes, args.emails).await;
        drop(extra);
        drop(target);
        dev.finish(config).await;
        let run = run?;
        eprintln!(
            "emails ×{processes}: {:.0} sent/s ({} of {})",
            run.sent_per_sec, run.sent, run.emails
        );
        runs.push(run);
    }
    Ok(runs)
}

async fn queue_runs(config: &Config, args: &QueueArgs) -> Result<Vec<queue::Run>> {
    let mut config = config.clone();
    config.redis.namespace = format!("benchq{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let services = Services::connect(config)
        .await
        .map_err(anyhow::Error::msg)?;
    let exe = std::env::current_exe()?;
    let mut runs = Vec::new();
    for &processes in &args.processes {
        let run = queue::measure(
            &services,
            &exe,
            QueueName::Purchases,
            processes,
            args.queue_concurrency,
            args.jobs,
        )
        .await?;
        eprintln!(
            "queue purchases ×{processes}: {:.0} enqueued/s, {:.0} processed/s, start p50 {:.0} ms p99 {:.0} ms",
            run.enqueued_per_sec,
            run.processed_per_sec,
            run.enqueue_to_start_ms.p50,
            run.enqueue_to_start_ms.p99
        );
        runs.push(run);
    }
    let run = queue::measure(
        &services,
        &exe,
        QueueName::Emails,
        1,
        args.queue_concurrency,
        args.jobs,
    )
    .await?;
    eprintln!("queue emails ×1: {:.0} processed/s", run.processed_per_sec);
    runs.push(run);
    Ok(runs)
}

async fn drops(config: &Config, args: &DropArgs) -> Result<Vec<hot_drop::Report>> {
    let mut reports = Vec::new();
    for run in 0..args.runs {
        let r = one_drop(config, args, run).await?;
        eprintln!(
            "hot drop {}{}: {:.0} accepted/s, POST p99 {:.0} ms, {:.0} decided/s, decided p99 {:.0} ms, paid p99 {:.0} ms, sold {}/{}, emails {}/{}, RSS {:.0} MB, errors {:?}",
            run + 1,
            args.rate
                .map_or(String::new(), |r| format!(" (offered {r:.0}/s)")),
            r.accepted_per_sec,
            r.post_latency_ms.p99,
            r.decided_per_sec,
            r.time_to_decided_ms.p99,
            r.time_to_paid_ms.p99,
            r.seats_sold,
            r.seats,
            r.emails_sent,
            r.paid_orders,
            r.peak_rss_mb.unwrap_or(0.0),
            r.errors
        );
        reports.push(r);
    }
    Ok(reports)
}

fn table(baseline: Option<&baseline::Baseline>, queues: &[queue::Run], drops: &[hot_drop::Report]) {
    println!();
    if let Some(b) = baseline {
        println!(
            "baseline: pgbench hot-row UPDATE+INSERT {:.0} tps (c={}), redis RPUSH {:.0}/s LPOP {:.0}/s",
            b.pg_hot_row_update_insert_tps,
            b.pg_clients,
            b.redis_rpush_per_sec,
            b.redis_lpop_per_sec
        );
    }
    if !queues.is_empty() {
        println!(
            "| queue | processes | concurrency | enqueued/s | processed/s | start p50 ms | start p99 ms |"
        );
        println!("|---|---|---|---|---|---|---|");
        for q in queues {
            println!(
                "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
                q.queue,
                q.processes,
                q.concurrency,
                q.enqueued_per_sec,
                q.processed_per_sec,
                q.enqueue_to_start_ms.p50,
                q.enqueue_to_start_ms.p99
            );
        }
    }
    drop_table(baseline.map(|b| b.pg_hot_row_update_insert_tps), drops);
}

/// The hot drop's figures, medians of the runs; rates also as a ratio of
/// the baseline's hot-row transactions per second.
fn drop_table(base: Option<f64>, drops: &[hot_drop::Report]) {
    if !drops.is_empty() {
        println!();
        let m = |f: fn(&hot_drop::Report) -> f64| median(drops.iter().map(f).collect());
        let server = match drops[0].warmup_buyers {
            0 => "a cold server".to_owned(),
            n => format!("after a warm-up sale of {n} buyers"),
        };
        match drops[0].offered_per_sec {
            Some(rate) => println!(
                "hot drop, {rate:.0} orders/s offered (open loop, at most {} in flight; {server}; median of {} runs):",
                drops[0].concurrency,
                drops.len()
            ),
            None => println!(
                "hot drop, closed loop, {} clients ({server}; median of {} runs):",
                drops[0].concurrency,
                drops.len()
            ),
        }
        println!("| figure | value | vs baseline |");
        println!("|---|---|---|");
        let ratio = |v: f64| base.map_or("".to_owned(), |b| format!("{:.2}×", v / b));
        println!(
            "| accepted/s at the API | {:.0} | {} |",
            m(|r| r.accepted_per_sec),
            ratio(m(|r| r.accepted_per_sec))
        );
        println!(
            "| decided/s | {:.0} | {} |",
            m(|r| r.decided_per_sec),
            ratio(m(|r| r.decided_per_sec))
        );
        println!(
            "| POST p50 / p95 / p99 ms | {:.1} / {:.1} / {:.1} | |",
            m(|r| r.post_latency_ms.p50),
            m(|r| r.post_latency_ms.p95),
            m(|r| r.post_latency_ms.p99)
        );
        println!(
            "| decided p50 / p99 ms | {:.0} / {:.0} | |",
            m(|r| r.time_to_decided_ms.p50),
            m(|r| r.time_to_decided_ms.p99)
        );
        println!(
            "| paid p50 / p99 ms | {:.0} / {:.0} | |",
            m(|r| r.time_to_paid_ms.p50),
            m(|r| r.time_to_paid_ms.p99)
        );
        println!(
            "| seats sold / seats | {} / {} | |",
            drops[0].seats_sold, drops[0].seats
        );
        println!(
            "| emails sent / paid orders | {} / {} | |",
            drops[0].emails_sent, drops[0].paid_orders
        );
        println!(
            "| peak RSS (API + workers + scheduler, one process) MB | {:.0} | |",
            m(|r| r.peak_rss_mb.unwrap_or(0.0))
        );
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    boxoffice_core::install_crypto_provider();
    let cli = Cli::parse();
    if let Cmd::Faults {
        scenarios,
        buyers,
        seats,
        concurrency,
        rate,
        boxoffice,
        out,
    } = cli.command
    {
        // Needs no configuration: it brings its own services.
        use boxoffice_bench::faults;
        let exe = match boxoffice {
            Some(p) => p,
            None => sibling("boxoffice")?,
        };
        let scenarios = if scenarios.is_empty() {
            faults::Scenario::ALL.to_vec()
        } else {
            scenarios
        };
        let params = faults::Params {
            seats,
            buyers,
            concurrency,
            rate,
            retry_budget: Duration::from_secs(90),
            settle_timeout: Duration::from_secs(120),
        };
        let mut reports = Vec::new();
        for scenario in scenarios {
            reports.push(faults::scenario(&exe, scenario, &params).await?);
        }
        save_report(&out, "faults", &reports)?;
        println!(
            "| scenario | orders | paid | fault | final after | emailed after | within {}/{} s | result |",
            faults::ORDERS_TARGET_S,
            faults::EMAILS_TARGET_S
        );
        println!("|---|---|---|---|---|---|---|---|");
        for r in &reports {
            println!(
                "| {:?} | {} | {} | {:.1} s | {:.1} s | {:.1} s | {} | {} |",
                r.scenario,
                r.orders,
                r.paid,
                r.fault_s,
                r.orders_final_after_s,
                r.emails_sent_after_s,
                if r.within_targets { "yes" } else { "no" },
                if r.violations.is_empty() {
                    "passed".to_owned()
                } else {
                    r.violations.join("; ")
                }
            );
        }
        if reports.iter().any(|r| !r.violations.is_empty()) {
            bail!("a fault scenario failed");
        }
        return Ok(());
    }
    let config = Config::from_env().map_err(|e| anyhow::anyhow!("{e}"))?;
    match cli.command {
        Cmd::QueueWorker {
            queue: name,
            concurrency,
        } => {
            let q: QueueName = name.parse().map_err(anyhow::Error::msg)?;
            let services = Services::connect(config)
                .await
                .map_err(anyhow::Error::msg)?;
            queue::worker(services, q, concurrency).await
        }
        Cmd::Faults { .. } => unreachable!("run above"),
        Cmd::Baseline => {
            let redis = url_host_port(&config.redis.url)?;
            let b = baseline::run(&pg_server(&config), &redis.0, redis.1)?;
            table(Some(&b), &[], &[]);
            println!("{}", serde_json::to_string_pretty(&b)?);
            Ok(())
        }
        Cmd::Cancel {
            orders,
            processes,
            out,
        } => {
            let mut runs = Vec::new();
            for (run, &n) in processes.iter().enumerate() {
                let sink = boxoffice_bench::smtp_sink::SmtpSink::counting().await;
                let dev = DevServer::start(&config, None, run, Some(sink.port)).await?;
                let mut extra = Vec::new();
                for _ in 1..n {
                    extra.push(dev.extra_workers(&config, "refunds,emails", Some(sink.port))?);
                }
                let target = dev.target(&config)?;
                let measured = boxoffice_bench::cancel::measure(&target, n, orders).await;
                drop(extra);
                drop(target);
                dev.finish(&config).await;
                let measured = measured?;
                eprintln!(
                    "cancel ×{n}: {} refunds in {:.1} s ({:.0}/s), emails out at {:.1} s, side drop POST p99 {:.0} → {:.0} ms, peak RSS {:.0} MB (cancellation {:.0} MB); refunds by second: {:?}",
                    measured.paid_orders,
                    measured.refunds_secs,
                    measured.refunds_per_sec,
                    measured.emails_secs,
                    measured.side_drop_post_p99_ms_solo,
                    measured.side_drop_post_p99_ms_during,
                    measured.peak_rss_mb.unwrap_or(f64::NAN),
                    measured.cancellation_peak_rss_mb.unwrap_or(f64::NAN),
                    measured.refunds_by_second,
                );
                runs.push(measured);
            }
            save_report(&out, "cancel", &runs)?;
            Ok(())
        }
        Cmd::Reminders { holders, runs, out } => {
            let mut measured = Vec::new();
            for run in 0..runs {
                let sink = boxoffice_bench::smtp_sink::SmtpSink::counting().await;
                let dev = DevServer::start(&config, None, run, Some(sink.port)).await?;
                let target = dev.target(&config)?;
                let one = boxoffice_bench::reminders::measure(&target, &sink, holders).await;
                drop(target);
                dev.finish(&config).await;
                let one = one?;
                eprintln!(
                    "reminders: {} in {:.1} s from the first written ({:.0}/s), {} sent, {} twice; other ticks {} ({} over 2 s, all ≤ {} s); RSS {:?} MB",
                    one.holders,
                    one.tick_to_last_email_secs,
                    one.reminders_per_sec,
                    one.reminders_sent,
                    one.reminded_twice,
                    one.other_ticks,
                    one.other_ticks_late_over_2s,
                    one.other_ticks_worst_bucket,
                    one.peak_rss_mb
                );
                measured.push(one);
            }
            let rates: Vec<f64> = measured.iter().map(|r| r.reminders_per_sec).collect();
            println!(
                "reminders/s, median of {}: {:.0}",
                rates.len(),
                median(rates.clone())
            );
            save_report(&out, "reminders", &measured)?;
            Ok(())
        }
        Cmd::Checkin {
            tickets,
            scanners,
            runs,
            out,
        } => {
            let mut measured = Vec::new();
            for run in 0..runs {
                let dev = DevServer::start(&config, None, run, None).await?;
                let target = dev.target(&config)?;
                let one = boxoffice_bench::checkin::measure(&target, tickets, scanners).await;
                drop(target);
                dev.finish(&config).await;
                let one = one?;
                eprintln!(
                    "checkin: {} scans of {} tickets at {:.0}/s, p99 {:.1} ms, {} admitted, {} twice, {} errors; stats p99 {:.1} ms, search p99 {:.1} ms; CSV {} rows in {:.2} s, RSS +{:?} MB; RSS {:?} MB",
                    one.scans,
                    one.tickets,
                    one.scans_per_sec,
                    one.scan_ms.p99,
                    one.admitted,
                    one.double_admissions,
                    one.errors,
                    one.stats_ms.p99,
                    one.search_ms.p99,
                    one.csv_rows,
                    one.csv_secs,
                    one.csv_rss_growth_mb,
                    one.peak_rss_mb
                );
                measured.push(one);
            }
            let rates: Vec<f64> = measured.iter().map(|r| r.scans_per_sec).collect();
            println!("scans/s, median of {}: {:.0}", rates.len(), median(rates));
            save_report(&out, "checkin", &measured)?;
            Ok(())
        }
        Cmd::Webhooks {
            deliveries,
            slow,
            runs,
            out,
        } => {
            let mut measured = Vec::new();
            for run in 0..runs {
                let dev = DevServer::start(&config, None, run, None).await?;
                let target = dev.target(&config)?;
                let one = boxoffice_bench::webhooks::measure(&target, deliveries, slow).await;
                drop(target);
                dev.finish(&config).await;
                let one = one?;
                eprintln!(
                    "webhooks: {} deliveries at {:.0}/s ({:.2} s); slow endpoint {} received, at most {} at once; {} duplicates; RSS {:?} MB",
                    one.deliveries,
                    one.per_sec,
                    one.seconds,
                    one.slow_received,
                    one.slow_max_in_flight,
                    one.duplicates,
                    one.peak_rss_mb
                );
                measured.push(one);
            }
            let rates: Vec<f64> = measured.iter().map(|r| r.per_sec).collect();
            println!(
                "deliveries/s, median of {}: {:.0}",
                rates.len(),
                median(rates)
            );
            save_report(&out, "webhooks", &measured)?;
            Ok(())
        }
        Cmd::Emails { emails } => {
            let runs = email_runs(&config, &emails, None).await?;
            println!("{}", serde_json::to_string_pretty(&runs)?);
            Ok(())
        }
        Cmd::Queue { queue } => {
            let runs = queue_runs(&config, &queue).await?;
            table(None, &runs, &[]);
            Ok(())
        }
        Cmd::HotDrop { drop } => {
            let reports = drops(&config, &drop).await?;
            table(None, &[], &reports);
            println!("{}", serde_json::to_string_pretty(&reports)?);
            Ok(())
        }
        Cmd::Stadium {
            drop,
            stadium_seats,
            stadium_buyers,
            stadium_tiers,
            out,
        } => {
            let redis = url_host_port(&config.redis.url)?;
            let b = baseline::run(&pg_server(&config), &redis.0, redis.1)?;
            let base = b.pg_hot_row_update_insert_tps;
            eprintln!("baseline: {base:.0} tps hot row");
            let stadium_args = DropArgs {
                seats: stadium_seats,
                buyers: stadium_buyers,
                tiers: stadium_tiers,
                ..drop.clone()
            };
            // Interleaved, so both meet the box in the same state.
            let (mut small, mut stadium) = (Vec::new(), Vec::new());
            for run in 0..drop.runs {
                let one = DropArgs {
                    runs: 1,
                    ..drop.clone()
                };
                small.push(one_drop(&config, &one, run).await?);
                let one = DropArgs {
                    runs: 1,
                    ..stadium_args.clone()
                };
                stadium.push(one_drop(&config, &one, run).await?);
            }
            stadium_table(base, &small, &stadium);
            std::fs::create_dir_all(&out)?;
            let file = out.join(format!(
                "{}-stadium.json",
                chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
            ));
            std::fs::write(
                &file,
                serde_json::to_string_pretty(
                    &json!({"baseline": b, "hot_drop": small, "stadium": stadium}),
                )?,
            )?;
            println!("\nreport: {}", file.display());
            Ok(())
        }
        Cmd::All {
            drop,
            queue,
            emails,
            out,
        } => {
            let redis = url_host_port(&config.redis.url)?;
            let b = baseline::run(&pg_server(&config), &redis.0, redis.1)?;
            eprintln!(
                "baseline: {:.0} tps hot row",
                b.pg_hot_row_update_insert_tps
            );
            let queues = queue_runs(&config, &queue).await?;
            let mails = email_runs(&config, &emails, drop.boxoffice.as_ref()).await?;
            let reports = drops(&config, &drop).await?;
            // The latency targets hold "at that rate": the baseline's.
            let paced_args = DropArgs {
                rate: Some(drop.rate.unwrap_or(b.pg_hot_row_update_insert_tps)),
                ..drop.clone()
            };
            let paced = drops(&config, &paced_args).await?;
            table(Some(&b), &queues, &reports);
            drop_table(Some(b.pg_hot_row_update_insert_tps), &paced);
            for run in &mails {
                println!(
                    "| confirmation emails/s into SMTP, {} worker process(es) | {:.0} | |",
                    run.processes, run.sent_per_sec
                );
            }
            std::fs::create_dir_all(&out)?;
            let file = out.join(format!(
                "{}.json",
                chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
            ));
            let machine = json!({
                "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
                "os": std::env::consts::OS,
            });
            std::fs::write(
                &file,
                serde_json::to_string_pretty(
                    &json!({"machine": machine, "baseline": b, "queue": queues, "emails": mails,
                             "hot_drop": reports, "hot_drop_paced": paced}),
                )?,
            )?;
            println!("\nreport: {}", file.display());
            Ok(())
        }
    }
}

/// The stadium beside the hot drop, medians of the runs.
fn stadium_table(base: f64, small: &[hot_drop::Report], stadium: &[hot_drop::Report]) {
    let median = |values: Vec<f64>| -> f64 {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let column = |drops: &[hot_drop::Report], f: &dyn Fn(&hot_drop::Report) -> f64| {
        median(drops.iter().map(f).collect())
    };
    let cpu = |f: fn(&hot_drop::CpuSecs) -> f64| {
        move |r: &hot_drop::Report| r.cpu_ms_per_1000_orders.as_ref().map_or(f64::NAN, f)
    };
    println!();
    println!("baseline: {base:.0} tps hot row");
    println!("| figure | hot drop | stadium |");
    println!("|---|---|---|");
    type Figure<'a> = (&'a str, &'a dyn Fn(&hot_drop::Report) -> f64);
    let rows: [Figure<'_>; 9] = [
        ("decided/s", &|r| r.decided_per_sec),
        ("decided/s ÷ baseline", &|r| r.decided_per_sec / base),
        ("decided p99 ms", &|r| r.time_to_decided_ms.p99),
        ("paid p99 ms", &|r| r.time_to_paid_ms.p99),
        ("server CPU ms per 1,000 orders", &cpu(|c| c.server)),
        ("Postgres CPU ms per 1,000 orders", &cpu(|c| c.postgres)),
        ("Redis CPU ms per 1,000 orders", &cpu(|c| c.redis)),
        ("last payment → last email, ms", &|r| {
            r.last_payment_to_last_email_ms.unwrap_or(f64::NAN)
        }),
        ("peak RSS MB", &|r| r.peak_rss_mb.unwrap_or(f64::NAN)),
    ];
    for (name, f) in rows {
        println!(
            "| {name} | {:.2} | {:.2} |",
            column(small, f),
            column(stadium, f)
        );
    }
    for (name, drops) in [("hot drop", small), ("stadium", stadium)] {
        for r in drops {
            println!(
                "{name}: sold {}/{} seats, emails {}/{} paid, errors {:?}",
                r.seats_sold, r.seats, r.emails_sent, r.paid_orders, r.errors
            );
        }
    }
}

fn url_host_port(url: &str) -> Result<(String, u16)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or(rest);
    let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "6379"));
    Ok((host.to_owned(), port.parse().context("redis port")?))
}

/// Writes one command's runs to `{out}/{time}-{kind}.json` and says where.
fn save_report<T: serde::Serialize>(out: &std::path::Path, kind: &str, runs: &T) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let file = out.join(format!(
        "{}-{kind}.json",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    std::fs::write(&file, serde_json::to_string_pretty(runs)?)?;
    println!("report: {}", file.display());
    Ok(())
}
