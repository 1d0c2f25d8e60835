//! The web app is served by the same binary at `/`, and every link
//! Boxoffice emails opens one of its pages.

use std::time::Duration;

use serde_json::json;

use crate::harness::{TestApp, browser::rendered};

/// The path of the verification link emailed to `to` (the test app's
/// `PUBLIC_URL` is `http://boxoffice.test`).
async fn verification_link(app: &TestApp, to: &str) -> String {
    let email = app
        .smtp
        .wait_for(to, "Confirm your email", Duration::from_secs(15))
        .await;
    let text = email.text();
    text.split_whitespace()
        .find(|w| w.starts_with("http://boxoffice.test/verify-email?token="))
        .unwrap_or_else(|| panic!("no verification link in {text}"))
        .trim_start_matches("http://boxoffice.test")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_emailed_links_open_the_web_app_under_a_strict_csp() {
    let app = TestApp::builder().full().start().await;
    app.register("ann@example.com", "attendee").await;
    let verify = verification_link(&app, "ann@example.com").await;

    for path in [
        verify.as_str(),
        "/",
        "/events/0193a0b2-0000-7000-8000-000000000000",
        "/forgot-password",
        "/reset-password?token=abc",
        "/orders/0193a0b2-0000-7000-8000-000000000000",
    ] {
        let page = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(page.status(), 200, "{path}");
        let header = |name: &str| page.headers()[name].to_str().unwrap().to_owned();
        assert!(header("content-type").starts_with("text/html"), "{path}");
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        let html = page.text().await.unwrap();
        assert!(
            html.contains(r#"<script type="module" src="/app/app.js"></script>"#),
            "{path}"
        );
        assert!(
            !html.contains("https://") && !html.contains("http://"),
            "no other origin: {path}"
        );
    }

    let js = app.client.get(app.url("/app/app.js")).send().await.unwrap();
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let js = js.text().await.unwrap();
    // The pages the emails open call the API that does the work, and no
    // page writes markup from strings.
    for call in [
        "/v1/auth/verify-email",
        "/v1/auth/reset-password",
        "/v1/auth/forgot-password",
        "/v1/orders/",
        "/v1/events",
    ] {
        assert!(js.contains(call), "{call}");
    }
    assert!(!js.contains("innerHTML"));
    let css = app
        .client
        .get(app.url("/app/app.css"))
        .send()
        .await
        .unwrap();
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );

    // Outside the app's pages the API's 404 stands.
    let (status, problem) = app.get("/nowhere", None).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("no_route")));
}

/// In Chromium: the emailed link verifies the address (once), the
/// storefront lists a published event, and its page shows its tiers.
#[tokio::test(flavor = "multi_thread")]
async fn in_a_browser_the_emailed_link_verifies_and_the_storefront_shows_the_event() {
    let app = TestApp::builder().full().start().await;
    let (access, _, _) = app.register("bea@example.com", "attendee").await;
    let verify = verification_link(&app, "bea@example.com").await;

    let dom = rendered(&app.url(&verify)).await;
    assert!(dom.contains("bea@example.com is verified"), "{dom}");
    let (_, me) = app.get("/v1/auth/me", Some(&access)).await;
    assert_eq!(me["email_verified"], true);
    let dom = rendered(&app.url(&verify)).await;
    assert!(
        dom.contains(r#"role="alert""#) && dom.contains("already used"),
        "a used link says so: {dom}"
    );

    let organizer = app.organizer("org@example.com").await;
    let event = app
        .published_event(
            &organizer,
            json!({"title": "Rooftop Sessions", "timezone": "Asia/Tokyo", "currency": "JPY"}),
        )
        .await;
    let id = event["id"].as_str().unwrap();
    let dom = rendered(&app.url("/")).await;
    assert!(
        dom.contains(&format!(r#"<a href="/events/{id}">Rooftop Sessions</a>"#)),
        "{dom}"
    );
    let dom = rendered(&app.url(&format!("/events/{id}"))).await;
    assert!(dom.contains("<h1>Rooftop Sessions</h1>"), "{dom}");
    // The tier, its price in yen (no minor unit: 2500 is ¥2,500) and its
    // stock; the time in Tokyo's zone.
    assert!(
        dom.contains("General") && dom.contains("2,500") && dom.contains("100 left"),
        "{dom}"
    );
    assert!(dom.contains("GMT+9") || dom.contains("JST"), "{dom}");
}
