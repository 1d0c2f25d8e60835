//! The authorization matrix: every operation of the API document (which a
//! test keeps equal to the router) × every kind of caller, with who may and
//! who may not. An operation missing from `RULES` fails the test, so a new
//! route cannot skip it.
//!
//! A refused caller gets 401 (anonymous), 403 (role) or 404 (someone
//! else's resource); a write may also be turned away earlier by its body
//! (400/415/422, nothing written), never answered 2xx or 409 (which would
//! mean its state was looked at). An allowed caller is never answered 401,
//! 403 or 404. Nobody ever gets a 5xx. The refused calls all run first,
//! and the business tables are compared before and after them: nothing
//! was written.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use crate::{
    harness::{TestApp, shop::Shop},
    routes::event_images::{PIXEL_PNG, upload},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Caller {
    Anonymous,
    Attendee,
    OtherAttendee,
    DoorStaff,
    OwnerOrganizer,
    OtherOrganizer,
    Admin,
}

use Caller::*;

const CALLERS: [Caller; 7] = [
    Anonymous,
    Attendee,
    OtherAttendee,
    DoorStaff,
    OwnerOrganizer,
    OtherOrganizer,
    Admin,
];

/// Who may call an operation, on the fixtures below (the attendee bought
/// the order; the owner organizes the event; the door staff scan it).
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Everyone, signed in or not.
    Public,
    /// Anyone signed in (about themselves).
    SignedIn,
    /// The order's buyer and admins.
    Buyer,
    /// The order's buyer, the event's organizer and admins.
    BuyerOrManager,
    /// Only the session's own user.
    OwnSession,
    /// Organizers (of their own things) and admins.
    Organizer,
    /// The event's organizer and admins.
    Manager,
    /// Only the organizer who made it (webhook endpoints hold their owner's
    /// secrets: not even admins read them).
    Owner,
    /// The event's organizer, its door staff and admins.
    Door,
    Admin,
    /// Callers with another credential (a provider's signature, a refresh
    /// token): refused on a bearer token alone, whoever asks.
    OtherCredential,
}

impl Rule {
    fn allows(self, caller: Caller) -> bool {
        match self {
            Rule::Public => true,
            Rule::SignedIn => caller != Anonymous,
            Rule::Buyer => matches!(caller, Attendee | Admin),
            Rule::BuyerOrManager => matches!(caller, Attendee | OwnerOrganizer | Admin),
            Rule::OwnSession => caller == Attendee,
            Rule::Organizer => matches!(caller, OwnerOrganizer | OtherOrganizer | Admin),
            Rule::Manager => matches!(caller, OwnerOrganizer | Admin),
            Rule::Door => matches!(caller, OwnerOrganizer | DoorStaff | Admin),
            Rule::Owner => caller == OwnerOrganizer,
            Rule::Admin => caller == Admin,
            Rule::OtherCredential => false,
        }
    }
}

