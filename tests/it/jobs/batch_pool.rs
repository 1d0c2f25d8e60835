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
    let by_key = batch::own_pool(
        &app.services,
        batch::Planning::ByKey,
        batch::Commit::Durable,
    );
    let cached = batch::own_pool(
        &app.services,
        batch::Planning::Cached,
        batch::Commit::Durable,
    );
    for setting in ["enable_seqscan", "enable_hashjoin", "enable_mergejoin"] {
        assert_eq!(show(&by_key, setting).await, "off", "{setting}");
        assert_eq!(show(&cached, setting).await, "on", "{setting}");
        assert_eq!(show(&app.services.db, setting).await, "on", "{setting}");
    }
    assert_eq!(show(&by_key, "plan_cache_mode").await, "force_generic_plan");
    assert_eq!(show(&cached, "plan_cache_mode").await, "auto");
    // Replanned: the same lookups only, planned on every run.
    let replanned = batch::own_pool(
        &app.services,
        batch::Planning::ByKeyReplanned,
        batch::Commit::Durable,
    );
    for setting in ["enable_seqscan", "enable_hashjoin", "enable_mergejoin"] {
        assert_eq!(show(&replanned, setting).await, "off", "{setting}");
    }
    assert_eq!(
        show(&replanned, "plan_cache_mode").await,
        "force_custom_plan"
    );
}

/// Only a task asked to defer its commits does, whatever its planning.
#[tokio::test(flavor = "multi_thread")]
async fn batch_connections_commit_as_asked() {
    let app = TestApp::spawn().await;
    for planning in [batch::Planning::ByKey, batch::Planning::Cached] {
        let deferred = batch::own_pool(&app.services, planning, batch::Commit::Deferred);
        let durable = batch::own_pool(&app.services, planning, batch::Commit::Durable);
        assert_eq!(show(&deferred, "synchronous_commit").await, "off");
        assert_eq!(show(&durable, "synchronous_commit").await, "on");
        let plan_cache_mode = show(&deferred, "plan_cache_mode").await;
        assert_eq!(plan_cache_mode, show(&durable, "plan_cache_mode").await);
    }
    assert_eq!(show(&app.services.db, "synchronous_commit").await, "on");
}
