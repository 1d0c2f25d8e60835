//! Check-in at the door: door staff, scans of QR payloads and typed codes,
//! every refusal with its own code, concurrent scanners, undo, counts.

use serde_json::{Value, json};

use crate::{
    harness::{TestApp, shop::Shop},
    routes::refunds::{paid_order, paying_app, refund},
};

/// The buyer's tickets of the order, with their codes and QR payloads.
pub(crate) async fn tickets_of(app: &TestApp, buyer: &str, order_id: &str) -> Vec<Value> {
    let (status, page) = app.get("/v1/users/me/tickets?limit=100", Some(buyer)).await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["order_id"] == order_id)
        .cloned()
        .collect()
}

async fn scan(app: &TestApp, token: &str, shop: &Shop, code: &str) -> (u16, Value) {
    app.post(
        &format!("/v1/events/{}/check-ins", shop.event_id),
        json!({"code": code, "device": "gate 1"}),
        Some(token),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn door_staff_admit_a_ticket_once_and_say_why_they_refuse_one() {
    let app = paying_app().await;
    let shop = app.shop(20, 1500).await;
    let other = app.shop(20, 1500).await;
    let (buyer, order) = paid_order(&app, &shop, 3).await;
    let order_id = order["id"].as_str().unwrap();
    let tickets = tickets_of(&app, &buyer, order_id).await;
    assert_eq!(tickets.len(), 3);

    // Door staff: granted by the owner, by email; anyone else sees nothing.
    let (door, _, door_id) = app.register("door@example.com", "attendee").await;
    let (status, _) = scan(
        &app,
        &door,
        &shop,
        tickets[0]["qr_payload"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 404, "not staff yet");
    let staff_url = format!("/v1/events/{}/staff", shop.event_id);
    let (status, granted) = app
        .post(
            &staff_url,
            json!({"email": "door@example.com"}),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(status, 201, "{granted}");
    assert_eq!(granted["user_id"], door_id.as_str());
    let (status, problem) = app
        .post(
            &staff_url,
            json!({"email": "nobody@example.com"}),
            Some(&shop.organizer),
        )
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("email"))
    );
    let (status, _) = app
        .post(
            &staff_url,
            json!({"email": "door@example.com"}),
            Some(&other.organizer),
        )
        .await;
    assert_eq!(status, 404, "another organizer's event");
    let (status, _) = app
        .post(
            &staff_url,
            json!({"email": "door@example.com"}),
            Some(&door),
        )
        .await;
    assert_eq!(status, 403, "staff cannot grant");

    // A QR payload admits once; the second scan says when, by whom, where.
    let (status, admitted) = scan(
        &app,
        &door,
        &shop,
        tickets[0]["qr_payload"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{admitted}");
    assert_eq!(admitted["ticket_id"], tickets[0]["id"]);
    assert_eq!(admitted["tier_id"], shop.tier_id.as_str());
    let (status, problem) = scan(
        &app,
        &shop.organizer,
        &shop,
        tickets[0]["qr_payload"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("already_checked_in"))
    );
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("door@example.com") && detail.contains("gate 1"),
        "{detail}"
    );

    // A typed code, lower case with a dash, admits the second ticket.
    let code = tickets[1]["code"].as_str().unwrap().to_lowercase();
    let typed = format!("{}-{}", &code[..13], &code[13..]);
    let (status, admitted) = scan(&app, &door, &shop, &typed).await;
    assert_eq!(status, 201, "{admitted}");
    assert_eq!(admitted["ticket_id"], tickets[1]["id"]);

    // Refusals, each with its code, none writing anything.
    let payload = tickets[2]["qr_payload"].as_str().unwrap();
    let mut tampered = payload.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let foreign_scan = format!("/v1/events/{}/check-ins", other.event_id);
    let (status, problem) = app
        .post(
            &foreign_scan,
            json!({"code": payload}),
            Some(&other.organizer),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("ticket_other_event"))
    );
    for (code, expected) in [
        (tampered.as_str(), "ticket_signature_invalid"),
        ("hello there", "ticket_unreadable"),
        ("", "ticket_unreadable"),
        (&"0".repeat(26), "ticket_unknown"),
    ] {
        let (status, problem) = scan(&app, &door, &shop, code).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (422, Some(expected)),
            "{code:?}"
        );
    }
    let (status, problem) = app
        .post(
            &format!("/v1/events/{}/check-ins", shop.event_id),
            json!({"code": payload, "device": "x".repeat(101)}),
            Some(&door),
        )
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("device"))
    );
    assert_eq!(app.count("check_ins").await, 2);

    // Counts and the list; staff may read them.
    let list_url = format!("/v1/events/{}/check-ins?limit=1", shop.event_id);
    let (status, list) = app.get(&list_url, Some(&door)).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["tiers"][0]["tickets"], 3);
    assert_eq!(list["tiers"][0]["checked_in"], 2);
    assert_eq!(
        list["items"][0]["ticket_id"], tickets[1]["id"],
        "newest first"
    );
    let cursor = list["next_cursor"].as_str().unwrap();
    let (_, next) = app
        .get(&format!("{list_url}&cursor={cursor}"), Some(&door))
        .await;
    assert_eq!(next["items"][0]["ticket_id"], tickets[0]["id"]);
    assert!(next["next_cursor"].is_null());

    // Undo (owner only): the ticket can be scanned again.
    let undo_url = format!(
        "/v1/events/{}/check-ins/{}",
        shop.event_id,
        tickets[0]["id"].as_str().unwrap()
    );
    let (status, _) = app.delete(&undo_url, Some(&door)).await;
    assert_eq!(status, 403, "staff cannot undo");
    let (status, _) = app.delete(&undo_url, Some(&shop.organizer)).await;
    assert_eq!(status, 204);
    let (status, _) = app.delete(&undo_url, Some(&shop.organizer)).await;
    assert_eq!(status, 404, "nothing left to undo");
    let (status, _) = scan(
        &app,
        &door,
        &shop,
        tickets[0]["qr_payload"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 201, "scanned again after the undo");

    // A refunded ticket no longer admits.
    let (status, body) = refund(&app, &shop.organizer, order_id, Some("r1"), None).await;
    assert_eq!(status, 202, "{body}");
    app.wait_order(&buyer, order_id, "refunded").await;
    let (status, problem) = scan(&app, &door, &shop, payload).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("ticket_refunded"))
    );

    // Revoked staff are strangers again.
    let (status, _) = app
        .delete(&format!("{staff_url}/{door_id}"), Some(&shop.organizer))
        .await;
    assert_eq!(status, 204);
    let (status, _) = app.get(&list_url, Some(&door)).await;
    assert_eq!(status, 404);
    let (status, _) = scan(
        &app,
        &door,
        &shop,
        tickets[1]["qr_payload"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 404, "revoked staff scan nothing");

    // A scan checks the session in its own statement: signed out is 401
    // and writes nothing.
    let before = app.count("check_ins").await;
    let (status, _) = app
        .post("/v1/auth/logout", json!({}), Some(&shop.organizer))
        .await;
    assert_eq!(status, 204);
    let (status, problem) = scan(
        &app,
        &shop.organizer,
        &shop,
        tickets[2]["qr_payload"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("invalid_token"))
    );
    assert_eq!(app.count("check_ins").await, before);
}

