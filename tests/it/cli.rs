//! The binary itself: configuration errors, the admin and seed commands.

use std::process::Command;

use serde_json::json;

use crate::harness::TestApp;

fn boxoffice() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_boxoffice"));
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "SMTP_URL",
        "APP_ENV",
        "JWT_SECRET",
        "REDIS_NAMESPACE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env(
        "OBJECT_STORE_URL",
        std::env::temp_dir().join("boxoffice-cli-test-media"),
    );
    cmd
}

#[test]
fn production_refuses_default_secrets_and_names_the_variable() {
    let out = boxoffice()
        .args(["migrate"])
        .env("APP_ENV", "production")
        .env("SMTP_URL", "smtp://127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");

    // With a real JWT secret, the development payment secrets are next.
    let out = boxoffice()
        .args(["migrate"])
        .env("APP_ENV", "production")
        .env("SMTP_URL", "smtp://127.0.0.1:1")
        .env("JWT_SECRET", "a-production-secret-that-is-long-enough-0123")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PAYMENT_WEBHOOK_SECRETS"), "{stderr}");

    let out = boxoffice()
        .args(["migrate"])
        .env("HTTP_ADDR", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP_ADDR"));

    let out = boxoffice()
        .args(["workers", "--queues", "emails,nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[tokio::test(flavor = "multi_thread")]
async fn create_admin_makes_an_admin_who_can_sign_in() {
    let app = TestApp::spawn().await;
    let out = boxoffice()
        .args([
            "users",
            "create-admin",
            "--email",
            "ops@example.com",
            "--name",
            "Ops",
        ])
        .env("DATABASE_URL", &app.services.config.database.url)
        .env("REDIS_URL", &app.services.config.redis.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("generated password: "))
        .expect("printed password");

    let (status, body) = app
        .post(
            "/v1/auth/login",
            json!({"email": "ops@example.com", "password": password}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["role"], "admin");
    assert_eq!(body["user"]["email_verified"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_loads_demo_data_once_and_it_can_be_browsed() {
    let app = TestApp::spawn().await;
    let run = || {
        let out = boxoffice()
            .arg("seed")
            .env("DATABASE_URL", &app.services.config.database.url)
            .env("REDIS_URL", &app.services.config.redis.url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = run();
    assert!(first.contains("3 new accounts, 5 new events"), "{first}");
    let password = boxoffice_core::seed::DEMO_PASSWORD;
    assert!(first.contains(password), "credentials are printed: {first}");
    let second = run();
    assert!(second.contains("0 new accounts, 0 new events"), "{second}");
    assert_eq!(app.count("events").await, 5);
    assert_eq!(app.count("ticket_tiers").await, 8);
    assert_eq!(app.count("discount_codes").await, 1);

    // Something to browse, and the demo accounts sign in.
    let (_, list) = app.get("/v1/events", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 5);
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["available"] == true)
    );
    let event_id = boxoffice_core::seed::demo_event_id(1);
    let (status, check) = app
        .get(&format!("/v1/events/{event_id}/discounts/welcome10"), None)
        .await;
    assert_eq!(status, 200, "{check}");
    for (role, email, _) in boxoffice_core::seed::DEMO_ACCOUNTS {
        let (status, body) = app
            .post(
                "/v1/auth/login",
                json!({"email": email, "password": password}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["user"]["role"], role.as_str());
    }

    let refused = boxoffice()
        .arg("seed")
        .env("APP_ENV", "production")
        .env("JWT_SECRET", "a-production-secret-that-is-long-enough-0123")
        .env("SMTP_URL", "smtp://127.0.0.1:2525")
        .env("DATABASE_URL", &app.services.config.database.url)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("production"));
}

#[tokio::test(flavor = "multi_thread")]
async fn queues_commands_show_and_steer_the_queues() {
    let app = TestApp::spawn().await;
    let run = |args: &[&str]| {
        let out = boxoffice()
            .args(args)
            .env("DATABASE_URL", &app.services.config.database.url)
            .env("REDIS_URL", &app.services.config.redis.url)
            .env("REDIS_NAMESPACE", app.services.queues.namespace())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // A pending job shows in the table.
    app.services
        .queues
        .push(
            &boxoffice_core::jobs::SendEmail {
                email_id: uuid::Uuid::now_v7(),
            },
            boxoffice_core::queue::Schedule::now(),
        )
        .await
        .unwrap();
    let (ok, table, err) = run(&["queues"]);
    assert!(ok, "{err}");
    let emails = table
        .lines()
        .find(|l| l.starts_with("emails"))
        .expect("an emails row");
    assert_eq!(emails.split_whitespace().nth(1), Some("1"), "{table}");
    for queue in ["purchases", "payments", "refunds", "payouts", "webhooks"] {
        assert!(table.contains(queue), "{table}");
    }
    let (ok, out, _) = run(&["queues", "pause", "emails"]);
    assert!(ok && out.contains("paused"));
    assert!(
        app.services
            .queues
            .is_paused(boxoffice_core::queue::QueueName::Emails)
            .await
            .unwrap()
    );
    let (ok, _, _) = run(&["queues", "resume", "emails"]);
    assert!(ok);
    let (ok, out, _) = run(&["queues", "dead", "emails"]);
    assert!(ok && out.contains("no dead jobs"), "{out}");
    let (ok, _, err) = run(&["queues", "retry", "emails", "nope"]);
    assert!(!ok && err.contains("no dead job"), "{err}");
    let (ok, _, err) = run(&["queues", "dead", "nope"]);
    assert!(!ok && err.contains("unknown queue"), "{err}");
}

/// `boxoffice ledger check` passes on a ledger written by a real sale and
/// refund, and fails, naming the transaction and the order, once an
/// unbalanced entry is slipped past the balance trigger.
#[tokio::test(flavor = "multi_thread")]
async fn ledger_check_passes_then_names_what_does_not_balance() {
    let app = crate::routes::refunds::paying_app().await;
    let shop = app.shop(5, 1200).await;
    let (_, order) = crate::routes::refunds::paid_order(&app, &shop, 1).await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    let check = || {
        boxoffice()
            .args(["ledger", "check"])
            .env("DATABASE_URL", &app.services.config.database.url)
            .output()
            .unwrap()
    };
    let out = check();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("1 paid orders checked: the ledger balances"),
        "{stdout}"
    );

    app.sql("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_balance")
        .await;
    app.sql(&format!(
        "INSERT INTO ledger_entries (id, transaction_id, account, amount_minor, currency, order_id)
         VALUES (gen_random_uuid(), '00000000-0000-7000-8000-00000000feed', 'cash:sandbox', 100, 'EUR', '{order_id}')"
    ))
    .await;
    let out = check();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains(
            "transaction 00000000-0000-7000-8000-00000000feed does not balance in EUR (off by 100)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "order {order_id}: paid minus refunded is 1200, its cash entries say 1300"
        )),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("the ledger does not balance"));
}
