//! Attendee lists: search, filters, pages, and the CSV export (streamed,
//! formulas defused, every holder).

use crate::routes::refunds::{paid_order, paying_app};

#[tokio::test(flavor = "multi_thread")]
async fn organizers_search_page_and_export_their_attendees() {
    let app = paying_app().await;
    let shop = app.shop(20, 1500).await;
    let (_, first) = paid_order(&app, &shop, 2).await;
    let (_, second) = paid_order(&app, &shop, 1).await;
    let first_id = first["id"].as_str().unwrap();
    // Holders named as buyers might name them, one of them hostile.
    app.sql(&format!(
        "UPDATE tickets SET attendee_name = CASE seat_index WHEN 0 THEN 'Ada Lovelace' ELSE '=HYPERLINK(\"http://x\",\"y\")' END,
                            attendee_email = CASE seat_index WHEN 0 THEN 'ada@example.com' ELSE 'eve@example.com' END
          WHERE order_id = '{first_id}'"
    ))
    .await;
    let url = format!("/v1/events/{}/attendees", shop.event_id);

    let (status, page) = app
        .get(&format!("{url}?limit=2"), Some(&shop.organizer))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        page["items"][0]["attendee_name"], "=HYPERLINK(\"http://x\",\"y\")",
        "by name"
    );
    assert_eq!(page["items"][1]["attendee_name"], "Ada Lovelace");
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get(
            &format!("{url}?limit=2&cursor={cursor}"),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["order_id"], second["id"]);
    assert!(rest["next_cursor"].is_null());

    for (query, expected) in [
        ("q=LOVE", 1),
        ("q=eve%40example", 1),
        ("q=nobody", 0),
        ("q=%25", 0),
    ] {
        let (status, found) = app
            .get(&format!("{url}?{query}"), Some(&shop.organizer))
            .await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(
            found["items"].as_array().unwrap().len(),
            expected,
            "{query}: {found}"
        );
    }
    let (_, by_tier) = app
        .get(
            &format!("{url}?tier={}", shop.tier_id),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(by_tier["items"].as_array().unwrap().len(), 3);
    app.sql(&format!(
        "UPDATE tickets SET status = 'checked_in' WHERE order_id = '{}'",
        second["id"].as_str().unwrap()
    ))
    .await;
    let (_, inside) = app
        .get(&format!("{url}?checked_in=true"), Some(&shop.organizer))
        .await;
    assert_eq!(inside["items"].as_array().unwrap().len(), 1);
    let (_, outside) = app
        .get(&format!("{url}?checked_in=false"), Some(&shop.organizer))
        .await;
    assert_eq!(outside["items"].as_array().unwrap().len(), 2);

    // CSV, by Accept or by format: every holder, the formula defused.
    let response = app
        .client
        .get(app.url(&url))
        .bearer_auth(&shop.organizer)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].starts_with("ticket_id,attendee_name,attendee_email"));
    assert!(
        lines[1].contains("\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""),
        "{csv}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Ada Lovelace,ada@example.com"))
    );

    // Refusals.
    let (buyer, _, _) = app
        .register("not-an-organizer@example.com", "attendee")
        .await;
    let (status, _) = app.get(&url, Some(&buyer)).await;
    assert_eq!(status, 403);
    let stranger = app.organizer("stranger@example.com").await;
    let (status, _) = app.get(&format!("{url}?format=csv"), Some(&stranger)).await;
    assert_eq!(status, 404, "another organizer's event");
    for (query, field) in [("format=xlsx", "format"), ("limit=0", "limit")] {
        let (status, problem) = app
            .get(&format!("{url}?{query}"), Some(&shop.organizer))
            .await;
        assert_eq!(
            (status, problem["errors"][0]["field"].as_str()),
            (422, Some(field))
        );
    }
    let (status, _) = app
        .get(&format!("{url}?cursor=bogus"), Some(&shop.organizer))
        .await;
    assert_eq!(status, 400);
}

/// 10,000 holders export as 10,001 lines over several statements.
#[tokio::test(flavor = "multi_thread")]
async fn a_ten_thousand_holder_export_streams_every_row() {
    let app = paying_app().await;
    let shop = app.shop(20, 1500).await;
    let (_, order) = paid_order(&app, &shop, 1).await;
    let order_id = order["id"].as_str().unwrap();
    app.sql(&format!(
        "INSERT INTO tickets (id, order_id, order_item_id, event_id, tier_id, owner_id, code,
                              seat_index, attendee_name, attendee_email)
         SELECT gen_random_uuid(), t.order_id, t.order_item_id, t.event_id, t.tier_id, t.owner_id,
                md5(g::text || random()::text), g, 'Holder ' || g, 'holder' || g || '@example.com'
           FROM tickets t, generate_series(1, 9999) g
          WHERE t.order_id = '{order_id}'"
    ))
    .await;
    let response = app
        .client
        .get(app.url(&format!(
            "/v1/events/{}/attendees?format=csv",
            shop.event_id
        )))
        .bearer_auth(&shop.organizer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("content-length").is_none(),
        "streamed, not built whole"
    );
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 10_001);
    let ids: std::collections::HashSet<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(ids.len(), 10_000, "no row twice");
}
