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

/// Admins find users by part of their email or name (any case), by role,
/// page by page; nobody else can, and bad parameters are 422s.
#[tokio::test(flavor = "multi_thread")]
async fn admins_find_users_by_email_or_name() {
    let app = TestApp::spawn().await;
    let (attendee, _, lee_id) = app.register("lee@example.com", "attendee").await;
    app.register("mo_x@example.com", "organizer").await;
    app.register("nia@other.org", "attendee").await;
    let admin = app.admin().await;
    let emails = |page: &serde_json::Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect()
    };

    let (status, page) = app.get("/v1/admin/users?q=EXAMPLE.COM", Some(&admin)).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(emails(&page), ["mo_x@example.com", "lee@example.com"]);
    assert_eq!(page["items"][1]["id"], lee_id.as_str());
    // `_` is a letter here, not LIKE's wildcard.
    let (_, page) = app.get("/v1/admin/users?q=o_x", Some(&admin)).await;
    assert_eq!(emails(&page), ["mo_x@example.com"]);
    let (_, page) = app.get("/v1/admin/users?q=_", Some(&admin)).await;
    assert_eq!(emails(&page), ["mo_x@example.com"]);
    // By display name ("Test User" for all), and by role.
    let (_, page) = app
        .get("/v1/admin/users?q=test%20user&role=attendee", Some(&admin))
        .await;
    assert_eq!(emails(&page), ["nia@other.org", "lee@example.com"]);

    // Pages: newest first, no repeats, no gaps.
    let mut seen = Vec::new();
    let mut url = "/v1/admin/users?limit=2".to_owned();
    loop {
        let (status, page) = app.get(&url, Some(&admin)).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(emails(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("/v1/admin/users?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    // The admin was made last.
    assert_eq!(
        seen,
        [
            "root@boxoffice.test",
            "nia@other.org",
            "mo_x@example.com",
            "lee@example.com"
        ]
    );

    assert_eq!(app.get("/v1/admin/users", Some(&attendee)).await.0, 403);
    assert_eq!(app.get("/v1/admin/users", None).await.0, 401);
    let (status, problem) = app
        .get("/v1/admin/users?role=king&limit=0", Some(&admin))
        .await;
    assert_eq!(status, 422);
    assert!(crate::harness::blames(&problem, "role") && crate::harness::blames(&problem, "limit"));
    let (status, problem) = app
        .get("/v1/admin/users?cursor=garbage", Some(&admin))
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
}
