//! Boxoffice against Paystack: a local fake speaking Paystack's documented
//! API over real HTTP (`harness::fake_paystack`), the app configured as a
//! user would (`PAYMENT_PROVIDER=paystack`).

use std::time::Duration;

use boxoffice_core::config::{PaystackConfig, ProviderKind};
use serde_json::json;

use crate::{
    harness::{
        TestApp, eventually,
        fake_paystack::{self, FakePaystack, SECRET_KEY},
        shop::Shop,
    },
    routes::{payouts, refunds::refund},
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

/// The answer to a transaction's initialization is lost: Paystack then
/// refuses the order's reference as a duplicate, the order takes a fresh
/// one, and the buyer pays that one.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_initialize_answer_gets_a_fresh_reference_not_a_failed_order() {
    let (app, fake) = paystack_app().await;
    let shop = app.shop(50, 2500).await;
    fake.lose_next_initialize_answer();
    let (buyer, order_id) = initialized(&app, &fake, &shop, 1).await;
    let references = fake.references();
    assert_eq!(
        references,
        [order_id.clone(), format!("{order_id}-r1")],
        "the lost one, then a fresh one"
    );
    let refused = fake
        .seen()
        .iter()
        .filter(|s| s.path == "/transaction/initialize")
        .count();
    assert_eq!(refused, 3, "lost, refused as a duplicate, made again");
    assert_eq!(fake.pay(&references[1]).await, 200);
    app.wait_order(&buyer, &order_id, "paid").await;
    let payments = app
        .scalar(&format!(
            "SELECT count(*) AS n FROM payments WHERE order_id = '{order_id}'"
        ))
        .await;
    assert_eq!(payments, 1);
    // The refund names the transaction the buyer paid.
    let (status, body) = refund(&app, &shop.organizer, &order_id, Some("r1"), None).await;
    assert_eq!(status, 202, "{body}");
    app.wait_order(&buyer, &order_id, "refunded").await;
    let asked = fake
        .seen()
        .into_iter()
        .find(|s| s.method == "POST" && s.path == "/refund")
        .unwrap();
    assert_eq!(asked.body["transaction"], references[1].as_str());
}

/// A valid bank account for the fake: GTBank, a resolvable number.
fn gtbank() -> serde_json::Value {
    json!({"bank_code": "058", "account_number": "0123456789",
           "account_name": "Ada Lovelace", "currency": "NGN"})
}

