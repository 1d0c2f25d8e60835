use serde_json::json;

use crate::harness::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn sessions_list_devices_and_revoke_one() {
    let app = TestApp::spawn().await;
    app.register("hal@example.com", "attendee").await;
    let login = |ua: &'static str| {
        app.client
            .post(app.url("/v1/auth/login"))
            .header("user-agent", ua)
            .json(&json!({"email": "hal@example.com", "password": "violet-otter-43-lamp"}))
    };
    let (_, phone) = app.send(login("Phone/1.0")).await;
    let (_, laptop) = app.send(login("Laptop/2.0")).await;
    let laptop_token = laptop["access_token"].as_str().unwrap();
    let phone_token = phone["access_token"].as_str().unwrap();

    let (status, body) = app.get("/v1/auth/sessions", Some(laptop_token)).await;
    assert_eq!(status, 200, "{body}");
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3, "register + two logins: {body}");
    let current: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["user_agent"], "Laptop/2.0");
    let phone_session = sessions
        .iter()
        .find(|s| s["user_agent"] == "Phone/1.0")
        .unwrap()["id"]
        .as_str()
        .unwrap();

    let response = app
        .client
        .delete(app.url(&format!("/v1/auth/sessions/{phone_session}")))
        .bearer_auth(laptop_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(app.get("/v1/auth/me", Some(phone_token)).await.0, 401);
    let refresh = json!({"refresh_token": phone["refresh_token"]});
    assert_eq!(app.post("/v1/auth/refresh", refresh, None).await.0, 401);
    let (_, body) = app.get("/v1/auth/sessions", Some(laptop_token)).await;
    assert_eq!(body["sessions"].as_array().unwrap().len(), 2);

    // Someone else's session, or garbage, is simply not found.
    let (other, _, _) = app.register("ida@example.com", "attendee").await;
    let req = app
        .client
        .delete(app.url(&format!("/v1/auth/sessions/{phone_session}")))
        .bearer_auth(&other);
    assert_eq!(app.send(req).await.0, 404);
    let req = app
        .client
        .delete(app.url("/v1/auth/sessions/not-a-uuid"))
        .bearer_auth(&other);
    assert_eq!(app.send(req).await.0, 404);
}
