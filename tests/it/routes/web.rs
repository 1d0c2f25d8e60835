//! The web app is served by the same binary at `/`, and every link
//! Boxoffice emails opens one of its pages.

use std::time::Duration;

use crate::harness::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn the_emailed_links_open_the_web_app_under_a_strict_csp() {
    let app = TestApp::builder().full().start().await;
    app.register("ann@example.com", "attendee").await;
    let email = app
        .smtp
        .wait_for(
            "ann@example.com",
            "Confirm your email",
            Duration::from_secs(15),
        )
        .await;
    let text = email.text();
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with("http://boxoffice.test/verify-email?token="))
        .unwrap_or_else(|| panic!("no verification link in {text}"));
    let verify = link.trim_start_matches("http://boxoffice.test");

    for path in [
        verify,
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
