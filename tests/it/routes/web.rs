//! The web app is served by the same binary at `/`, and every link
//! Boxoffice emails opens one of its pages.

use std::time::Duration;

use base64::Engine;
use serde_json::json;

use crate::harness::{
    TestApp,
    browser::{Browser, DESKTOP, PHONE},
};

/// The path of the verification link emailed to `to`.
async fn verification_link(app: &TestApp, to: &str) -> String {
    let email = app
        .smtp
        .wait_for(to, "Confirm your email", Duration::from_secs(15))
        .await;
    let text = email.text();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/verify-email?token="))
        .unwrap_or_else(|| panic!("no verification link in {text}"));
    link[link.find("/verify-email").unwrap()..].to_owned()
}

/// Fills the sign-in form on the page with a test account's password and
/// sends it.
async fn submit_sign_in(browser: &Browser, email: &str) {
    browser.fill("#f-email", email).await;
    browser.fill("#f-password", "violet-otter-43-lamp").await;
    browser.click("form button[type=submit]").await;
}

/// Opens `url` (a sign-in page, with its `next`) and signs in.
async fn sign_in(browser: &Browser, url: &str, email: &str) {
    browser.goto(url).await;
    submit_sign_in(browser, email).await;
}

/// No serious accessibility violation at desktop and phone widths, and no
/// sideways scrolling on the phone.
async fn assert_accessible(browser: &Browser, path: &str) {
    for width in [DESKTOP, PHONE] {
        browser.resize(width).await;
        let violations = browser.accessibility_violations().await;
        if !violations.is_empty() {
            browser
                .fail(&format!("{path} at {width:?}: {violations:#?}"))
                .await;
        }
    }
    if browser.overflows_sideways().await {
        browser
            .fail(&format!("{path} scrolls sideways on a phone"))
            .await;
    }
    browser.resize(DESKTOP).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_emailed_links_open_the_web_app_under_a_strict_csp() {
    let app = TestApp::builder().full().start().await;
    app.register("ann@example.com", "attendee").await;
    let verify = verification_link(&app, "ann@example.com").await;

    for path in [
        verify.as_str(),
        "/",
        "/events/0193a0b2-0000-7000-8000-000000000000",
        "/forgot-password",
        "/reset-password?token=abc",
        "/orders/0193a0b2-0000-7000-8000-000000000000",
    ] {
        let page = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(page.status(), 200, "{path}");
        let header = |name: &str| page.headers()[name].to_str().unwrap().to_owned();
        assert!(header("content-type").starts_with("text/html"), "{path}");
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        let html = page.text().await.unwrap();
        assert!(
            html.contains(r#"<script type="module" src="/app/app.js"></script>"#),
            "{path}"
        );
        assert!(
            !html.contains("https://") && !html.contains("http://"),
            "no other origin: {path}"
        );
    }

    let js = app.client.get(app.url("/app/app.js")).send().await.unwrap();
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let js = js.text().await.unwrap();
    // The pages the emails open call the API that does the work, and no
    // page writes markup from strings.
    for call in [
        "/v1/auth/verify-email",
        "/v1/auth/reset-password",
        "/v1/auth/forgot-password",
        "/v1/orders/",
        "/v1/events",
    ] {
        assert!(js.contains(call), "{call}");
    }
    assert!(!js.contains("innerHTML"));
    // The modules it imports are served too; nothing else under /app.
    for module in ["/app/lib.js", "/app/console.js"] {
        let page = app.client.get(app.url(module)).send().await.unwrap();
        assert_eq!(page.status(), 200, "{module}");
        assert!(
            !page.text().await.unwrap().contains("innerHTML"),
            "{module}"
        );
    }
    let (status, problem) = app.get("/app/other.js", None).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("no_route")));
    let css = app
        .client
        .get(app.url("/app/app.css"))
        .send()
        .await
        .unwrap();
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );

    // Outside the app's pages the API's 404 stands.
    let (status, problem) = app.get("/nowhere", None).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("no_route")));
}

/// In Chromium: the emailed link verifies the address (once), the
/// storefront lists a published event, and its page shows its tiers.
#[tokio::test(flavor = "multi_thread")]
async fn in_a_browser_the_emailed_link_verifies_and_the_storefront_shows_the_event() {
    let app = TestApp::builder().full().for_browser().start().await;
    let (access, _, _) = app.register("bea@example.com", "attendee").await;
    let verify = verification_link(&app, "bea@example.com").await;

    let browser = Browser::start("verify-and-storefront").await;
    browser.goto(&app.url(&verify)).await;
    browser
        .wait_text("#status", "bea@example.com is verified")
        .await;
    let (_, me) = app.get("/v1/auth/me", Some(&access)).await;
    assert_eq!(me["email_verified"], true);
    browser.goto(&app.url(&verify)).await;
    browser.wait_text("[role=alert]", "already used").await;

    let organizer = app.organizer("org@example.com").await;
    let event = app
        .published_event(
            &organizer,
            json!({"title": "Rooftop Sessions", "timezone": "Asia/Tokyo", "currency": "JPY"}),
        )
        .await;
    let id = event["id"].as_str().unwrap();
    browser.goto(&app.url("/")).await;
    browser.wait_text(".events", "Rooftop Sessions").await;
    // Search as you type: a prefix finds it, another word does not.
    browser.fill("#q", "opera").await;
    browser.wait_text(".events", "No events match").await;
    browser.fill("#q", "roof").await;
    browser.wait_text(".events", "Rooftop Sessions").await;

    browser.goto(&app.url(&format!("/events/{id}"))).await;
    browser.wait_text("h1", "Rooftop Sessions").await;
    // The tier, its price in yen (no minor unit: 2500 is ¥2,500) and its
    // stock; the time in Tokyo's zone.
    let tiers = browser.wait_text("table", "100 left").await;
    assert!(
        tiers.contains("General") && tiers.contains("2,500"),
        "{tiers}"
    );
    let heading = browser.text("main p.muted").await;
    assert!(
        heading.contains("GMT+9") || heading.contains("JST"),
        "{heading}"
    );
}

