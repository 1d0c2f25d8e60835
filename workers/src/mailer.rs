//! Outgoing email: lettre over SMTP, or `.eml` files in an outbox folder when
//! no `SMTP_URL` is set (development).

use std::path::PathBuf;

use boxoffice_core::config::{EmailTransportConfig, SmtpConfig};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart, header},
};

use crate::templates::Rendered;

pub enum Mailer {
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
    pub fn from_config(config: &SmtpConfig) -> Result<Self, String> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| format!("EMAIL_FROM: {e}"))?;
        Ok(match &config.transport {
            EmailTransportConfig::Smtp(url) => Self::Smtp {
                // The URL may hold credentials: never echo it.
                transport: AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| format!("SMTP_URL: {e}"))?
                    .timeout(Some(std::time::Duration::from_secs(20)))
                    .build(),
                from,
            },
            EmailTransportConfig::Outbox(dir) => Self::Outbox {
                dir: dir.clone(),
                from,
            },
        })
    }

    fn from(&self) -> &Mailbox {
        match self {
            Self::Smtp { from, .. } | Self::Outbox { from, .. } => from,
        }
    }

    pub async fn send(&self, to: &str, message_id: &str, rendered: Rendered) -> Result<(), String> {
        let to: Mailbox = to.parse().map_err(|e| format!("bad recipient: {e}"))?;
        let message = Message::builder()
            .from(self.from().clone())
            .to(to)
            .subject(rendered.subject)
            .message_id(Some(message_id.to_owned()))
            .header(header::MIME_VERSION_1_0)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(|e| format!("build message: {e}"))?;
        match self {
            Self::Smtp { transport, .. } => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Self::Outbox { dir, .. } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| format!("outbox {}: {e}", dir.display()))?;
                let file = dir.join(format!("{}.eml", message_id.trim_matches(['<', '>'])));
                tokio::fs::write(&file, message.formatted())
                    .await
                    .map_err(|e| format!("outbox: {e}"))?;
                tracing::info!(path = %file.display(), "email written to the outbox (no SMTP_URL set)");
                Ok(())
            }
        }
    }
}
