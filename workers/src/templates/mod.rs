//! Email templates: minijinja, kept in one folder (`workers/templates/`) and
//! compiled into the binary. Each kind has a subject, a plain-text part and
//! an HTML part; HTML templates (`.html`) are auto-escaped, so nothing a
//! buyer, an organizer or an event title carries can inject markup.
//! Templates do no I/O: `emails` loads what each kind needs and hands it
//! here as a context.

use std::sync::LazyLock;

use minijinja::Environment;
use serde::Serialize;

pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachments: Vec<Attachment>,
    /// The one-click unsubscribe link of a marketing-class email
    /// (`List-Unsubscribe`, RFC 8058); transactional email has none.
    pub unsubscribe: Option<String>,
}

/// A file sent with the email; `inline_id` makes it an inline part the HTML
/// refers to as `cid:<id>`.
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub inline_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("no email template {0:?}")]
    Unknown(String),
    #[error("render {name}: {source}")]
    Render {
        name: String,
        #[source]
        source: minijinja::Error,
    },
}

/// What a verification or password-reset email says: one call to action,
/// with the raw token for clients that paste it.
#[derive(Debug, Serialize)]
pub struct ActionEmail {
    pub name: String,
    pub link: String,
    pub token: String,
}

/// "Your tickets": the order's lines, each ticket (its QR code is the
/// inline image `cid`), and where to see the order.
#[derive(Debug, Serialize)]
pub struct OrderConfirmation {
    pub event_title: String,
    /// The start in the event's own time zone.
    pub when: String,
    pub place: String,
    /// `2 × General at €25.00`, then a discount if any.
    pub lines: Vec<String>,
    pub total: String,
    pub tickets: Vec<TicketLine>,
    pub order_id: String,
    pub order_url: String,
}

#[derive(Debug, Serialize)]
pub struct TicketLine {
    pub number: usize,
    pub tier: String,
    pub attendee: String,
    pub code: String,
    pub cid: String,
}

/// "We refunded your payment", saying why: `kind` and `reason` are the
/// refund's; `message` the requester's note or the organizer's word on a
/// cancelled event.
#[derive(Debug, Serialize)]
pub struct RefundNotice {
    pub amount: String,
    pub order_id: String,
    pub event_title: String,
    pub kind: String,
    pub reason: String,
    pub message: Option<String>,
}

/// "Your payout was sent", with a line per event.
#[derive(Debug, Serialize)]
pub struct PayoutStatement {
    pub name: String,
    pub amount: String,
    pub destination: String,
    pub payout_id: String,
    pub lines: Vec<PayoutLineView>,
}

#[derive(Debug, Serialize)]
pub struct PayoutLineView {
    pub event: String,
    pub amount: String,
}

/// "Your webhook endpoint was disabled", to its owner.
#[derive(Debug, Serialize)]
pub struct EndpointDisabled {
    pub name: String,
    pub url: String,
    pub reason: String,
    pub endpoint_id: String,
}

/// "The event is cancelled", to the holders of a free order.
#[derive(Debug, Serialize)]
pub struct EventCancelled {
    pub event_title: String,
    pub when: String,
    pub order_id: String,
    pub message: Option<String>,
}

/// "Your event starts soon", to one ticket holder: their tickets.
#[derive(Debug, Serialize)]
pub struct EventReminder {
    pub event_title: String,
    pub when: String,
    pub place: String,
    pub tickets: Vec<TicketLine>,
    pub tickets_url: String,
}

/// "{buyer} got you tickets": a named guest's own tickets of an order.
#[derive(Debug, Serialize)]
pub struct GuestTickets {
    pub buyer: String,
    pub event_title: String,
    pub when: String,
    pub place: String,
    pub tickets: Vec<TicketLine>,
    pub tickets_url: String,
}

/// An organizer's message to a ticket holder: their subject and plain text
/// (escaped in the HTML part, paragraphs kept).
#[derive(Debug, Serialize)]
pub struct EventMessageView {
    pub event_title: String,
    pub when: String,
    pub subject: String,
    pub body: String,
    /// The body split at blank lines, for the HTML part.
    pub paragraphs: Vec<String>,
    pub tickets_url: String,
}

