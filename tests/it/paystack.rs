//! Boxoffice against Paystack: a local fake speaking Paystack's documented
//! API over real HTTP (`harness::fake_paystack`), the app configured as a
//! user would (`PAYMENT_PROVIDER=paystack`).

use std::time::Duration;

use boxoffice_core::config::{PaystackConfig, ProviderKind};
use serde_json::json;

use crate::{
    harness::{
        TestApp, eventually,
        fake_paystack::{FakePaystack, SECRET_KEY},
        shop::Shop,
    },
    routes::refunds::refund,
};

async fn paystack_app() -> (TestApp, FakePaystack) {
    let fake = FakePaystack::start().await;
    let api_url = fake.url.clone();
    let app = TestApp::builder()
        .full()
        .with_config(move |c| {
            c.payments.provider = ProviderKind::Paystack;
            c.payments.paystack = Some(PaystackConfig {
                secret_key: SECRET_KEY.into(),
                api_url,
            });
            c.orders.recovery_grace = Duration::ZERO;
        })
        .start()
        .await;
    fake.send_webhooks_to(app.url("/v1/webhooks/payments/paystack"));
    (app, fake)
}

/// A new buyer's order of `seats` with its Paystack transaction open;
/// returns (buyer, order id).
async fn initialized(
    app: &TestApp,
    fake: &FakePaystack,
    shop: &Shop,
    seats: i32,
) -> (String, String) {
    let (buyer, id, url) = app.order_with_checkout(shop, seats).await;
    assert!(url.starts_with(&fake.url), "{url}");
    (buyer, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_purchase_and_a_pending_refund_go_through_paystack() {
    let (app, fake) = paystack_app().await;
    let shop = app.shop(50, 2500).await;
    let (buyer, order_id) = initialized(&app, &fake, &shop, 2).await;
    let init = fake
        .seen()
        .into_iter()
        .find(|s| s.path == "/transaction/initialize")
        .unwrap();
    assert_eq!(init.body["amount"], 5000);
    assert_eq!(init.body["currency"], "EUR");
    assert_eq!(init.body["reference"], order_id);
    assert_eq!(init.body["metadata"]["order_id"], order_id);
    assert!(
        init.body["callback_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/orders/{order_id}"))
    );

    assert_eq!(fake.pay(&order_id).await, 200);
    app.wait_order(&buyer, &order_id, "paid").await;
    assert!(
        fake.seen()
            .iter()
            .any(|s| s.path == format!("/transaction/verify/{order_id}"))
    );

    // Paystack answers a refund `pending`: the refund waits, and the
    // open-refunds sweep finishes it once Paystack has processed it,
    // finding the first refund rather than asking for a second.
    fake.refunds_stay_pending();
    let (status, body) = refund(&app, &shop.organizer, &order_id, Some("r1"), None).await;
    assert_eq!(status, 202, "{body}");
    let refund_id = body["id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(20), || async {
        let n = fake
            .seen()
            .iter()
            .filter(|s| s.method == "POST" && s.path == "/refund")
            .count();
        (n == 1).then_some(()).ok_or(format!("{n}"))
    })
    .await;
    let posted = fake
        .seen()
        .into_iter()
        .find(|s| s.method == "POST" && s.path == "/refund")
        .unwrap();
    assert_eq!(posted.body["transaction"], order_id);
    assert_eq!(posted.body["amount"], 5000);
    assert_eq!(
        posted.body["merchant_note"],
        format!("boxoffice refund {refund_id}")
    );
    fake.process_refunds();
    boxoffice_scheduler::run_sweep(&app.services, "open_refunds")
        .await
        .unwrap();
    app.wait_order(&buyer, &order_id, "refunded").await;
    let posts = fake
        .seen()
        .iter()
        .filter(|s| s.method == "POST" && s.path == "/refund")
        .count();
    assert_eq!(posts, 1, "found again, not asked twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_or_unconfirmed_paystack_webhooks_pay_nothing() {
    let (app, fake) = paystack_app().await;
    let shop = app.shop(50, 2500).await;
    let (buyer, order_id) = initialized(&app, &fake, &shop, 1).await;
    let data = json!({"id": 1, "reference": order_id, "amount": 2500, "currency": "EUR", "status": "success"});
    assert_eq!(
        fake.webhook("charge.success", data.clone(), "sk_test_wrong")
            .await,
        401
    );
    assert_eq!(app.count("webhook_inbox").await, 0);
    // Signed with the key, but Paystack says the transaction did not
    // succeed: stored, verified, not applied.
    assert_eq!(fake.webhook("charge.success", data, SECRET_KEY).await, 200);
    eventually(Duration::from_secs(10), || async {
        let n = app
            .scalar("SELECT count(*) AS n FROM webhook_inbox WHERE processed_at IS NOT NULL")
            .await;
        (n == 1).then_some(()).ok_or(format!("{n}"))
    })
    .await;
    let (_, order) = app
        .get(&format!("/v1/orders/{order_id}"), Some(&buyer))
        .await;
    assert_eq!(order["status"], "awaiting_payment");
    assert_eq!(app.count("payments").await, 0);
}
