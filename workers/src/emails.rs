//! What each kind of email needs, loaded from the database for one
//! `email_log` row, with its attachments (inline QR codes, an `.ics`), then
//! rendered by the templates (which do no I/O).

use boxoffice_core::{
    Services,
    auth::tokens::{UNSUBSCRIBE_TTL_DAYS, email_token, unsubscribe_token},
    ics,
    models::{
        EmailRow, Event, EventMessage, EventStatus, Order, OrderItem, Payout, Refund, RefundKind,
        Suppression, Ticket, TicketStatus, User,
    },
    money,
    prepared::Prepare,
    schema::{
        events, order_items, orders, payout_lines, refunds, ticket_tiers, tickets as tickets_table,
    },
    tickets,
};
use diesel::{prelude::*, sql_types};
use diesel_async::RunQueryDsl;
use serde::Deserialize;
use uuid::Uuid;

use crate::templates::{
    self, ActionEmail, Attachment, EndpointDisabled, EventCancelled, EventMessageView,
    EventReminder, GuestTickets, OrderConfirmation, PayoutLineView, PayoutStatement, RefundNotice,
    Rendered, TemplateError, TicketLine,
};

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("parameters of {kind}: {source}")]
    Params {
        kind: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
    #[error("QR code: {0}")]
    Qr(#[from] boxoffice_core::tickets::QrPngError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The email no longer has a reason to go (a reminder for an event
    /// since cancelled, started or moved, for tickets since refunded, or to
    /// an address that unsubscribed): skipped, not sent.
    #[error("no longer to send: {0}")]
    Obsolete(&'static str),
}

/// Loads what `email` needs and renders it.
pub async fn render(email: &EmailRow, services: &Services) -> Result<Rendered, EmailError> {
    let params = |source| EmailError::Params {
        kind: email.template.clone(),
        source,
    };
    match email.template.as_str() {
        "verify_email" | "reset_password" => {
            let p: TokenParams = serde_json::from_value(email.params.clone()).map_err(params)?;
            Ok(action(email, services, p)?)
        }
        "order_confirmation" => {
            let p: OrderParams = serde_json::from_value(email.params.clone()).map_err(params)?;
            order_confirmation(services, p.order_id).await
        }
        "refund_notice" => {
            let p: RefundParams = serde_json::from_value(email.params.clone()).map_err(params)?;
            refund_notice(services, p.refund_id).await
        }
        "payout_statement" => {
            let p: PayoutParams = serde_json::from_value(email.params.clone()).map_err(params)?;
            payout_statement(services, p.payout_id).await
        }
        "webhook_endpoint_disabled" => {
            let p: EndpointParams = serde_json::from_value(email.params.clone()).map_err(params)?;
            endpoint_disabled(services, p.endpoint_id).await
        }
        "event_cancelled" => {
            let p: OrderParams = serde_json::from_value(email.params.clone()).map_err(params)?;
            event_cancelled(services, p.order_id).await
        }
        "guest_tickets" => {
            let p: GuestParams = serde_json::from_value(email.params.clone()).map_err(params)?;
            guest_tickets(services, p).await
        }
        "event_message" => {
            let p: MessageParams = serde_json::from_value(email.params.clone()).map_err(params)?;
            event_message(services, p).await
        }
        "event_reminder" => {
            let p: ReminderParams = serde_json::from_value(email.params.clone()).map_err(params)?;
            event_reminder(services, p).await
        }
        other => Err(TemplateError::Unknown(other.to_owned()).into()),
    }
}

#[derive(Deserialize)]
struct TokenParams {
    token_id: Uuid,
    display_name: String,
}

#[derive(Deserialize)]
struct OrderParams {
    order_id: Uuid,
}

#[derive(Deserialize)]
struct RefundParams {
    refund_id: Uuid,
}

#[derive(Deserialize)]
struct ReminderParams {
    event_id: Uuid,
    /// The start it reminds of: a moved event's old reminders are skipped.
    starts_at: chrono::DateTime<chrono::Utc>,
    /// The ticket holder's address (lower case), as on their tickets.
    address: String,
}

#[derive(Deserialize)]
struct GuestParams {
    order_id: Uuid,
    /// The guest's address (lower case), as on their tickets.
    address: String,
}

#[derive(Deserialize)]
struct MessageParams {
    message_id: Uuid,
    address: String,
}

#[derive(Deserialize)]
struct PayoutParams {
    payout_id: Uuid,
}

#[derive(Deserialize)]
struct EndpointParams {
    endpoint_id: Uuid,
}

/// A one-time token's email: the template's name is the token's purpose and
/// the path of its page.
fn action(
    email: &EmailRow,
    services: &Services,
    p: TokenParams,
) -> Result<Rendered, TemplateError> {
    let token = email_token(services.jwt_secret(), &email.template, p.token_id);
    let path = email.template.replace('_', "-");
    let link = format!("{}/{path}?token={token}", services.config.http.public_url);
    let context = ActionEmail {
        name: p.display_name,
        link,
        token,
    };
    templates::render(&email.template, &context, Vec::new())
}

/// The start in the event's own time zone, by the database's tz rules.
const LOCAL_START: &str = "to_char(events.starts_at AT TIME ZONE events.timezone, 'Dy DD Mon YYYY, HH24:MI') \
     || ' (' || events.timezone || ')'";

/// An order with its event and the event's local start, in one query.
async fn order_with_event(
    conn: &mut diesel_async::AsyncPgConnection,
    order_id: Uuid,
) -> Result<(Order, Event, String), EmailError> {
    Ok(orders::table
        .inner_join(events::table)
        .filter(orders::id.eq(order_id))
        .select((
            Order::as_select(),
            Event::as_select(),
            diesel::dsl::sql::<sql_types::Text>(LOCAL_START),
        ))
        .limit(1)
        .prepared()
        .get_result(conn)
        .await?)
}

/// An event with its local start.
async fn event_with_start(
    conn: &mut diesel_async::AsyncPgConnection,
    event_id: Uuid,
) -> Result<(Event, String), EmailError> {
    Ok(events::table
        .filter(events::id.eq(event_id))
        .select((
            Event::as_select(),
            diesel::dsl::sql::<sql_types::Text>(LOCAL_START),
        ))
        .limit(1)
        .prepared()
        .get_result(conn)
        .await?)
}

/// Tickets as lines of the email, each with its QR code as an inline image.
fn ticket_parts(
    services: &Services,
    issued: &[Ticket],
    tier_name: impl Fn(Uuid) -> String,
) -> Result<(Vec<TicketLine>, Vec<Attachment>), EmailError> {
    let secret = services.jwt_secret();
    let mut attachments = Vec::with_capacity(issued.len() + 1);
    let mut lines = Vec::with_capacity(issued.len());
    for (i, ticket) in issued.iter().enumerate() {
        let payload = tickets::qr_payload(secret, ticket.id, &ticket.code);
        let png = tickets::qr_png(&payload, 6)?;
        let cid = format!("ticket-{}", i + 1);
        lines.push(TicketLine {
            number: i + 1,
            tier: tier_name(ticket.tier_id),
            attendee: ticket.attendee_name.clone(),
            code: ticket.code.clone(),
            cid: cid.clone(),
        });
        attachments.push(Attachment {
            filename: format!("ticket-{}.png", i + 1),
            content_type: "image/png".into(),
            bytes: png,
            inline_id: Some(cid),
        });
    }
    Ok((lines, attachments))
}

/// The event as a calendar file.
fn invite(event: &Event, uid: String, description: &str, url: &str) -> Attachment {
    let invite = ics::render(&ics::Invite::event(event, uid, description, url));
    Attachment {
        filename: "event.ics".into(),
        content_type: "text/calendar; charset=utf-8; method=PUBLISH".into(),
        bytes: invite.into_bytes(),
        inline_id: None,
    }
}

async fn order_confirmation(services: &Services, order_id: Uuid) -> Result<Rendered, EmailError> {
    let mut conn = services.db.get().await?;
    // Three queries: every email of a drop renders one of these.
    let (order, event, when) = order_with_event(&mut conn, order_id).await?;
    let (items, tier_names): (Vec<OrderItem>, Vec<String>) = order_items::table
        .inner_join(ticket_tiers::table)
        .filter(order_items::order_id.eq(order.id))
        .order(order_items::id)
        .select((OrderItem::as_select(), ticket_tiers::name))
        .load::<(OrderItem, String)>(&mut conn)
        .await?
        .into_iter()
        .unzip();
    let issued = Ticket::for_order(&mut conn, order.id).await?;
    drop(conn);

    let tier_name = |id: Uuid| -> String {
        items
            .iter()
            .zip(&tier_names)
            .find(|(item, _)| item.tier_id == id)
            .map(|(_, name)| name.clone())
            .unwrap_or_default()
    };
    let place = event.place();
    let order_url = format!("{}/orders/{}", services.config.http.public_url, order.id);
    let mut lines: Vec<String> = items
        .iter()
        .map(|item| {
            format!(
                "{} × {} at {}",
                item.quantity,
                tier_name(item.tier_id),
                money::format(item.unit_price_minor, &order.currency)
            )
        })
        .collect();
    if order.discount_minor > 0 {
        lines.push(format!(
            "Discount: −{}",
            money::format(order.discount_minor, &order.currency)
        ));
    }
    let (ticket_lines, mut attachments) = ticket_parts(services, &issued, tier_name)?;
    attachments.push(invite(
        &event,
        format!("{}-{}@boxoffice", event.id, order.id),
        &format!("{} ticket(s), order {}", issued.len(), order.id),
        &order_url,
    ));
    let context = OrderConfirmation {
        event_title: event.title,
        when,
        place,
        lines,
        total: format!(
            "Total paid: {}",
            money::format(order.total_minor, &order.currency)
        ),
        tickets: ticket_lines,
        order_id: order.id.to_string(),
        order_url,
    };
    Ok(templates::render(
        "order_confirmation",
        &context,
        attachments,
    )?)
}

async fn refund_notice(services: &Services, refund_id: Uuid) -> Result<Rendered, EmailError> {
    let mut conn = services.db.get().await?;
    // One statement: a cancellation sends thousands of these.
    let (refund, order, event): (Refund, Order, Event) = refunds::table
        .inner_join(orders::table.inner_join(events::table))
        .filter(refunds::id.eq(refund_id))
        .select((Refund::as_select(), Order::as_select(), Event::as_select()))
        .first(&mut conn)
        .await?;
    drop(conn);
    let kind = refund.kind();
    let message = match kind {
        RefundKind::EventCancelled => event.cancel_message.filter(|m| !m.is_empty()),
        RefundKind::Order => Some(refund.reason.clone()).filter(|r| !r.is_empty()),
        RefundKind::Returned => None,
    };
    let context = RefundNotice {
        amount: money::format(refund.amount_minor, &refund.currency),
        order_id: order.id.to_string(),
        event_title: event.title,
        kind: kind.as_str().into(),
        reason: refund.reason,
        message,
    };
    Ok(templates::render("refund_notice", &context, Vec::new())?)
}

async fn payout_statement(services: &Services, payout_id: Uuid) -> Result<Rendered, EmailError> {
    let mut conn = services.db.get().await?;
    let payout = Payout::find(&mut conn, payout_id).await?;
    let organizer = User::find(&mut conn, payout.organizer_id).await?;
    let lines: Vec<(String, i64)> = payout_lines::table
        .inner_join(events::table)
        .filter(payout_lines::payout_id.eq(payout.id))
        .order(events::starts_at)
        .select((events::title, payout_lines::amount_minor))
        .load(&mut conn)
        .await?;
    drop(conn);
    let context = PayoutStatement {
        name: organizer.display_name,
        amount: money::format(payout.amount_minor, &payout.currency),
        destination: payout.destination,
        payout_id: payout.id.to_string(),
        lines: lines
            .into_iter()
            .map(|(event, amount)| PayoutLineView {
                event,
                amount: money::format(amount, &payout.currency),
            })
            .collect(),
    };
    Ok(templates::render("payout_statement", &context, Vec::new())?)
}

async fn endpoint_disabled(services: &Services, endpoint_id: Uuid) -> Result<Rendered, EmailError> {
    use boxoffice_core::schema::webhook_endpoints as endpoints;
    let mut conn = services.db.get().await?;
    let (organizer_id, url, reason): (Uuid, String, Option<String>) = endpoints::table
        .find(endpoint_id)
        .select((
            endpoints::organizer_id,
            endpoints::url,
            endpoints::disabled_reason,
        ))
        .first(&mut conn)
        .await?;
    let organizer = User::find(&mut conn, organizer_id).await?;
    drop(conn);
    let context = EndpointDisabled {
        name: organizer.display_name,
        url,
        reason: reason.unwrap_or_else(|| "it was disabled".to_owned()),
        endpoint_id: endpoint_id.to_string(),
    };
    Ok(templates::render(
        "webhook_endpoint_disabled",
        &context,
        Vec::new(),
    )?)
}

async fn event_cancelled(services: &Services, order_id: Uuid) -> Result<Rendered, EmailError> {
    let mut conn = services.db.get().await?;
    let (order, event, when) = order_with_event(&mut conn, order_id).await?;
    drop(conn);
    let context = EventCancelled {
        event_title: event.title,
        when,
        order_id: order.id.to_string(),
        message: event.cancel_message.filter(|m| !m.is_empty()),
    };
    Ok(templates::render("event_cancelled", &context, Vec::new())?)
}

/// The tickets of `event_id` held by `address` (valid or checked in), with
/// their tiers' names; `order_id` narrows them to one order.
async fn held_tickets(
    conn: &mut diesel_async::AsyncPgConnection,
    event_id: Uuid,
    order_id: Option<Uuid>,
    address: &str,
) -> Result<(Vec<Ticket>, Vec<String>), EmailError> {
    let mut query = tickets_table::table
        .inner_join(ticket_tiers::table)
        .filter(tickets_table::event_id.eq(event_id))
        .filter(
            diesel::dsl::sql::<sql_types::Bool>("lower(tickets.attendee_email) = ")
                .bind::<sql_types::Text, _>(address),
        )
        .filter(tickets_table::status.ne(TicketStatus::Void.as_str()))
        .into_boxed();
    if let Some(order_id) = order_id {
        query = query.filter(tickets_table::order_id.eq(order_id));
    }
    Ok(query
        .order((
            tickets_table::order_id,
            tickets_table::seat_index,
            tickets_table::id,
        ))
        .select((Ticket::as_select(), ticket_tiers::name))
        .load::<(Ticket, String)>(conn)
        .await?
        .into_iter()
        .unzip())
}

/// A tier's name among tickets loaded with theirs.
fn tier_names<'a>(held: &'a [Ticket], names: &'a [String]) -> impl Fn(Uuid) -> String + 'a {
    move |id| {
        held.iter()
            .zip(names)
            .find(|(t, _)| t.tier_id == id)
            .map(|(_, name)| name.clone())
            .unwrap_or_default()
    }
}

/// Where a holder sees their tickets of an event.
fn tickets_url(services: &Services, event_id: Uuid) -> String {
    format!(
        "{}/tickets?event={event_id}",
        services.config.http.public_url
    )
}

/// A holder's tickets as an email shows them: where to see them, the
/// place, a line and an inline QR code each, and the event as a calendar
/// file (`uid`, `description`).
struct HolderTickets {
    tickets_url: String,
    place: String,
    lines: Vec<TicketLine>,
    attachments: Vec<Attachment>,
}

fn holder_tickets(
    services: &Services,
    event: &Event,
    held: &[Ticket],
    names: &[String],
    uid: String,
    description: &str,
) -> Result<HolderTickets, EmailError> {
    let tickets_url = tickets_url(services, event.id);
    let place = event.place();
    let (lines, mut attachments) = ticket_parts(services, held, tier_names(held, names))?;
    attachments.push(invite(event, uid, description, &tickets_url));
    Ok(HolderTickets {
        tickets_url,
        place,
        lines,
        attachments,
    })
}

/// A named guest's own tickets of an order, from the buyer.
async fn guest_tickets(services: &Services, p: GuestParams) -> Result<Rendered, EmailError> {
    let mut conn = services.db.get().await?;
    let (order, event, when) = order_with_event(&mut conn, p.order_id).await?;
    if !event.guest_emails {
        return Err(EmailError::Obsolete(
            "the organizer turned guest emails off",
        ));
    }
    let buyer = User::find(&mut conn, order.buyer_id).await?;
    let (held, names) = held_tickets(&mut conn, event.id, Some(order.id), &p.address).await?;
    drop(conn);
    if held.is_empty() {
        return Err(EmailError::Obsolete("no valid tickets left"));
    }
    let parts = holder_tickets(
        services,
        &event,
        &held,
        &names,
        format!("{}-{}-{}@boxoffice", event.id, order.id, p.address),
        &format!("{} ticket(s) from {}", held.len(), buyer.display_name),
    )?;
    let context = GuestTickets {
        buyer: buyer.display_name,
        event_title: event.title,
        when,
        place: parts.place,
        tickets: parts.lines,
        tickets_url: parts.tickets_url,
    };
    Ok(templates::render(
        "guest_tickets",
        &context,
        parts.attachments,
    )?)
}

/// An organizer's message to one ticket holder, unless the address
/// unsubscribed or its tickets are no longer valid.
async fn event_message(services: &Services, p: MessageParams) -> Result<Rendered, EmailError> {
    let mut conn = services.db.get().await?;
    let message = EventMessage::find(&mut conn, p.message_id).await?;
    let (event, when) = event_with_start(&mut conn, message.event_id).await?;
    if Suppression::contains(&mut conn, &p.address).await? {
        return Err(EmailError::Obsolete("the address unsubscribed"));
    }
    let (held, _) = held_tickets(&mut conn, event.id, None, &p.address).await?;
    drop(conn);
    if held.is_empty() {
        return Err(EmailError::Obsolete("no valid tickets left"));
    }
    let context = EventMessageView {
        event_title: event.title,
        when,
        subject: message.subject,
        paragraphs: EventMessageView::paragraphs(&message.body),
        body: message.body,
        tickets_url: tickets_url(services, event.id),
    };
    let mut rendered = templates::render("event_message", &context, Vec::new())?;
    rendered.unsubscribe = Some(unsubscribe_url(services, &p.address));
    Ok(rendered)
}

/// "Your event starts soon": the holder's own tickets with their QR codes
/// and the event as a calendar file, unless it no longer has a reason to go.
async fn event_reminder(services: &Services, p: ReminderParams) -> Result<Rendered, EmailError> {
    let mut conn = services.db.get().await?;
    let (event, when) = event_with_start(&mut conn, p.event_id).await?;
    if event.status() != EventStatus::Published {
        return Err(EmailError::Obsolete("the event is no longer published"));
    }
    if event.starts_at != p.starts_at {
        return Err(EmailError::Obsolete("the event's start has moved"));
    }
    if event.starts_at <= chrono::Utc::now() {
        return Err(EmailError::Obsolete("the event has started"));
    }
    if !event.reminders {
        return Err(EmailError::Obsolete("the organizer turned reminders off"));
    }
    if Suppression::contains(&mut conn, &p.address).await? {
        return Err(EmailError::Obsolete("the address unsubscribed"));
    }
    let (held, names) = held_tickets(&mut conn, event.id, None, &p.address).await?;
    drop(conn);
    if held.is_empty() {
        return Err(EmailError::Obsolete("no valid tickets left"));
    }
    let parts = holder_tickets(
        services,
        &event,
        &held,
        &names,
        format!("{}-{}@boxoffice", event.id, p.address),
        &format!("{} ticket(s)", held.len()),
    )?;
    let context = EventReminder {
        event_title: event.title,
        when,
        place: parts.place,
        tickets: parts.lines,
        tickets_url: parts.tickets_url,
    };
    let mut rendered = templates::render("event_reminder", &context, parts.attachments)?;
    rendered.unsubscribe = Some(unsubscribe_url(services, &p.address));
    Ok(rendered)
}

/// The one-click unsubscribe link for `address` (RFC 8058).
fn unsubscribe_url(services: &Services, address: &str) -> String {
    let expires = chrono::Utc::now().timestamp() + UNSUBSCRIBE_TTL_DAYS * 86_400;
    let token = unsubscribe_token(services.jwt_secret(), address, expires);
    format!(
        "{}/v1/unsubscribe?token={token}",
        services.config.http.public_url
    )
}
