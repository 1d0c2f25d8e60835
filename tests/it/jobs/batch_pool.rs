use boxoffice_core::{batch, db::DbPool};
use diesel::{QueryableByName, sql_types::Text};
use diesel_async::RunQueryDsl;

use crate::harness::TestApp;

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

async fn show(pool: &DbPool, setting: &str) -> String {
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query("SELECT current_setting($1) AS value")
        .bind::<Text, _>(setting)
        .get_result::<Setting>(&mut conn)
        .await
        .unwrap()
        .value
}

/// A batching task that finds rows by its arrays' keys is only offered
/// index lookups, and keeps its first plan; one that only inserts, and the
/// shared pool, keep Postgres's defaults.
#[tokio::test(flavor = "multi_thread")]
async fn batch_connections_plan_as_asked() {
    let app = TestApp::spawn().await;
    let by_key = batch::own_pool(&app.services, batch::Planning::ByKey);
    let cached = batch::own_pool(&app.services, batch::Planning::Cached);
    for setting in ["enable_seqscan", "enable_hashjoin", "enable_mergejoin"] {
        assert_eq!(show(&by_key, setting).await, "off", "{setting}");
        assert_eq!(show(&cached, setting).await, "on", "{setting}");
        assert_eq!(show(&app.services.db, setting).await, "on", "{setting}");
    }
    assert_eq!(show(&by_key, "plan_cache_mode").await, "force_generic_plan");
    assert_eq!(show(&cached, "plan_cache_mode").await, "auto");
}
