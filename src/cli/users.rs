//! `boxoffice users`: admin accounts.

use anyhow::{Context, Result, bail};
use boxoffice_core::{
    Services,
    auth::{password, tokens},
    models::{NewUser, Role, User},
};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum UsersCommand {
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

pub async fn create_admin(
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
