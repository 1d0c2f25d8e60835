//! `boxoffice`: one binary, several roles. This file only parses the command
//! line and hands off to the role crates.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use boxoffice_core::{
    Config, Services,
    auth::{password, tokens},
    db,
    models::{NewUser, Role, User},
    queue::QueueName,
};
use clap::{Parser, Subcommand};
use tokio::sync::watch;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "boxoffice",
    version,
    about = "Event ticketing built around job queues"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate, then run API + workers + scheduler in one process.
    Dev,
    /// Run the HTTP API.
    Api,
    /// Run queue workers.
    Workers {
        /// Comma-separated queues to drain (default: all).
        #[arg(long, value_delimiter = ',')]
        queues: Option<Vec<String>>,
        /// Jobs at once per queue (default: each queue's own setting).
        #[arg(long)]
        concurrency: Option<usize>,
    },
    /// Run the cron scheduler (leader-elected; run as many as you like).
    Scheduler,
    /// Create the database if needed and apply migrations.
    Migrate,
    /// Load demo accounts and published events (idempotent; not in production).
    Seed,
    /// Run the sandbox payment provider on its own (under /sandbox).
    Sandbox {
        #[arg(long, env = "SANDBOX_ADDR", default_value = "127.0.0.1:8090")]
        addr: std::net::SocketAddr,
    },
    /// Queue stats and dead-job handling (`boxoffice queues` prints a table).
    Queues {
        #[command(subcommand)]
        command: Option<QueuesCommand>,
    },
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
}