/// Six scanners scan each of four tickets, all 24 scans at the same moment
/// (so the door's batches hold twins of several tickets, and batches in
/// flight share tickets): each ticket is admitted once, every other scan
/// is told it is already in.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_scans_of_one_ticket_admit_it_once() {
    let app = paying_app().await;
    let shop = app.shop(20, 1500).await;
    let (buyer, order) = paid_order(&app, &shop, 4).await;
    let tickets = tickets_of(&app, &buyer, order["id"].as_str().unwrap()).await;
    assert_eq!(tickets.len(), 4);
    let scans = tickets.iter().flat_map(|ticket| {
        let payload = ticket["qr_payload"].as_str().unwrap().to_owned();
        let (app, shop) = (&app, &shop);
        (0..6).map(move |_| {
            let payload = payload.clone();
            async move {
                (
                    payload.clone(),
                    scan(app, &shop.organizer, shop, &payload).await,
                )
            }
        })
    });
    let outcomes = futures::future::join_all(scans).await;
    for ticket in &tickets {
        let payload = ticket["qr_payload"].as_str().unwrap();
        let mine: Vec<_> = outcomes.iter().filter(|(p, _)| p == payload).collect();
        let admitted = mine.iter().filter(|(_, (s, _))| *s == 201).count();
        let refused = mine
            .iter()
            .filter(|(_, (s, p))| *s == 409 && p["code"] == "already_checked_in")
            .count();
        assert_eq!((admitted, refused), (1, 5), "{mine:?}");
    }
    assert_eq!(app.count("check_ins").await, 4);
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM tickets WHERE status = 'checked_in'")
            .await,
        4
    );
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A door app syncs the ticket list, scans offline, uploads: the first
/// upload of a ticket admits it at its scan time, another device's scan of
/// it is a conflict, a nonce uploaded twice is a duplicate; the next sync
/// brings only what changed.
#[tokio::test(flavor = "multi_thread")]
async fn offline_door_apps_sync_the_list_and_upload_their_scans() {
    let app = paying_app().await;
    let shop = app.shop(20, 1500).await;
    let (buyer, order) = paid_order(&app, &shop, 3).await;
    let tickets = tickets_of(&app, &buyer, order["id"].as_str().unwrap()).await;
    let list_url = format!("/v1/events/{}/check-in-list", shop.event_id);

    // Changes settle for 2 s before they are listed.
    let first = crate::harness::eventually(std::time::Duration::from_secs(10), || async {
        let (status, list) = app.get(&list_url, Some(&shop.organizer)).await;
        (status == 200 && list["items"].as_array().map(Vec::len) == Some(3))
            .then_some(list.clone())
            .ok_or(format!("{status} {list}"))
    })
    .await;
    let hashes: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code_sha256"].as_str().unwrap())
        .collect();
    for t in &tickets {
        assert!(hashes.contains(&sha256_hex(t["code"].as_str().unwrap()).as_str()));
    }
    assert!(
        first["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "valid")
    );
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();

    let scanned_at = "2026-01-01T18:00:00Z";
    let p = |i: usize| tickets[i]["qr_payload"].as_str().unwrap().to_owned();
    let upload = json!({"scans": [
        {"nonce": "a-1", "code": p(0), "scanned_at": scanned_at, "device": "phone A"},
        {"nonce": "b-1", "code": p(0), "scanned_at": "2026-01-01T18:00:05Z", "device": "phone B"},
        {"nonce": "a-2", "code": p(1), "scanned_at": scanned_at},
        {"nonce": "a-3", "code": "garbage", "scanned_at": scanned_at},
    ]});
    let batch_url = format!("/v1/events/{}/check-ins:batch", shop.event_id);
    let (status, outcomes) = app
        .post(&batch_url, upload.clone(), Some(&shop.organizer))
        .await;
    assert_eq!(status, 200, "{outcomes}");
    let got: Vec<&str> = outcomes
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        ["admitted", "conflict", "admitted", "ticket_unreadable"]
    );
    assert!(
        outcomes[1]["detail"].as_str().unwrap().contains("phone A"),
        "{outcomes}"
    );
    // The same upload again (a retry after a lost answer) changes nothing.
    let (_, again) = app.post(&batch_url, upload, Some(&shop.organizer)).await;
    let got: Vec<&str> = again
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        ["duplicate", "conflict", "duplicate", "ticket_unreadable"]
    );
    assert_eq!(app.count("check_ins").await, 2);
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*) AS n FROM check_ins WHERE created_at = '{scanned_at}'"
        ))
        .await,
        2,
        "admitted at the time they were scanned"
    );

    // The next sync lists only the two tickets let in.
    let next = crate::harness::eventually(std::time::Duration::from_secs(10), || async {
        let (_, list) = app
            .get(&format!("{list_url}?since={cursor}"), Some(&shop.organizer))
            .await;
        (list["items"].as_array().map(Vec::len) == Some(2))
            .then_some(list.clone())
            .ok_or(list.to_string())
    })
    .await;
    assert!(
        next["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "checked_in")
    );

    // Bad uploads are refused whole.
    for (body, field) in [
        (json!({"scans": []}), "scans"),
        (
            json!({"scans": [{"nonce": "", "code": p(2), "scanned_at": scanned_at}]}),
            "scans[0].nonce",
        ),
        (
            json!({"scans": [{"nonce": "f", "code": p(2), "scanned_at": "2099-01-01T00:00:00Z"}]}),
            "scans[0].scanned_at",
        ),
    ] {
        let (status, problem) = app.post(&batch_url, body, Some(&shop.organizer)).await;
        assert_eq!(
            (status, problem["errors"][0]["field"].as_str()),
            (422, Some(field))
        );
    }
    assert_eq!(app.count("check_ins").await, 2);
    let (status, _) = app
        .get(&format!("{list_url}?since=nonsense"), Some(&shop.organizer))
        .await;
    assert_eq!(status, 400);
}
