//! The fault suite: a drop of a few hundred orders with auto-pay against a
//! cluster of real processes (`boxoffice api`, two `boxoffice workers`,
//! `boxoffice scheduler`, `boxoffice sandbox`) on a private PostgreSQL and a
//! private Redis (own ports and data folders: the faults never touch the
//! machine's shared servers), while one fault strikes; then the end state
//! is checked and the recovery timed. `./scripts/faults.sh`, and
//! RELIABILITY.md for what each scenario must show.

use std::{
    collections::BTreeMap,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use boxoffice_core::{config::DatabaseConfig, db, queue::QueueName};
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;

use crate::{cancel::count, hot_drop, smtp_sink::SmtpSink};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// `kill -9` of one workers process; restarted after 10 s.
    KillWorker,
    /// `kill -9` of every workers process; restarted after 10 s.
    KillAllWorkers,
    /// `kill -9` of the API; restarted after 3 s.
    KillApi,
    /// `kill -9` of the scheduler; two schedulers started in its place.
    KillScheduler,
    /// Redis stopped for 20 s, then started empty (every queued job gone).
    RedisOutage,
    /// `pg_ctl restart -m fast`.
    PostgresRestart,
    /// The SMTP server refusing every connection for 60 s.
    SmtpOutage,
    /// The payment provider misbehaving for the whole drop
    /// ([`PROVIDER_FAULTS`]): slow, 500 and 429 answers, every webhook
    /// three times and out of order.
    ProviderFaults,
}

/// The provider scenario's `SANDBOX_FAULTS`: a tenth of the API answers
/// 10 s late, a tenth done and then answered 500, a tenth refused with 429.
pub const PROVIDER_FAULTS: &str = "slow:0.1:10000,error:0.1,throttle:0.1,webhook-copies:3";

impl Scenario {
    pub const ALL: [Scenario; 8] = [
        Scenario::KillWorker,
        Scenario::KillAllWorkers,
        Scenario::KillApi,
        Scenario::KillScheduler,
        Scenario::RedisOutage,
        Scenario::PostgresRestart,
        Scenario::SmtpOutage,
        Scenario::ProviderFaults,
    ];
}

#[derive(Debug, Clone)]
pub struct Params {
    pub seats: i32,
    pub buyers: usize,
    pub concurrency: usize,
    /// Buyers arriving per second: the drop lasts buyers / rate seconds,
    /// so the fault strikes in the middle of it, not after it.
    pub rate: f64,
    /// How long a buyer keeps retrying one order before giving up.
    pub retry_budget: Duration,
    /// How long after the fault every order must be final and every
    /// confirmation sent.
    pub settle_timeout: Duration,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub orders: i64,
    pub paid: i64,
    pub rejected: i64,
    pub seats_sold: i64,
    /// Final answers to buyers, by status (`503` only when the budget ran out).
    pub answers: BTreeMap<String, usize>,
    /// Retryable answers on the way (503 problem+json, refused connections).
    pub retries: BTreeMap<String, usize>,
    /// How long the fault lasted (until the process or the service is back).
    pub fault_s: f64,
    /// From the fault's end to the last order decided, and to the last
    /// confirmation email accepted by SMTP (0: all done while it lasted).
    pub orders_final_after_s: f64,
    pub emails_sent_after_s: f64,
    /// Orders final within `ORDERS_TARGET_S` and emails within
    /// `EMAILS_TARGET_S` of the fault's end (reported, not failed on: a
    /// slow machine is not a lost order).
    pub within_targets: bool,
    /// What did not hold; empty when the scenario passed.
    pub violations: Vec<String>,
}

/// Recovery targets: every order decided within 20 s and every
/// confirmation sent within 30 s of the fault's end.
pub const ORDERS_TARGET_S: f64 = 20.0;
pub const EMAILS_TARGET_S: f64 = 30.0;

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// PostgreSQL's server programs (`initdb`, `pg_ctl`): on PATH, or in
/// Debian's versioned folder.
fn pg_bin(name: &str) -> Result<PathBuf> {
    if let Ok(out) = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        && out.status.success()
    {
        return Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL's server programs (initdb, pg_ctl) are not installed")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(name)))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().with_context(|| format!("no {name}"))
}

/// A PostgreSQL server program, run as the `postgres` user when we are
/// root (PostgreSQL refuses to run as root).
fn pg_command(name: &str) -> Result<Command> {
    let program = pg_bin(name)?;
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    Ok(if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    })
}

