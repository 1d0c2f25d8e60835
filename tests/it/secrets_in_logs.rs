//! No secret reaches the logs. Every line the app writes during a full
//! flow (registration and email verification, a purchase paid through the
//! provider's signed webhook, a refund, a payout, an outgoing signed
//! webhook, a token refresh, a password reset) is captured at debug level,
//! and none holds any secret or token the flow used.

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};

use crate::{
    harness::{TestApp, eventually},
    routes::{
        auth::token_from,
        payouts::{end, payouts_now},
        refunds::refund,
        webhook_endpoints::{Receiver, relay},
    },
};

/// Every log line, as the production format (JSON with span fields) writes it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Installs the capture as the process's subscriber (nextest runs each
    /// test in its own process).
    fn install() -> Self {
        let captured = Self::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter("debug,hyper=info,h2=info,reqwest=info,mio=info,tokio_postgres=info")
            .with_writer(move || writer.clone())
            .try_init()
            .expect("this test owns the process's log subscriber (run it under nextest)");
        captured
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

async fn email_token(app: &TestApp, to: &str, subject: &str) -> String {
    let email = app
        .smtp
        .wait_for(to, subject, Duration::from_secs(20))
        .await;
    token_from(&email.text())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_flow_logs_no_secret_and_no_token() {
    let logs = Captured::install();
    let app = TestApp::builder()
        .full()
        .with_config(|c| {
            c.webhooks.allow_loopback = true;
            c.sandbox.auto = Some((
                boxoffice_core::config::AutoOutcome::Pay,
                Duration::from_millis(50),
            ));
        })
        .start()
        .await;
    let config = app.services.config.clone();
    let shop = app
        .shop_with(10, 2500, json!({"refund_until_hours": 1}))
        .await;
    let receiver = Receiver::start().await;
    let _relay = relay(&app);
    let (status, endpoint) = app
        .post(
            "/v1/organizer/webhook-endpoints",
            json!({"url": receiver.url, "event_types": ["order.paid", "payout.paid"]}),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");

    let (access, refresh_token, _) = app.register("quiet@example.com", "attendee").await;
    let verify = email_token(&app, "quiet@example.com", "Confirm your email").await;
    let (status, _) = app
        .post("/v1/auth/verify-email", json!({"token": verify}), None)
        .await;
    assert_eq!(status, 200);

    let mut paid = Vec::new();
    for key in ["one", "two"] {
        let (status, order) = app
            .order(
                &access,
                &shop.event_id,
                key,
                json!({"items": [{"tier_id": shop.tier_id, "quantity": 1}]}),
            )
            .await;
        assert_eq!(status, 202, "{order}");
        let id = order["id"].as_str().unwrap().to_owned();
        app.wait_order(&access, &id, "paid").await;
        paid.push(id);
    }
    receiver.wait_for(2).await;
    let (_, tickets) = app
        .get(&format!("/v1/orders/{}/tickets", paid[0]), Some(&access))
        .await;
    let qr_payload = tickets[0]["qr_payload"].as_str().unwrap().to_owned();

    let (status, body) = refund(&app, &access, &paid[1], Some("back"), None).await;
    assert_eq!(status, 202, "{body}");
    app.wait_order(&access, &paid[1], "refunded").await;

    let (status, body) = app
        .send(
            app.client
                .put(app.url("/v1/organizer/payout-account"))
                .bearer_auth(&shop.organizer)
                .json(&json!({"account_id": "acct_quiet"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    end(&app, &shop.event_id).await;
    assert_eq!(payouts_now(&app).await, 1);
    eventually(Duration::from_secs(20), || async {
        let (_, page) = app
            .get("/v1/organizer/payouts", Some(&shop.organizer))
            .await;
        (page["items"][0]["status"] == "paid")
            .then_some(())
            .ok_or(page.to_string())
    })
    .await;

    let (status, refreshed) = app
        .post(
            "/v1/auth/refresh",
            json!({"refresh_token": refresh_token}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let (status, _) = app
        .post(
            "/v1/auth/forgot-password",
            json!({"email": "quiet@example.com"}),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let reset = email_token(&app, "quiet@example.com", "Reset your password").await;
    let new_password = "amber-heron-77-kite";
    let (status, body) = app
        .post(
            "/v1/auth/reset-password",
            json!({"token": reset, "password": new_password}),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    // A wrong password is logged as a failure, not as what was typed.
    let (status, _) = app
        .post(
            "/v1/auth/login",
            json!({"email": "quiet@example.com", "password": "violet-otter-43-lamp"}),
            None,
        )
        .await;
    assert_eq!(status, 401);

    let field = |v: &Value, name: &str| v[name].as_str().unwrap_or_default().to_owned();
    let mut secrets = vec![
        ("access token", access.clone()),
        ("refresh token", refresh_token),
        ("refreshed access token", field(&refreshed, "access_token")),
        (
            "refreshed refresh token",
            field(&refreshed, "refresh_token"),
        ),
        ("verification token", verify),
        ("reset token", reset),
        ("old password", "violet-otter-43-lamp".to_owned()),
        ("new password", new_password.to_owned()),
        ("organizer's token", shop.organizer.clone()),
        ("JWT secret", config.auth.jwt_secret.clone()),
        ("provider API key", config.payments.api_key.clone()),
        ("sandbox API key", config.sandbox.api_key.clone()),
        (
            "sandbox webhook secret",
            config.sandbox.webhook_secret.clone(),
        ),
        ("endpoint signing secret", field(&endpoint, "secret")),
        // The ticket's signature is what lets one in at the door.
        (
            "ticket signature",
            qr_payload.rsplit('.').next().unwrap_or_default().to_owned(),
        ),
    ];
    secrets.extend(
        config
            .payments
            .webhook_secrets
            .iter()
            .map(|s| ("inbound webhook secret", s.clone())),
    );
    let text = logs.text();
    // The capture saw the flow: the check below cannot pass on silence.
    for seen in ["order placed", "refund", "payout"] {
        assert!(text.contains(seen), "the logs never mention {seen:?}");
    }
    for (what, secret) in &secrets {
        assert!(
            secret.len() >= 8,
            "{what} is too short to look for: {secret:?}"
        );
        if let Some(at) = text.find(secret.as_str()) {
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            panic!(
                "the {what} is in the logs:\n{}",
                &text[line_start..line_end]
            );
        }
    }
}
