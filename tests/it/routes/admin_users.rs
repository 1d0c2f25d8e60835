use serde_json::json;

use crate::harness::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_change_roles_and_the_change_takes_effect() {
    let app = TestApp::spawn().await;
    let (attendee, _, attendee_id) = app.register("jo@example.com", "attendee").await;
    let (organizer, _, _) = app.register("kim@example.com", "organizer").await;
    let path = format!("/v1/admin/users/{attendee_id}");
    let patch = |token: &str, body| {
        app.client
            .patch(app.url(&path))
            .bearer_auth(token)
            .json(&body)
    };

    assert_eq!(
        app.send(patch(&attendee, json!({"role": "admin"}))).await.0,
        403
    );
    assert_eq!(
        app.send(patch(&organizer, json!({"role": "admin"})))
            .await
            .0,
        403
    );
    assert_eq!(
        app.send(
            app.client
                .patch(app.url(&path))
                .json(&json!({"role": "admin"}))
        )
        .await
        .0,
        401
    );

    let admin = app.admin().await;
    let (status, body) = app.send(patch(&admin, json!({"role": "superuser"}))).await;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (422, Some("role"))
    );
    let (status, body) = app.send(patch(&admin, json!({"role": "organizer"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], "organizer");
    // Old tokens carried the old role: they stop working.
    assert_eq!(app.get("/v1/auth/me", Some(&attendee)).await.0, 401);
    let login = json!({"email": "jo@example.com", "password": "violet-otter-43-lamp"});
    let (_, body) = app.post("/v1/auth/login", login, None).await;
    assert_eq!(body["user"]["role"], "organizer");

    let unknown = format!("/v1/admin/users/{}", uuid::Uuid::now_v7());
    let req = app
        .client
        .patch(app.url(&unknown))
        .bearer_auth(&admin)
        .json(&json!({"role": "admin"}));
    assert_eq!(app.send(req).await.0, 404);
    let req = app
        .client
        .patch(app.url("/v1/admin/users/42"))
        .bearer_auth(&admin)
        .json(&json!({"role": "admin"}));
    assert_eq!(app.send(req).await.0, 404);
}
