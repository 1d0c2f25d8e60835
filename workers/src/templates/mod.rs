//! Email templates: each renders a subject, a plain-text body and an HTML body
//! from an `email_log` row's parameters.

use boxoffice_core::{Services, auth::tokens::email_token, models::EmailRow};
use serde::Deserialize;
use uuid::Uuid;

mod ics;
mod order_confirmation;
mod refund_notice;

pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachments: Vec<Attachment>,
}

/// A file sent with the email; `inline_id` makes it an inline part the HTML
/// refers to as `cid:<id>`.
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub inline_id: Option<String>,
}

#[derive(Deserialize)]
struct TokenEmail {
    token_id: Uuid,
    display_name: String,
}

/// The emails that carry a one-time token: where the link points and what
/// the message says.
struct TokenTemplate {
    path: &'static str,
    subject: &'static str,
    intro: &'static str,
    button: &'static str,
    footer: &'static str,
}

const VERIFY_EMAIL: TokenTemplate = TokenTemplate {
    path: "verify-email",
    subject: "Confirm your email address",
    intro: "Welcome to Boxoffice! Confirm your email address to finish setting up your account.",
    button: "Confirm email",
    footer: "If you did not create an account, ignore this email.",
};

const RESET_PASSWORD: TokenTemplate = TokenTemplate {
    path: "reset-password",
    subject: "Reset your password",
    intro: "Someone asked to reset the password of your Boxoffice account.",
    button: "Choose a new password",
    footer: "If it was not you, ignore this email: your password stays as it is.",
};

pub async fn render(email: &EmailRow, services: &Services) -> Result<Rendered, String> {
    let template = match email.template.as_str() {
        "verify_email" => VERIFY_EMAIL,
        "reset_password" => RESET_PASSWORD,
        "order_confirmation" => return order_confirmation::render(&email.params, services).await,
        "refund_notice" => return refund_notice::render(&email.params, services).await,
        other => return Err(format!("unknown template {other:?}")),
    };
    let p: TokenEmail = serde_json::from_value(email.params.clone()).map_err(|e| e.to_string())?;
    // The template name is the token's purpose.
    let token = email_token(services.jwt_secret(), &email.template, p.token_id);
    let link = format!(
        "{}/{}?token={token}",
        services.config.http.public_url, template.path
    );
    Ok(action_email(&template, &p.display_name, &link, &token))
}

/// One call to action, with the raw token too for clients that paste it.
fn action_email(t: &TokenTemplate, name: &str, link: &str, token: &str) -> Rendered {
    let (subject, intro, button, footer) = (t.subject, t.intro, t.button, t.footer);
    let text = format!(
        "Hi {name},\n\n{intro}\n\n{button}: {link}\n\nOr use this code: {token}\n\n{footer}\n\n— Boxoffice\n"
    );
    let (name, intro, button, link, token, footer) = (
        escape(name),
        escape(intro),
        escape(button),
        escape(link),
        escape(token),
        escape(footer),
    );
    let html = format!(
        r#"<!doctype html><html><body style="font-family:sans-serif;max-width:560px;margin:auto">
<p>Hi {name},</p><p>{intro}</p>
<p><a href="{link}" style="display:inline-block;padding:10px 18px;background:#1f6feb;color:#fff;border-radius:6px;text-decoration:none">{button}</a></p>
<p>Or use this code: <code>{token}</code></p>
<p style="color:#666">{footer}</p><p>— Boxoffice</p></body></html>"#
    );
    Rendered {
        subject: subject.to_owned(),
        text,
        html,
        attachments: Vec::new(),
    }
}

pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
