use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::TestApp;

pub(crate) fn token_from(text: &str) -> String {
    let start = text.find("token=").expect("link with token") + "token=".len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn register_sends_a_verification_email_whose_token_verifies() {
    let app = TestApp::builder().full().start().await;
    let (access, _, _) = app.register("Ann@Example.com", "attendee").await;

    let (_, me) = app.get("/v1/auth/me", Some(&access)).await;
    assert_eq!(me["email_verified"], false);
    assert_eq!(me["role"], "attendee");

    let email = app
        .smtp
        .wait_for(
            "ann@example.com",
            "Confirm your email",
            Duration::from_secs(15),
        )
        .await;
    let (text, html) = (email.text(), email.html());
    assert!(
        text.contains("http://boxoffice.test/verify-email?token="),
        "{text}"
    );
    assert!(html.contains("Confirm email"), "{html}");
    let token = token_from(&text);
    assert!(html.contains(&token));

    let (status, body) = app
        .post("/v1/auth/verify-email", json!({"token": token}), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email_verified"], true);
    let (_, me) = app.get("/v1/auth/me", Some(&access)).await;
    assert_eq!(me["email_verified"], true);

    // One use only.
    let (status, body) = app
        .post("/v1/auth/verify-email", json!({"token": token}), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_token"))
    );
    // The token is never stored in the clear.
    assert_eq!(app.smtp.count_to("ann@example.com"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn login_answers_the_same_for_unknown_email_and_wrong_password() {
    let app = TestApp::spawn().await;
    app.register("bob@example.com", "organizer").await;

    let (ok, body) = app
        .post(
            "/v1/auth/login",
            json!({"email": "BOB@example.com", "password": "violet-otter-43-lamp"}),
            None,
        )
        .await;
    assert_eq!(ok, 200, "{body}");
    assert_eq!(body["user"]["role"], "organizer");
    assert_eq!(body["token_type"], "Bearer");

    let (s1, wrong) = app
        .post(
            "/v1/auth/login",
            json!({"email": "bob@example.com", "password": "not-the-password-1"}),
            None,
        )
        .await;
    let (s2, unknown) = app
        .post(
            "/v1/auth/login",
            json!({"email": "nobody@example.com", "password": "not-the-password-1"}),
            None,
        )
        .await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["code"], "invalid_credentials");
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let app = TestApp::spawn().await;
    let (access, first, _) = app.register("cy@example.com", "attendee").await;

    let (status, body) = app
        .post("/v1/auth/refresh", json!({"refresh_token": first}), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    let second_access = body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert_eq!(app.get("/v1/auth/me", Some(&second_access)).await.0, 200);

    // The first token again: a thief or a replay. Everything in the family dies.
    let (status, body) = app
        .post("/v1/auth/refresh", json!({"refresh_token": first}), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_refresh_token"))
    );
    let (status, _) = app
        .post("/v1/auth/refresh", json!({"refresh_token": second}), None)
        .await;
    assert_eq!(status, 401);
    // Access tokens of that session stop working too.
    assert_eq!(app.get("/v1/auth/me", Some(&second_access)).await.0, 401);
    assert_eq!(app.get("/v1/auth/me", Some(&access)).await.0, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_refreshes_of_one_token_yield_one_winner() {
    let app = TestApp::spawn().await;
    let (_, refresh, _) = app.register("dee@example.com", "attendee").await;
    let attempts =
        (0..8).map(|_| app.post("/v1/auth/refresh", json!({"refresh_token": refresh}), None));
    let results = futures::future::join_all(attempts).await;
    let winners = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(winners, 1, "{results:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn password_reset_end_to_end() {
    let app = TestApp::builder().full().start().await;
    let (old_access, old_refresh, _) = app.register("eve@example.com", "attendee").await;

    // Unknown accounts get the same answer and no email.
    let (status, _) = app
        .post(
            "/v1/auth/forgot-password",
            json!({"email": "ghost@example.com"}),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let (status, _) = app
        .post(
            "/v1/auth/forgot-password",
            json!({"email": "eve@example.com"}),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let email = app
        .smtp
        .wait_for(
            "eve@example.com",
            "Reset your password",
            Duration::from_secs(15),
        )
        .await;
    let token = token_from(&email.text());

    let (status, body) = app
        .post(
            "/v1/auth/reset-password",
            json!({"token": token, "password": "short"}),
            None,
        )
        .await;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (422, Some("password"))
    );
    let (status, body) = app
        .post(
            "/v1/auth/reset-password",
            json!({"token": token, "password": "amber-heron-77-kite"}),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");

    let old = json!({"email": "eve@example.com", "password": "violet-otter-43-lamp"});
    assert_eq!(app.post("/v1/auth/login", old, None).await.0, 401);
    let new = json!({"email": "eve@example.com", "password": "amber-heron-77-kite"});
    assert_eq!(app.post("/v1/auth/login", new, None).await.0, 200);
    // Signed out everywhere.
    assert_eq!(app.get("/v1/auth/me", Some(&old_access)).await.0, 401);
    assert_eq!(
        app.post(
            "/v1/auth/refresh",
            json!({"refresh_token": old_refresh}),
            None
        )
        .await
        .0,
        401
    );
    // The token is spent.
    let again = json!({"token": token, "password": "other-heron-88-kite"});
    assert_eq!(
        app.post("/v1/auth/reset-password", again, None).await.0,
        400
    );
    assert_eq!(app.smtp.count_to("ghost@example.com"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn login_is_rate_limited_per_account() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.auth.login_attempts_per_window = 3;
            c.auth.login_window = Duration::from_secs(60);
        })
        .start()
        .await;
    app.register("fay@example.com", "attendee").await;
    let wrong = json!({"email": "fay@example.com", "password": "wrong-password-123"});
    for _ in 0..3 {
        assert_eq!(app.post("/v1/auth/login", wrong.clone(), None).await.0, 401);
    }
    let response = app
        .client
        .post(app.url("/v1/auth/login"))
        .json(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    // Even the right password waits out the window: that is the point.
    let right = json!({"email": "fay@example.com", "password": "violet-otter-43-lamp"});
    assert_eq!(app.post("/v1/auth/login", right, None).await.0, 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_ends_the_session() {
    let app = TestApp::spawn().await;
    let (access, refresh, _) = app.register("gus@example.com", "attendee").await;
    let (status, _) = app.post("/v1/auth/logout", json!({}), Some(&access)).await;
    assert_eq!(status, 204);
    assert_eq!(app.get("/v1/auth/me", Some(&access)).await.0, 401);
    assert_eq!(
        app.post("/v1/auth/refresh", json!({"refresh_token": refresh}), None)
            .await
            .0,
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_is_rate_limited_per_ip() {
    let app = TestApp::builder()
        .with_config(|c| c.auth.registrations_per_hour = 2)
        .start()
        .await;
    app.register("r1@example.com", "attendee").await;
    app.register("r2@example.com", "attendee").await;
    let body = json!({"email": "r3@example.com", "password": "violet-otter-43-lamp", "display_name": "R3"});
    let (status, problem) = app.post("/v1/auth/register", body, None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert_eq!(app.count("users").await, 2);
}

/// Browsers keep the refresh token in an `HttpOnly` cookie sent to the
/// refresh endpoint alone; a refresh by cookie must come from the web
/// app's own origin, and signing out removes it.
#[tokio::test(flavor = "multi_thread")]
async fn the_refresh_cookie_rotates_from_our_origin_only() {
    let app = TestApp::spawn().await;
    app.register("cora@example.com", "attendee").await;
    let login = app
        .client
        .post(app.url("/v1/auth/login"))
        .json(&json!({"email": "cora@example.com", "password": "violet-otter-43-lamp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in [
        "Path=/v1/auth/refresh",
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "not in development: {cookie}");
    let body: Value = login.json().await.unwrap();
    let value = cookie.split(';').next().unwrap().to_owned();
    assert_eq!(
        value,
        format!(
            "boxoffice_refresh={}",
            body["refresh_token"].as_str().unwrap()
        )
    );

    let refresh = |origin: Option<&'static str>, cookie: String| {
        let mut req = app
            .client
            .post(app.url("/v1/auth/refresh"))
            .header("cookie", cookie);
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        req.send()
    };
    // Another site, or no Origin at all: refused, and the token is not
    // spent (the right origin can still use it).
    for origin in [Some("https://evil.example"), None] {
        let answer = refresh(origin, value.clone()).await.unwrap();
        assert_eq!(answer.status(), 401, "{origin:?}");
        let problem: Value = answer.json().await.unwrap();
        assert_eq!(problem["code"], "origin_rejected");
    }
    let answer = refresh(Some("http://boxoffice.test"), value.clone())
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let rotated = answer.headers()["set-cookie"].to_str().unwrap().to_owned();
    let body: Value = answer.json().await.unwrap();
    assert!(body["access_token"].is_string());
    assert!(rotated.starts_with(&format!(
        "boxoffice_refresh={};",
        body["refresh_token"].as_str().unwrap()
    )));
    assert_ne!(rotated.split(';').next().unwrap(), value, "rotated");

    // No cookie and no body: nothing to refresh.
    let (status, problem) = app.post("/v1/auth/refresh", json!({}), None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("invalid_refresh_token"))
    );

    let access = body["access_token"].as_str().unwrap();
    let out = app
        .client
        .post(app.url("/v1/auth/logout"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let cleared = out.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("boxoffice_refresh=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}