#[derive(Subcommand)]
enum QueuesCommand {
    /// List a queue's dead jobs with their last error.
    Dead {
        queue: String,
    },
    /// Put a dead job (or all of them) back on its queue.
    Retry {
        queue: String,
        id: Option<String>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Delete a dead job for good.
    Discard {
        queue: String,
        id: String,
    },
    /// Stop taking new jobs from a queue (in-flight ones finish).
    Pause {
        queue: String,
    },
    Resume {
        queue: String,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create an admin account (or promote an existing one).
    CreateAdmin {
        #[arg(long)]
        email: String,
        /// Password; read from ADMIN_PASSWORD if unset, else generated and printed.
        #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[arg(long, default_value = "Admin")]
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    boxoffice_core::install_crypto_provider();
    let mut config = Config::from_env().context("configuration")?;
    boxoffice_core::telemetry::init(config.env);
    match cli.command {
        Command::Migrate => migrate(&config).await,
        Command::Dev => {
            migrate(&config).await?;
            let services = connect(config).await?;
            dev(services).await
        }
        Command::Api => {
            let services = connect(config).await?;
            let shutdown = shutdown_signal();
            let (addr, server) = boxoffice_api::bind(services, shutdown)
                .await
                .map_err(anyhow::Error::msg)?;
            tracing::info!(%addr, "API listening");
            server.await.context("http server")
        }
        Command::Workers {
            queues,
            concurrency,
        } => {
            if let Some(list) = queues {
                config.workers.queues =
                    QueueName::parse_list(&list.join(",")).map_err(anyhow::Error::msg)?;
            }
            if concurrency.is_some() {
                config.workers.concurrency = concurrency;
            }
            let services = connect(config).await?;
            boxoffice_workers::run(services, shutdown_signal())
                .await
                .map_err(anyhow::Error::msg)
        }
        Command::Scheduler => {
            let services = connect(config).await?;
            boxoffice_scheduler::run(services, shutdown_signal())
                .await
                .map_err(anyhow::Error::msg)
        }
        Command::Seed => {
            if config.env == boxoffice_core::config::AppEnv::Production {
                bail!("seed loads demo accounts with a published password; refused in production");
            }
            migrate(&config).await?;
            let services = connect(config).await?;
            seed(&services).await
        }
        Command::Sandbox { addr } => {
            let sandbox = boxoffice_sandbox::Sandbox::new(config.sandbox.clone())
                .map_err(anyhow::Error::msg)?;
            let (addr, server) = sandbox
                .bind(addr, shutdown_signal())
                .await
                .map_err(anyhow::Error::msg)?;
            println!("sandbox payment provider on http://{addr}/sandbox");
            server.await.context("sandbox server")
        }
        Command::Queues { command } => {
            let services = connect(config).await?;
            queues(&services, command).await
        }
        Command::Users {
            command:
                UsersCommand::CreateAdmin {
                    email,
                    password,
                    name,
                },
        } => {
            let services = connect(config).await?;
            create_admin(&services, &email, password, &name).await
        }
    }
}

async fn connect(config: Config) -> Result<Services> {
    Services::connect(config).await.map_err(anyhow::Error::msg)
}

async fn migrate(config: &Config) -> Result<()> {
    db::ensure_database(&config.database.url)
        .await
        .map_err(anyhow::Error::msg)?;
    let applied = db::migrate(&config.database.url)
        .await
        .map_err(anyhow::Error::msg)?;
    tracing::info!(applied = applied.len(), "migrations up to date");
    Ok(())
}

/// API + workers + scheduler in one process: the first-run experience.
async fn dev(services: Services) -> Result<()> {
    let shutdown = shutdown_signal();
    // The sandbox provider rides along at /sandbox, so the whole purchase
    // flow works with nothing else running.
    let sandbox = boxoffice_sandbox::Sandbox::new(services.config.sandbox.clone())
        .map_err(anyhow::Error::msg)?;
    let extra = axum::Router::new().nest("/sandbox", sandbox.router());
    let (addr, server) = boxoffice_api::bind_with(services.clone(), shutdown.clone(), Some(extra))
        .await
        .map_err(anyhow::Error::msg)?;
    // Each role its own pool, as when they run as separate processes.
    let pool_size = services.config.database.pool_size;
    let for_workers = services
        .with_own_pool(pool_size)
        .map_err(anyhow::Error::msg)?;
    let for_scheduler = services.with_own_pool(4).map_err(anyhow::Error::msg)?;
    let workers = tokio::spawn(boxoffice_workers::run(for_workers, shutdown.clone()));
    let scheduler = tokio::spawn(boxoffice_scheduler::run(for_scheduler, shutdown.clone()));
    println!();
    println!("  Boxoffice is running (API + workers + scheduler)");
    println!("  API        http://{addr}/v1");
    println!("  Health     http://{addr}/healthz  http://{addr}/readyz");
    println!("  Payments   sandbox provider at http://{addr}/sandbox (hosted checkout pages)");
    if let boxoffice_core::config::EmailTransportConfig::Outbox(dir) =
        &services.config.smtp.transport
    {
        println!(
            "  Emails     written to {}/ (set SMTP_URL to send them)",
            dir.display()
        );
    }
    println!("  Stop with Ctrl-C");
    println!();
    let served = server.await;
    let _ = workers.await;
    let _ = scheduler.await;
    served.context("http server")
}

fn queue_name(raw: &str) -> Result<QueueName> {
    raw.parse().map_err(anyhow::Error::msg)
}

async fn queues(services: &Services, command: Option<QueuesCommand>) -> Result<()> {
    let queues = &services.queues;
    match command {
        None => {
            println!(
                "{:<10} {:>7} {:>9} {:>7} {:>8} {:>6} {:>5} {:>10} {:>8} {:>7} {:>7}",
                "queue",
                "pending",
                "scheduled",
                "running",
                "done",
                "failed",
                "dead",
                "oldest",
                "per min",
                "workers",
                "state"
            );
            for q in QueueName::ALL {
                let s = queues.stats(q).await?;
                let per_min = s.per_minute.last().map_or(0, |m| m.done);
                let alive = s.worker_heartbeats.iter().filter(|w| w.alive).count();
                println!(
                    "{:<10} {:>7} {:>9} {:>7} {:>8} {:>6} {:>5} {:>10} {:>8} {:>7} {:>7}",
                    q.as_str(),
                    s.counts.pending,
                    s.counts.scheduled,
                    s.counts.running,
                    s.counts.done,
                    s.failed,
                    s.counts.dead,
                    s.oldest_pending_age_secs
                        .map_or("-".to_owned(), |a| format!("{a:.1}s")),
                    per_min,
                    format!("{alive}/{}", s.worker_heartbeats.len()),
                    if s.paused { "paused" } else { "running" },
                );
            }
        }
        Some(QueuesCommand::Dead { queue }) => {
            let q = queue_name(&queue)?;
            let dead = queues.dead_jobs(q).await?;
            if dead.is_empty() {
                println!("no dead jobs in {q}");
            }
            for job in dead {
                println!(
                    "{}  {}  {}",
                    job.id,
                    job.payload,
                    job.last_error.unwrap_or_default()
                );
            }
        }
        Some(QueuesCommand::Retry { queue, id, all }) => {
            let q = queue_name(&queue)?;
            let n = match (id, all) {
                (_, true) => queues.retry_all_dead(q).await?,
                (Some(id), false) => {
                    if !queues.retry_dead(q, &id).await? {
                        bail!("no dead job {id} in {q}");
                    }
                    1
                }
                (None, false) => bail!("name a job id or pass --all"),
            };
            println!("retried {n} job(s) in {q}");
        }
        Some(QueuesCommand::Discard { queue, id }) => {
            let q = queue_name(&queue)?;
            if !queues.discard(q, &id).await? {
                bail!("no dead job {id} in {q}");
            }
            println!("discarded {id} from {q}");
        }
        Some(QueuesCommand::Pause { queue }) => {
            let q = queue_name(&queue)?;
            queues.pause(q).await?;
            println!("{q} paused: workers finish what they hold and take nothing new");
        }
        Some(QueuesCommand::Resume { queue }) => {
            let q = queue_name(&queue)?;
            queues.resume(q).await?;
            println!("{q} resumed");
        }
    }
    Ok(())
}

async fn seed(services: &Services) -> Result<()> {
    use boxoffice_core::seed;
    let mut conn = services.db.get().await.context("database")?;
    let report = seed::seed(&mut conn).await.map_err(anyhow::Error::msg)?;
    println!(
        "seeded: {} new accounts, {} new events (re-running changes nothing)",
        report.users_created, report.events_created
    );
    println!();
    println!("  demo accounts (password: {})", seed::DEMO_PASSWORD);
    for (role, email, _) in seed::DEMO_ACCOUNTS {
        println!("    {:<10} {email}", role.as_str());
    }
    println!();
    println!("  published events");
    for (id, title) in &report.events {
        println!("    {id}  {title}");
    }
    println!();
    println!(
        "  discount code WELCOME10 (10 % off) on \"{}\"",
        report.events[0].1
    );
    Ok(())
}

async fn create_admin(
    services: &Services,
    email: &str,
    password: Option<String>,
    name: &str,
) -> Result<()> {
    use diesel_async::AsyncConnection;
    let mut conn = services.db.get().await.context("database")?;
    if let Some(existing) = User::find_by_email(&mut conn, email).await? {
        User::set_role(&mut conn, existing.id, Role::Admin).await?;
        println!("{email} is now an admin (password unchanged)");
        return Ok(());
    }
    let (password, generated) = match password {
        Some(p) => (p, false),
        None => (tokens::random_token()[..20].to_owned(), true),
    };
    if let Err(problem) = password::check_strength(&password) {
        bail!("password {problem}");
    }
    let hash = password::hash(password.clone())
        .await
        .map_err(anyhow::Error::msg)?;
    let user = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            let user = NewUser {
                id: uuid::Uuid::now_v7(),
                email,
                password_hash: &hash,
                display_name: name,
                role: Role::Admin.as_str(),
            }
            .insert(conn)
            .await?;
            User::mark_verified(conn, user.id).await?;
            Ok(user)
        })
        .await?;
    println!("created admin {} ({})", user.email, user.id);
    if generated {
        println!("generated password: {password}");
    }
    Ok(())
}

/// A flag that turns true on Ctrl-C or SIGTERM.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    rx
}