fn run(command: &mut Command) -> Result<()> {
    let out = command.output().with_context(|| format!("{command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A process that dies with us.
struct Proc(Child);

impl Proc {
    /// `kill -9`.
    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The private services and the Boxoffice processes on them.
pub struct Cluster {
    dir: PathBuf,
    exe: PathBuf,
    pg_port: u16,
    redis_port: u16,
    api_port: u16,
    sandbox_port: u16,
    jwt_secret: String,
    redis: Option<Proc>,
    api: Option<Proc>,
    workers: Vec<Proc>,
    schedulers: Vec<Proc>,
    sandbox: Option<Proc>,
    pub smtp: SmtpSink,
    spawned: usize,
    /// `SANDBOX_FAULTS` for the sandbox, if any.
    sandbox_faults: Option<&'static str>,
}

impl Cluster {
    pub async fn start(exe: &Path, sandbox_faults: Option<&'static str>) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "boxoffice-faults-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&dir)?;
        let mut cluster = Cluster {
            pg_port: free_port()?,
            redis_port: free_port()?,
            api_port: free_port()?,
            sandbox_port: free_port()?,
            dir,
            exe: exe.to_owned(),
            jwt_secret: format!("faults-{}", uuid::Uuid::new_v4().simple()),
            redis: None,
            api: None,
            workers: Vec::new(),
            schedulers: Vec::new(),
            sandbox: None,
            smtp: SmtpSink::start().await,
            spawned: 0,
            sandbox_faults,
        };
        // The server's own folder (data, socket, log): the postgres user's
        // when we are root.
        let pg = cluster.dir.join("pg");
        std::fs::create_dir_all(&pg)?;
        let _ = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(&pg)
            .output();
        run(pg_command("initdb")?
            .args(["-D"])
            .arg(pg.join("data"))
            .args(["-U", "postgres", "-A", "trust", "--no-sync"]))?;
        cluster.pg_ctl("start")?;
        cluster.start_redis()?;
        run(cluster.boxoffice().arg("migrate"))?;
        cluster.sandbox = Some(cluster.spawn("sandbox")?);
        cluster.api = Some(cluster.spawn("api")?);
        for _ in 0..2 {
            let w = cluster.spawn("workers")?;
            cluster.workers.push(w);
        }
        let s = cluster.spawn("scheduler")?;
        cluster.schedulers.push(s);
        cluster.wait_ready().await?;
        Ok(cluster)
    }

    fn pg_ctl(&self, action: &str) -> Result<()> {
        let pg = self.dir.join("pg");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.pg_port,
            pg.display()
        );
        run(pg_command("pg_ctl")?
            .args(["-D"])
            .arg(pg.join("data"))
            .args(["-l"])
            .arg(pg.join("postgres.log"))
            .args(["-o", &options, "-m", "fast", "-w", action]))
    }

    /// A fresh, empty Redis (no persistence: a restart loses everything).
    fn start_redis(&mut self) -> Result<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.redis_port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .context("redis-server")?;
        self.redis = Some(Proc(child));
        Ok(())
    }

    pub fn database_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/boxoffice", self.pg_port)
    }

    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    fn boxoffice(&self) -> Command {
        let mut command = Command::new(&self.exe);
        let api = self.api_url();
        let sandbox = format!("http://127.0.0.1:{}/sandbox", self.sandbox_port);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", self.database_url())
            .env("DATABASE_POOL_SIZE", "16")
            .env(
                "REDIS_URL",
                format!("redis://127.0.0.1:{}", self.redis_port),
            )
            .env("REDIS_NAMESPACE", "faults")
            .env("SMTP_URL", format!("smtp://127.0.0.1:{}", self.smtp.port))
            .env("JWT_SECRET", &self.jwt_secret)
            .env("HTTP_ADDR", format!("127.0.0.1:{}", self.api_port))
            .env("PUBLIC_URL", &api)
            .env("PAYMENT_PROVIDER_URL", &sandbox)
            .env("SANDBOX_PUBLIC_URL", &sandbox)
            .env(
                "SANDBOX_WEBHOOK_URL",
                format!("{api}/v1/webhooks/payments/sandbox"),
            )
            .env("SANDBOX_AUTO_PAY", "pay:200")
            .env("IP_RATE_LIMIT", "0")
            .env("USER_RATE_LIMIT", "0")
            .env(
                "RUST_LOG",
                std::env::var("FAULTS_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            );
        command
    }

    /// Starts one `boxoffice <role>`, its output in `<dir>/<role>-<n>.log`.
    fn spawn(&mut self, role: &str) -> Result<Proc> {
        self.spawned += 1;
        let log = std::fs::File::create(self.dir.join(format!("{role}-{}.log", self.spawned)))?;
        let mut command = self.boxoffice();
        if let Some(faults) = self.sandbox_faults.filter(|_| role == "sandbox") {
            command.env("SANDBOX_FAULTS", faults);
        }
        command.arg(role);
        if role == "sandbox" {
            command.args(["--addr", &format!("127.0.0.1:{}", self.sandbox_port)]);
        }
        let child = command
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start boxoffice {role}"))?;
        Ok(Proc(child))
    }

    async fn wait_ready(&self) -> Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/readyz", self.api_url())).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the API did not become ready (logs in {})",
                    self.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn pool(&self) -> Result<db::DbPool> {
        db::pool(&DatabaseConfig {
            url: self.database_url(),
            pool_size: 4,
            connect_timeout: Duration::from_secs(5),
        })
        .map_err(anyhow::Error::msg)
    }

    /// Strikes, and returns once the fault is over (the process or the
    /// service is back).
    async fn strike(&mut self, scenario: Scenario) -> Result<()> {
        match scenario {
            Scenario::KillWorker => {
                self.workers.remove(0).kill();
                tokio::time::sleep(Duration::from_secs(10)).await;
                let w = self.spawn("workers")?;
                self.workers.push(w);
            }
            Scenario::KillAllWorkers => {
                for w in self.workers.drain(..) {
                    w.kill();
                }
                tokio::time::sleep(Duration::from_secs(10)).await;
                for _ in 0..2 {
                    let w = self.spawn("workers")?;
                    self.workers.push(w);
                }
            }
            Scenario::KillApi => {
                if let Some(api) = self.api.take() {
                    api.kill();
                }
                tokio::time::sleep(Duration::from_secs(3)).await;
                self.api = Some(self.spawn("api")?);
                self.wait_ready().await?;
            }
            Scenario::KillScheduler => {
                for s in self.schedulers.drain(..) {
                    s.kill();
                }
                for _ in 0..2 {
                    let s = self.spawn("scheduler")?;
                    self.schedulers.push(s);
                }
            }
            Scenario::RedisOutage => {
                if let Some(redis) = self.redis.take() {
                    redis.kill();
                }
                tokio::time::sleep(Duration::from_secs(20)).await;
                self.start_redis()?;
            }
            Scenario::PostgresRestart => self.pg_ctl("restart")?,
            Scenario::SmtpOutage => {
                self.smtp.set_down(true);
                tokio::time::sleep(Duration::from_secs(60)).await;
                self.smtp.set_down(false);
            }
            // Struck from the start: the sandbox was started with it.
            Scenario::ProviderFaults => {}
        }
        Ok(())
    }

    /// Stops everything and removes the data folders (kept, with the logs,
    /// when `keep` is set: a failed scenario's evidence).
    pub fn finish(mut self, keep: bool) {
        self.api.take();
        self.workers.clear();
        self.schedulers.clear();
        self.sandbox.take();
        self.redis.take();
        let _ = self.pg_ctl("stop");
        if keep {
            eprintln!("faults: logs and data kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// What buyers were told, final and on the way.
#[derive(Default)]
struct Answers {
    last: Mutex<BTreeMap<String, usize>>,
    retries: Mutex<BTreeMap<String, usize>>,
    bad: Mutex<Vec<String>>,
    answered: AtomicUsize,
}

fn bump(map: &Mutex<BTreeMap<String, usize>>, key: String) {
    *map.lock().unwrap().entry(key).or_default() += 1;
}

/// One buyer's order, retried with its key on a refused connection or a
/// retryable 503 until it gets a final answer or the budget runs out.
async fn buy(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    key: &str,
    body: &serde_json::Value,
    budget: Duration,
    answers: &Answers,
) {
    let until = Instant::now() + budget;
    let mut wait = Duration::from_millis(250);
    loop {
        let result = http
            .post(url)
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await;
        let retry = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                let problem = response
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v == "application/problem+json");
                if status == 503 && problem {
                    "503".to_owned()
                } else {
                    if status >= 500 || (status >= 400 && !problem) {
                        answers
                            .bad
                            .lock()
                            .unwrap()
                            .push(format!("{status} (problem+json: {problem})"));
                    }
                    bump(&answers.last, status.to_string());
                    break;
                }
            }
            Err(e) if e.is_timeout() => {
                answers
                    .bad
                    .lock()
                    .unwrap()
                    .push("no answer within the client's 35 s".into());
                "timeout".to_owned()
            }
            Err(_) => "connection".to_owned(),
        };
        bump(&answers.retries, retry.clone());
        if Instant::now() + wait > until {
            bump(&answers.last, format!("gave up after {retry}"));
            break;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(4));
    }
    answers.answered.fetch_add(1, Ordering::Relaxed);
}

/// One scenario on a cluster of its own.
pub async fn scenario(exe: &Path, scenario: Scenario, params: &Params) -> Result<Report> {
    eprintln!("faults: {scenario:?}: starting a cluster");
    let faults = (scenario == Scenario::ProviderFaults).then_some(PROVIDER_FAULTS);
    let mut cluster = Cluster::start(exe, faults).await?;
    let result = drive(&mut cluster, scenario, params).await;
    let keep = !matches!(&result, Ok(r) if r.violations.is_empty());
    cluster.finish(keep);
    result
}

async fn drive(cluster: &mut Cluster, scenario: Scenario, params: &Params) -> Result<Report> {
    let target = hot_drop::Target {
        api_url: cluster.api_url(),
        db: cluster.pool()?,
        jwt_secret: cluster.jwt_secret.clone(),
        pid: None,
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(35))
        .build()?;
    let api = cluster.api_url();
    let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let (_, organizer) = hot_drop::make_buyers(&target, &run, 1, "organizer")
        .await?
        .remove(0);
    let start = chrono::Utc::now() + chrono::Duration::days(30);
    let event: serde_json::Value = http
        .post(format!("{api}/v1/events"))
        .bearer_auth(&organizer)
        .json(
            &json!({"title": format!("Fault drop {run}"), "category": "music",
            "starts_at": start, "ends_at": start + chrono::Duration::hours(3),
            "timezone": "UTC", "currency": "EUR"}),
        )
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let event_id = event["id"].as_str().context("event id")?.to_owned();
    let tier: serde_json::Value = http
        .post(format!("{api}/v1/events/{event_id}/tiers"))
        .bearer_auth(&organizer)
        .json(&json!({"name": "General", "price_minor": 4900, "quantity": params.seats, "max_per_order": 2}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let tier_id = tier["id"].as_str().context("tier id")?.to_owned();
    http.post(format!("{api}/v1/events/{event_id}/publish"))
        .bearer_auth(&organizer)
        .send()
        .await?
        .error_for_status()?;
    let buyers = hot_drop::make_buyers(&target, &run, params.buyers, "attendee").await?;

    // The drop; the fault strikes once a quarter of the buyers have their
    // answer.
    let answers = Arc::new(Answers::default());
    let url = format!("{api}/v1/events/{event_id}/orders");
    let drop_task = {
        let (http, answers, url, tier_id) =
            (http.clone(), answers.clone(), url.clone(), tier_id.clone());
        let (concurrency, budget, rate) = (params.concurrency, params.retry_budget, params.rate);
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            futures::stream::iter(buyers.into_iter().enumerate())
                .for_each_concurrent(concurrency, |(i, (_, token))| {
                    let (http, answers, url) = (&http, &answers, &url);
                    let body = json!({"items": [{"tier_id": tier_id, "quantity": (i % 2) + 1}]});
                    async move {
                        let arrival = started + Duration::from_secs_f64(i as f64 / rate);
                        tokio::time::sleep_until(arrival).await;
                        buy(
                            http,
                            url,
                            &token,
                            &format!("fault-{i}"),
                            &body,
                            budget,
                            answers,
                        )
                        .await;
                    }
                })
                .await;
        })
    };
    while AtomicUsize::load(&answers.answered, Ordering::Relaxed) < params.buyers / 4
        && !drop_task.is_finished()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("faults: {scenario:?}: strike");
    let struck = Instant::now();
    cluster.strike(scenario).await?;
    let back = Instant::now();
    eprintln!("faults: {scenario:?}: the fault is over; waiting for the end state");
    drop_task.await?;

    // Every order decided, every confirmation sent.
    let deadline = back + params.settle_timeout;
    let open = format!(
        "SELECT count(*) AS n FROM orders WHERE event_id = '{event_id}' AND status IN ('pending', 'awaiting_payment')"
    );
    let mut violations = Vec::new();
    let orders_final_after_s = loop {
        if count(&target, &open).await.unwrap_or(1) == 0 {
            break back.elapsed().as_secs_f64();
        }
        if Instant::now() > deadline {
            violations.push(format!(
                "{} orders still open {:?} after the fault",
                count(&target, &open).await.unwrap_or(-1),
                params.settle_timeout
            ));
            break f64::NAN;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let paid_sql = format!(
        "SELECT count(*) AS n FROM orders WHERE event_id = '{event_id}' AND status = 'paid'"
    );
    let paid = count(&target, &paid_sql).await?;
    let confirmations = || {
        cluster
            .smtp
            .messages()
            .iter()
            .filter(|m| m.subject().starts_with("Your tickets"))
            .map(|m| m.to.join(","))
            .collect::<Vec<_>>()
    };
    let emails_sent_after_s = loop {
        if confirmations().len() as i64 >= paid {
            break back.elapsed().as_secs_f64();
        }
        if Instant::now() > deadline {
            violations.push(format!(
                "{} of {paid} confirmation emails sent {:?} after the fault",
                confirmations().len(),
                params.settle_timeout
            ));
            break f64::NAN;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // A moment for any duplicate to show.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let e = &event_id;
    for (what, sql) in [
        ("seats sold ≠ seats of paid orders", format!(
            "SELECT count(*) AS n FROM tier_stock s JOIN ticket_tiers t ON t.id = s.tier_id
              WHERE t.event_id = '{e}' AND s.sold <> (SELECT coalesce(sum(i.quantity), 0) FROM order_items i
                JOIN orders o ON o.id = i.order_id WHERE i.tier_id = t.id AND o.status = 'paid')")),
        ("tiers oversold or still holding seats", format!(
            "SELECT count(*) AS n FROM tier_stock s JOIN ticket_tiers t ON t.id = s.tier_id
              WHERE t.event_id = '{e}' AND (s.sold > s.quantity OR s.held <> 0)")),
        ("paid orders without exactly one succeeded payment", format!(
            "SELECT count(*) AS n FROM orders o WHERE o.event_id = '{e}' AND o.status = 'paid'
               AND (SELECT count(*) FROM payments p WHERE p.order_id = o.id AND p.status = 'succeeded') <> 1")),
        ("paid orders whose tickets ≠ seats", format!(
            "SELECT count(*) AS n FROM orders o WHERE o.event_id = '{e}' AND o.status = 'paid'
               AND (SELECT count(*) FROM tickets k WHERE k.order_id = o.id)
                <> (SELECT sum(quantity) FROM order_items i WHERE i.order_id = o.id)")),
        ("tickets of unpaid orders", format!(
            "SELECT count(*) AS n FROM tickets k JOIN orders o ON o.id = k.order_id
              WHERE o.event_id = '{e}' AND o.status <> 'paid'")),
        ("duplicate ticket codes", format!(
            "SELECT count(*) - count(DISTINCT code) AS n FROM tickets WHERE event_id = '{e}'")),
        ("paid orders without exactly one sent confirmation", format!(
            "SELECT count(*) AS n FROM orders o WHERE o.event_id = '{e}' AND o.status = 'paid'
               AND (SELECT count(*) FROM email_log m WHERE m.dedupe_key = 'order_confirmation:' || o.id::text
                      AND m.status = 'sent') <> 1")),
    ] {
        match count(&target, &sql).await {
            Ok(0) => {}
            Ok(n) => violations.push(format!("{what}: {n}")),
            Err(e) => violations.push(format!("{what}: {e:#}")),
        }
    }
    let mut per_address: BTreeMap<String, usize> = BTreeMap::new();
    for to in confirmations() {
        *per_address.entry(to).or_default() += 1;
    }
    let twice = per_address.values().filter(|n| **n > 1).count();
    if twice > 0 {
        violations.push(format!(
            "{twice} buyers got their confirmation more than once"
        ));
    }
    {
        let mut conn = target.db.get().await?;
        let ledger = boxoffice_core::models::ledger::check(&mut conn).await?;
        for problem in &ledger.problems {
            violations.push(format!("ledger: {problem}"));
        }
    }
    let redis =
        boxoffice_core::queue::connect(&format!("redis://127.0.0.1:{}", cluster.redis_port))
            .await?;
    let queues = boxoffice_core::queue::Queues::new(redis, "faults");
    for queue in QueueName::ALL {
        let dead = queues.counts(queue).await?.dead;
        if dead > 0 {
            violations.push(format!("{dead} dead jobs in {}", queue.as_str()));
        }
    }
    let bad = answers.bad.lock().unwrap().clone();
    if !bad.is_empty() {
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for b in bad {
            *kinds.entry(b).or_default() += 1;
        }
        violations.push(format!("buyers were answered {kinds:?}"));
    }
    if answers
        .last
        .lock()
        .unwrap()
        .keys()
        .any(|k| k.starts_with("gave up"))
    {
        violations.push("some buyers ran out of retries".into());
    }
    let report = Report {
        scenario,
        orders: count(&target, &format!("SELECT count(*) AS n FROM orders WHERE event_id = '{e}'")).await?,
        paid,
        rejected: count(&target, &format!(
            "SELECT count(*) AS n FROM orders WHERE event_id = '{e}' AND status = 'rejected'"
        )).await?,
        seats_sold: count(&target, &format!(
            "SELECT coalesce(sum(s.sold), 0)::bigint AS n FROM tier_stock s JOIN ticket_tiers t ON t.id = s.tier_id WHERE t.event_id = '{e}'"
        )).await?,
        answers: answers.last.lock().unwrap().clone(),
        fault_s: back.duration_since(struck).as_secs_f64(),
        retries: answers.retries.lock().unwrap().clone(),
        orders_final_after_s,
        emails_sent_after_s,
        within_targets: orders_final_after_s <= ORDERS_TARGET_S
            && emails_sent_after_s <= EMAILS_TARGET_S,
        violations,
    };
    eprintln!(
        "faults: {scenario:?}: {} orders, {} paid, {} rejected; final {:.1} s and emailed {:.1} s after the fault; {}",
        report.orders,
        report.paid,
        report.rejected,
        report.orders_final_after_s,
        report.emails_sent_after_s,
        if report.violations.is_empty() {
            "passed".to_owned()
        } else {
            format!("FAILED: {:?}", report.violations)
        }
    );
    Ok(report)
}
