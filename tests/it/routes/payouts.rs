//! Payouts with the platform's fee: organizers are paid, once per payout,
//! what their ended events owe them in each currency (paid, less refunds
//! and fees), with refunds after a payout carried into the next one; a
//! payout the provider refuses is reversed and paid later.

use std::time::Duration;

use boxoffice_core::{fees::PlatformFee, jobs::PayoutJob, queue::Schedule};
use serde_json::{Value, json};

use crate::{
    harness::{TestApp, eventually},
    routes::refunds::{ledger_checks, refund},
};

async fn app() -> TestApp {
    TestApp::builder()
        .full()
        .with_config(|c| {
            c.sandbox.auto = Some((
                boxoffice_core::config::AutoOutcome::Pay,
                Duration::from_millis(20),
            ));
            c.payments.platform_fee = PlatformFee::parse("2.5", "EUR:50,USD:30").unwrap();
            c.orders.recovery_grace = Duration::ZERO;
        })
        .start()
        .await
}

/// A published event of `org`'s in `currency` with one tier at `price`;
/// returns (event id, tier id).
async fn event(app: &TestApp, org: &str, currency: &str, price: i64) -> (String, String) {
    let event = app.create_event(org, json!({"currency": currency})).await;
    let id = event["id"].as_str().unwrap().to_owned();
    let tier = app
        .create_tier(
            org,
            &id,
            json!({"price_minor": price, "quantity": 50, "max_per_order": 10}),
        )
        .await;
    let (status, body) = app
        .post(&format!("/v1/events/{id}/publish"), json!({}), Some(org))
        .await;
    assert_eq!(status, 200, "{body}");
    (id, tier["id"].as_str().unwrap().to_owned())
}

/// A new buyer's paid order of `seats`; returns the order.
async fn sale(app: &TestApp, event_id: &str, tier_id: &str, seats: i32) -> Value {
    let (buyer, _, _) = app
        .register(
            &format!("b-{}@example.com", uuid::Uuid::new_v4().simple()),
            "attendee",
        )
        .await;
    let (status, order) = app
        .order(
            &buyer,
            event_id,
            "k",
            json!({"items": [{"tier_id": tier_id, "quantity": seats}]}),
        )
        .await;
    assert_eq!(status, 202, "{order}");
    app.wait_order(&buyer, order["id"].as_str().unwrap(), "paid")
        .await
}

/// The event ended three days ago (past the payout delay).
pub(crate) async fn end(app: &TestApp, event_id: &str) {
    app.sql(&format!(
        "UPDATE events SET starts_at = now() - interval '3 days 3 hours', ends_at = now() - interval '3 days', status = 'completed'
          WHERE id = '{event_id}'"
    ))
    .await;
}

/// Runs the payouts sweep now; returns the payouts it made.
pub(crate) async fn payouts_now(app: &TestApp) -> usize {
    boxoffice_scheduler::run_sweep(&app.services, "payouts")
        .await
        .unwrap()
}