/// Every operation's rule, by `operationId`.
const RULES: &[(&str, Rule)] = &[
    ("health_healthz", Rule::Public),
    ("health_readyz", Rule::Public),
    ("media_get", Rule::Public),
    ("metrics_get", Rule::Public),
    ("board_page", Rule::Public),
    ("admin_emails_list", Rule::Admin),
    ("admin_emails_resend", Rule::Admin),
    ("admin_stats", Rule::Admin),
    ("admin_users_list", Rule::Admin),
    ("admin_users_update", Rule::Admin),
    ("auth_forgot_password", Rule::Public),
    ("auth_login", Rule::Public),
    ("auth_logout", Rule::SignedIn),
    ("auth_me", Rule::SignedIn),
    ("auth_refresh", Rule::OtherCredential),
    ("auth_register", Rule::Public),
    ("auth_reset_password", Rule::Public),
    ("auth_verify_email", Rule::Public),
    ("sessions_list", Rule::SignedIn),
    ("sessions_revoke", Rule::OwnSession),
    ("events_list", Rule::Public),
    ("events_create", Rule::Organizer),
    ("live_feed", Rule::Public),
    ("events_delete", Rule::Manager),
    ("events_get", Rule::Public),
    ("events_update", Rule::Manager),
    ("attendees_list", Rule::Manager),
    ("events_calendar", Rule::Public),
    ("events_cancel", Rule::Manager),
    ("events_cancellation", Rule::Manager),
    ("check_ins_door_list", Rule::Door),
    ("check_ins_list", Rule::Door),
    ("check_ins_scan", Rule::Door),
    ("check_ins_undo", Rule::Manager),
    ("check_ins_batch", Rule::Door),
    ("discounts_list", Rule::Manager),
    ("discounts_create", Rule::Manager),
    ("discounts_check", Rule::Public),
    ("discounts_update", Rule::Manager),
    ("event_images_upload", Rule::Manager),
    ("event_images_delete", Rule::Manager),
    ("live_event", Rule::Public),
    ("messages_list", Rule::Manager),
    ("messages_create", Rule::Manager),
    ("messages_get", Rule::Manager),
    ("orders_place", Rule::SignedIn),
    ("events_publish", Rule::Manager),
    ("staff_list", Rule::Manager),
    ("staff_grant", Rule::Manager),
    ("staff_revoke", Rule::Manager),
    ("events_stats", Rule::Manager),
    ("tiers_create", Rule::Manager),
    ("tiers_delete", Rule::Manager),
    ("tiers_update", Rule::Manager),
    ("ops_providers", Rule::Admin),
    ("ops_list", Rule::Admin),
    ("ops_get", Rule::Admin),
    ("ops_jobs", Rule::Admin),
    ("ops_discard", Rule::Admin),
    ("ops_retry", Rule::Admin),
    ("ops_pause", Rule::Admin),
    ("ops_resume", Rule::Admin),
    ("orders_get", Rule::Buyer),
    ("orders_cancel", Rule::Buyer),
    ("live_order", Rule::Buyer),
    ("orders_refund", Rule::BuyerOrManager),
    ("orders_refunds", Rule::BuyerOrManager),
    ("orders_resend_tickets", Rule::Buyer),
    ("tickets_of_order", Rule::Buyer),
    ("payouts_balance", Rule::Organizer),
    ("events_list_mine", Rule::Organizer),
    ("payouts_set_account", Rule::Organizer),
    ("payouts_list", Rule::Organizer),
    ("organizer_stats", Rule::Organizer),
    ("webhook_endpoints_list", Rule::Organizer),
    ("webhook_endpoints_create", Rule::Organizer),
    ("webhook_event_types", Rule::Organizer),
    ("webhook_endpoints_delete", Rule::Owner),
    ("webhook_endpoints_get", Rule::Owner),
    ("webhook_endpoints_update", Rule::Owner),
    ("webhook_deliveries_list", Rule::Owner),
    ("webhook_deliveries_redeliver", Rule::Owner),
    ("webhook_endpoints_rotate_secret", Rule::Owner),
    ("webhook_endpoints_test", Rule::Owner),
    ("banks_list", Rule::SignedIn),
    ("tickets_get", Rule::Buyer),
    ("tickets_qr", Rule::Buyer),
    ("unsubscribe", Rule::Public),
    ("orders_list_mine", Rule::SignedIn),
    ("tickets_list_mine", Rule::SignedIn),
    ("webhooks_receive", Rule::OtherCredential),
];

/// Operations that end or remove what later ones need: run last, by their
/// least privileged allowed caller only.
const ENDINGS: &[&str] = &[
    "events_cancel",
    "events_delete",
    "staff_revoke",
    "tiers_delete",
    "event_images_delete",
    "webhook_endpoints_delete",
    "sessions_revoke",
    "auth_logout",
];

/// Where an allowed caller may still meet 404: the id names nothing there
/// (a queue job made up for the probe; a ticket never checked in).
const NOTHING_THERE: &[&str] = &["ops_discard", "ops_retry", "check_ins_undo"];

/// The fixtures' ids, by the path parameter they fill (`{id}` by the
/// collection before it).
struct World {
    tokens: HashMap<Caller, String>,
    ids: HashMap<&'static str, String>,
}

impl World {
    fn path(&self, template: &str) -> String {
        let mut out = Vec::new();
        let mut previous = "";
        for segment in template.split('/') {
            let filled = match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some("id") => self.ids[previous].clone(),
                Some(name) => self.ids[name].clone(),
                None => segment.to_owned(),
            };
            previous = segment;
            out.push(filled);
        }
        out.join("/")
    }
}

