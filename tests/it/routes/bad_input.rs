//! Every bad input gets a clear 4xx problem+json and changes nothing.

use serde_json::json;

use crate::harness::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn bad_registrations_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let good = json!({"email": "lee@example.com", "password": "violet-otter-43-lamp", "display_name": "Lee"});
    let with = |key: &str, value: serde_json::Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let cases = [
        (with("email", json!("not-an-email")), 422, "email"),
        (with("email", json!("a@b")), 422, "email"),
        (with("password", json!("short")), 422, "password"),
        (with("password", json!("aaaaaaaaaaaaaaa")), 422, "password"),
        (with("display_name", json!("")), 422, "display_name"),
        (with("role", json!("admin")), 422, "role"),
        (with("email", json!(42)), 422, "email"),
        (
            json!({"email": "lee@example.com", "password": "violet-otter-43-lamp"}),
            422,
            "display_name",
        ),
    ];
    for (body, status, field) in cases {
        let (got, problem) = app.post("/v1/auth/register", body.clone(), None).await;
        assert_eq!(got, status, "{body} → {problem}");
        assert_eq!(problem["code"], "validation_failed", "{problem}");
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{body} should blame {field}: {problem}"
        );
    }

    let raw = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/v1/auth/register"))
            .header("content-type", content_type)
            .body(body)
    };
    let (status, problem) = app.send(raw("{\"email\": ", "application/json")).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("malformed_json"))
    );
    let (status, problem) = app
        .send(raw("email=x", "application/x-www-form-urlencoded"))
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let huge = "x".repeat(1024 * 1024);
    let req = app
        .client
        .post(app.url("/v1/auth/register"))
        .header("content-type", "application/json")
        .body(huge);
    assert_eq!(app.send(req).await.0, 413);

    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.count("email_log").await, 0);

    // A duplicate email is a field error, and the first account is untouched.
    assert_eq!(
        app.post("/v1/auth/register", good.clone(), None).await.0,
        201
    );
    let (status, problem) = app
        .post(
            "/v1/auth/register",
            with("email", json!("LEE@example.com")),
            None,
        )
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("email"))
    );
    assert_eq!(app.count("users").await, 1);

    // Unknown routes and bad tokens are problems too.
    assert_eq!(app.get("/v1/nope", None).await.0, 404);
    let (status, problem) = app.get("/v1/auth/me", Some("garbage")).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("invalid_token"))
    );
    let (status, problem) = app.get("/v1/auth/me", None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("missing_token"))
    );
}
