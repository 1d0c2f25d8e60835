//! `boxoffice`: one binary, several roles. This file parses the command line
//! and hands each subcommand to the role crates or to its module of `cli/`.

mod cli;

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use boxoffice_core::{Config, queue::QueueName};
use clap::{Parser, Subcommand};

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
        command: Option<cli::queues::QueuesCommand>,
    },
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: cli::users::UsersCommand,
    },
    /// Check the money ledger.
    Ledger {
        #[command(subcommand)]
        command: cli::ledger::LedgerCommand,
    },
}

impl Command {
    /// What its database sessions are called (`application_name`); `dev`
    /// names its API's so and gives workers and scheduler their own.
    fn role(&self) -> &'static str {
        match self {
            Command::Dev | Command::Api => "boxoffice-api",
            Command::Workers { .. } => "boxoffice-workers",
            Command::Scheduler => "boxoffice-scheduler",
            _ => "boxoffice-cli",
        }
    }
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
    config.database.url = boxoffice_core::db::named(&config.database.url, cli.command.role());
    match cli.command {
        Command::Migrate => cli::migrate(&config).await,
        Command::Ledger { command } => cli::ledger::run(&config, command).await,
        Command::Dev => {
            cli::migrate(&config).await?;
            let services = cli::connect(config).await?;
            cli::dev::run(services).await
        }
        Command::Api => {
            let services = cli::connect(config).await?;
            let shutdown = cli::shutdown_signal();
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
            let services = cli::connect(config).await?;
            boxoffice_workers::run(services, cli::shutdown_signal())
                .await
                .map_err(anyhow::Error::msg)
        }
        Command::Scheduler => {
            let services = cli::connect(config).await?;
            boxoffice_scheduler::run(services, cli::shutdown_signal()).await;
            Ok(())
        }
        Command::Seed => {
            if config.env == boxoffice_core::config::AppEnv::Production {
                bail!("seed loads demo accounts with a published password; refused in production");
            }
            cli::migrate(&config).await?;
            let services = cli::connect(config).await?;
            cli::seed::run(&services).await
        }
        Command::Sandbox { addr } => {
            let sandbox = boxoffice_sandbox::Sandbox::new(config.sandbox.clone())
                .map_err(anyhow::Error::msg)?;
            let (addr, server) = sandbox
                .bind(addr, cli::shutdown_signal())
                .await
                .map_err(anyhow::Error::msg)?;
            println!("sandbox payment provider on http://{addr}/sandbox");
            server.await.context("sandbox server")
        }
        Command::Queues { command } => {
            let services = cli::connect(config).await?;
            cli::queues::run(&services, command).await
        }
        Command::Users {
            command:
                cli::users::UsersCommand::CreateAdmin {
                    email,
                    password,
                    name,
                },
        } => {
            let services = cli::connect(config).await?;
            cli::users::create_admin(&services, &email, password, &name).await
        }
    }
}
