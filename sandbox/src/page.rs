//! The hosted checkout page: plain HTML, no scripts, no external assets.

use boxoffice_core::money;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:420px;margin:60px auto;padding:0 16px;color:#222}\
.card{border:1px solid #ddd;border-radius:12px;padding:24px}\
.amount{font-size:2em;font-weight:600;margin:12px 0}\
button{font-size:1em;padding:10px 18px;border-radius:8px;border:0;cursor:pointer;margin-right:8px}\
.pay{background:#1f6feb;color:#fff}.decline{background:#eee}\
.note{color:#777;font-size:.85em;margin-top:18px}";

pub fn checkout(
    id: &str,
    description: &str,
    amount_minor: i64,
    currency: &str,
    status: &str,
) -> String {
    let amount = escape(&money::format(amount_minor, currency));
    let description = escape(description);
    let id = escape(id);
    let actions = if status == "open" {
        format!(
            r#"<form method="post" action="{id}/pay" style="display:inline"><button class="pay" type="submit">Pay {amount}</button></form>
<form method="post" action="{id}/decline" style="display:inline"><button class="decline" type="submit">Decline</button></form>"#
        )
    } else {
        format!(
            "<p>This checkout is <strong>{}</strong>.</p>",
            escape(status)
        )
    };
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Sandbox checkout</title><base href="../checkout/"><style>{STYLE}</style></head>
<body><div class="card"><p>Boxoffice sandbox payments</p><h1 style="font-size:1.2em">{description}</h1>
<div class="amount">{amount}</div>{actions}
<p class="note">Test mode: no real money moves. Checkout {id}.</p></div></body></html>"#
    )
}

pub fn not_found() -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not found</title><style>{STYLE}</style></head>
<body><div class="card"><p>No such checkout.</p></div></body></html>"#
    )
}
