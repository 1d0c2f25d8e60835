//! "We refunded your payment": sent once a refund succeeds, saying why.

use boxoffice_core::{
    Services,
    models::{Event, Order, Refund},
    money,
};
use serde::Deserialize;
use uuid::Uuid;

use super::{Rendered, escape};

#[derive(Deserialize)]
struct Params {
    refund_id: Uuid,
}

fn explain(reason: &str) -> &'static str {
    match reason {
        "sold_out_after_expiry" => {
            "Your payment arrived after your reservation had expired, and the tickets were sold to someone else in the meantime."
        }
        "discount_used_up_after_expiry" => {
            "Your payment arrived after your reservation had ended, and the discount code's last use went to someone else in the meantime."
        }
        "duplicate_payment" => "This order had already been paid; the second payment is returned.",
        "amount_mismatch" => "The amount paid did not match the order.",
        _ => "The order could not be completed.",
    }
}

pub async fn render(params: &serde_json::Value, services: &Services) -> Result<Rendered, String> {
    let p: Params = serde_json::from_value(params.clone()).map_err(|e| e.to_string())?;
    let mut conn = services.db.get().await.map_err(|e| e.to_string())?;
    let db = |e: diesel::result::Error| e.to_string();
    let refund = Refund::find(&mut conn, p.refund_id).await.map_err(db)?;
    let order = Order::find(&mut conn, refund.order_id).await.map_err(db)?;
    let event = Event::find(&mut conn, order.event_id).await.map_err(db)?;
    let amount = money::format(refund.amount_minor, &refund.currency);
    let why = explain(&refund.reason);
    let text = format!(
        "We refunded {amount} for your order {} ({}).\n\n{why}\n\nIt can take a few days to show on your statement.\n\n— Boxoffice\n",
        order.id, event.title
    );
    let html = format!(
        r#"<!doctype html><html><body style="font-family:sans-serif;max-width:560px;margin:auto">
<p>We refunded <strong>{}</strong> for your order {} ({}).</p><p>{}</p>
<p style="color:#666">It can take a few days to show on your statement.</p><p>— Boxoffice</p></body></html>"#,
        escape(&amount),
        order.id,
        escape(&event.title),
        escape(why)
    );
    Ok(Rendered {
        subject: format!("Refund for {}", event.title),
        text,
        html,
        attachments: Vec::new(),
    })
}
