//! Boxoffice against Stripe: a local fake speaking Stripe's documented API
//! over real HTTP stands in for it (`harness::fake_stripe`), with the app
//! configured exactly as a user would (`PAYMENT_PROVIDER=stripe`).

use std::time::Duration;

use boxoffice_core::config::{ProviderKind, StripeConfig};
use serde_json::{Value, json};

use crate::{
    harness::{
        TestApp, eventually,
        fake_stripe::{FakeStripe, SECRET_KEY, WEBHOOK_SECRET},
    },
    routes::{payouts, refunds::refund},
};

async fn stripe_app() -> (TestApp, FakeStripe) {
    stripe_app_with(|_| {}).await
}

async fn stripe_app_with(
    tweak: impl FnOnce(&mut boxoffice_core::Config) + 'static,
) -> (TestApp, FakeStripe) {
    let fake = FakeStripe::start().await;
    let api_url = fake.url.clone();
    let app = TestApp::builder()
        .full()
        .with_config(move |c| {
            tweak(c);
            c.payments.provider = ProviderKind::Stripe;
            c.payments.stripe = Some(StripeConfig {
                secret_key: SECRET_KEY.into(),
                webhook_secrets: vec!["whsec_old_one".into(), WEBHOOK_SECRET.into()],
                api_url,
            });
        })
        .start()
        .await;
    fake.send_webhooks_to(app.url("/v1/webhooks/payments/stripe"));
    (app, fake)
}