impl EventMessageView {
    /// Splits `body` into the HTML part's paragraphs (at blank lines).
    pub fn paragraphs(body: &str) -> Vec<String> {
        body.replace("\r\n", "\n")
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The kinds of email, each a `{kind}.subject.txt`, `{kind}.txt` and
/// `{kind}.html` in the folder.
pub const KINDS: [&str; 10] = [
    "verify_email",
    "reset_password",
    "order_confirmation",
    "refund_notice",
    "event_cancelled",
    "payout_statement",
    "event_reminder",
    "guest_tickets",
    "event_message",
    "webhook_endpoint_disabled",
];

macro_rules! folder {
    ($($name:literal),+ $(,)?) => {
        [$(($name, include_str!(concat!("../../templates/", $name)))),+]
    };
}

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    for (name, source) in folder!(
        "layout.html",
        "action.txt",
        "action.html",
        "verify_email.subject.txt",
        "verify_email.txt",
        "verify_email.html",
        "reset_password.subject.txt",
        "reset_password.txt",
        "reset_password.html",
        "order_confirmation.subject.txt",
        "order_confirmation.txt",
        "order_confirmation.html",
        "refund_notice.subject.txt",
        "refund_notice.txt",
        "refund_notice.html",
        "refund_why.txt",
        "event_cancelled.subject.txt",
        "event_cancelled.txt",
        "event_cancelled.html",
        "payout_statement.subject.txt",
        "payout_statement.txt",
        "payout_statement.html",
        "event_reminder.subject.txt",
        "event_reminder.txt",
        "event_reminder.html",
        "guest_tickets.subject.txt",
        "guest_tickets.txt",
        "guest_tickets.html",
        "event_message.subject.txt",
        "event_message.txt",
        "event_message.html",
        "webhook_endpoint_disabled.subject.txt",
        "webhook_endpoint_disabled.txt",
        "webhook_endpoint_disabled.html",
    ) {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("email template {name}: {e}"));
    }
    env
});

