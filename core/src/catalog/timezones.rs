//! IANA time-zone names, as PostgreSQL knows them. Validating against the
//! database's own list keeps the check and the date filters (`AT TIME ZONE`)
//! in agreement, without compiling a second copy of the tz database in.

use std::collections::HashSet;

use diesel::{QueryResult, QueryableByName, sql_types::Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use tokio::sync::OnceCell;

static NAMES: OnceCell<HashSet<String>> = OnceCell::const_new();

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// True if `name` is a time zone PostgreSQL can convert to. Abbreviations
/// like `CET` or `EST` are refused: they do not follow daylight saving.
pub async fn is_valid(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<bool> {
    let names = NAMES
        .get_or_try_init(|| async {
            // Reading the view parses every zone file (~tens of ms): once per process.
            let rows: Vec<Name> = diesel::sql_query(
                "SELECT name FROM pg_timezone_names
                  WHERE name ~ '^[A-Za-z_]+(/[A-Za-z0-9_+-]+)+$' OR name = 'UTC'",
            )
            .load(conn)
            .await?;
            Ok::<_, diesel::result::Error>(rows.into_iter().map(|r| r.name).collect())
        })
        .await?;
    Ok(names.contains(name))
}