/// `TestApp::order_with_checkout` at Stripe; returns (buyer, order id, session id).
async fn checkout(
    app: &TestApp,
    fake: &FakeStripe,
    shop: &crate::harness::shop::Shop,
    seats: i32,
) -> (String, String, String) {
    let (buyer, id, url) = app.order_with_checkout(shop, seats).await;
    assert!(url.starts_with(&fake.url), "{url}");
    let session = url.rsplit('/').next().unwrap().to_owned();
    (buyer, id, session)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_purchase_goes_through_stripe_checkout_and_its_confirmed_webhook() {
    let (app, fake) = stripe_app().await;
    let shop = app.shop(50, 2500).await;
    let (buyer, order_id, session) = checkout(&app, &fake, &shop, 2).await;

    // The session as Stripe documents it: form fields, a line per tier,
    // the order as reference and idempotency key.
    let seen = fake.seen();
    let create = seen
        .iter()
        .find(|s| s.method == "POST" && s.path == "/v1/checkout/sessions")
        .expect("a session created");
    assert_eq!(
        create.idempotency_key.as_deref(),
        Some(format!("checkout:{order_id}").as_str())
    );
    let form = &create.form;
    assert_eq!(form["mode"], "payment");
    assert_eq!(form["client_reference_id"], order_id);
    assert_eq!(form["metadata[order_id]"], order_id);
    assert_eq!(form["metadata[event_id]"], shop.event_id);
    assert_eq!(form["payment_intent_data[metadata][order_id]"], order_id);
    assert_eq!(form["line_items[0][price_data][currency]"], "eur");
    assert_eq!(form["line_items[0][price_data][unit_amount]"], "2500");
    assert_eq!(
        form["line_items[0][price_data][product_data][name]"],
        "General"
    );
    assert_eq!(form["line_items[0][quantity]"], "2");
    assert!(form["success_url"].ends_with(&format!("/orders/{order_id}")));

    assert_eq!(fake.pay(&session).await, 200);
    app.wait_order(&buyer, &order_id, "paid").await;
    // Applied only after the session was read back from the API.
    assert!(
        fake.seen()
            .iter()
            .any(|s| s.method == "GET" && s.path == format!("/v1/checkout/sessions/{session}"))
    );
    let tickets = app
        .scalar(&format!(
            "SELECT count(*) AS n FROM tickets WHERE order_id = '{order_id}'"
        ))
        .await;
    assert_eq!(tickets, 2);
    let provider = app
        .scalar(&format!(
            "SELECT count(*) AS n FROM payments
              WHERE order_id = '{order_id}' AND provider = 'stripe' AND provider_payment_id = 'pi_{}'",
            &session[3..]
        ))
        .await;
    assert_eq!(provider, 1);

    // The organizer refunds it: one refund at Stripe, on the payment
    // intent, idempotent on our refund id; finished once though Stripe
    // also tells it as `charge.refunded`.
    let (status, body) = refund(&app, &shop.organizer, &order_id, Some("r1"), None).await;
    assert_eq!(status, 202, "{body}");
    let refund_id = body["id"].as_str().unwrap().to_owned();
    app.wait_order(&buyer, &order_id, "refunded").await;
    let refunds: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.path == "/v1/refunds")
        .collect();
    assert_eq!(refunds.len(), 1);
    assert_eq!(
        refunds[0].idempotency_key.as_deref(),
        Some(format!("refund:{refund_id}").as_str())
    );
    assert_eq!(
        refunds[0].form["payment_intent"],
        format!("pi_{}", &session[3..])
    );
    assert_eq!(refunds[0].form["amount"], "5000");
    assert_eq!(refunds[0].form["metadata[refund_id]"], refund_id);
    eventually(Duration::from_secs(10), || async {
        let applied = app
            .scalar("SELECT count(*) AS n FROM webhook_inbox WHERE event_type = 'charge.refunded' AND processed_at IS NOT NULL")
            .await;
        (applied == 1).then_some(()).ok_or(format!("{applied}"))
    })
    .await;
    let succeeded = app
        .scalar(&format!("SELECT count(*) AS n FROM refunds WHERE order_id = '{order_id}' AND status = 'succeeded'"))
        .await;
    assert_eq!(succeeded, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_stale_or_unconfirmed_webhooks_pay_nothing() {
    let (app, fake) = stripe_app().await;
    let shop = app.shop(50, 2500).await;
    let (buyer, order_id, session) = checkout(&app, &fake, &shop, 1).await;
    let paid_object = |s: &str| -> Value {
        json!({"id": s, "object": "checkout.session", "client_reference_id": order_id,
               "payment_status": "paid", "status": "complete", "payment_intent": "pi_forged",
               "amount_total": 2500, "currency": "eur"})
    };
    // A wrong secret, a stale and a future timestamp: 401, nothing stored.
    for (secret, skew) in [
        ("whsec_wrong", 0),
        (WEBHOOK_SECRET, -400),
        (WEBHOOK_SECRET, 400),
    ] {
        let status = fake
            .webhook_signed(
                "checkout.session.completed",
                paid_object(&session),
                secret,
                skew,
            )
            .await;
        assert_eq!(status, 401, "{secret} {skew}");
    }
    assert_eq!(app.count("webhook_inbox").await, 0);

    // Correctly signed, but Stripe says the session is still open: stored,
    // read back, not applied.
    assert_eq!(
        fake.webhook("checkout.session.completed", paid_object(&session))
            .await,
        200
    );
    eventually(Duration::from_secs(10), || async {
        let processed = app
            .scalar("SELECT count(*) AS n FROM webhook_inbox WHERE processed_at IS NOT NULL")
            .await;
        (processed == 1).then_some(()).ok_or(format!("{processed}"))
    })
    .await;
    let (_, order) = app
        .get(&format!("/v1/orders/{order_id}"), Some(&buyer))
        .await;
    assert_eq!(order["status"], "awaiting_payment", "{order}");
    assert_eq!(app.count("payments").await, 0);

    // Webhooks of a provider that is not set up are not found; the
    // sandbox's (set up outside production) are still taken, so orders in
    // flight survive a switch of the default.
    let (status, _) = app
        .send(
            app.client
                .post(app.url("/v1/webhooks/payments/paystack"))
                .body("{}"),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .send(
            app.client
                .post(app.url("/v1/webhooks/payments/sandbox"))
                .body("{}"),
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn stripe_outages_are_retried_and_its_refusals_are_not() {
    let (app, fake) = stripe_app().await;
    let shop = app.shop(50, 2500).await;
    // Two 500s, then Stripe answers: the checkout is opened by a retry.
    fake.fail_next(2, 500);
    let (buyer, order_id, session) = checkout(&app, &fake, &shop, 1).await;
    assert!(fake.session(&session).is_some());
    let attempts = fake
        .seen()
        .iter()
        .filter(|s| s.path == "/v1/checkout/sessions")
        .count();
    assert_eq!(attempts, 3);
    assert_eq!(fake.pay(&session).await, 200);
    app.wait_order(&buyer, &order_id, "paid").await;

    // A 4xx refusal is final: the refund fails with Stripe's reason, once.
    fake.fail_next(1, 400);
    let (status, body) = refund(&app, &shop.organizer, &order_id, Some("r1"), None).await;
    assert_eq!(status, 202, "{body}");
    eventually(Duration::from_secs(20), || async {
        let failed = app
            .scalar(&format!(
                "SELECT count(*) AS n FROM refunds
                  WHERE order_id = '{order_id}' AND status = 'failed' AND last_error LIKE '%fake outage%'"
            ))
            .await;
        (failed == 1).then_some(()).ok_or(format!("{failed}"))
    })
    .await;
    let calls = fake
        .seen()
        .iter()
        .filter(|s| s.path == "/v1/refunds")
        .count();
    assert_eq!(calls, 1, "not retried");
    let (_, order) = app
        .get(&format!("/v1/orders/{order_id}"), Some(&buyer))
        .await;
    assert_eq!(order["status"], "paid");
}

/// A Stripe that does not answer: the call is cut at the provider
/// timeout (the app hangs up, so the stalled request is never handled)
/// and retried, and the order gets its session without waiting the stall
/// out.
#[tokio::test(flavor = "multi_thread")]
async fn a_stripe_that_does_not_answer_is_cut_at_the_timeout_and_retried() {
    let (app, fake) =
        stripe_app_with(|c| c.payments.provider_timeout = Duration::from_secs(1)).await;
    let shop = app.shop(50, 2500).await;
    fake.stall_next(Duration::from_secs(6));
    let started = std::time::Instant::now();
    let (buyer, order_id, session) = checkout(&app, &fake, &shop, 1).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(6),
        "{took:?}: cut at the timeout, not held by the stall"
    );
    assert_eq!(fake.pay(&session).await, 200);
    app.wait_order(&buyer, &order_id, "paid").await;
    assert_eq!(fake.session_count(), 1);
}

/// A 429 with `Retry-After` is waited out (not the short retry backoff),
/// and the refund then goes through.
#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_is_waited_out_as_stripe_asks() {
    let (app, fake) = stripe_app().await;
    let shop = app.shop(50, 2500).await;
    let (buyer, order_id, session) = checkout(&app, &fake, &shop, 1).await;
    assert_eq!(fake.pay(&session).await, 200);
    app.wait_order(&buyer, &order_id, "paid").await;

    fake.throttle_next(3);
    let (status, body) = refund(&app, &shop.organizer, &order_id, Some("r1"), None).await;
    assert_eq!(status, 202, "{body}");
    app.wait_order(&buyer, &order_id, "refunded").await;
    let calls: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.path == "/v1/refunds")
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let waited = calls[1].at - calls[0].at;
    assert!(
        waited >= Duration::from_millis(2900),
        "retried after {waited:?}, not after Retry-After"
    );
    assert_eq!(calls[0].idempotency_key, calls[1].idempotency_key);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_opens_the_circuit_defers_the_jobs_and_a_probe_closes_it() {
    let (app, fake) =
        stripe_app_with(|c| c.payments.breaker.open_for = Duration::from_secs(1)).await;
    let shop = app.shop(50, 2500).await;
    // Five failures in a row open the circuit; the jobs that meet it open
    // are pushed again for later, without calling Stripe or spending an
    // attempt; after a second one probe finds Stripe back and closes it.
    fake.fail_next(5, 503);
    let (a, b, c) = tokio::join!(
        checkout(&app, &fake, &shop, 1),
        checkout(&app, &fake, &shop, 1),
        checkout(&app, &fake, &shop, 1)
    );
    let sessions = [a.2, b.2, c.2];
    assert!(sessions.iter().all(|s| fake.session(s).is_some()));
    let calls = fake
        .seen()
        .iter()
        .filter(|s| s.path == "/v1/checkout/sessions")
        .count();
    assert_eq!(calls, 5 + 3, "no call while the circuit was open");
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("boxoffice_payment_provider_circuit{provider=\"stripe\"} 0"),
        "{text}"
    );
    // Ops see each worker process's breakers (the board shows the same).
    let admin = app.admin().await;
    let (status, _) = app.get("/v1/ops/providers", Some(&a.0)).await;
    assert_eq!(status, 403);
    let circuits = eventually(Duration::from_secs(10), || async {
        let (_, list) = app.get("/v1/ops/providers", Some(&admin)).await;
        let stripe: Vec<Value> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["provider"] == "stripe")
            .cloned()
            .collect();
        // Each process reports every 2 s: the report read first may have
        // been written while the circuit was still open.
        (!stripe.is_empty() && stripe.iter().all(|c| c["state"] == "closed"))
            .then_some(stripe)
            .ok_or(list.to_string())
    })
    .await;
    // The workers run in this test's process: its pid names them.
    let pid = format!("-{}", std::process::id());
    assert!(
        circuits
            .iter()
            .all(|c| c["process"].as_str().is_some_and(|p| p.ends_with(&pid))),
        "{circuits:?}"
    );
    let opens: u64 = text
        .lines()
        .find(|l| {
            l.starts_with("boxoffice_payment_provider_circuit_opens_total{provider=\"stripe\"}")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(opens >= 1, "{text}");
}

/// Everything logged, at debug level, by every part of the process.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_the_logs_in_a_full_flow() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let (app, fake) = stripe_app().await;
    let shop = app.shop(50, 2500).await;
    let (buyer, order_id, session) = checkout(&app, &fake, &shop, 1).await;
    // A refusal, a forged webhook, then the real payment and a refund.
    assert_eq!(
        fake.webhook_signed("checkout.session.completed", json!({}), "whsec_wrong", 0)
            .await,
        401
    );
    assert_eq!(fake.pay(&session).await, 200);
    app.wait_order(&buyer, &order_id, "paid").await;
    fake.fail_next(1, 400);
    let (status, _) = refund(&app, &shop.organizer, &order_id, Some("r1"), None).await;
    assert_eq!(status, 202);
    let (status, _) = refund(&app, &shop.organizer, &order_id, Some("r2"), None).await;
    assert!(status == 202 || status == 409, "{status}");
    // Every refund asked for has ended (the refused one failed).
    eventually(Duration::from_secs(20), || async {
        let open = app
            .scalar(&format!(
                "SELECT count(*) AS n FROM refunds
                  WHERE order_id = '{order_id}' AND status IN ('requested', 'processing')"
            ))
            .await;
        (open == 0)
            .then_some(())
            .ok_or(format!("{open} refunds open"))
    })
    .await;

    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(text.contains(&order_id), "the flow was logged");
    for secret in [
        SECRET_KEY,
        WEBHOOK_SECRET,
        "whsec_old_one",
        &app.services.config.auth.jwt_secret,
    ] {
        assert!(!text.contains(secret), "{secret} in the logs");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organizer_can_take_payments_with_another_provider_than_the_default() {
    let (app, fake) = stripe_app().await;
    let on_sandbox = app.shop(50, 2500).await;
    let on_stripe = app.shop(50, 2500).await;
    let account = |provider: Value| json!({"account_id": "acct_123", "provider": provider});
    let (status, problem) = app
        .send(
            app.client
                .put(app.url("/v1/organizer/payout-account"))
                .bearer_auth(&on_sandbox.organizer)
                .json(&account("paypal".into())),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert!(crate::harness::blames(&problem, "provider"), "{problem}");
    let (status, body) = app
        .send(
            app.client
                .put(app.url("/v1/organizer/payout-account"))
                .bearer_auth(&on_sandbox.organizer)
                .json(&account("sandbox".into())),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["provider"], "sandbox");

    // The default's organizer: Stripe.
    let (_, _, session) = checkout(&app, &fake, &on_stripe, 1).await;
    assert!(fake.session(&session).is_some());
    // The sandbox's organizer: the sandbox's checkout, nothing at Stripe.
    let before = fake.seen().len();
    let (_, id, url) = app.order_with_checkout(&on_sandbox, 1).await;
    assert!(url.contains("/sandbox/"), "{url}");
    assert_eq!(fake.seen().len(), before);
    let provider = app
        .scalar(&format!(
            "SELECT count(*) AS n FROM orders WHERE id = '{id}' AND provider = 'sandbox'"
        ))
        .await;
    assert_eq!(provider, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organizer_is_paid_out_by_a_stripe_transfer() {
    let (app, fake) = stripe_app().await;
    let shop = app.shop(50, 2500).await;
    let (buyer, order_id, session) = checkout(&app, &fake, &shop, 2).await;
    assert_eq!(fake.pay(&session).await, 200);
    app.wait_order(&buyer, &order_id, "paid").await;
    let (status, body) = app
        .send(
            app.client
                .put(app.url("/v1/organizer/payout-account"))
                .bearer_auth(&shop.organizer)
                .json(&json!({"account_id": "acct_1Organizer"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    payouts::end(&app, &shop.event_id).await;
    assert_eq!(payouts::payouts_now(&app).await, 1);
    let payout = eventually(Duration::from_secs(20), || async {
        let (_, page) = app
            .get("/v1/organizer/payouts", Some(&shop.organizer))
            .await;
        let first = page["items"][0].clone();
        (first["status"] == "paid")
            .then_some(first)
            .ok_or(page.to_string())
    })
    .await;
    let transfers: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.path == "/v1/transfers")
        .collect();
    assert_eq!(transfers.len(), 1);
    let t = &transfers[0];
    let payout_id = payout["id"].as_str().unwrap();
    assert_eq!(
        t.idempotency_key.as_deref(),
        Some(format!("transfer:{payout_id}").as_str())
    );
    assert_eq!(t.form["destination"], "acct_1Organizer");
    assert_eq!(t.form["currency"], "eur");
    assert_eq!(t.form["amount"], payout["amount_minor"].to_string());
    assert_eq!(t.form["metadata[payout_id]"], payout_id);
    assert_eq!(payout["amount_minor"], 5000, "no platform fee configured");
}