/// The organizer picks a bank from the list (both of Paystack's cursor
/// pages, inactive banks left out, then from the cache), Boxoffice
/// registers the account as a recipient, and the payout is one transfer
/// referenced by the payout id: found again when its first answer was
/// lost, not sent twice; `transfer.success` marks it paid.
#[tokio::test(flavor = "multi_thread")]
async fn an_organizer_registers_a_bank_account_and_is_paid_by_one_transfer() {
    let (app, fake) = paystack_app().await;
    let shop = app.shop(50, 2500).await;

    let (status, banks) = app
        .get("/v1/payments/banks?currency=ngn", Some(&shop.organizer))
        .await;
    assert_eq!(status, 200, "{banks}");
    assert_eq!(banks["provider"], "paystack");
    assert_eq!(banks["currency"], "NGN");
    let codes: Vec<&str> = banks["banks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["044", "058"]);
    assert_eq!(banks["banks"][0]["type"], "nuban");
    let (_, again) = app
        .get("/v1/payments/banks?currency=NGN", Some(&shop.organizer))
        .await;
    assert_eq!(again, banks);
    let bank_calls = fake.seen().iter().filter(|s| s.path == "/bank").count();
    assert_eq!(bank_calls, 2, "two pages once, then the cache");
    let (buyer, _, _) = app.register("banks-buyer@example.com", "attendee").await;
    let (status, _) = app
        .get("/v1/payments/banks?currency=NGN", Some(&buyer))
        .await;
    assert_eq!(status, 403);
    let (status, problem) = app
        .get("/v1/payments/banks?currency=naira", Some(&shop.organizer))
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("currency"))
    );

    // Bad accounts are refused field by field and change nothing.
    let with = |field: &str, value: &str| {
        let mut bank = gtbank();
        bank[field] = value.into();
        json!({ "bank": bank })
    };
    let refusals = [
        (with("bank_code", "990"), "bank.bank_code"),
        (with("bank_code", "999"), "bank.bank_code"),
        (with("account_number", "12ab"), "bank.account_number"),
        (with("account_name", " "), "bank.account_name"),
        (with("currency", "N"), "bank.currency"),
        (
            with("account_number", fake_paystack::UNKNOWN_ACCOUNT),
            "bank.account_number",
        ),
        (
            json!({"bank": gtbank(), "account_id": "RCP_x"}),
            "account_id",
        ),
        (json!({}), "account_id"),
        (json!({"bank": gtbank(), "provider": "sandbox"}), "provider"),
    ];
    for (body, field) in refusals {
        let (status, problem) = app
            .send(
                app.client
                    .put(app.url("/v1/organizer/payout-account"))
                    .bearer_auth(&shop.organizer)
                    .json(&body),
            )
            .await;
        assert_eq!(
            (status, problem["errors"][0]["field"].as_str()),
            (422, Some(field)),
            "{body}: {problem}"
        );
    }
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM users WHERE payout_account IS NOT NULL")
            .await,
        0
    );

    let (status, account) = app
        .send(
            app.client
                .put(app.url("/v1/organizer/payout-account"))
                .bearer_auth(&shop.organizer)
                .json(&json!({ "bank": gtbank() })),
        )
        .await;
    assert_eq!(status, 200, "{account}");
    assert_eq!(account["provider"], "paystack");
    let recipient = account["account_id"].as_str().unwrap().to_owned();
    assert!(recipient.starts_with("RCP_"), "{recipient}");
    let made = fake
        .seen()
        .into_iter()
        .find(|s| s.path == "/transferrecipient" && s.body["account_number"] == "0123456789")
        .unwrap();
    assert_eq!(made.body["type"], "nuban");
    assert_eq!(made.body["bank_code"], "058");
    assert_eq!(made.body["name"], "Ada Lovelace");
    assert_eq!(made.body["currency"], "NGN");

    let (buyer, order_id) = initialized(&app, &fake, &shop, 2).await;
    assert_eq!(fake.pay(&order_id).await, 200);
    app.wait_order(&buyer, &order_id, "paid").await;
    fake.lose_next_transfer_answer();
    payouts::end(&app, &shop.event_id).await;
    assert_eq!(payouts::payouts_now(&app).await, 1);
    let payout_id = eventually(Duration::from_secs(20), || async {
        let verified = fake
            .seen()
            .into_iter()
            .find(|s| s.path.starts_with("/transfer/verify/"));
        verified
            .map(|s| s.path.trim_start_matches("/transfer/verify/").to_owned())
            .ok_or_else(|| "no lookup yet".to_owned())
    })
    .await;
    let transfers = fake.transfers();
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    assert_eq!(transfers[0]["reference"], payout_id.as_str());
    assert_eq!(transfers[0]["recipient"], recipient.as_str());
    assert_eq!(transfers[0]["amount"], 5000);
    let posts = fake.seen().iter().filter(|s| s.path == "/transfer").count();
    assert_eq!(posts, 2, "the lost answer's retry was refused, then found");

    assert_eq!(fake.complete_transfer(&payout_id).await, 200);
    eventually(Duration::from_secs(20), || async {
        let (_, page) = app
            .get("/v1/organizer/payouts", Some(&shop.organizer))
            .await;
        let first = &page["items"][0];
        (first["status"] == "paid" && first["id"] == payout_id.as_str())
            .then_some(())
            .ok_or(page.to_string())
    })
    .await;
}
