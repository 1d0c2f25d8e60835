//! Every bad input gets a clear 4xx problem+json and changes nothing.

use serde_json::json;

use crate::harness::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn bad_registrations_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let good = json!({"email": "lee@example.com", "password": "violet-otter-43-lamp", "display_name": "Lee"});
    let with = |key: &str, value: serde_json::Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let cases = [
        (with("email", json!("not-an-email")), 422, "email"),
        (with("email", json!("a@b")), 422, "email"),
        (with("password", json!("short")), 422, "password"),
        (with("password", json!("aaaaaaaaaaaaaaa")), 422, "password"),
        (with("display_name", json!("")), 422, "display_name"),
        (with("role", json!("admin")), 422, "role"),
        (with("email", json!(42)), 422, "email"),
        (
            json!({"email": "lee@example.com", "password": "violet-otter-43-lamp"}),
            422,
            "display_name",
        ),
    ];
    for (body, status, field) in cases {
        let (got, problem) = app.post("/v1/auth/register", body.clone(), None).await;
        assert_eq!(got, status, "{body} → {problem}");
        assert_eq!(problem["code"], "validation_failed", "{problem}");
        assert!(
            crate::harness::blames(&problem, field),
            "{body} should blame {field}: {problem}"
        );
    }

    let raw = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/v1/auth/register"))
            .header("content-type", content_type)
            .body(body)
    };
    let (status, problem) = app.send(raw("{\"email\": ", "application/json")).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("malformed_json"))
    );
    let (status, problem) = app
        .send(raw("email=x", "application/x-www-form-urlencoded"))
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let huge = "x".repeat(1024 * 1024);
    let req = app
        .client
        .post(app.url("/v1/auth/register"))
        .header("content-type", "application/json")
        .body(huge);
    assert_eq!(app.send(req).await.0, 413);

    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.count("email_log").await, 0);

    // A duplicate email is a field error, and the first account is untouched.
    assert_eq!(
        app.post("/v1/auth/register", good.clone(), None).await.0,
        201
    );
    let (status, problem) = app
        .post(
            "/v1/auth/register",
            with("email", json!("LEE@example.com")),
            None,
        )
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("email"))
    );
    assert_eq!(app.count("users").await, 1);

    // Unknown routes and bad tokens are problems too.
    assert_eq!(app.get("/v1/nope", None).await.0, 404);
    let (status, problem) = app.get("/v1/auth/me", Some("garbage")).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("invalid_token"))
    );
    let (status, problem) = app.get("/v1/auth/me", None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("missing_token"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_catalog_input_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let org = app.organizer("bad-catalog@example.com").await;
    let start = (chrono::Utc::now() + chrono::Duration::days(10)).to_rfc3339();
    let end =
        (chrono::Utc::now() + chrono::Duration::days(10) + chrono::Duration::hours(2)).to_rfc3339();
    let past = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let good = json!({"title": "Fine", "category": "music", "starts_at": start, "ends_at": end,
                      "timezone": "Europe/Paris", "currency": "EUR"});
    let with = |key: &str, value: serde_json::Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let event_cases = [
        (with("title", json!("")), "title"),
        (with("title", json!("   ")), "title"),
        (with("ends_at", json!(start.clone())), "ends_at"),
        (with("ends_at", json!(past.clone())), "ends_at"),
        (with("starts_at", json!(past.clone())), "starts_at"),
        (with("starts_at", json!("next tuesday")), "starts_at"),
        (with("currency", json!("EURO")), "currency"),
        (with("currency", json!("XXX")), "currency"),
        (with("timezone", json!("Mars/Olympus_Mons")), "timezone"),
        (with("timezone", json!("CET")), "timezone"),
        (with("category", json!("opera")), "category"),
        (with("latitude", json!(95.0)), "latitude"),
        (with("latitude", json!(45.0)), "longitude"),
        (with("capacity", json!(0)), "capacity"),
        (with("country", json!("France")), "country"),
        (
            with("cover_image_url", json!("javascript:alert(1)")),
            "cover_image_url",
        ),
        (
            with("max_tickets_per_buyer", json!(0)),
            "max_tickets_per_buyer",
        ),
        (with("refund_until_hours", json!(-1)), "refund_until_hours"),
        (with("colour", json!("red")), "colour"),
        (
            json!({"title": "No dates", "category": "music", "timezone": "UTC", "currency": "EUR"}),
            "starts_at",
        ),
    ];
    for (body, field) in event_cases {
        let (status, problem) = app.post("/v1/events", body.clone(), Some(&org)).await;
        assert_eq!(status, 422, "{body} → {problem}");
        assert!(
            crate::harness::blames(&problem, field),
            "{body} should blame {field}: {problem}"
        );
    }
    assert_eq!(app.count("events").await, 0);

    let event = app.create_event(&org, json!({})).await;
    let id = event["id"].as_str().unwrap();
    // A PATCH is checked against the stored fields.
    let before = app.get(&format!("/v1/events/{id}"), Some(&org)).await.1;
    let (status, problem) = app
        .patch(
            &format!("/v1/events/{id}"),
            json!({"ends_at": past}),
            Some(&org),
        )
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("ends_at"))
    );
    assert_eq!(
        app.get(&format!("/v1/events/{id}"), Some(&org)).await.1,
        before
    );

    let good_tier = json!({"name": "GA", "price_minor": 1000, "quantity": 10});
    let tier_with = |key: &str, value: serde_json::Value| {
        let mut body = good_tier.clone();
        body[key] = value;
        body
    };
    let tier_cases = [
        (tier_with("name", json!("")), "name"),
        (tier_with("price_minor", json!(-1)), "price_minor"),
        (tier_with("price_minor", json!("ten")), "price_minor"),
        (tier_with("quantity", json!(0)), "quantity"),
        (tier_with("quantity", json!(-5)), "quantity"),
        (tier_with("min_per_order", json!(0)), "min_per_order"),
        (tier_with("max_per_order", json!(0)), "max_per_order"),
        (
            tier_with("low_stock_threshold", json!(10)),
            "low_stock_threshold",
        ),
        (json!({"name": "GA", "quantity": 10}), "price_minor"),
        (
            json!({"name": "GA", "price_minor": 1, "quantity": 1,
                   "sales_start_at": "2030-01-02T00:00:00Z", "sales_end_at": "2030-01-01T00:00:00Z"}),
            "sales_end_at",
        ),
    ];
    for (body, field) in tier_cases {
        let (status, problem) = app
            .post(&format!("/v1/events/{id}/tiers"), body.clone(), Some(&org))
            .await;
        assert_eq!(status, 422, "{body} → {problem}");
        assert!(
            crate::harness::blames(&problem, field),
            "{body} should blame {field}: {problem}"
        );
    }
    assert_eq!(app.count("ticket_tiers").await, 0);

    // Ids that are not UUIDs are simply not found, never a 500.
    for path in [
        "/v1/events/not-a-uuid",
        "/v1/events/42/discounts/CODE",
        "/v1/events/%20x",
    ] {
        let (status, problem) = app.get(path, None).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
    for (status, _) in [
        app.patch("/v1/events/not-a-uuid", json!({"title": "x"}), Some(&org))
            .await,
        app.patch(
            &format!("/v1/events/{id}/tiers/nope"),
            json!({"name": "x"}),
            Some(&org),
        )
        .await,
        app.delete(&format!("/v1/events/{id}/tiers/nope"), Some(&org))
            .await,
        app.delete(&format!("/v1/events/{id}/images/nope"), Some(&org))
            .await,
        app.post("/v1/events/zzz/publish", json!({}), Some(&org))
            .await,
    ] {
        assert_eq!(status, 404);
    }
}

