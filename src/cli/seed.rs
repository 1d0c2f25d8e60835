//! `boxoffice seed`: demo accounts and published events (idempotent).

use anyhow::{Context, Result};
use boxoffice_core::Services;

pub async fn run(services: &Services) -> Result<()> {
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