/// The QR code an `img` shows, read back from its pixels.
async fn qr_in(browser: &Browser, css: &str) -> String {
    let pixels = browser
        .eval(
            "const img = document.querySelector(a[0]);
             while (!img.getAttribute('src')) await new Promise((r) => setTimeout(r, 50));
             await img.decode();
             const canvas = document.createElement('canvas');
             canvas.width = img.naturalWidth;
             canvas.height = img.naturalHeight;
             const context = canvas.getContext('2d');
             context.drawImage(img, 0, 0);
             const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
             const grey = [];
             for (let i = 0; i < data.length; i += 4) grey.push(data[i]);
             return { width: canvas.width, height: canvas.height, grey };",
            json!([css]),
        )
        .await;
    let (width, height) = (
        pixels["width"].as_u64().unwrap() as usize,
        pixels["height"].as_u64().unwrap() as usize,
    );
    let grey: Vec<u8> = pixels["grey"]
        .as_array()
        .unwrap_or_else(|| panic!("no pixels: {pixels}"))
        .iter()
        .map(|v| v.as_u64().unwrap() as u8)
        .collect();
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| grey[y * width + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in {css}");
    grids[0].decode().expect("a readable QR code").1
}

/// The whole way of a buyer in Chromium: create an account, open the
/// emailed link, choose tickets with a code, order, and watch the order
/// page turn paid without a reload when the payment lands; the tickets it
/// then shows carry QR codes a scanner reads.
#[tokio::test(flavor = "multi_thread")]
async fn a_buyer_registers_buys_and_the_order_page_turns_paid_live_with_scannable_tickets() {
    let app = TestApp::builder().full().for_browser().start().await;
    let organizer = app.organizer("org@example.com").await;
    let event = app
        .published_event(&organizer, json!({"title": "Harbour Lights"}))
        .await;
    let event_id = event["id"].as_str().unwrap();
    let tier_id = event["tiers"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .post(
            &format!("/v1/events/{event_id}/discounts"),
            json!({"code": "EARLY", "percent_off": 20}),
            Some(&organizer),
        )
        .await;
    assert_eq!(status, 201);

    let browser = Browser::start("buyer-round-trip").await;
    browser.goto(&app.url("/register")).await;
    // A visitor who never signed in here asks for no refresh (it could
    // only answer 401); after signing in, a reload does.
    let refreshes = "return performance.getEntriesByType('resource')\
        .filter((e) => new URL(e.name).pathname === '/v1/auth/refresh').length;";
    browser.wait_for("document.querySelector('#f-email')").await;
    assert_eq!(browser.eval(refreshes, json!([])).await, 0);
    // The API's field errors show next to the fields.
    browser.fill("#f-display_name", "Cleo Buyer").await;
    browser.fill("#f-email", "not-an-email").await;
    browser.fill("#f-password", "short").await;
    browser.click("form button[type=submit]").await;
    browser
        .wait_text("#f-password-error", "must be at least")
        .await;
    assert!(!browser.text("#f-email-error").await.is_empty());
    assert_eq!(
        app.count("users").await,
        1,
        "a refused registration writes nothing"
    );
    submit_sign_in(&browser, "cleo@example.com").await;
    browser.wait_text("#account", "Sign out (Cleo Buyer)").await;

    let verify = verification_link(&app, "cleo@example.com").await;
    browser.goto(&app.url(&verify)).await;
    browser
        .wait_text("#status", "cleo@example.com is verified")
        .await;

    // A reload keeps the session (the refresh cookie), not the page's memory.
    browser.goto(&app.url(&format!("/events/{event_id}"))).await;
    browser.wait_text("#account", "Sign out").await;
    assert_eq!(browser.eval(refreshes, json!([])).await, 1);
    browser
        .wait_text(&format!("#left-{tier_id}"), "100 left")
        .await;
    browser.fill(&format!("#qty-{tier_id}"), "2").await;
    browser.wait_text("#summary", "2 tickets: €50.00").await;
    browser.fill("#discount-code", "early").await;
    browser.click("#apply-code").await;
    browser.wait_text("#discount-note", "EARLY: 20% off").await;
    browser.wait_text("#summary", "2 tickets: €40.00").await;
    browser.click("#buy").await;

    let url = browser.wait_url(|u| u.contains("/orders/")).await;
    let order_id = url.rsplit('/').next().unwrap().to_owned();
    browser.wait_text("#order-status", "awaiting payment").await;
    assert_eq!(browser.text("#order-total").await, "€40.00");
    assert_eq!(app.count("orders").await, 1);

    // The payment lands (the buyer paid in another tab): the page follows
    // its live stream, no reload.
    browser.eval("window.stillHere = true;", json!([])).await;
    browser.wait_text("#pay", "Pay €40.00").await;
    let checkout = browser
        .eval("return document.querySelector('#pay').href;", json!([]))
        .await;
    let checkout = checkout.as_str().unwrap_or_else(|| panic!("{checkout}"));
    assert!(checkout.starts_with(&app.sandbox_url), "{checkout}");
    app.settle(checkout, "pay").await;
    browser.wait_text("#order-status", "Paid").await;
    assert_eq!(
        browser
            .eval("return window.stillHere === true;", json!([]))
            .await,
        true,
        "the page was not reloaded"
    );

    // Each ticket's QR image reads back as that ticket's signed payload.
    browser.wait_text(".tickets", "Cleo Buyer").await;
    let (_, buyer) = app
        .post(
            "/v1/auth/login",
            json!({"email": "cleo@example.com", "password": "violet-otter-43-lamp"}),
            None,
        )
        .await;
    let token = buyer["access_token"].as_str().unwrap();
    let (status, tickets) = app
        .get(&format!("/v1/orders/{order_id}/tickets"), Some(token))
        .await;
    assert_eq!(status, 200);
    let tickets = tickets.as_array().unwrap();
    assert_eq!(tickets.len(), 2);
    for ticket in tickets {
        let shown = browser
            .text(&format!("#ticket-{}", ticket["id"].as_str().unwrap()))
            .await;
        assert!(shown.contains(ticket["code"].as_str().unwrap()), "{shown}");
        let read = qr_in(&browser, &format!("#qr-{}", ticket["id"].as_str().unwrap())).await;
        assert_eq!(read, ticket["qr_payload"].as_str().unwrap());
    }

    // "Add to calendar" is the event as an iCalendar file.
    let calendar = browser
        .eval(
            "return document.querySelector('#calendar').href;",
            json!([]),
        )
        .await;
    // (The file itself is the API's, tested with the orders.)
    let ics = app
        .client
        .get(calendar.as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        ics.contains("SUMMARY:Harbour Lights") && ics.contains("BEGIN:VEVENT"),
        "{ics}"
    );

    // My orders lists it, linked.
    browser.click("#account a[href='/orders']").await;
    browser.wait_text("#orders", "Harbour Lights").await;
    browser
        .click(&format!("#orders a[href='/orders/{order_id}']"))
        .await;
    browser.wait_text("#order-status", "Paid").await;
}

/// Two buyers at once: the second sees the count fall live as the first
/// buys, signs in inline without losing the chosen tickets, and a declined
/// payment on the sandbox's hosted page releases the seats again.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_buyer_sees_stock_fall_live_and_a_declined_payment_releases_the_seats() {
    let app = TestApp::builder().full().for_browser().start().await;
    let organizer = app.organizer("org@example.com").await;
    let event = app
        .create_event(&organizer, json!({"title": "Small Room"}))
        .await;
    let event_id = event["id"].as_str().unwrap();
    let tier = app
        .create_tier(&organizer, event_id, json!({"name": "Seat", "quantity": 3}))
        .await;
    let tier_id = tier["id"].as_str().unwrap();
    let (status, _) = app
        .post(
            &format!("/v1/events/{event_id}/publish"),
            json!({}),
            Some(&organizer),
        )
        .await;
    assert_eq!(status, 200);
    let (first, _, _) = app.register("first@example.com", "attendee").await;
    app.register("second@example.com", "attendee").await;

    let browser = Browser::start("second-buyer").await;
    browser.goto(&app.url(&format!("/events/{event_id}"))).await;
    browser
        .wait_text(&format!("#left-{tier_id}"), "3 left")
        .await;

    // The first buyer takes two seats elsewhere.
    let (status, order) = app
        .order(
            &first,
            event_id,
            "first-buyer",
            json!({"items": [{"tier_id": tier_id, "quantity": 2}]}),
        )
        .await;
    assert_eq!(status, 202, "{order}");
    app.wait_order(&first, order["id"].as_str().unwrap(), "awaiting_payment")
        .await;
    browser
        .wait_text(&format!("#left-{tier_id}"), "1 left")
        .await;

    browser.fill(&format!("#qty-{tier_id}"), "1").await;
    browser.click("#buy").await;
    browser.wait_text("h1", "Sign in to buy tickets").await;
    submit_sign_in(&browser, "second@example.com").await;
    browser.wait_url(|u| u.contains("/orders/")).await;
    browser.wait_text("#order-status", "awaiting payment").await;

    // Sold out now, for anyone who looks.
    let (_, page) = app.get(&format!("/v1/events/{event_id}"), None).await;
    assert_eq!(page["tiers"][0]["remaining"], 0);
    let look = Browser::start("second-buyer-look").await;
    look.goto(&app.url(&format!("/events/{event_id}"))).await;
    look.wait_text(&format!("#left-{tier_id}"), "Sold out")
        .await;
    assert_eq!(
        look.eval(
            &format!("return document.querySelector('#qty-{tier_id}').disabled;"),
            json!([])
        )
        .await,
        true
    );

    browser.click("#pay").await;
    browser.wait_url(|u| u.starts_with(&app.sandbox_url)).await;
    browser.click("button.decline").await;
    browser.wait_url(|u| u.contains("/orders/")).await;
    browser.wait_text("#order-status", "Cancelled").await;
    browser.wait_text("#order-reason", "declined").await;
    assert!(
        browser
            .eval("return document.querySelector('#pay') === null;", json!([]))
            .await
            == true
    );

    browser.goto(&app.url(&format!("/events/{event_id}"))).await;
    browser
        .wait_text(&format!("#left-{tier_id}"), "1 left")
        .await;
}

/// The main pages have no serious accessibility violations (axe-core) and
/// fit a phone's width without scrolling sideways.
#[tokio::test(flavor = "multi_thread")]
async fn the_main_pages_pass_axe_and_fit_a_phone() {
    let app = TestApp::builder().full().for_browser().start().await;
    let shop = app
        .shop_with(100, 2500, json!({"title": "Open Air Cinema"}))
        .await;
    let event_id = &shop.event_id;
    let (buyer, _, _) = app.register("dan@example.com", "attendee").await;
    let (order_id, checkout) = app.reserved_checkout(&buyer, &shop, "dan-1").await;
    let order_id = &order_id;
    app.settle(&checkout, "pay").await;
    app.wait_order(&buyer, order_id, "paid").await;

    let browser = Browser::start("accessibility").await;
    let pages = [
        ("/", "Events"),
        ("/forgot-password", "Forgot your password?"),
        ("/register", "Create an account"),
        ("/sign-in", "Sign in"),
        (&format!("/events/{event_id}") as &str, "Open Air Cinema"),
        (&format!("/orders/{order_id}"), "Your order"),
        ("/orders", "My orders"),
        ("/tickets", "My tickets"),
    ];
    for (path, title) in pages {
        browser.goto(&app.url(path)).await;
        browser.wait_text("h1", title).await;
        if path == "/sign-in" {
            // The rest are the buyer's own pages.
            submit_sign_in(&browser, "dan@example.com").await;
            browser.wait_text("#account", "Sign out").await;
        }
        if path.starts_with("/orders/") {
            browser.wait_text(".tickets", "Test User").await;
        }
        assert_accessible(&browser, path).await;
    }
    // The check sees what it is for: an image without a text alternative.
    browser
        .eval(
            "document.querySelector('main').append(document.createElement('img'));",
            json!([]),
        )
        .await;
    let violations = browser.accessibility_violations().await;
    assert!(
        violations.iter().any(|v| v.starts_with("image-alt")),
        "{violations:?}"
    );
}

/// An organizer in the console: creates an event (times typed in its own
/// zone), adds two tiers, edits it, publishes it and finds it in the
/// storefront; then sees a sale in the chart and checks its ticket in by
/// typed code, once.
#[tokio::test(flavor = "multi_thread")]
async fn an_organizer_creates_edits_publishes_and_checks_in_from_the_console() {
    let app = TestApp::builder().full().for_browser().start().await;
    app.organizer("olga@example.com").await;
    let browser = Browser::start("organizer-console").await;
    sign_in(
        &browser,
        &app.url("/sign-in?next=/console"),
        "olga@example.com",
    )
    .await;
    browser.wait_text("h1", "My events").await;
    browser.wait_text("main", "No events yet").await;

    browser.click("#new-event").await;
    browser.wait_text("h1", "New event").await;
    // Field errors from the API land next to their fields.
    browser.click("form button[type=submit]").await;
    browser
        .wait_text("#event-starts_at-error", "required")
        .await;
    assert_eq!(app.count("events").await, 0);
    for (field, value) in [
        ("title", "Jazz by the Lake"),
        ("description", "Quartets at dusk."),
        ("venue_name", "Pavillon"),
        ("address", "1 Quai du Lac"),
        ("city", "Annecy"),
        ("country", "fr"),
        ("timezone", "Europe/Paris"),
    ] {
        browser.fill(&format!("#event-{field}"), value).await;
    }
    // Date inputs take their value as the page would get it from a picker.
    browser
        .eval(
            "document.querySelector('#event-starts_at').value = '2027-06-01T20:00';
             document.querySelector('#event-ends_at').value = '2027-06-01T23:30';",
            json!([]),
        )
        .await;
    browser.click("form button[type=submit]").await;
    let url = browser
        .wait_url(|u| u.contains("/console/events/") && !u.ends_with("/new"))
        .await;
    let event_id = url.rsplit('/').next().unwrap().to_owned();
    browser.wait_text("#event-status", "Draft").await;
    let (_, olga) = app
        .post(
            "/v1/auth/login",
            json!({"email": "olga@example.com", "password": "violet-otter-43-lamp"}),
            None,
        )
        .await;
    let (_, event) = app
        .get(
            &format!("/v1/events/{event_id}"),
            olga["access_token"].as_str(),
        )
        .await;
    // 20:00 in Paris in June is 18:00 UTC.
    assert_eq!(event["starts_at"], "2027-06-01T18:00:00Z");

    for (name, price, quantity) in [("Early bird", "20", "50"), ("Standard", "30.50", "100")] {
        browser.fill("#tier-name", name).await;
        browser.fill("#tier-price", price).await;
        browser.fill("#tier-quantity", quantity).await;
        browser
            .click("form[aria-label='Add a tier'] button[type=submit]")
            .await;
        browser.wait_text("#tiers", name).await;
    }
    browser.fill("#code-code", "LAKE5").await;
    browser.fill("#code-amount_off_minor", "5").await;
    browser
        .click("form[aria-label='New discount code'] button[type=submit]")
        .await;
    browser.wait_text("#codes", "LAKE5: €5.00 off").await;
    // An image, uploaded from the console, is the storefront's cover.
    let image = std::env::temp_dir().join(format!("boxoffice-{}.png", uuid::Uuid::new_v4()));
    std::fs::write(
        &image,
        base64::engine::general_purpose::STANDARD
            .decode(ONE_PIXEL_PNG)
            .unwrap(),
    )
    .unwrap();
    browser.choose_file("#image-file", &image).await;
    browser.click("#upload-image").await;
    browser.wait_text("#images", "Delete").await;
    let _ = std::fs::remove_file(&image);
    browser
        .fill("#event-title", "Jazz by the Lake: late show")
        .await;
    browser
        .click("form[aria-label='Event details'] button[type=submit]")
        .await;
    browser
        .wait_text("form[aria-label='Event details'] [role=status]", "Saved")
        .await;
    browser.click("#publish").await;
    browser.wait_text("#event-status", "On sale").await;

    browser.click("#storefront").await;
    browser.wait_text("h1", "Jazz by the Lake: late show").await;
    let tiers = browser.wait_text("table", "50 left").await;
    assert!(
        tiers.contains("Early bird") && tiers.contains("€20.00") && tiers.contains("€30.50"),
        "{tiers}"
    );
    let cover = browser
        .eval(
            "const img = document.querySelector('#cover'); await img.decode(); return img.naturalWidth;",
            json!([]),
        )
        .await;
    assert_eq!(cover, 1, "the cover image loads under the page's CSP");
    browser.goto(&app.url("/")).await;
    browser
        .wait_text(".events", "Jazz by the Lake: late show")
        .await;

    // The organizer edits a tier, then watches a sale come in live; the
    // door admits its ticket once.
    let early = event_tier(&app, &event_id, "Early bird").await;
    let standard = event_tier(&app, &event_id, "Standard").await;
    browser
        .goto(&app.url(&format!("/console/events/{event_id}")))
        .await;
    browser.click(&format!("#edit-{standard}")).await;
    browser.fill("#edit-tier-quantity", "120").await;
    browser.click("#tier-editor button[type=submit]").await;
    browser
        .wait_text(&format!("#console-left-{standard}"), "120")
        .await;
    browser
        .wait_text(&format!("#console-left-{early}"), "50")
        .await;

    let (buyer, _, _) = app.register("finn@example.com", "attendee").await;
    let shop = crate::harness::shop::Shop {
        organizer: String::new(),
        event_id: event_id.clone(),
        tier_id: early.clone(),
    };
    let (order_id, checkout) = app.reserved_checkout(&buyer, &shop, "finn-1").await;
    browser
        .wait_text(&format!("#console-left-{early}"), "49")
        .await;
    app.settle(&checkout, "pay").await;
    app.wait_order(&buyer, &order_id, "paid").await;
    let (_, tickets) = app
        .get(&format!("/v1/orders/{order_id}/tickets"), Some(&buyer))
        .await;
    let code = tickets[0]["code"].as_str().unwrap();
    // The figures follow without a reload.
    browser.wait_text("#money", "€20.00").await;
    let bars = browser
        .eval(
            "return document.querySelectorAll('svg.chart rect').length;",
            json!([]),
        )
        .await;
    assert!(bars.as_u64().unwrap() >= 1, "{bars}");
    browser
        .click(&format!("a[href='/console/events/{event_id}/attendees']"))
        .await;
    browser.wait_text("#attendees", "finn@example.com").await;

    browser
        .goto(&app.url(&format!("/console/events/{event_id}/check-in")))
        .await;
    browser.fill("#scan-code", code).await;
    browser.click("form button[type=submit]").await;
    browser
        .wait_text("#scans", "Admitted: Test User (Early bird)")
        .await;
    browser.fill("#scan-code", code).await;
    browser.click("form button[type=submit]").await;
    browser.wait_text("#scans li:first-child", "Refused").await;
    assert_eq!(app.count("check_ins").await, 1);
}

/// A 1×1 PNG.
const ONE_PIXEL_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

async fn event_tier(app: &TestApp, event_id: &str, name: &str) -> String {
    let (_, event) = app.get(&format!("/v1/events/{event_id}"), None).await;
    event["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no tier {name}: {event}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The link emailed by "forgot password" sets a new one and ends every
/// session: the page the user was on then asks them to sign in (the old
/// password no longer works) and, signed in, carries on where they were.
#[tokio::test(flavor = "multi_thread")]
async fn a_reset_password_ends_the_session_and_sign_in_leads_back() {
    let app = TestApp::builder().full().for_browser().start().await;
    app.register("gus@example.com", "attendee").await;
    let browser = Browser::start("password-reset").await;
    sign_in(
        &browser,
        &app.url("/sign-in?next=/tickets"),
        "gus@example.com",
    )
    .await;
    browser.wait_text("h1", "My tickets").await;

    // In another tab: "forgot password", then the emailed link.
    let other = Browser::start("password-reset-other-tab").await;
    other.goto(&app.url("/forgot-password")).await;
    other.fill("#f-email", "gus@example.com").await;
    other.click("form button[type=submit]").await;
    other
        .wait_text("main", "a link to reset its password is on its way")
        .await;
    let email = app
        .smtp
        .wait_for(
            "gus@example.com",
            "Reset your password",
            Duration::from_secs(15),
        )
        .await;
    let text = email.text();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/reset-password?token="))
        .unwrap_or_else(|| panic!("no reset link in {text}"));
    other.goto(link).await;
    other.fill("#f-password", "short").await;
    other.click("form button[type=submit]").await;
    other.wait_text("#f-password-error", "at least").await;
    other.fill("#f-password", "amber-heron-77-kite").await;
    other.click("form button[type=submit]").await;
    other.wait_text("h1", "Password changed").await;

    // The first tab's session has ended: its next page asks to sign in,
    // refuses the old password, then shows the page it was going to.
    browser.click("#account a[href='/orders']").await;
    browser.wait_text("h1", "Sign in").await;
    submit_sign_in(&browser, "gus@example.com").await;
    browser
        .wait_text("main form [role=alert]", "Wrong email or password")
        .await;
    browser.fill("#f-password", "amber-heron-77-kite").await;
    browser.click("form button[type=submit]").await;
    browser.wait_text("h1", "My orders").await;
    assert!(browser.url().await.ends_with("/orders"));
}

/// The network drops as the buyer presses Buy: the page says it retries,
/// and when the network is back the order is placed once.
#[tokio::test(flavor = "multi_thread")]
async fn a_network_drop_while_ordering_retries_and_places_one_order() {
    let app = TestApp::builder().full().for_browser().start().await;
    let shop = app
        .shop_with(10, 2500, json!({"title": "Signal Lost"}))
        .await;
    app.register("hal@example.com", "attendee").await;
    let browser = Browser::start("network-drop").await;
    sign_in(
        &browser,
        &app.url(&format!("/sign-in?next=/events/{}", shop.event_id)),
        "hal@example.com",
    )
    .await;
    browser
        .wait_text(&format!("#left-{}", shop.tier_id), "10 left")
        .await;
    browser.fill(&format!("#qty-{}", shop.tier_id), "2").await;

    browser.offline(true).await;
    browser.click("#buy").await;
    browser.wait_text("#order-error", "trying again").await;
    assert_eq!(app.count("orders").await, 0);
    browser.offline(false).await;
    browser.wait_url(|u| u.contains("/orders/")).await;
    browser.wait_text("#order-status", "awaiting payment").await;
    assert_eq!(app.count("orders").await, 1);
    assert_eq!(
        app.scalar("SELECT sum(quantity)::bigint AS n FROM order_items")
            .await,
        2
    );
}

/// The rest of the console: a webhook endpoint (its secret shown once, a
/// test ping in its delivery log), the payout account, door staff, and an
/// admin finding a user to make them an organizer.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_manages_webhooks_payouts_staff_and_users() {
    let app = TestApp::builder()
        .full()
        .for_browser()
        .with_config(|c| c.webhooks.allow_loopback = true)
        .start()
        .await;
    let organizer = app.organizer("olga@example.com").await;
    let event = app
        .published_event(&organizer, json!({"title": "Night Market"}))
        .await;
    let event_id = event["id"].as_str().unwrap();
    let (_, _, dora) = app.register("dora@example.com", "attendee").await;
    let admin = app.admin().await;
    let receiver = crate::routes::webhook_endpoints::Receiver::start().await;

    let browser = Browser::start("console-rest").await;
    sign_in(
        &browser,
        &app.url("/sign-in?next=/console/webhooks"),
        "olga@example.com",
    )
    .await;
    browser.wait_text("h1", "Webhooks").await;
    browser.fill("#endpoint-url", &receiver.url).await;
    browser.click("form button[type=submit]").await;
    let secret = browser.wait_text("#secret", "whsec_").await;
    let (_, endpoints) = app
        .get("/v1/organizer/webhook-endpoints", Some(&organizer))
        .await;
    assert_eq!(endpoints[0]["url"], receiver.url.as_str());
    assert_eq!(endpoints[0]["event_types"].as_array().unwrap().len(), 9);
    assert!(endpoints[0].get("secret").is_none_or(|s| s.is_null()));
    assert!(secret.len() > 10);
    browser.click("#endpoints button.secondary").await;
    receiver.wait_for(1).await;
    browser.wait_text(".deliveries", "ping").await;
    browser
        .eval(
            "[...document.querySelectorAll('#endpoints button')].find((b) => b.textContent === 'Refresh').click();",
            json!([]),
        )
        .await;
    browser.wait_text(".deliveries", "delivered").await;
    // Edited in place: another address, one event type fewer.
    let endpoint = endpoints[0]["id"].as_str().unwrap();
    browser.click(&format!("#edit-{endpoint}")).await;
    let moved = format!("{}?v=2", receiver.url);
    browser
        .fill(&format!("#endpoint-{endpoint}-url"), &moved)
        .await;
    browser
        .click(&format!(
            "form[aria-label='Edit {}'] input[value='order.created']",
            receiver.url
        ))
        .await;
    browser
        .click(&format!(
            "form[aria-label='Edit {}'] button[type=submit]",
            receiver.url
        ))
        .await;
    browser.wait_text("#endpoints h2", "?v=2").await;
    let (_, endpoints) = app
        .get("/v1/organizer/webhook-endpoints", Some(&organizer))
        .await;
    assert_eq!(endpoints[0]["url"], moved.as_str());
    let types = endpoints[0]["event_types"].as_array().unwrap();
    assert_eq!(types.len(), 8);
    assert!(!types.contains(&json!("order.created")));
    // A new secret, shown once; then the endpoint goes.
    browser.click(&format!("#rotate-{endpoint}")).await;
    browser
        .wait_text("#new-secret", "The new signing secret")
        .await;
    let rotated = browser.text("#secret").await;
    assert!(
        rotated.starts_with("whsec_") && rotated != secret,
        "{rotated}"
    );
    browser.click(&format!("#delete-{endpoint}")).await;
    browser.wait_text("main", "No endpoints yet").await;
    let (_, endpoints) = app
        .get("/v1/organizer/webhook-endpoints", Some(&organizer))
        .await;
    assert_eq!(endpoints.as_array().unwrap().len(), 0);

    browser.goto(&app.url("/console/payouts")).await;
    browser.wait_text("h1", "Payouts and balance").await;
    browser.fill("#payout-account_id", "acct_olga").await;
    browser.click("form button[type=submit]").await;
    browser.wait_text("form [role=status]", "Saved").await;
    let (_, balance) = app.get("/v1/organizer/balance", Some(&organizer)).await;
    assert_eq!(balance["payout_account"], "acct_olga");

    browser
        .goto(&app.url(&format!("/console/events/{event_id}")))
        .await;
    browser.fill("#staff-email", "dora@example.com").await;
    browser
        .click("form[aria-label='Add door staff'] button[type=submit]")
        .await;
    browser.wait_text("#staff", "dora@example.com").await;
    assert_eq!(app.count("event_staff").await, 1);

    // Cancelling from the console: the event is off sale at once.
    browser
        .fill("#cancel-message", "The market is rained out.")
        .await;
    browser
        .click("form[aria-label='Cancel the event'] button[type=submit]")
        .await;
    browser.wait_text("#event-status", "Cancelled").await;
    let (_, page) = app.get(&format!("/v1/events/{event_id}"), None).await;
    assert_eq!(page["status"], "cancelled");
    assert_eq!(page["cancel_message"], "The market is rained out.");

    browser.click("#sign-out").await;
    browser.wait_text("#account", "Sign in").await;
    sign_in(
        &browser,
        &app.url("/sign-in?next=/console/users"),
        "root@boxoffice.test",
    )
    .await;
    browser.wait_text("h1", "Users").await;
    browser.fill("#user-q", "dora").await;
    browser.click("form[role=search] button").await;
    // The list is redrawn once the search answers: dora only.
    browser
        .wait_for("!document.querySelector('#users').innerText.includes('root@boxoffice.test')")
        .await;
    let users = browser.text("#users").await;
    assert!(
        users.contains("dora@example.com") && !users.contains("olga"),
        "{users}"
    );
    browser
        .click(&format!("#role-{dora} option[value=organizer]"))
        .await;
    browser.wait_text("#users [role=status]", "Saved").await;
    let (_, found) = app.get("/v1/admin/users?q=dora", Some(&admin)).await;
    assert_eq!(found["items"][0]["role"], "organizer");
}

/// The ops board draws each queue's last hour: done and failed jobs per
/// minute, with a text alternative.
#[tokio::test(flavor = "multi_thread")]
async fn the_ops_board_draws_each_queues_last_hour() {
    let app = TestApp::builder().full().for_browser().start().await;
    app.admin().await;
    let shop = app.shop(10, 2500).await;
    let (buyer, _, _) = app.register("ivy@example.com", "attendee").await;
    let (order_id, checkout) = app.reserved_checkout(&buyer, &shop, "ivy-1").await;
    app.settle(&checkout, "pay").await;
    app.wait_order(&buyer, &order_id, "paid").await;

    let browser = Browser::start("ops-board").await;
    browser.goto(&app.url("/ops/board")).await;
    browser
        .fill("#login-form input[name=email]", "root@boxoffice.test")
        .await;
    browser
        .fill("#login-form input[name=password]", "violet-otter-43-lamp")
        .await;
    browser.click("#login-form button").await;
    browser.wait_text("#queues", "purchases").await;
    // Workers flush their counts once a second; the board redraws every 2 s.
    let purchases = "[...document.querySelectorAll('#queues tr')]
        .find((tr) => tr.firstChild.textContent === 'purchases').querySelector('svg.spark')";
    browser
        .wait_for(&format!(
            "{purchases}.querySelectorAll('rect.ok').length > 0"
        ))
        .await;
    let title = browser
        .eval(
            &format!("return {purchases}.querySelector('title').textContent;"),
            json!([]),
        )
        .await;
    let title = title.as_str().unwrap();
    assert!(
        title.ends_with("in the last 60 min") && !title.starts_with("0 done"),
        "{title}"
    );

    // A count opens its jobs: here one email due in an hour.
    let email_id = uuid::Uuid::now_v7();
    app.services
        .queues
        .push(
            &boxoffice_core::jobs::SendEmail { email_id },
            boxoffice_core::queue::Schedule::after(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    browser
        .wait_for("document.querySelector(\"a[aria-label='1 scheduled jobs in emails']\") !== null")
        .await;
    browser
        .click("a[aria-label='1 scheduled jobs in emails']")
        .await;
    browser
        .wait_text("#jobs-title", "Scheduled jobs in emails (1)")
        .await;
    browser.wait_text("#job-rows", &email_id.to_string()).await;
    assert_eq!(
        browser
            .eval(
                "return document.querySelector('#retry-all').hidden;",
                json!([])
            )
            .await,
        true,
        "only dead jobs can be retried"
    );
}

/// The storefront's filters: by city (kept in the address), nearest first
/// from the browser's location, and more results on demand.
#[tokio::test(flavor = "multi_thread")]
async fn the_storefront_filters_by_city_finds_events_near_me_and_loads_more() {
    let app = TestApp::builder().full().for_browser().start().await;
    let organizer = app.organizer("org@example.com").await;
    // 20 in Lyon (a full page), one in Paris near the buyer.
    for i in 0..20 {
        app.published_event(
            &organizer,
            json!({"title": format!("Lyon Night {i:02}"), "city": "Lyon",
                   "latitude": 45.764, "longitude": 4.8357}),
        )
        .await;
    }
    app.published_event(
        &organizer,
        json!({"title": "Paris Matinee", "city": "Paris", "latitude": 48.8566, "longitude": 2.3522}),
    )
    .await;

    let browser = Browser::start("storefront-filters").await;
    browser.goto(&app.url("/")).await;
    browser.wait_text("#events", "Lyon Night").await;
    // A page of 20, then the rest.
    let count = || async {
        browser
            .eval(
                "return document.querySelectorAll('#events > li').length;",
                json!([]),
            )
            .await
    };
    assert_eq!(count().await, 20);
    browser.click("#more").await;
    browser.wait_text("#events", "Paris Matinee").await;
    assert_eq!(count().await, 21);

    browser.fill("#search-city", "paris").await;
    browser.wait_url(|u| u.ends_with("/?city=paris")).await;
    browser
        .wait_for("document.querySelectorAll('#events > li').length === 1")
        .await;
    browser.wait_text("#events", "Paris Matinee").await;
    // The address keeps the search: a reload shows the same.
    browser.goto(&app.url("/?city=paris")).await;
    browser.wait_text("#events", "Paris Matinee").await;
    assert_eq!(count().await, 1);

    browser.fill("#search-city", "").await;
    browser
        .wait_for("document.querySelectorAll('#events > li').length === 20")
        .await;
    browser.locate(48.85, 2.35).await;
    browser.click("#near-me").await;
    browser.wait_text("#near-status", "Nearest first").await;
    let first = browser
        .wait_text("#events > li:first-child", "Paris Matinee")
        .await;
    assert!(first.contains("km away"), "{first}");
    // Lyon is some 390 km away: outside the 50 km.
    assert_eq!(count().await, 1);
}

/// On the order page the buyer cancels an unpaid order, and asks for the
/// refund of a paid one where the event allows it: the page follows the
/// refund to the end without a reload.
#[tokio::test(flavor = "multi_thread")]
async fn a_buyer_cancels_an_unpaid_order_and_refunds_a_paid_one_from_the_order_page() {
    let app = TestApp::builder().full().for_browser().start().await;
    let shop = app
        .shop_with(
            10,
            2500,
            json!({"title": "Refundable Gig", "refund_until_hours": 24}),
        )
        .await;
    let (buyer, _, _) = app.register("jo@example.com", "attendee").await;
    let (unpaid, _) = app.reserved_checkout(&buyer, &shop, "jo-1").await;
    let (paid, checkout) = app.reserved_checkout(&buyer, &shop, "jo-2").await;
    app.settle(&checkout, "pay").await;
    app.wait_order(&buyer, &paid, "paid").await;

    let browser = Browser::start("cancel-and-refund").await;
    sign_in(
        &browser,
        &app.url(&format!("/sign-in?next=/orders/{unpaid}")),
        "jo@example.com",
    )
    .await;
    browser.wait_text("#order-status", "awaiting payment").await;
    browser.click("#cancel-order").await;
    browser.wait_text("#order-status", "Cancelled").await;
    app.wait_order(&buyer, &unpaid, "cancelled").await;

    browser.goto(&app.url(&format!("/orders/{paid}"))).await;
    browser.wait_text("#order-status", "Paid").await;
    browser.click("#refund").await;
    browser.wait_text("#refund-confirm", "€25.00 back").await;
    browser.click("#refund-yes").await;
    browser.wait_text("#order-status", "Refunded").await;
    browser.wait_text("#refunds", "Refunded").await;
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM refunds WHERE status = 'succeeded'")
            .await,
        1
    );
    // Nothing left to refund: no button.
    assert_eq!(
        browser
            .eval(
                "return document.querySelector('#refund') === null;",
                json!([])
            )
            .await,
        true
    );
}

/// The console's pages pass the same accessibility check at both widths.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_pages_pass_axe_and_fit_a_phone() {
    let app = TestApp::builder().full().for_browser().start().await;
    let shop = app
        .shop_with(10, 2500, json!({"title": "Accessible Evening"}))
        .await;
    let (buyer, _, _) = app.register("kim@example.com", "attendee").await;
    let (order_id, checkout) = app.reserved_checkout(&buyer, &shop, "kim-1").await;
    app.settle(&checkout, "pay").await;
    app.wait_order(&buyer, &order_id, "paid").await;
    let (_, me) = app.get("/v1/auth/me", Some(&shop.organizer)).await;
    let email = me["email"].as_str().unwrap().to_owned();

    let browser = Browser::start("console-accessibility").await;
    sign_in(&browser, &app.url("/sign-in?next=/console"), &email).await;
    browser.wait_text("h1", "My events").await;
    let id = &shop.event_id;
    for (path, title) in [
        ("/console".to_owned(), "My events"),
        ("/console/events/new".to_owned(), "New event"),
        (format!("/console/events/{id}"), "Accessible Evening"),
        (format!("/console/events/{id}/attendees"), "Attendees"),
        (format!("/console/events/{id}/check-in"), "Check-in"),
        ("/console/payouts".to_owned(), "Payouts and balance"),
        ("/console/webhooks".to_owned(), "Webhooks"),
    ] {
        browser.goto(&app.url(&path)).await;
        browser.wait_text("h1", title).await;
        assert_accessible(&browser, &path).await;
    }
}

/// Images served from a CDN or bucket are allowed by the page's CSP, and
/// nothing else is.
#[tokio::test(flavor = "multi_thread")]
async fn the_pages_csp_allows_images_from_the_media_origin_only() {
    let app = TestApp::builder()
        .with_config(|c| c.media.public_url = "https://cdn.example.com/boxoffice/media".into())
        .start()
        .await;
    let page = app.client.get(app.url("/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("img-src 'self' data: blob: https://cdn.example.com;"),
        "{csp}"
    );
    assert!(
        csp.contains("connect-src 'self';") && csp.contains("default-src 'none'"),
        "{csp}"
    );
}

/// An organizer hides a tier behind an access code from the console; a buyer
/// who has the code sees it, puts a ticket in a friend's name (the API's field
/// error shows next to the seat's field first), pays, and both the friend and
/// the buyer hold tickets; the organizer's message then reaches the friend.
#[tokio::test(flavor = "multi_thread")]
async fn a_buyer_opens_a_hidden_tier_with_its_code_and_names_a_ticket() {
    let app = TestApp::builder().full().for_browser().start().await;
    let organizer = app.organizer("olive@example.com").await;
    let event = app
        .published_event(&organizer, json!({"title": "Secret Garden"}))
        .await;
    let event_id = event["id"].as_str().unwrap();
    app.register("bea@example.com", "attendee").await;

    let browser = Browser::start("hidden-tier").await;
    sign_in(
        &browser,
        &app.url(&format!("/sign-in?next=/console/events/{event_id}")),
        "olive@example.com",
    )
    .await;
    browser.wait_text("h1", "Secret Garden").await;
    browser.fill("#tier-name", "Friends").await;
    browser.fill("#tier-price", "10.00").await;
    browser.fill("#tier-quantity", "20").await;
    browser.fill("#tier-unlock_code", "GARDEN-FRIENDS").await;
    browser
        .click("form[aria-label='Add a tier'] button[type=submit]")
        .await;
    browser
        .wait_text("main", "Hidden · code GARDEN-FRIENDS")
        .await;
    browser.click("#sign-out").await;
    browser.wait_text("#account", "Sign in").await;

    sign_in(
        &browser,
        &app.url(&format!("/sign-in?next=/events/{event_id}")),
        "bea@example.com",
    )
    .await;
    browser.wait_text("h1", "Secret Garden").await;
    assert!(
        !browser
            .text("form[aria-label='Buy tickets']")
            .await
            .contains("Friends")
    );
    browser.fill("#access-code", "garden-friends").await;
    browser.click("#apply-access").await;
    browser
        .wait_text("#access-note", "opens 1 ticket tier")
        .await;
    assert!(browser.url().await.contains("?code=garden-friends"));
    let (_, unlocked) = app
        .get(
            &format!("/v1/events/{event_id}?unlock_code=GARDEN-FRIENDS"),
            None,
        )
        .await;
    let friends = unlocked["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Friends")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    browser.fill(&format!("#qty-{friends}"), "2").await;
    browser.wait_text("#summary", "2 tickets: €20.00").await;
    browser.click("#holders summary").await;
    let seat = format!("#holder-{friends}-0");
    browser.fill(&format!("{seat}-name"), "Ada Lovelace").await;
    browser.fill(&format!("{seat}-email"), "ada@").await;
    browser.click("#buy").await;
    browser
        .wait_text(&format!("{seat}-email-error"), "email")
        .await;
    assert_eq!(
        app.count("orders").await,
        0,
        "a refused order writes nothing"
    );
    browser
        .fill(&format!("{seat}-email"), "ada@example.com")
        .await;
    browser.click("#buy").await;
    browser.wait_url(|u| u.contains("/orders/")).await;
    browser.wait_text("#pay", "Pay €20.00").await;
    let checkout = browser
        .eval("return document.querySelector('#pay').href;", json!([]))
        .await;
    app.settle(checkout.as_str().unwrap(), "pay").await;
    browser.wait_text("#order-status", "Paid").await;
    browser
        .wait_text(".tickets", "Friends · Ada Lovelace")
        .await;
    browser.wait_text(".tickets", "Friends · Test User").await;

    // The organizer's message goes to every ticket holder, the friend too.
    browser.click("#sign-out").await;
    browser.wait_text("#account", "Sign in").await;
    sign_in(
        &browser,
        &app.url(&format!("/sign-in?next=/console/events/{event_id}")),
        "olive@example.com",
    )
    .await;
    browser.fill("#message-subject", "Bring a blanket").await;
    browser
        .fill("#message-body", "The lawn is damp after dark.")
        .await;
    browser
        .click("form[aria-label='Message the attendees'] button[type=submit]")
        .await;
    browser.wait_text("#messages", "Bring a blanket").await;
    // The scheduler's tick fans the message out to one email per holder.
    boxoffice_scheduler::run_sweep(&app.services, "messages")
        .await
        .unwrap();
    let email = app
        .smtp
        .wait_for(
            "ada@example.com",
            "Bring a blanket",
            Duration::from_secs(20),
        )
        .await;
    assert!(email.text().contains("The lawn is damp after dark."));
    app.smtp
        .wait_for(
            "bea@example.com",
            "Bring a blanket",
            Duration::from_secs(20),
        )
        .await;
    browser
        .goto(&app.url(&format!("/console/events/{event_id}")))
        .await;
    browser.wait_text("#messages", "2 of 2 sent").await;
}