/// Renders the three parts of `kind` with `context`.
pub fn render<C: Serialize>(
    kind: &str,
    context: &C,
    attachments: Vec<Attachment>,
) -> Result<Rendered, TemplateError> {
    if !KINDS.contains(&kind) {
        return Err(TemplateError::Unknown(kind.to_owned()));
    }
    let part = |suffix: &str| {
        let name = format!("{kind}.{suffix}");
        TEMPLATES
            .get_template(&name)
            .and_then(|t| t.render(context))
            .map_err(|source| TemplateError::Render { name, source })
    };
    Ok(Rendered {
        subject: part("subject.txt")?.trim().to_owned(),
        text: part("txt")?,
        html: part("html")?,
        attachments,
        unsubscribe: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Subject, text and HTML of one email, for a snapshot.
    fn parts(kind: &str, context: &impl Serialize) -> String {
        let r = render(kind, context, Vec::new()).unwrap();
        format!(
            "subject: {}\n--- text\n{}--- html\n{}",
            r.subject, r.text, r.html
        )
    }

    fn action() -> ActionEmail {
        ActionEmail {
            name: "Ada <Lovelace>".into(),
            link: "https://boxoffice.example/verify-email?token=t0k&x=1".into(),
            token: "t0k".into(),
        }
    }

    #[test]
    fn verify_email() {
        insta::assert_snapshot!(parts("verify_email", &action()));
    }

    #[test]
    fn reset_password() {
        insta::assert_snapshot!(parts("reset_password", &action()));
    }

    #[test]
    fn order_confirmation() {
        let context = OrderConfirmation {
            event_title: "Rock & <Roll> Night".into(),
            when: "Sat 12 Dec 2026, 20:00 (Europe/Berlin)".into(),
            place: "Halle 1, Hauptstraße 5, Berlin".into(),
            lines: vec![
                "2 × General at €25.00".into(),
                "1 × VIP \"front\" at €80.00".into(),
                "Discount: −€13.00".into(),
            ],
            total: "Total paid: €117.00".into(),
            tickets: (1..=3)
                .map(|n| TicketLine {
                    number: n,
                    tier: if n < 3 { "General" } else { "VIP \"front\"" }.into(),
                    attendee: "Ada <Lovelace>".into(),
                    code: format!("CODE{n}"),
                    cid: format!("ticket-{n}"),
                })
                .collect(),
            order_id: "0193a5c0-0000-7000-8000-000000000001".into(),
            order_url: "https://boxoffice.example/orders/0193a5c0-0000-7000-8000-000000000001"
                .into(),
        };
        insta::assert_snapshot!(parts("order_confirmation", &context));
    }

    #[test]
    fn refund_notice_says_why() {
        for reason in [
            "sold_out_after_expiry",
            "discount_used_up_after_expiry",
            "duplicate_payment",
            "amount_mismatch",
            "order_not_payable",
        ] {
            let context = RefundNotice {
                amount: "€25.00".into(),
                order_id: "0193a5c0-0000-7000-8000-000000000001".into(),
                event_title: "Rock & <Roll> Night".into(),
                kind: "returned".into(),
                reason: reason.into(),
                message: None,
            };
            insta::assert_snapshot!(reason, parts("refund_notice", &context));
        }
        for (kind, message) in [
            ("order", Some("Can't make it <sorry>")),
            ("event_cancelled", Some("The venue flooded.")),
        ] {
            let context = RefundNotice {
                amount: "€12.50".into(),
                order_id: "0193a5c0-0000-7000-8000-000000000001".into(),
                event_title: "Rock & <Roll> Night".into(),
                kind: kind.into(),
                reason: "requested".into(),
                message: message.map(Into::into),
            };
            insta::assert_snapshot!(format!("kind_{kind}"), parts("refund_notice", &context));
        }
    }

    #[test]
    fn payout_statement() {
        let context = PayoutStatement {
            name: "Ada <Organizer>".into(),
            amount: "EUR 1,234.50".into(),
            destination: "acct_123".into(),
            payout_id: "0193a5c0-0000-7000-8000-000000000002".into(),
            lines: vec![
                PayoutLineView {
                    event: "Rock & <Roll> Night".into(),
                    amount: "EUR 1,300.00".into(),
                },
                PayoutLineView {
                    event: "Jazz Brunch".into(),
                    amount: "EUR -65.50".into(),
                },
            ],
        };
        insta::assert_snapshot!(parts("payout_statement", &context));
    }

    #[test]
    fn webhook_endpoint_disabled() {
        let context = EndpointDisabled {
            name: "Ada <Organizer>".into(),
            url: "https://hooks.example.com/boxoffice?a=1&b=2".into(),
            reason: "the endpoint answered 410 Gone".into(),
            endpoint_id: "0193a5c0-0000-7000-8000-000000000003".into(),
        };
        insta::assert_snapshot!(parts("webhook_endpoint_disabled", &context));
    }

    #[test]
    fn event_cancelled() {
        let context = EventCancelled {
            event_title: "Rock & <Roll> Night".into(),
            when: "Sat 05 Dec 2026, 20:00 (Europe/Berlin)".into(),
            order_id: "0193a5c0-0000-7000-8000-000000000001".into(),
            message: Some("The venue flooded.".into()),
        };
        insta::assert_snapshot!(parts("event_cancelled", &context));
    }

    #[test]
    fn event_reminder() {
        let context = EventReminder {
            event_title: "Rock & <Roll> Night".into(),
            when: "Sun 14 Mar 2027, 10:30 (America/New_York)".into(),
            place: "Halle 1, Hauptstraße 5, Berlin".into(),
            tickets: (1..=2)
                .map(|n| TicketLine {
                    number: n,
                    tier: "General".into(),
                    attendee: "Ada <Lovelace>".into(),
                    code: format!("CODE{n}"),
                    cid: format!("ticket-{n}"),
                })
                .collect(),
            tickets_url:
                "https://boxoffice.example/tickets?event=0193a5c0-0000-7000-8000-000000000003"
                    .into(),
        };
        insta::assert_snapshot!(parts("event_reminder", &context));
    }

    #[test]
    fn guest_tickets() {
        let context = GuestTickets {
            buyer: "Ada <Lovelace>".into(),
            event_title: "Rock & <Roll> Night".into(),
            when: "Sat 05 Dec 2026, 20:00 (Europe/Berlin)".into(),
            place: "Halle 1, Berlin".into(),
            tickets: vec![TicketLine {
                number: 1,
                tier: "General".into(),
                attendee: "Grace Hopper".into(),
                code: "CODE1".into(),
                cid: "ticket-1".into(),
            }],
            tickets_url:
                "https://boxoffice.example/tickets?event=0193a5c0-0000-7000-8000-000000000003"
                    .into(),
        };
        insta::assert_snapshot!(parts("guest_tickets", &context));
    }

    #[test]
    fn event_message() {
        let body = "Doors open at 19:00 <not 20:00>.\n\nBring <b>ID</b> & your ticket.\r\nSee you!";
        let context = EventMessageView {
            event_title: "Rock & <Roll> Night".into(),
            when: "Sat 05 Dec 2026, 20:00 (Europe/Berlin)".into(),
            subject: "Doors & <times>".into(),
            body: body.into(),
            paragraphs: EventMessageView::paragraphs(body),
            tickets_url:
                "https://boxoffice.example/tickets?event=0193a5c0-0000-7000-8000-000000000003"
                    .into(),
        };
        let r = render("event_message", &context, Vec::new()).unwrap();
        assert!(!r.html.contains("<b>ID</b>"), "{}", r.html);
        assert!(r.html.contains("&lt;b&gt;ID&lt;&#x2f;b&gt;"), "{}", r.html);
        insta::assert_snapshot!(parts("event_message", &context));
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let r = render("verify_email", &action(), Vec::new()).unwrap();
        assert!(r.html.contains("Ada &lt;Lovelace&gt;"), "{}", r.html);
        assert!(r.html.contains("token=t0k&amp;x=1"), "{}", r.html);
        assert!(r.text.contains("Hi Ada <Lovelace>,"), "{}", r.text);
    }

    #[test]
    fn an_unknown_kind_or_a_missing_field_is_an_error() {
        assert!(matches!(
            render("nope", &action(), Vec::new()),
            Err(TemplateError::Unknown(_))
        ));
        assert!(matches!(
            render("order_confirmation", &action(), Vec::new()),
            Err(TemplateError::Render { .. })
        ));
    }
}
