//! A fresh database per test, cloned from a template migrated once.

use diesel::sql_query;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

const TEMPLATE_PREFIX: &str = "boxoffice_test_template";
/// Serialises template migration and cloning across test processes (cloning
/// fails while anyone else is connected to the template).
const LOCK_KEY: i64 = 0x0b0c_5e1f;

pub fn server_url() -> String {
    let base = std::env::var("TEST_DATABASE_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    base.trim_end_matches('/').to_owned()
}

/// The template's name carries a fingerprint of the migrations, so a
/// migration edited during development never leaves a stale template behind.
fn template_name() -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    fn walk(dir: &std::path::Path, hasher: &mut DefaultHasher) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("migrations folder")
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, hasher);
            } else {
                path.file_name().hash(hasher);
                std::fs::read(&path).unwrap().hash(hasher);
            }
        }
    }
    let mut hasher = DefaultHasher::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations"),
        &mut hasher,
    );
    format!("{TEMPLATE_PREFIX}_{:016x}", hasher.finish())
}

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    datname: String,
}

pub async fn create_test_database() -> String {
    let name = format!("boxoffice_test_{}", uuid::Uuid::new_v4().simple());
    let template = template_name();
    let admin_url = format!("{}/postgres", server_url());
    let mut admin = AsyncPgConnection::establish(&admin_url)
        .await
        .expect("connect to postgres");
    sql_query(format!("SELECT pg_advisory_lock({LOCK_KEY})"))
        .execute(&mut admin)
        .await
        .unwrap();
    // Templates of other migration sets are stale: drop them.
    let stale: Vec<Name> = sql_query(format!(
        "SELECT datname::text FROM pg_database WHERE datname LIKE '{TEMPLATE_PREFIX}%' AND datname <> '{template}'"
    ))
    .load(&mut admin)
    .await
    .unwrap_or_default();
    for old in stale {
        let _ = sql_query(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            old.datname
        ))
        .execute(&mut admin)
        .await;
    }
    boxoffice_core::db::ensure_database(&format!("{}/{template}", server_url()))
        .await
        .expect("template db");
    boxoffice_core::db::migrate(&format!("{}/{template}", server_url()))
        .await
        .expect("migrate template");
    let created = sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .execute(&mut admin)
        .await;
    sql_query(format!("SELECT pg_advisory_unlock({LOCK_KEY})"))
        .execute(&mut admin)
        .await
        .unwrap();
    created.expect("clone template");
    format!("{}/{name}", server_url())
}

pub fn drop_database_blocking(url: String) {
    // Drop runs outside any runtime; a small one of its own does the work.
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let name = url.rsplit('/').next().unwrap().to_owned();
            if let Ok(mut admin) =
                AsyncPgConnection::establish(&format!("{}/postgres", server_url())).await
            {
                let _ = sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await;
            }
        });
    })
    .join();
}
