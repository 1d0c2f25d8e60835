use boxoffice_core::{batch, db::DbPool};
use diesel::{QueryableByName, sql_types::Text};
use diesel_async::RunQueryDsl;

use crate::harness::TestApp;

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    plan_cache_mode: String,
}

async fn plan_cache_mode(pool: &DbPool) -> String {
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query("SHOW plan_cache_mode")
        .get_result::<Setting>(&mut conn)
        .await
        .unwrap()
        .plan_cache_mode
}

/// A batching task's statements are planned for each batch; the shared
/// pool keeps Postgres's default.
#[tokio::test(flavor = "multi_thread")]
async fn batch_connections_plan_every_run() {
    let app = TestApp::spawn().await;
    assert_eq!(
        plan_cache_mode(&batch::own_pool(&app.services)).await,
        "force_custom_plan"
    );
    assert_eq!(plan_cache_mode(&app.services.db).await, "auto");
}