async fn build_world(app: &TestApp) -> World {
    let admin = app.admin().await;
    let owner = app.organizer("owner@example.com").await;
    let other_org = app.organizer("other-org@example.com").await;
    let (attendee, _, _) = app.register("buyer@example.com", "attendee").await;
    let (other, _, _) = app.register("other@example.com", "attendee").await;
    let (staff, _, staff_id) = app.register("door@example.com", "attendee").await;
    let (_, _, spare_id) = app.register("spare@example.com", "attendee").await;

    let event = app
        .published_event(&owner, json!({"title": "Matrix", "refund_until_hours": 1}))
        .await;
    let event_id = event["id"].as_str().unwrap().to_owned();
    let tier_id = event["tiers"][0]["id"].as_str().unwrap().to_owned();
    let shop = Shop {
        organizer: owner.clone(),
        event_id: event_id.clone(),
        tier_id: tier_id.clone(),
    };
    let ok = |status: u16, body: &Value| assert!(status < 300, "{status} {body}");
    let (s, b) = app
        .post(
            &format!("/v1/events/{event_id}/staff"),
            json!({"email": "door@example.com"}),
            Some(&owner),
        )
        .await;
    ok(s, &b);
    let (s, b) = app
        .post(
            &format!("/v1/events/{event_id}/discounts"),
            json!({"code": "MATRIX", "percent_off": 10}),
            Some(&owner),
        )
        .await;
    ok(s, &b);
    let (s, image) = upload(app, &owner, &event_id, "file", PIXEL_PNG).await;
    ok(s, &image);
    let (s, message) = app
        .post(
            &format!("/v1/events/{event_id}/messages"),
            json!({"subject": "Doors", "body": "At seven."}),
            Some(&owner),
        )
        .await;
    ok(s, &message);
    let receiver = crate::routes::webhook_endpoints::Receiver::start().await;
    let (s, endpoint) = app
        .post(
            "/v1/organizer/webhook-endpoints",
            json!({"url": receiver.url, "event_types": ["order.paid"]}),
            Some(&owner),
        )
        .await;
    ok(s, &endpoint);
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    let (s, b) = app
        .post(
            &format!("/v1/organizer/webhook-endpoints/{endpoint_id}/test"),
            json!({}),
            Some(&owner),
        )
        .await;
    ok(s, &b);
    let (_, deliveries) = app
        .get(
            &format!("/v1/organizer/webhook-endpoints/{endpoint_id}/deliveries"),
            Some(&owner),
        )
        .await;

    let (order_id, checkout) = app.reserved_checkout(&attendee, &shop, "matrix").await;
    app.settle(&checkout, "pay").await;
    app.wait_order(&attendee, &order_id, "paid").await;
    // The seat moves from held to sold behind the payment: settled before
    // the tables are compared.
    let settled = format!(
        "SELECT count(*) AS n FROM tier_stock WHERE held = 0 AND sold = 1 AND tier_id = '{tier_id}'"
    );
    crate::harness::eventually(std::time::Duration::from_secs(20), || async {
        (app.scalar(&settled).await == 1)
            .then_some(())
            .ok_or("still held".to_owned())
    })
    .await;
    let (_, tickets) = app
        .get(&format!("/v1/orders/{order_id}/tickets"), Some(&attendee))
        .await;
    let ticket_id = tickets[0]["id"].as_str().unwrap().to_owned();
    let email_id = app
        .scalar_text("SELECT id::text AS t FROM email_log LIMIT 1")
        .await;
    // A second session of the attendee's, to be revoked without ending the
    // one the probes use.
    app.post(
        "/v1/auth/login",
        json!({"email": "buyer@example.com", "password": "violet-otter-43-lamp"}),
        None,
    )
    .await;
    let (_, sessions) = app.get("/v1/auth/sessions", Some(&attendee)).await;
    let spare_session = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] != true)
        .unwrap_or_else(|| panic!("{sessions}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let media_key = image["url"]
        .as_str()
        .unwrap()
        .split("/media/")
        .nth(1)
        .unwrap()
        .to_owned();

    let ids = HashMap::from([
        ("events", event_id),
        ("tier_id", tier_id),
        ("code", "MATRIX".to_owned()),
        ("image_id", image["id"].as_str().unwrap().to_owned()),
        ("mid", message["id"].as_str().unwrap().to_owned()),
        ("user_id", staff_id),
        ("ticket_id", ticket_id.clone()),
        ("orders", order_id),
        ("tickets", ticket_id),
        ("users", spare_id),
        ("emails", email_id),
        ("sessions", spare_session),
        ("webhook-endpoints", endpoint_id),
        (
            "delivery_id",
            deliveries["items"][0]["id"].as_str().unwrap().to_owned(),
        ),
        ("queue", "emails".to_owned()),
        ("jobs", "01JMATRIXNOSUCHJOB0000000".to_owned()),
        ("key", media_key),
        ("provider", "sandbox".to_owned()),
    ]);
    let tokens = HashMap::from([
        (Attendee, attendee),
        (OtherAttendee, other),
        (DoorStaff, staff),
        (OwnerOrganizer, owner),
        (OtherOrganizer, other_org),
        (Admin, admin),
    ]);
    World { tokens, ids }
}

/// The rows of the tables a refused call could write to.
async fn business_rows(app: &TestApp) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    for table in [
        "users",
        "events",
        "ticket_tiers",
        "tier_stock",
        "discount_codes",
        "event_images",
        "event_staff",
        "event_messages",
        "orders",
        "order_items",
        "tickets",
        "check_ins",
        "refunds",
        "payouts",
        "webhook_endpoints",
    ] {
        let digest = app
            .scalar_text(&format!(
                "SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') AS t FROM {table} t"
            ))
            .await;
        out.insert(table, digest);
    }
    out
}

