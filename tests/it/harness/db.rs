//! A fresh database per test, cloned from a template migrated once.

use diesel::sql_query;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

const TEMPLATE: &str = "boxoffice_test_template";
/// Serialises template migration and cloning across test processes (cloning
/// fails while anyone else is connected to the template).
const LOCK_KEY: i64 = 0x0b0c_5e1f;

pub fn server_url() -> String {
    let base = std::env::var("TEST_DATABASE_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    base.trim_end_matches('/').to_owned()
}

pub async fn create_test_database() -> String {
    let name = format!("boxoffice_test_{}", uuid::Uuid::new_v4().simple());
    let admin_url = format!("{}/postgres", server_url());
    let mut admin = AsyncPgConnection::establish(&admin_url)
        .await
        .expect("connect to postgres");
    sql_query(format!("SELECT pg_advisory_lock({LOCK_KEY})"))
        .execute(&mut admin)
        .await
        .unwrap();
    boxoffice_core::db::ensure_database(&format!("{}/{TEMPLATE}", server_url()))
        .await
        .expect("template db");
    boxoffice_core::db::migrate(&format!("{}/{TEMPLATE}", server_url()))
        .await
        .expect("migrate template");
    let created = sql_query(format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}"))
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
