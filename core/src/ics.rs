//! An iCalendar (RFC 5545) invite for an event: attached to confirmations
//! and served to the web app's "add to calendar". Times are written in UTC,
//! which every calendar converts to local time.

use chrono::{DateTime, Utc};

use crate::models::Event;

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace("\r\n", "\\n")
        .replace('\n', "\\n")
}

/// Lines longer than 75 octets are folded (CRLF + space), never inside a
/// UTF-8 character.
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

pub struct Invite<'a> {
    pub uid: String,
    pub title: &'a str,
    pub description: &'a str,
    pub location: String,
    pub url: &'a str,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl<'a> Invite<'a> {
    /// The event at its place; `uid` names this copy (a calendar replaces
    /// an entry whose uid it knows).
    pub fn event(event: &'a Event, uid: String, description: &'a str, url: &'a str) -> Self {
        Invite {
            uid,
            title: &event.title,
            description,
            location: event.place(),
            url,
            starts_at: event.starts_at,
            ends_at: event.ends_at,
        }
    }
}

pub fn render(invite: &Invite<'_>) -> String {
    let lines = [
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".into(),
        "PRODID:-//Boxoffice//Tickets//EN".into(),
        "CALSCALE:GREGORIAN".into(),
        "METHOD:PUBLISH".into(),
        "BEGIN:VEVENT".into(),
        format!("UID:{}", invite.uid),
        format!("DTSTAMP:{}", stamp(Utc::now())),
        format!("DTSTART:{}", stamp(invite.starts_at)),
        format!("DTEND:{}", stamp(invite.ends_at)),
        format!("SUMMARY:{}", escape(invite.title)),
        format!("LOCATION:{}", escape(&invite.location)),
        format!("DESCRIPTION:{}", escape(invite.description)),
        format!("URL:{}", invite.url),
        "END:VEVENT".into(),
        "END:VCALENDAR".into(),
    ];
    lines.iter().map(|l| fold(l) + "\r\n").collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_folds_and_uses_crlf() {
        let start = DateTime::parse_from_rfc3339("2026-12-31T20:00:00Z")
            .unwrap()
            .to_utc();
        let ics = render(&Invite {
            uid: "e1-o1@boxoffice".into(),
            title: "Jazz; live, loud",
            description: &"x".repeat(200),
            location: "Le Caveau\nParis".into(),
            url: "https://example.com",
            starts_at: start,
            ends_at: start + chrono::Duration::hours(2),
        });
        assert!(ics.contains("SUMMARY:Jazz\\; live\\, loud\r\n"));
        assert!(ics.contains("DTSTART:20261231T200000Z\r\n"));
        assert!(ics.contains("LOCATION:Le Caveau\\nParis\r\n"));
        assert!(ics.lines().all(|l| l.trim_end_matches('\r').len() <= 75));
        assert!(ics.contains("\r\n x"), "long lines are folded");
    }
}