/// A path that exists, asked with a method it does not serve: 405 with the
/// methods it does serve in `Allow`, as a problem.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_method_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let response = app.client.put(app.url("/v1/events")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    let mut allowed: Vec<&str> = allow.split(',').map(str::trim).collect();
    allowed.sort_unstable();
    assert_eq!(allowed, ["GET", "HEAD", "POST"], "{allow}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "method_not_allowed");
    assert_eq!(problem["status"], 405);
    assert_eq!(app.count("events").await, 0);
}

/// A query string that does not parse is a problem, on every route that
/// takes one (found by fuzzing: one route used axum's own `Query`, whose
/// refusal is plain text).
#[tokio::test(flavor = "multi_thread")]
async fn a_query_string_that_does_not_parse_is_a_problem() {
    let app = TestApp::spawn().await;
    let token = app.organizer("querier@example.com").await;
    let id = uuid::Uuid::now_v7();
    for path in [
        format!("/v1/organizer/webhook-endpoints/{id}/deliveries?cursor=&=null"),
        "/v1/events?limit=many".to_owned(),
    ] {
        let response = app
            .client
            .get(app.url(&path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "invalid_query", "{path}: {problem}");
    }
}

/// What a form or a loosely typed client sends is read as meant (each found
/// by fuzzing against the document): a blank query parameter (`?q=&from=`)
/// is one not given, a whole float (`5.0`) is the integer it is, and a
/// `null` body of an action whose every field is optional is an empty one.
#[tokio::test(flavor = "multi_thread")]
async fn blank_parameters_whole_floats_and_null_bodies_are_read_as_meant() {
    let app = TestApp::spawn().await;
    let org = app.organizer("loose@example.com").await;
    let event = app
        .published_event(&org, json!({"title": "Loosely typed"}))
        .await;
    let event_id = event["id"].as_str().unwrap();

    let response = app
        .client
        .get(app.url(
            "/v1/events?q=&category=&city=&organizer_id=&from=&to=&price_min=&sort=&limit=&cursor=",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let page: serde_json::Value = response.json().await.unwrap();
    assert_eq!(page["items"][0]["id"], event_id, "{page}");

    let (status, tier) = app
        .post(
            &format!("/v1/events/{event_id}/tiers"),
            json!({"name": "Floats", "price_minor": 1500.0, "quantity": 5e1}),
            Some(&org),
        )
        .await;
    assert_eq!(status, 201, "{tier}");
    assert_eq!(tier["price_minor"], 1500);
    assert_eq!(tier["quantity"], 50);
    let (status, problem) = app
        .post(
            &format!("/v1/events/{event_id}/tiers"),
            json!({"name": "Fraction", "price_minor": 1500, "quantity": 2.5}),
            Some(&org),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "quantity");

    let response = app
        .client
        .post(app.url(&format!("/v1/events/{event_id}/cancel")))
        .bearer_auth(&org)
        .header("content-type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let (status, event) = app.get(&format!("/v1/events/{event_id}"), Some(&org)).await;
    assert_eq!(status, 200);
    assert_eq!(event["status"], "cancelled", "{event}");
}

/// PostgreSQL cannot store NUL in text. One check refuses it in every field
/// of every body (422 naming the field) and in every address (400), before
/// anything is written; an order carrying one no longer fails the batch of
/// orders written with it.
#[tokio::test(flavor = "multi_thread")]
async fn a_nul_character_anywhere_is_refused_and_writes_nothing() {
    let app = TestApp::builder().full().start().await;
    let org = app.organizer("nul-org@example.com").await;
    let event = app.published_event(&org, json!({"title": "Clean"})).await;
    let event_id = event["id"].as_str().unwrap();
    let tier_id = event["tiers"][0]["id"].as_str().unwrap();
    let start = (chrono::Utc::now() + chrono::Duration::days(10)).to_rfc3339();
    let end = (chrono::Utc::now() + chrono::Duration::days(11)).to_rfc3339();
    let (buyer, _, _) = app.register("nul-buyer@example.com", "attendee").await;
    let nul = "a\u{0}b";
    let new_event = |field: &str| {
        let mut body = json!({"title": "Fine", "category": "music", "starts_at": start,
            "ends_at": end, "timezone": "UTC", "currency": "EUR"});
        body[field] = json!(nul);
        body
    };
    let cases = [
        ("/v1/events", new_event("title"), "title", Some(&org)),
        (
            "/v1/events",
            new_event("description"),
            "description",
            Some(&org),
        ),
        (
            "/v1/events",
            new_event("venue_name"),
            "venue_name",
            Some(&org),
        ),
        ("/v1/events", new_event("address"), "address", Some(&org)),
        ("/v1/events", new_event("city"), "city", Some(&org)),
        (
            &format!("/v1/events/{event_id}/tiers") as &str,
            json!({"name": nul, "price_minor": 100, "quantity": 1}),
            "name",
            Some(&org),
        ),
        (
            &format!("/v1/events/{event_id}/discounts"),
            json!({"code": nul, "percent_off": 10}),
            "code",
            Some(&org),
        ),
        (
            "/v1/auth/register",
            json!({"email": "x@example.com", "password": "violet-otter-43-lamp", "display_name": nul}),
            "display_name",
            None,
        ),
        (
            "/v1/auth/login",
            json!({"email": "a\u{0}@example.com", "password": "violet-otter-43-lamp"}),
            "email",
            None,
        ),
    ];
    let before = (app.count("events").await, app.count("ticket_tiers").await);
    for (path, body, field, token) in cases {
        let (status, problem) = app.post(path, body, token.map(String::as_str)).await;
        assert_eq!(status, 422, "{path} {field}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("NUL"),
            "{problem}"
        );
    }
    assert_eq!(
        (app.count("events").await, app.count("ticket_tiers").await),
        before
    );
    assert_eq!(app.count("discount_codes").await, 0);
    assert_eq!(app.count("users").await, 2);

    // In addresses: search parameters and path segments.
    for path in [
        "/v1/events?q=jazz%00".to_owned(),
        "/v1/events?city=%00Paris".to_owned(),
        format!("/v1/events/{event_id}/discounts/CODE%00"),
    ] {
        let response = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "nul_character", "{path}");
    }

    // Orders written together: the one with a NUL is refused alone.
    let order = |n: usize, name: &str| {
        let body = json!({"items": [{"tier_id": tier_id, "quantity": 1,
            "attendees": [{"name": name, "email": "guest@example.com"}]}]});
        let app = &app;
        let buyer = &buyer;
        async move { app.order(buyer, event_id, &format!("nul-{n}"), body).await }
    };
    let answers =
        futures::future::join_all((0..12).map(|n| order(n, if n == 5 { nul } else { "Guest" })))
            .await;
    for (n, (status, body)) in answers.iter().enumerate() {
        if n == 5 {
            assert_eq!(*status, 422, "{body}");
            assert_eq!(body["errors"][0]["field"], "items[0].attendees[0].name");
        } else {
            assert_eq!(*status, 202, "{n}: {body}");
        }
    }
    assert_eq!(app.count("orders").await, 11);
}

/// The edges answer like the API does: problem+json with the security
/// headers, never an empty body. A request past the deadline is a
/// retryable 503; an address longer than any route needs is 414; the
/// sandbox's payment pages cannot be framed.
#[tokio::test(flavor = "multi_thread")]
async fn timeouts_long_addresses_and_sandbox_pages_answer_with_problems_and_headers() {
    use diesel_async::RunQueryDsl;
    let app = TestApp::builder()
        .with_config(|c| c.http.request_timeout = std::time::Duration::from_secs(1))
        .start()
        .await;

    let long = format!("/v1/events?q={}", "a".repeat(9_000));
    let response = app.client.get(app.url(&long)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 414);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "uri_too_long");

    // The search waits on a table another transaction holds.
    let mut lock = app.services.db.get().await.unwrap();
    diesel::sql_query("BEGIN").execute(&mut lock).await.unwrap();
    diesel::sql_query("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let response = app
        .client
        .get(app.url("/v1/events?q=slow"))
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    diesel::sql_query("ROLLBACK")
        .execute(&mut lock)
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert!(waited < std::time::Duration::from_secs(5), "{waited:?}");
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "request_timeout");

    let page = app
        .client
        .get(format!("{}/checkout/cs_unknown", app.sandbox_url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 404);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
}
