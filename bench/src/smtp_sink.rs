//! A real SMTP server, embedded: it speaks enough of RFC 5321 for lettre
//! (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and keeps every message (or,
//! for the email benchmark, only counts them). The test suite uses it too.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    sync::{Notify, broadcast, watch},
};

#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub raw: Vec<u8>,
    /// When its `DATA` was accepted.
    pub at: std::time::Instant,
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("parseable email")
    }

    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_owned()
    }

    pub fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    }

    pub fn html(&self) -> String {
        self.parsed()
            .body_html(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    }
}

#[derive(Clone, Default)]
pub struct SmtpSink {
    messages: Arc<Mutex<Vec<Received>>>,
    count: Arc<std::sync::atomic::AtomicUsize>,
    keep: bool,
    notify: Arc<Notify>,
    sessions: Arc<std::sync::atomic::AtomicUsize>,
    hang_up: Option<broadcast::Sender<()>>,
    /// Recipient → the reply its `RCPT TO` gets instead of `250`, and how
    /// many more times.
    refusals: Arc<Mutex<std::collections::HashMap<String, (String, u32)>>>,
    /// While `true`, a message is kept but its `DATA` is not yet answered
    /// (a server slow to confirm).
    held: Arc<watch::Sender<bool>>,
    /// While set, connections are closed as soon as they are accepted (a
    /// mail server that is down).
    closed: Arc<std::sync::atomic::AtomicBool>,
    pub port: u16,
}

impl SmtpSink {
    /// A sink that keeps every message.
    pub async fn start() -> Self {
        Self::bind(true).await
    }

    /// A sink that only counts messages (a benchmark's thousands).
    pub async fn counting() -> Self {
        Self::bind(false).await
    }

    async fn bind(keep: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let sink = SmtpSink {
            port: listener.local_addr().expect("bound").port(),
            keep,
            hang_up: Some(broadcast::channel(1).0),
            held: Arc::new(watch::channel(false).0),
            ..Default::default()
        };
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                if s.closed.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(socket);
                    continue;
                }
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = s.session(socket).await;
                });
            }
        });
        sink
    }

    async fn session(&self, socket: tokio::net::TcpStream) -> std::io::Result<()> {
        self.sessions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut hang_up = self
            .hang_up
            .as_ref()
            .map(|h| h.subscribe())
            .expect("a bound sink");
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 sink.test ESMTP\r\n").await?;
        let mut to = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            tokio::select! {
                // A hang-up asked for before the client's next command
                // arrived wins over that command.
                biased;
                _ = hang_up.recv() => return Ok(()),
                read = lines.read_line(&mut line) => if read? == 0 {
                    return Ok(());
                },
            }
            let command = line.trim_end().to_ascii_uppercase();
            let reply: &[u8] = if command.starts_with("EHLO") {
                b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
            } else if command.starts_with("HELO")
                || command.starts_with("MAIL FROM")
                || command.starts_with("NOOP")
            {
                b"250 OK\r\n"
            } else if command.starts_with("RSET") {
                to.clear();
                b"250 OK\r\n"
            } else if command.starts_with("RCPT TO") {
                let addr = line.trim_end()[8..]
                    .trim()
                    .trim_matches(['<', '>'])
                    .to_owned();
                if let Some(reply) = self.refusal(&addr) {
                    write.write_all(format!("{reply}\r\n").as_bytes()).await?;
                    continue;
                }
                to.push(addr);
                b"250 OK\r\n"
            } else if command == "DATA" {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut raw = Vec::new();
                loop {
                    let mut data_line = Vec::new();
                    if lines.read_until(b'\n', &mut data_line).await? == 0 {
                        return Ok(());
                    }
                    if data_line == b".\r\n" {
                        break;
                    }
                    // Undo dot-stuffing.
                    let data = if data_line.starts_with(b"..") {
                        &data_line[1..]
                    } else {
                        &data_line[..]
                    };
                    raw.extend_from_slice(data);
                }
                if self.keep {
                    self.messages.lock().unwrap().push(Received {
                        to: std::mem::take(&mut to),
                        raw,
                        at: std::time::Instant::now(),
                    });
                }
                to.clear();
                self.count
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.notify.notify_waiters();
                let _ = self.held.subscribe().wait_for(|held| !*held).await;
                b"250 queued\r\n"
            } else if command.starts_with("QUIT") {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                b"502 not implemented\r\n"
            };
            write.write_all(reply).await?;
        }
    }

    /// The next `times` messages to `address` are refused at `RCPT TO`
    /// with `reply` (e.g. `550 5.1.1 no such mailbox`, or a `4xx` to make
    /// the sender try again later).
    pub fn refuse(&self, address: &str, reply: &str, times: u32) {
        self.refusals
            .lock()
            .unwrap()
            .insert(address.to_ascii_lowercase(), (reply.to_owned(), times));
    }

    fn refusal(&self, address: &str) -> Option<String> {
        let mut refusals = self.refusals.lock().unwrap();
        let (reply, left) = refusals.get_mut(&address.to_ascii_lowercase())?;
        if *left == 0 {
            return None;
        }
        *left -= 1;
        Some(reply.clone())
    }

    /// While `hold` is set, messages are received but their `DATA` is
    /// answered only once it is cleared: the sender cannot yet know that
    /// the server has the message.
    pub fn hold_replies(&self, hold: bool) {
        self.held.send_replace(hold);
    }

    /// Down (`true`): open sessions are ended and new connections closed
    /// at once, until it is up again.
    pub fn set_down(&self, down: bool) {
        self.closed.store(down, std::sync::atomic::Ordering::SeqCst);
        if down {
            self.hang_up();
        }
    }

    /// SMTP sessions opened so far.
    pub fn sessions(&self) -> usize {
        self.sessions.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Closes every open session between commands, as a server does with
    /// connections idle too long.
    pub fn hang_up(&self) {
        if let Some(hang_up) = &self.hang_up {
            let _ = hang_up.send(());
        }
    }

    /// Messages received, kept or not.
    pub fn count(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn messages(&self) -> Vec<Received> {
        self.messages.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for a message to `to` matching `subject_has`.
    pub async fn wait_for(&self, to: &str, subject_has: &str, timeout: Duration) -> Received {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            if let Some(m) = self.messages().into_iter().find(|m| {
                m.to.iter().any(|t| t.eq_ignore_ascii_case(to)) && m.subject().contains(subject_has)
            }) {
                return m;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "no email to {to} with subject containing {subject_has:?} within {timeout:?}; got {:?}",
                    self.messages()
                        .iter()
                        .map(|m| (m.to.clone(), m.subject()))
                        .collect::<Vec<_>>()
                );
            }
        }
    }

    pub fn count_to(&self, to: &str) -> usize {
        self.messages()
            .iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(to)))
            .count()
    }
}
