//! `boxoffice ledger check`: proves the ledger from the rows it stands for
//! and exits non-zero, naming each problem, when it does not.

use anyhow::{Context, Result, bail};
use boxoffice_core::{Config, models::ledger};
use clap::Subcommand;
use diesel_async::{AsyncConnection, AsyncPgConnection};

#[derive(Subcommand)]
pub enum LedgerCommand {
    /// Every transaction balances; each order's cash entries equal what it
    /// paid minus what was refunded.
    Check,
}

pub async fn run(config: &Config, command: LedgerCommand) -> Result<()> {
    match command {
        LedgerCommand::Check => {
            // The database alone: a check must run while Redis is down.
            let mut conn = AsyncPgConnection::establish(&config.database.url)
                .await
                .context("database")?;
            let report = ledger::check(&mut conn).await.context("read the ledger")?;
            print!("{report}");
            if !report.problems.is_empty() {
                bail!("the ledger does not balance");
            }
            Ok(())
        }
    }
}
