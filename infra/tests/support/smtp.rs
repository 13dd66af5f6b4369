//! A real SMTP server for tests and benchmarks: Python's aiosmtpd (`python3 -m aiosmtpd`, 1.4.6,
//! installed by `.ci/test-deps`) on a port of its own, storing what it receives in a Maildir of its
//! own, one file per message under `new/`. Killed and its Maildir removed on drop.
//!
//! Two handlers: aiosmtpd's stock `aiosmtpd.handlers.Mailbox` ([`Handler::Mailbox`]), and
//! `clinic_smtp_sink.RawMaildir` beside this file ([`Handler::Sink`], the default), which
//! stores the bytes as received without parsing them (the stock handler's parsing caps the
//! server near 95 messages/s on the CI machine).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which aiosmtpd handler stores the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// `aiosmtpd.handlers.Mailbox`: parses each message, writes a Maildir.
    Mailbox,
    /// `clinic_smtp_sink.RawMaildir`: writes each message as received.
    Sink,
}

/// A running aiosmtpd.
pub struct SmtpServer {
    child: Option<Child>,
    port: u16,
    maildir: PathBuf,
    handler: Handler,
}

/// A port nothing listens on (for a moment).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl SmtpServer {
    /// A server on a free port (the sink handler).
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// A server on a free port with aiosmtpd's stock Mailbox handler.
    pub fn start_mailbox() -> Self {
        Self::start_with(free_port(), Handler::Mailbox)
    }

    /// A server on `port` (the sink handler).
    pub fn start_on(port: u16) -> Self {
        Self::start_with(port, Handler::Sink)
    }

    /// A server on `port`, with a fresh Maildir; returns once it accepts connections.
    pub fn start_with(port: u16, handler: Handler) -> Self {
        let maildir = std::env::temp_dir().join(format!("clinic-smtp-{}", uuid::Uuid::new_v4()));
        let mut server = Self {
            child: None,
            port,
            maildir,
            handler,
        };
        server.restart();
        server
    }

    /// Starts (again) on the same port and Maildir.
    pub fn restart(&mut self) {
        self.stop();
        let handler = match self.handler {
            Handler::Mailbox => "aiosmtpd.handlers.Mailbox",
            Handler::Sink => "clinic_smtp_sink.RawMaildir",
        };
        let support = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support");
        let child = Command::new("python3")
            .env("PYTHONPATH", support)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", handler])
            .arg(&self.maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 -m aiosmtpd starts (pip install aiosmtpd==1.4.6)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let mut stderr = String::new();
                use std::io::Read;
                let _ = self
                    .child
                    .take()
                    .unwrap()
                    .stderr
                    .unwrap()
                    .read_to_string(&mut stderr);
                panic!("aiosmtpd exited ({status}): {stderr}");
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {} within 20 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops the server (the Maildir stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, parsed.
    pub fn messages(&self) -> Vec<ReceivedEmail> {
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                files.extend(entries.filter_map(Result::ok).map(|e| e.path()));
            }
        }
        files.sort();
        files.iter().map(|path| ReceivedEmail::read(path)).collect()
    }

    /// How many messages were received so far (without parsing them).
    pub fn count(&self) -> usize {
        std::fs::read_dir(self.maildir.join("new")).map_or(0, |entries| entries.count())
    }

    /// Waits (at most `timeout`) until at least `n` messages arrived; returns how many did.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let count = self.count();
            if count >= n || Instant::now() >= deadline {
                return count;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

/// A received message: headers and decoded parts.
#[derive(Debug, Clone)]
pub struct ReceivedEmail {
    /// `To`.
    pub to: String,
    /// `From`.
    pub from: String,
    /// `Subject`.
    pub subject: String,
    /// `Message-ID`.
    pub message_id: String,
    /// The decoded text/plain part.
    pub text: String,
    /// The decoded text/html part.
    pub html: String,
    /// The message as received.
    pub raw: String,
}

impl ReceivedEmail {
    fn read(path: &Path) -> Self {
        let bytes = std::fs::read(path).expect("a received message");
        let mail = mailparse::parse_mail(&bytes).expect("a parsable message");
        let header = |name: &str| {
            mail.headers
                .iter()
                .find(|h| h.get_key_ref().eq_ignore_ascii_case(name))
                .map(|h| h.get_value())
                .unwrap_or_default()
        };
        let mut parts: BTreeMap<String, String> = BTreeMap::new();
        collect_parts(&mail, &mut parts);
        Self {
            to: header("To"),
            from: header("From"),
            subject: header("Subject"),
            message_id: header("Message-ID"),
            text: parts.get("text/plain").cloned().unwrap_or_default(),
            html: parts.get("text/html").cloned().unwrap_or_default(),
            raw: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Everything a reader could see: headers, both parts, the raw message.
    pub fn everything(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.to, self.from, self.subject, self.text, self.html, self.raw
        )
    }
}

fn collect_parts(mail: &mailparse::ParsedMail<'_>, parts: &mut BTreeMap<String, String>) {
    if mail.subparts.is_empty() {
        parts.insert(
            mail.ctype.mimetype.to_lowercase(),
            mail.get_body().unwrap_or_default(),
        );
    }
    for part in &mail.subparts {
        collect_parts(part, parts);
    }
}

/// Message-IDs seen more than once, with their counts.
pub fn duplicates(messages: &[ReceivedEmail]) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for m in messages {
        *counts.entry(m.message_id.clone()).or_default() += 1;
    }
    counts.retain(|_, n| *n > 1);
    counts
}