struct Operation {
    id: String,
    method: reqwest::Method,
    path: String,
    rule: Rule,
}

async fn call(app: &TestApp, world: &World, op: &Operation, caller: Caller) -> u16 {
    let mut request = app
        .client
        .request(op.method.clone(), app.url(&world.path(&op.path)));
    if let Some(token) = world.tokens.get(&caller) {
        request = request.bearer_auth(token);
    }
    if op.method != reqwest::Method::GET && op.method != reqwest::Method::DELETE {
        request = request.json(&json!({}));
    }
    // Only the head: live streams never end.
    let response = request.send().await.expect("request");
    response.status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_lets_in_exactly_who_it_should() {
    let app = TestApp::builder()
        .full()
        .with_config(|c| c.webhooks.allow_loopback = true)
        .start()
        .await;
    let (_, doc) = app.get("/openapi.json", None).await;
    let rules: HashMap<&str, Rule> = RULES.iter().copied().collect();
    let mut operations = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, op) in methods.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap().to_owned();
            let rule = *rules
                .get(id.as_str())
                .unwrap_or_else(|| panic!("{id} ({method} {path}) has no rule in the matrix"));
            operations.push(Operation {
                id,
                method: method.to_uppercase().parse().unwrap(),
                path: path.clone(),
                rule,
            });
        }
    }
    assert_eq!(operations.len(), RULES.len(), "a rule names no operation");
    let world = build_world(&app).await;
    // Reads first, then writes; endings last.
    let rank = |op: &Operation| {
        (
            ENDINGS
                .iter()
                .position(|e| *e == op.id)
                .map_or(0, |p| p + 1),
            op.method != reqwest::Method::GET,
        )
    };
    operations.sort_by_key(rank);

    let mut wrong = Vec::new();
    let before = business_rows(&app).await;
    for op in &operations {
        for caller in CALLERS.into_iter().filter(|c| !op.rule.allows(*c)) {
            let status = call(&app, &world, op, caller).await;
            let refused = match (caller, op.rule) {
                (_, Rule::OtherCredential) => matches!(status, 400 | 401),
                (Anonymous, _) => status == 401,
                _ if op.method == reqwest::Method::GET => matches!(status, 403 | 404),
                _ => matches!(status, 400 | 403 | 404 | 415 | 422),
            };
            if !refused {
                wrong.push(format!(
                    "{caller:?} {} {} → {status}, should be refused",
                    op.method, op.path
                ));
            }
        }
    }
    let after = business_rows(&app).await;
    let written: Vec<_> = before
        .iter()
        .filter(|(table, digest)| after[*table] != **digest)
        .map(|(table, _)| *table)
        .collect();
    assert!(written.is_empty(), "refused calls wrote to {written:?}");

    for op in &operations {
        let allowed = CALLERS.into_iter().filter(|c| op.rule.allows(*c));
        let allowed: Vec<Caller> = if ENDINGS.contains(&op.id.as_str()) {
            allowed.take(1).collect()
        } else {
            allowed.collect()
        };
        for caller in allowed {
            let status = call(&app, &world, op, caller).await;
            let missing = status == 404 && NOTHING_THERE.contains(&op.id.as_str());
            if matches!(status, 401 | 403 | 404) && !missing || status >= 500 {
                wrong.push(format!(
                    "{caller:?} {} {} → {status}, should be let in",
                    op.method, op.path
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
