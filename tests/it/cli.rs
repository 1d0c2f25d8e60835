//! The binary itself: configuration errors and the admin command.

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
