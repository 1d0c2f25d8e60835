//! Plain SMTP (`smtp://`, no TLS) over connections of our own: kept open,
//! reused, and with Nagle's algorithm off.
//!
//! Why: lettre writes a message and its closing `.` in two writes. On its
//! own connections Nagle is on, so the `.` waits until the server has
//! acknowledged the message, and a server waiting for that `.` sends the
//! acknowledgement only when its delayed-ACK timer fires (40 ms on Linux).
//! Every message took at least that long, so a worker's 64 email jobs
//! could not send more than ~1,300 a second however fast the machine, and
//! needed 64 open connections to get there. lettre has no setting for it,
//! but its connection type runs over a stream we open: the protocol (EHLO,
//! AUTH, the envelope, dot-stuffing, replies) stays lettre's.
//!
//! A reused connection is not probed first (lettre's pool sends a NOOP
//! before every message); one the server has closed meanwhile fails at
//! `MAIL FROM`, and the message is sent again once on a new connection (a
//! connection lost after the server took the message sends it twice, with
//! the same `Message-ID`, as a retried job would).
//! Connections idle longer than [`IDLE_MAX`] are closed instead of reused.
//! TLS (`smtps://`, `?tls=`) stays on lettre's own transport.

use std::time::Duration;

use crate::mailer::{MailError, MailSetupError};
use lettre::{
    address::Envelope,
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::AsyncSmtpConnection,
        extension::ClientId,
    },
};
use tokio::{
    net::TcpStream,
    sync::{Mutex, Semaphore},
    time::Instant,
};

/// Idle connections older than this are closed, not reused (lettre's
/// default idle timeout; servers close theirs after 5 minutes or more).
const IDLE_MAX: Duration = Duration::from_secs(60);

pub struct SmtpRelay {
    host: String,
    port: u16,
    hello: ClientId,
    credentials: Option<Credentials>,
    timeout: Duration,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    /// One per connection that may be open at once.
    slots: Semaphore,
}

impl SmtpRelay {
    /// The relay for a plain `smtp://` URL; `None` for a TLS one.
    /// Credentials, port and the EHLO name (the path) are read as lettre
    /// reads them.
    pub fn from_url(
        url: &str,
        max_connections: u32,
        timeout: Duration,
    ) -> Result<Option<Self>, MailSetupError> {
        let url = url::Url::parse(url).map_err(|_| MailSetupError::Url("not a URL"))?;
        if url.scheme() != "smtp" || url.query_pairs().any(|(k, _)| k == "tls") {
            return Ok(None);
        }
        let host = url
            .host_str()
            .ok_or(MailSetupError::Url("no host"))?
            .trim_matches(['[', ']'])
            .to_owned();
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| MailSetupError::Url("credentials are not UTF-8"))
        };
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(decode(url.username())?, decode(password)?)),
            None => None,
        };
        let name = url.path().trim_matches('/');
        Ok(Some(Self {
            host,
            port: url.port().unwrap_or(25),
            hello: if name.is_empty() {
                ClientId::default()
            } else {
                ClientId::Domain(name.to_owned())
            },
            credentials,
            timeout,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(max_connections.max(1) as usize),
        }))
    }

    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), MailError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| MailError::Unavailable("smtp: relay closed".to_owned()))?;
        if let Some(mut reused) = self.take_idle().await {
            match self.send_on(&mut reused, envelope, message).await {
                Ok(()) => {
                    self.put_back(reused).await;
                    return Ok(());
                }
                // The server refused the message: it would on a new
                // connection too.
                Err(Failure::Refused(e)) => return Err(MailError::Refused(e)),
                // Maybe a connection the server closed while it was idle.
                Err(Failure::Other(e)) => {
                    tracing::debug!(error = %e, "reused SMTP connection failed; sending on a new one");
                }
            }
        }
        let mut fresh = tokio::time::timeout(self.timeout, self.connect())
            .await
            .map_err(|_| MailError::Unavailable("smtp: connect timed out".to_owned()))??;
        match self.send_on(&mut fresh, envelope, message).await {
            Ok(()) => {
                self.put_back(fresh).await;
                Ok(())
            }
            Err(Failure::Refused(e)) => Err(MailError::Refused(e)),
            Err(Failure::Other(e)) => Err(MailError::Unavailable(e)),
        }
    }

    async fn send_on(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<(), Failure> {
        match tokio::time::timeout(self.timeout, conn.send(envelope, message)).await {
            Ok(Ok(_)) => Ok(()),
            // lettre has closed the connection on any error.
            Ok(Err(e)) if e.is_permanent() => Err(Failure::Refused(e.to_string())),
            Ok(Err(e)) => Err(Failure::Other(e.to_string())),
            Err(_) => {
                conn.abort().await;
                Err(Failure::Other("smtp: timed out".to_owned()))
            }
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, MailError> {
        let unavailable = |what: &str, e: &dyn std::fmt::Display| {
            MailError::Unavailable(format!("smtp: {what}: {e}"))
        };
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| unavailable("connect", &e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| unavailable("TCP_NODELAY", &e))?;
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
            .await
            .map_err(|e| unavailable("greeting", &e))?;
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| unavailable("auth", &e))?;
        }
        Ok(conn)
    }

    /// The most recently used idle connection, if it is young enough;
    /// those too old are closed.
    async fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let (found, stale) = {
            let mut idle = self.idle.lock().await;
            let now = Instant::now();
            // Put back in time order: the too old are a prefix.
            let young_from =
                idle.partition_point(|(_, since)| now.duration_since(*since) > IDLE_MAX);
            let stale: Vec<_> = idle.drain(..young_from).map(|(conn, _)| conn).collect();
            (idle.pop().map(|(conn, _)| conn), stale)
        };
        for mut conn in stale {
            conn.abort().await;
        }
        found
    }

    async fn put_back(&self, conn: AsyncSmtpConnection) {
        if !conn.has_broken() {
            self.idle.lock().await.push((conn, Instant::now()));
        }
    }
}

enum Failure {
    /// A permanent (5xx) reply.
    Refused(String),
    Other(String),
}
