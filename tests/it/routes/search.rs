//! `GET /v1/events`: every filter and sort, time-zone date semantics, and
//! keyset pagination that neither repeats nor skips while rows are inserted.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::harness::TestApp;

/// A published event with one tier; returns its id.
async fn publish(app: &TestApp, token: &str, event: Value, tier: Value) -> String {
    let created = app.create_event(token, event).await;
    let id = created["id"].as_str().unwrap().to_owned();
    app.create_tier(token, &id, tier).await;
    let (status, body) = app
        .post(&format!("/v1/events/{id}/publish"), json!({}), Some(token))
        .await;
    assert_eq!(status, 200, "{body}");
    id
}

fn days(n: i64) -> String {
    (Utc::now() + Duration::days(n)).to_rfc3339()
}

fn at(start: &str, hours: i64) -> String {
    (chrono::DateTime::parse_from_rfc3339(start).unwrap() + Duration::hours(hours)).to_rfc3339()
}

fn event(
    title: &str,
    category: &str,
    city: &str,
    lat_lng: (f64, f64),
    tz: &str,
    start: String,
) -> Value {
    json!({
        "title": title, "category": category, "city": city, "venue_name": format!("{city} Hall"),
        "latitude": lat_lng.0, "longitude": lat_lng.1, "timezone": tz,
        "ends_at": at(&start, 3), "starts_at": start,
    })
}

