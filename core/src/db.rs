//! PostgreSQL: the pooled async connections every role uses, and the embedded
//! migrations.

use diesel_async::{
    AsyncPgConnection,
    pooled_connection::{
        AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod, deadpool::Pool,
    },
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DatabaseConfig;

/// Why the database could not be reached, created or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL: {0}")]
    Url(String),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool::managed::BuildError),
    #[error("connect to {url}: {source}")]
    Connect {
        /// Redacted.
        url: String,
        #[source]
        source: diesel::ConnectionError,
    },
    #[error("database: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrate: {0}")]
    Migrate(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("migration task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

pub type DbPool = Pool<AsyncPgConnection>;
pub type DbConn = diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

pub fn pool(config: &DatabaseConfig) -> Result<DbPool, DbError> {
    // Fast recycling: a connection whose socket closed (a server restart)
    // is still dropped, without a `SELECT 1` round trip on every checkout
    // (45,000 of them in a 20,000-order drop).
    let mut manager_config = ManagerConfig::default();
    manager_config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        &config.url,
        manager_config,
    );
    Pool::builder(manager)
        .max_size(config.pool_size)
        .wait_timeout(Some(config.connect_timeout))
        .create_timeout(Some(config.connect_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(DbError::from)
}

/// `url` with a server setting for every session opened with it (the
/// `options` connection parameter, which libpq and tokio-postgres both
/// read). A URL that does not parse is returned as it was.
pub fn with_setting(url: &str, name: &str, value: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    let mut options = format!("-c {name}={value}");
    let others: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "options" {
                options = format!("{v} {options}");
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    parsed
        .query_pairs_mut()
        .clear()
        .extend_pairs(others)
        .append_pair("options", &options);
    // Form encoding writes a space as `+`, which libpq and tokio-postgres
    // read as a plus; a plus of the input is `%2B` by now.
    let query = parsed.query().map(|q| q.replace('+', "%20"));
    parsed.set_query(query.as_deref());
    parsed.into()
}

/// `url` with the connections it opens named `role` (`application_name`),
/// so `pg_stat_activity` tells the API's sessions from the workers' and the
/// scheduler's, and the fuzzer can tell which role wrote a row. A name
/// the URL already gives is kept.
pub fn named(url: &str, role: &str) -> String {
    if url.contains("application_name") {
        return url.to_owned();
    }
    with_setting(url, "application_name", role)
}

/// Applies pending migrations; returns the versions applied.
///
/// diesel's harness is synchronous; diesel-async wraps an async connection for
/// it, which needs `block_in_place` (so: the multi-threaded runtime).
pub async fn migrate(url: &str) -> Result<Vec<String>, DbError> {
    use diesel::Connection;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> =
            AsyncConnectionWrapper::establish(&url).map_err(|source| DbError::Connect {
                url: redact(&url),
                source,
            })?;
        conn.run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(|v| v.to_string()).collect())
            .map_err(DbError::Migrate)
    })
    .await?
}

/// Creates the database named in `url` if it does not exist, by connecting to
/// the server's `postgres` database.
pub async fn ensure_database(url: &str) -> Result<(), DbError> {
    use diesel::sql_query;
    use diesel_async::{AsyncConnection, RunQueryDsl};

    let mut parsed = url::Url::parse(url).map_err(|e| DbError::Url(e.to_string()))?;
    let name = parsed.path().trim_start_matches('/').to_owned();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(DbError::Url(format!("unsupported database name {name:?}")));
    }
    parsed.set_path("/postgres");
    let mut conn = AsyncPgConnection::establish(parsed.as_str())
        .await
        .map_err(|source| DbError::Connect {
            url: redact(parsed.as_str()),
            source,
        })?;
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let found: Exists =
        sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(&name)
            .get_result(&mut conn)
            .await?;
    if !found.exists {
        // Identifier checked above: only [A-Za-z0-9_].
        match sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Another process won the race.
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("already exists") => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A URL with its password replaced, for logs and errors.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable url>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_join_the_options_already_in_the_url() {
        assert_eq!(
            with_setting("postgres://u@h/db", "plan_cache_mode", "force_custom_plan"),
            "postgres://u@h/db?options=-c%20plan_cache_mode%3Dforce_custom_plan"
        );
        assert_eq!(
            with_setting(
                "postgres://u@h/db?sslmode=disable&options=-c%20work_mem%3D8MB",
                "a",
                "b"
            ),
            "postgres://u@h/db?sslmode=disable&options=-c%20work_mem%3D8MB%20-c%20a%3Db"
        );
        assert_eq!(with_setting("host=h user=u", "a", "b"), "host=h user=u");
        assert_eq!(
            named("postgres://u@h/db", "boxoffice-api"),
            "postgres://u@h/db?options=-c%20application_name%3Dboxoffice-api"
        );
        let chosen = "postgres://u@h/db?application_name=mine";
        assert_eq!(named(chosen, "boxoffice-api"), chosen);
    }
}

/// The database could not answer (a connection dropped or refused, the
/// server shutting down or starting up, a transaction that lost a
/// serialization race): worth retrying, unlike an error in what was asked.
/// diesel-async reports a lost connection as `UnableToSendCommand` and
/// PostgreSQL's own class 57P (operator intervention) only by its message.
pub fn is_unavailable(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::SerializationFailure,
            _,
        ) => true,
        Error::DatabaseError(_, info) => {
            let message = info.message();
            message.starts_with("terminating connection")
                || message.starts_with("the database system is")
                || message.starts_with("canceling statement due to conflict with recovery")
        }
        _ => false,
    }
}
