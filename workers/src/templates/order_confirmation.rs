//! "Your tickets": the order, each ticket with its QR code (inline image),
//! and an `.ics` invite for the event.

use boxoffice_core::{
    Services,
    models::{Event, Order, OrderItem, Ticket},
    money,
    prepared::Prepare,
    schema::{events, order_items, orders, ticket_tiers},
    tickets,
};
use diesel::{prelude::*, sql_types};
use diesel_async::RunQueryDsl;
use serde::Deserialize;
use uuid::Uuid;

use super::{Attachment, Rendered, escape, ics};

#[derive(Deserialize)]
struct Params {
    order_id: Uuid,
}

/// The start in the event's own time zone, by the database's tz rules.
const LOCAL_START: &str = "to_char(events.starts_at AT TIME ZONE events.timezone, 'Dy DD Mon YYYY, HH24:MI') \
     || ' (' || events.timezone || ')'";

pub async fn render(params: &serde_json::Value, services: &Services) -> Result<Rendered, String> {
    let p: Params = serde_json::from_value(params.clone()).map_err(|e| e.to_string())?;
    let mut conn = services.db.get().await.map_err(|e| e.to_string())?;
    let db = |e: diesel::result::Error| e.to_string();
    // Three queries: every email of a drop renders one of these.
    let (order, event, when): (Order, Event, String) = orders::table
        .inner_join(events::table)
        .filter(orders::id.eq(p.order_id))
        .select((
            Order::as_select(),
            Event::as_select(),
            diesel::dsl::sql::<sql_types::Text>(LOCAL_START),
        ))
        .limit(1)
        .prepared()
        .get_result(&mut conn)
        .await
        .map_err(db)?;
    let (items, tier_names): (Vec<OrderItem>, Vec<String>) = order_items::table
        .inner_join(ticket_tiers::table)
        .filter(order_items::order_id.eq(order.id))
        .order(order_items::id)
        .select((OrderItem::as_select(), ticket_tiers::name))
        .load::<(OrderItem, String)>(&mut conn)
        .await
        .map_err(db)?
        .into_iter()
        .unzip();
    let issued = Ticket::for_order(&mut conn, order.id).await.map_err(db)?;
    drop(conn);

    let tier_name = |id: Uuid| {
        items
            .iter()
            .zip(&tier_names)
            .find(|(item, _)| item.tier_id == id)
            .map(|(_, name)| name.clone())
            .unwrap_or_default()
    };
    let place = [&event.venue_name, &event.address, &event.city]
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let order_url = format!("{}/orders/{}", services.config.http.public_url, order.id);
    let mut text = format!(
        "Your order for {} is confirmed.\n\n{}\n{}\n\n",
        event.title, when, place
    );
    let mut html = format!(
        r#"<!doctype html><html><body style="font-family:sans-serif;max-width:600px;margin:auto">
<h1 style="font-size:1.3em">{}</h1><p>{}<br>{}</p><table cellpadding="4">"#,
        escape(&event.title),
        escape(&when),
        escape(&place)
    );
    for item in &items {
        let line = format!(
            "{} × {} at {}",
            item.quantity,
            tier_name(item.tier_id),
            money::format(item.unit_price_minor, &order.currency)
        );
        text.push_str(&format!("  {line}\n"));
        html.push_str(&format!("<tr><td>{}</td></tr>", escape(&line)));
    }
    if order.discount_minor > 0 {
        let line = format!(
            "Discount: −{}",
            money::format(order.discount_minor, &order.currency)
        );
        text.push_str(&format!("  {line}\n"));
        html.push_str(&format!("<tr><td>{}</td></tr>", escape(&line)));
    }
    let total = format!(
        "Total paid: {}",
        money::format(order.total_minor, &order.currency)
    );
    text.push_str(&format!("  {total}\n\nYour tickets:\n"));
    html.push_str(&format!("<tr><td><strong>{}</strong></td></tr></table><h2 style=\"font-size:1.1em\">Your tickets</h2>", escape(&total)));

    let secret = services.jwt_secret();
    let mut attachments = Vec::new();
    for (i, ticket) in issued.iter().enumerate() {
        let payload = tickets::qr_payload(secret, ticket.id, &ticket.code);
        let png = tickets::qr_png(&payload, 6)?;
        let cid = format!("ticket-{}", i + 1);
        text.push_str(&format!(
            "  #{} {} — {} — code {}\n",
            i + 1,
            tier_name(ticket.tier_id),
            ticket.attendee_name,
            ticket.code
        ));
        html.push_str(&format!(
            r#"<div style="border:1px solid #ddd;border-radius:8px;padding:12px;margin:8px 0">
<p><strong>#{} {}</strong> — {}<br><code>{}</code></p><img src="cid:{cid}" alt="QR code of ticket {}" width="220" height="220"></div>"#,
            i + 1,
            escape(&tier_name(ticket.tier_id)),
            escape(&ticket.attendee_name),
            escape(&ticket.code),
            i + 1
        ));
        attachments.push(Attachment {
            filename: format!("ticket-{}.png", i + 1),
            content_type: "image/png".into(),
            bytes: png,
            inline_id: Some(cid),
        });
    }
    text.push_str(&format!(
        "\nOrder {}: {order_url}\n\n— Boxoffice\n",
        order.id
    ));
    html.push_str(&format!(
        r#"<p>Order <a href="{}">{}</a>. Show the QR code at the door.</p><p>— Boxoffice</p></body></html>"#,
        escape(&order_url),
        order.id
    ));
    let invite = ics::render(&ics::Invite {
        uid: format!("{}-{}@boxoffice", event.id, order.id),
        title: &event.title,
        description: &format!("{} ticket(s), order {}", issued.len(), order.id),
        location: &place,
        url: &order_url,
        starts_at: event.starts_at,
        ends_at: event.ends_at,
    });
    attachments.push(Attachment {
        filename: "event.ics".into(),
        content_type: "text/calendar; charset=utf-8; method=PUBLISH".into(),
        bytes: invite.into_bytes(),
        inline_id: None,
    });
    Ok(Rendered {
        subject: format!("Your tickets for {}", event.title),
        text,
        html,
        attachments,
    })
}
