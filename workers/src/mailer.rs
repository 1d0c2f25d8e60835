//! Outgoing email: lettre over SMTP (plain SMTP on our own connections, see
//! `smtp_relay`), or `.eml` files in an outbox folder when no `SMTP_URL` is
//! set (development).

use std::path::PathBuf;

use boxoffice_core::config::{EmailTransportConfig, SmtpConfig};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart, header},
    transport::smtp::PoolConfig,
};

use crate::{smtp_relay::SmtpRelay, templates::Rendered};

/// Why an email could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// It cannot be sent as it is (a bad recipient, a message that does not
    /// build): another attempt fails the same way.
    #[error("{0}")]
    Message(String),
    /// The server refused it with a permanent (5xx) reply.
    #[error("refused: {0}")]
    Refused(String),
    /// The server, the connection or the outbox folder failed.
    #[error("{0}")]
    Unavailable(String),
}

/// Why the mail settings cannot be used (the URL is never echoed: it may
/// hold credentials).
#[derive(Debug, thiserror::Error)]
pub enum MailSetupError {
    #[error("EMAIL_FROM: {0}")]
    From(#[from] lettre::address::AddressError),
    #[error("SMTP_URL: {0}")]
    Url(&'static str),
    #[error("SMTP_URL: {0}")]
    Transport(#[from] lettre::transport::smtp::Error),
    /// Not mail, but set up beside it: the outgoing webhooks' HTTP client.
    #[error("webhook client: {0}")]
    WebhookClient(#[from] reqwest::Error),
}

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// text + HTML alternatives; with inline images, a `related` part around
/// them; with attachments, a `mixed` part around everything.
fn body(rendered: Rendered) -> Result<MultiPart, MailError> {
    let alternative = MultiPart::alternative_plain_html(rendered.text, rendered.html);
    if rendered.attachments.is_empty() {
        return Ok(alternative);
    }
    let (inline, files): (Vec<_>, Vec<_>) = rendered
        .attachments
        .into_iter()
        .partition(|a| a.inline_id.is_some());
    let content_type = |t: &str| {
        header::ContentType::parse(t)
            .map_err(|e| MailError::Message(format!("content type {t}: {e}")))
    };
    let mut related = MultiPart::related().multipart(alternative);
    for a in inline {
        let id = a.inline_id.clone().unwrap_or_default();
        related = related.singlepart(
            lettre::message::Attachment::new_inline(id)
                .body(a.bytes, content_type(&a.content_type)?),
        );
    }
    let mut mixed = MultiPart::mixed().multipart(related);
    for a in files {
        mixed = mixed.singlepart(
            lettre::message::Attachment::new(a.filename)
                .body(a.bytes, content_type(&a.content_type)?),
        );
    }
    Ok(mixed)
}

pub enum Mailer {
    /// Plain SMTP.
    Relay {
        relay: SmtpRelay,
        from: Mailbox,
    },
    /// SMTP over TLS: lettre's transport.
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Outbox {
        dir: PathBuf,
        from: Mailbox,
    },
}

impl Mailer {
    /// `max_connections`: SMTP connections kept open at most (the emails
    /// queue's concurrency).
    pub fn from_config(config: &SmtpConfig, max_connections: u32) -> Result<Self, MailSetupError> {
        let from: Mailbox = config.from.parse()?;
        Ok(match &config.transport {
            // The URL may hold credentials: never echo it.
            EmailTransportConfig::Smtp(url) => {
                match SmtpRelay::from_url(url, max_connections, SMTP_TIMEOUT)? {
                    Some(relay) => Self::Relay { relay, from },
                    None => Self::Smtp {
                        transport: AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
                            .timeout(Some(SMTP_TIMEOUT))
                            // One connection per job in flight: lettre writes
                            // the final `.` on its own, so Nagle and delayed
                            // ACKs add ~40 ms to every message, spent waiting.
                            .pool_config(PoolConfig::new().max_size(max_connections))
                            .build(),
                        from,
                    },
                }
            }
            EmailTransportConfig::Outbox(dir) => Self::Outbox {
                dir: dir.clone(),
                from,
            },
        })
    }

    fn from(&self) -> &Mailbox {
        match self {
            Self::Relay { from, .. } | Self::Smtp { from, .. } | Self::Outbox { from, .. } => from,
        }
    }

    pub async fn send(
        &self,
        to: &str,
        message_id: &str,
        rendered: Rendered,
    ) -> Result<(), MailError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| MailError::Message(format!("bad recipient: {e}")))?;
        let mut builder = Message::builder()
            .from(self.from().clone())
            .to(to)
            .subject(rendered.subject.clone())
            .message_id(Some(message_id.to_owned()))
            .header(header::MIME_VERSION_1_0);
        if let Some(link) = &rendered.unsubscribe {
            // RFC 8058: mail apps offer "unsubscribe" and POST
            // `List-Unsubscribe=One-Click` to the link, no login needed.
            builder = builder
                .raw_header(header::HeaderValue::new(
                    header::HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{link}>"),
                ))
                .raw_header(header::HeaderValue::new(
                    header::HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        let message = builder
            .multipart(body(rendered)?)
            .map_err(|e| MailError::Message(format!("build message: {e}")))?;
        match self {
            Self::Relay { relay, .. } => relay.send(message.envelope(), &message.formatted()).await,
            Self::Smtp { transport, .. } => {
                transport.send(message).await.map(|_| ()).map_err(|e| {
                    if e.is_permanent() {
                        MailError::Refused(e.to_string())
                    } else {
                        MailError::Unavailable(e.to_string())
                    }
                })
            }
            Self::Outbox { dir, .. } => {
                tokio::fs::create_dir_all(dir).await.map_err(|e| {
                    MailError::Unavailable(format!("outbox {}: {e}", dir.display()))
                })?;
                let file = dir.join(format!("{}.eml", message_id.trim_matches(['<', '>'])));
                tokio::fs::write(&file, message.formatted())
                    .await
                    .map_err(|e| MailError::Unavailable(format!("outbox: {e}")))?;
                tracing::info!(path = %file.display(), "email written to the outbox (no SMTP_URL set)");
                Ok(())
            }
        }
    }
}