async fn payouts(app: &TestApp, org: &str) -> Vec<Value> {
    let (status, page) = app.get("/v1/organizer/payouts", Some(org)).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

async fn all_paid(app: &TestApp, org: &str, n: usize) -> Vec<Value> {
    eventually(Duration::from_secs(20), || async {
        let list = payouts(app, org).await;
        if list.len() == n && list.iter().all(|p| p["status"] == "paid") {
            Ok(list)
        } else {
            Err(format!("{list:?}"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn organizers_are_paid_once_what_their_ended_events_owe() {
    let app = app().await;
    let org = app.organizer("promoter@example.com").await;
    let (eur, eur_tier) = event(&app, &org, "EUR", 2500).await;
    let (usd, usd_tier) = event(&app, &org, "USD", 1000).await;

    // The fee, shown before publishing: 2.5 % + 0.50 per ticket.
    let (_, page) = app.get(&format!("/v1/events/{eur}"), Some(&org)).await;
    assert_eq!(page["platform_fee"]["basis_points"], 250, "{page}");
    assert_eq!(page["platform_fee"]["fixed_per_ticket_minor"], 50);
    assert_eq!(
        page["platform_fee"]["net_per_ticket"][0]["net_minor"],
        2500 - 62 - 50
    );
    let (_, public) = app.get(&format!("/v1/events/{eur}"), None).await;
    assert!(public.get("platform_fee").is_none(), "managers only");

    // EUR: 5,000 (fee 125 + 2 × 50) and 2,500 (fee 62.5 → 62, + 50), then
    // 500 of the second refunded; USD: 3,000 (fee 75 + 3 × 30).
    sale(&app, &eur, &eur_tier, 2).await;
    let second = sale(&app, &eur, &eur_tier, 1).await;
    sale(&app, &usd, &usd_tier, 3).await;
    let (status, body) = refund(
        &app,
        &org,
        second["id"].as_str().unwrap(),
        Some("goodwill"),
        Some(json!({"amount_minor": 500})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    eventually(Duration::from_secs(20), || async {
        let done = app
            .scalar("SELECT count(*) AS n FROM refunds WHERE status = 'succeeded'")
            .await;
        if done == 1 {
            Ok(())
        } else {
            Err("refund pending".to_owned())
        }
    })
    .await;
    let (eur_owed, usd_owed) = (5000 + 2500 - 225 - 112 - 500, 3000 - 165);

    // Not over yet: pending, nothing paid.
    let (_, balance) = app.get("/v1/organizer/balance", Some(&org)).await;
    let eur_balance = balance["currencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["currency"] == "EUR")
        .unwrap()
        .clone();
    assert_eq!(eur_balance["pending_minor"], eur_owed, "{balance}");
    assert_eq!(eur_balance["payable_minor"], 0);
    assert_eq!(payouts_now(&app).await, 0);

    // Over, but no account to pay into yet: the balance waits.
    end(&app, &eur).await;
    end(&app, &usd).await;
    assert_eq!(payouts_now(&app).await, 0);
    for bad in [
        json!({"account_id": ""}),
        json!({"account_id": "acct 1"}),
        json!({"account": "x"}),
    ] {
        let (status, problem) = app
            .send(
                app.client
                    .put(app.url("/v1/organizer/payout-account"))
                    .bearer_auth(&org)
                    .json(&bad),
            )
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (422, Some("validation_failed")),
            "{bad}"
        );
    }
    let (attendee, _, _) = app.register("nosy@example.com", "attendee").await;
    let (status, _) = app.get("/v1/organizer/balance", Some(&attendee)).await;
    assert_eq!(status, 403);
    assert_eq!(app.count("payouts").await, 0, "nothing written");
    let (status, body) = app
        .send(
            app.client
                .put(app.url("/v1/organizer/payout-account"))
                .bearer_auth(&org)
                .json(&json!({"account_id": "acct_promoter"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // One payout per currency; a second run finds nothing more to pay.
    assert_eq!(payouts_now(&app).await, 2);
    assert_eq!(payouts_now(&app).await, 0);
    let paid = all_paid(&app, &org, 2).await;
    let amount = |currency: &str| {
        paid.iter().find(|p| p["currency"] == currency).unwrap()["amount_minor"]
            .as_i64()
            .unwrap()
    };
    assert_eq!((amount("EUR"), amount("USD")), (eur_owed, usd_owed));
    assert_eq!(app.sandbox.transfers(), 2);
    // The job run again (a duplicate, a retry) transfers nothing more.
    let eur_payout: uuid::Uuid = paid.iter().find(|p| p["currency"] == "EUR").unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let queue = boxoffice_core::queue::QueueName::Payouts;
    let done_before = app.services.queues.counts(queue).await.unwrap().done;
    let again = [
        PayoutJob {
            payout_id: eur_payout,
        },
        PayoutJob {
            payout_id: eur_payout,
        },
    ];
    app.services
        .queues
        .push_many(&again, Schedule::recovery())
        .await
        .unwrap();
    // Both duplicates have run.
    eventually(Duration::from_secs(20), || async {
        let done = app.services.queues.counts(queue).await.unwrap().done;
        if done >= done_before + 2 {
            Ok(())
        } else {
            Err(format!("{done} done"))
        }
    })
    .await;
    assert_eq!(app.sandbox.transfers(), 2, "transferred once");
    app.smtp
        .wait_for("promoter@example.com", "Payout of", Duration::from_secs(20))
        .await;

    // A refund after the payout leaves the event owing; the next payout
    // carries it against a new event's sales.
    let first = payouts(&app, &org).await;
    let (status, body) = refund(
        &app,
        &org,
        second["id"].as_str().unwrap(),
        Some("all"),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    eventually(Duration::from_secs(20), || async {
        let done = app
            .scalar("SELECT count(*) AS n FROM refunds WHERE status = 'succeeded'")
            .await;
        if done == 2 {
            Ok(())
        } else {
            Err("refund pending".to_owned())
        }
    })
    .await;
    assert_eq!(
        payouts_now(&app).await,
        0,
        "a negative balance is carried, not paid"
    );
    let (next, next_tier) = event(&app, &org, "EUR", 2500).await;
    sale(&app, &next, &next_tier, 4).await;
    end(&app, &next).await;
    assert_eq!(payouts_now(&app).await, 1);
    let all = all_paid(&app, &org, first.len() + 1).await;
    let newest = &all[0];
    let next_owed = 10_000 - (250 + 200);
    assert_eq!(newest["amount_minor"], next_owed - 2000, "{newest}");
    let lines = newest["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{newest}");
    assert!(
        lines
            .iter()
            .any(|l| l["event_id"] == eur.as_str() && l["amount_minor"] == -2000)
    );
    assert!(
        lines
            .iter()
            .any(|l| l["event_id"] == next.as_str() && l["amount_minor"] == next_owed)
    );
    ledger_checks(&app).await;
    assert_eq!(
        app.scalar("SELECT (-sum(amount_minor))::bigint AS n FROM ledger_entries WHERE account = 'platform:revenue' AND currency = 'EUR'")
            .await,
        225 + 112 + 450,
        "fees are kept when an order is refunded"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_payout_is_reversed_and_paid_once_the_account_is_fixed() {
    let app = app().await;
    let org = app.organizer("unlucky@example.com").await;
    let (id, tier) = event(&app, &org, "EUR", 4000).await;
    sale(&app, &id, &tier, 1).await;
    end(&app, &id).await;
    let owed = 4000 - (100 + 50);
    let put = |account: &'static str| {
        app.client
            .put(app.url("/v1/organizer/payout-account"))
            .bearer_auth(&org)
            .json(&json!({ "account_id": account }))
    };
    assert_eq!(app.send(put("acct_fail_closed")).await.0, 200);
    assert_eq!(payouts_now(&app).await, 1);
    let failed = eventually(Duration::from_secs(20), || async {
        let list = payouts(&app, &org).await;
        if list.first().is_some_and(|p| p["status"] == "failed") {
            Ok(list)
        } else {
            Err(format!("{list:?}"))
        }
    })
    .await;
    assert_eq!(failed[0]["amount_minor"], owed);
    // The balance is owed again.
    let (_, balance) = app.get("/v1/organizer/balance", Some(&org)).await;
    assert_eq!(balance["currencies"][0]["payable_minor"], owed, "{balance}");
    ledger_checks(&app).await;

    assert_eq!(app.send(put("acct_fixed")).await.0, 200);
    assert_eq!(payouts_now(&app).await, 1);
    let list = eventually(Duration::from_secs(20), || async {
        let list = payouts(&app, &org).await;
        if list.len() == 2 && list[0]["status"] == "paid" {
            Ok(list)
        } else {
            Err(format!("{list:?}"))
        }
    })
    .await;
    assert_eq!(list[0]["amount_minor"], owed);
    assert_eq!(list[0]["destination"], "acct_fixed");
    assert_eq!(app.sandbox.transfers(), 1);
    ledger_checks(&app).await;
}

/// A payout written whose job never ran (lost between the commit and the
/// push) is sent by the `open_payouts` sweep, once.
#[tokio::test(flavor = "multi_thread")]
async fn a_payout_whose_job_was_lost_is_sent_by_the_sweep() {
    use diesel_async::AsyncConnection;

    let app = app().await;
    let org = app.organizer("patient@example.com").await;
    let (id, tier) = event(&app, &org, "EUR", 2000).await;
    sale(&app, &id, &tier, 1).await;
    end(&app, &id).await;
    let organizer_id: uuid::Uuid = app.get("/v1/auth/me", Some(&org)).await.1["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut conn = app.services.db.get().await.unwrap();
    let written = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            boxoffice_core::models::Payout::create_due(
                conn,
                organizer_id,
                "EUR",
                "sandbox",
                "acct_patient",
                app.services.config.payments.payout_delay,
            )
            .await
        })
        .await
        .unwrap()
        .expect("a payout is due");
    drop(conn);
    assert_eq!(written.amount_minor, 2000 - (50 + 50));
    assert_eq!(payouts(&app, &org).await[0]["status"], "pending");

    assert_eq!(
        boxoffice_scheduler::run_sweep(&app.services, "open_payouts")
            .await
            .unwrap(),
        1
    );
    let paid = all_paid(&app, &org, 1).await;
    assert_eq!(paid[0]["amount_minor"], 1900);
    assert_eq!(app.sandbox.transfers(), 1);
    assert_eq!(
        boxoffice_scheduler::run_sweep(&app.services, "open_payouts")
            .await
            .unwrap(),
        0,
        "nothing left in flight"
    );
    ledger_checks(&app).await;
}