async fn titles(app: &TestApp, query: &str) -> Vec<String> {
    let (status, page) = app.get(&format!("/v1/events?{query}"), None).await;
    assert_eq!(status, 200, "{query}: {page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap().to_owned())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn every_filter_and_sort() {
    let app = TestApp::spawn().await;
    let org = app.organizer("search@example.com").await;
    let other = app.organizer("other@example.com").await;
    const PARIS: (f64, f64) = (48.8566, 2.3522);
    const PARIS_EAST: (f64, f64) = (48.8530, 2.3690);
    const BERLIN: (f64, f64) = (52.5200, 13.4050);
    const LONDON: (f64, f64) = (51.5074, -0.1278);
    const LISBON: (f64, f64) = (38.7223, -9.1393);
    const TOKYO: (f64, f64) = (35.6762, 139.6503);

    publish(
        &app,
        &org,
        event(
            "Jazz in the Park",
            "music",
            "Paris",
            PARIS,
            "Europe/Paris",
            days(10),
        ),
        json!({"price_minor": 2500}),
    )
    .await;
    publish(
        &app,
        &org,
        event(
            "Rock Concerts Marathon",
            "music",
            "Berlin",
            BERLIN,
            "Europe/Berlin",
            days(20),
        ),
        json!({"price_minor": 4000}),
    )
    .await;
    publish(
        &app,
        &org,
        event(
            "Comedy Night",
            "comedy",
            "London",
            LONDON,
            "Europe/London",
            days(5),
        ),
        json!({"price_minor": 1500}),
    )
    .await;
    let sold_out = publish(
        &app,
        &org,
        event(
            "Tech Conference",
            "conference",
            "Lisbon",
            LISBON,
            "Europe/Lisbon",
            days(40),
        ),
        json!({"price_minor": 30000, "quantity": 10}),
    )
    .await;
    publish(
        &app,
        &org,
        event(
            "Jazz Brunch",
            "food",
            "Paris",
            PARIS_EAST,
            "Europe/Paris",
            days(15),
        ),
        json!({"price_minor": 1000, "sales_start_at": days(3)}),
    )
    .await;
    publish(
        &app,
        &other,
        event(
            "Jazz Club Tokyo",
            "music",
            "Tokyo",
            TOKYO,
            "Asia/Tokyo",
            days(25),
        ),
        json!({"price_minor": 3000}),
    )
    .await;
    // Drafts never show.
    app.create_event(
        &org,
        event(
            "Secret Jazz Draft",
            "music",
            "Paris",
            PARIS,
            "Europe/Paris",
            days(12),
        ),
    )
    .await;
    // Nor do events that have ended, unless asked for by date.
    let ended = publish(
        &app,
        &org,
        event(
            "Last Year's Jazz",
            "music",
            "Paris",
            PARIS,
            "Europe/Paris",
            days(2),
        ),
        json!({}),
    )
    .await;
    app.sql(&format!(
        "UPDATE events SET starts_at = now() - interval '30 days', ends_at = now() - interval '29 days' WHERE id = '{ended}'"
    ))
    .await;
    app.sql(&format!(
        "UPDATE tier_stock s SET sold = quantity FROM ticket_tiers t WHERE t.id = s.tier_id AND t.event_id = '{sold_out}'"
    ))
    .await;

    // Default: soonest first, upcoming only.
    assert_eq!(
        titles(&app, "").await,
        [
            "Comedy Night",
            "Jazz in the Park",
            "Jazz Brunch",
            "Rock Concerts Marathon",
            "Jazz Club Tokyo",
            "Tech Conference"
        ]
    );
    // Full text, with stemming ("concert" finds "Concerts") and case folding.
    assert_eq!(
        sorted(titles(&app, "q=JAZZ").await),
        ["Jazz Brunch", "Jazz Club Tokyo", "Jazz in the Park"]
    );
    assert_eq!(titles(&app, "q=concert").await, ["Rock Concerts Marathon"]);
    // As typed: the last word may be unfinished, every word must match.
    assert_eq!(
        sorted(titles(&app, "q=ja").await),
        ["Jazz Brunch", "Jazz Club Tokyo", "Jazz in the Park"]
    );
    assert_eq!(titles(&app, "q=jazz%20bru").await, ["Jazz Brunch"]);
    assert_eq!(titles(&app, "q=Marath").await, ["Rock Concerts Marathon"]);
    assert_eq!(titles(&app, "q=jazz%20x").await, Vec::<String>::new());
    assert_eq!(
        titles(&app, "q=jazz%20-brunch%20-tokyo").await,
        ["Jazz in the Park"]
    );
    assert_eq!(
        titles(&app, "q=berlin").await,
        ["Rock Concerts Marathon"],
        "the city is searched too"
    );
    assert_eq!(
        titles(&app, "q=nothing-matches-this").await,
        Vec::<String>::new()
    );
    // Facets.
    assert_eq!(
        sorted(titles(&app, "category=music").await),
        [
            "Jazz Club Tokyo",
            "Jazz in the Park",
            "Rock Concerts Marathon"
        ]
    );
    assert_eq!(
        sorted(titles(&app, "city=pARIS").await),
        ["Jazz Brunch", "Jazz in the Park"]
    );
    let (_, page) = app.get("/v1/events?category=music&q=jazz", None).await;
    let other_id = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["city"] == "Tokyo")
        .unwrap()["organizer_id"]
        .clone();
    assert_eq!(
        titles(
            &app,
            &format!("organizer_id={}", other_id.as_str().unwrap())
        )
        .await,
        ["Jazz Club Tokyo"]
    );
    // Price range over public tiers.
    assert_eq!(
        sorted(titles(&app, "price_min=2000&price_max=5000").await),
        [
            "Jazz Club Tokyo",
            "Jazz in the Park",
            "Rock Concerts Marathon"
        ]
    );
    assert_eq!(titles(&app, "price_min=20000").await, ["Tech Conference"]);
    // Stock and sales window.
    let available = titles(&app, "available=true").await;
    assert!(
        !available.contains(&"Tech Conference".to_owned()),
        "sold out"
    );
    assert!(
        !available.contains(&"Jazz Brunch".to_owned()),
        "sales not started"
    );
    assert_eq!(available.len(), 4);
    // Near a point, with the distance; sort by distance.
    let (_, near) = app
        .get(
            "/v1/events?near=48.8566,2.3522&radius_km=5&sort=distance",
            None,
        )
        .await;
    let items = near["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{near}");
    assert_eq!(items[0]["title"], "Jazz in the Park");
    assert!(items[0]["distance_km"].as_f64().unwrap() < 0.01);
    let d = items[1]["distance_km"].as_f64().unwrap();
    assert!(
        (1.0..1.5).contains(&d),
        "Paris east is ~1.3 km away, got {d}"
    );
    assert_eq!(
        titles(&app, "near=51.5074,-0.1278&radius_km=400&sort=distance").await,
        ["Comedy Night", "Jazz in the Park", "Jazz Brunch"]
    );
    // Sorts.
    assert_eq!(
        titles(&app, "sort=price").await,
        [
            "Jazz Brunch",
            "Comedy Night",
            "Jazz in the Park",
            "Jazz Club Tokyo",
            "Rock Concerts Marathon",
            "Tech Conference"
        ]
    );
    let newest = titles(&app, "sort=newest").await;
    assert_eq!(
        newest.first().map(String::as_str),
        Some("Jazz Club Tokyo"),
        "{newest:?}"
    );
    assert_eq!(
        newest.last().map(String::as_str),
        Some("Jazz in the Park"),
        "{newest:?}"
    );
    // Past events by date.
    let past_day = (Utc::now() - Duration::days(31))
        .format("%Y-%m-%d")
        .to_string();
    let with_past = titles(&app, &format!("from={past_day}&q=jazz")).await;
    assert_eq!(
        with_past.first().map(String::as_str),
        Some("Last Year's Jazz")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn date_filters_read_days_in_each_events_own_time_zone() {
    let app = TestApp::spawn().await;
    let org = app.organizer("tz@example.com").await;
    let year = (Utc::now() + Duration::days(400)).format("%Y").to_string();
    // 00:30 on the 11th in Tokyo is still the 10th in UTC.
    let tokyo = format!("{year}-03-10T15:30:00Z");
    // 23:00 on the 10th in Los Angeles is already the 11th in UTC.
    let la = format!("{year}-03-11T07:00:00Z");
    publish(
        &app,
        &org,
        event(
            "Tokyo Late Show",
            "music",
            "Tokyo",
            (35.68, 139.65),
            "Asia/Tokyo",
            tokyo,
        ),
        json!({}),
    )
    .await;
    publish(
        &app,
        &org,
        event(
            "LA Late Show",
            "music",
            "Los Angeles",
            (34.05, -118.24),
            "America/Los_Angeles",
            la,
        ),
        json!({}),
    )
    .await;

    assert_eq!(
        titles(&app, &format!("from={year}-03-11&to={year}-03-11")).await,
        ["Tokyo Late Show"]
    );
    assert_eq!(
        titles(&app, &format!("from={year}-03-10&to={year}-03-10")).await,
        ["LA Late Show"]
    );
    // Instants are exact: [from, to).
    assert_eq!(
        titles(
            &app,
            &format!("from={year}-03-10T15:30:00Z&to={year}-03-11T07:00:00Z")
        )
        .await,
        ["Tokyo Late Show"]
    );
}

/// Pages through `query` with `limit`, inserting an event before and after
/// the cursor between pages; returns the ids seen in order.
async fn page_through(app: &TestApp, org: &str, query: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut page_no = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/events?{query}&limit={limit}&cursor={c}"),
            None => format!("/v1/events?{query}&limit={limit}"),
        };
        let (status, page) = app.get(&path, None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit);
        seen.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        // Meanwhile, others publish: one sorting early, one late.
        page_no += 1;
        if page_no <= 3 {
            publish(app, org, json!({"title": format!("Early {query} {page_no}"), "starts_at": days(1), "ends_at": days(2)}), json!({"price_minor": 1})).await;
            publish(app, org, json!({"title": format!("Late {query} {page_no}"), "starts_at": days(300), "ends_at": days(301)}), json!({"price_minor": 999_999})).await;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return seen,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pagination_has_no_duplicates_or_gaps_while_rows_are_inserted() {
    let app = TestApp::spawn().await;
    let org = app.organizer("pages@example.com").await;
    let mut originals = HashSet::new();
    for i in 0..17 {
        // Ties on purpose: three events share each start time and price, so
        // the id must break them for the order to be total.
        let start = days(10 + i / 3);
        let id = publish(
            &app,
            &org,
            json!({"title": format!("Show {i}"), "starts_at": start, "ends_at": at(&start, 2)}),
            json!({"price_minor": 1000 + (i / 3) * 100}),
        )
        .await;
        originals.insert(id);
    }
    for sort in ["starts_at", "price", "newest"] {
        let seen = page_through(&app, &org, &format!("sort={sort}"), 4).await;
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{sort}: a row was served twice");
        for id in &originals {
            assert!(seen.contains(id), "{sort}: {id} was skipped");
        }
    }

    // The pages of a quiet list, joined, are the unpaginated list.
    let (_, all) = app.get("/v1/events?sort=price&limit=100", None).await;
    let all: Vec<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let mut joined = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/events?sort=price&limit=5&cursor={c}"),
            None => "/v1/events?sort=price&limit=5".into(),
        };
        let (_, page) = app.get(&path, None).await;
        joined.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(joined, all);

    // Distance pagination too (all at the same point: ties everywhere).
    let (_, first) = app
        .get(
            "/v1/events?near=48.8719,2.3316&radius_km=1&sort=distance&limit=10",
            None,
        )
        .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 10);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (status, second) = app
        .get(
            &format!(
                "/v1/events?near=48.8719,2.3316&radius_km=1&sort=distance&limit=10&cursor={cursor}"
            ),
            None,
        )
        .await;
    assert_eq!(status, 200, "{second}");
    let a: HashSet<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(
        second["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !a.contains(e["id"].as_str().unwrap()))
    );

    // A cursor only works with the sort it was made for.
    let (status, problem) = app
        .get(&format!("/v1/events?sort=price&cursor={cursor}"), None)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
    let (status, problem) = app.get("/v1/events?cursor=not-a-cursor", None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_search_parameters_are_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let cases = [
        ("category=opera", "category"),
        ("from=yesterday", "from"),
        ("to=2026-02-30", "to"),
        ("from=2027-01-02&to=2027-01-01", "to"),
        ("price_min=-1", "price_min"),
        ("price_min=10&price_max=5", "price_max"),
        ("price_max=abc", "price_max"),
        ("available=maybe", "available"),
        ("near=91,0", "near"),
        ("near=paris", "near"),
        ("near=48.8,2.3&radius_km=0", "radius_km"),
        ("radius_km=10", "radius_km"),
        ("sort=distance", "near"),
        ("sort=popularity", "sort"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("organizer_id=42", "organizer_id"),
    ];
    for (query, field) in cases {
        let (status, problem) = app.get(&format!("/v1/events?{query}"), None).await;
        assert_eq!(status, 422, "{query}: {problem}");
        assert!(
            crate::harness::blames(&problem, field),
            "{query} should blame {field}: {problem}"
        );
    }
    let (status, problem) = app.get("/v1/events?limit=ten", None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, problem) = app.get("/v1/events?colour=red", None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_query"))
    );
}
