//! SMTP connections, pooled, with `TCP_NODELAY`.
//!
//! lettre's own transport writes a message's body and its final `.` in two writes without
//! `TCP_NODELAY`: Nagle's algorithm holds the `.` until the server acknowledges the body, and
//! the server delays that acknowledgement (40 ms on Linux) because it waits for the `.`. Every
//! message then costs 40 ms whatever the network: measured against aiosmtpd on one
//! connection, 21 messages/s with Nagle, 333 with `TCP_NODELAY` (same client, same server).
//! So connections are opened here, on a socket with `TCP_NODELAY`, and handed to lettre's
//! `AsyncSmtpConnection`, which speaks the protocol (EHLO, STARTTLS, AUTH, MAIL/RCPT/DATA;
//! the mail transaction's commands are issued here, to tell a refused sender apart).
//!
//! The URL decides the security, as lettre's `from_url` does: `smtp://` plain,
//! `smtp://…?tls=required` STARTTLS or fail, `smtp://…?tls=opportunistic` STARTTLS when
//! offered, `smtps://` implicit TLS (that one connects through lettre, without `TCP_NODELAY`:
//! lettre exposes no way to wrap a socket of ours in TLS before the greeting). Credentials come
//! from the URL's user and password.

use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Idle connections older than this are closed rather than reused (servers time idle clients
/// out after a few minutes).
const MAX_IDLE: Duration = Duration::from_secs(60);
/// Idle connections older than this are checked with a NOOP before reuse.
const CHECK_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    Plain,
    StartTlsRequired,
    StartTlsOpportunistic,
    Implicit,
}

/// Where and how to connect, from `CLINIC_SMTP_URL`.
#[derive(Clone)]
pub(crate) struct SmtpTarget {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    /// How long everything before the message may take: connecting, TLS, the login, and
    /// `MAIL`, `RCPT` and `DATA`.
    timeout: Duration,
    /// How long the server may take to answer the message once it has it whole.
    acceptance: Duration,
}

impl SmtpTarget {
    /// Parses an `smtp://` or `smtps://` URL; `None` when it is not one.
    pub(crate) fn parse(raw: &str, timeout: Duration, acceptance: Duration) -> Option<Self> {
        let url = url::Url::parse(raw).ok()?;
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let (security, default_port) = match (url.scheme(), tls.as_deref()) {
            ("smtps", None) => (Security::Implicit, 465),
            ("smtp", None) => (Security::Plain, 25),
            ("smtp", Some("required")) => (Security::StartTlsRequired, 587),
            ("smtp", Some("opportunistic")) => (Security::StartTlsOpportunistic, 587),
            _ => return None,
        };
        let host = url.host_str()?.trim_matches(['[', ']']).to_owned();
        let credentials = (!url.username().is_empty()).then(|| {
            let decode = |s: &str| percent_decode(s).unwrap_or_else(|| s.to_owned());
            Credentials::new(
                decode(url.username()),
                decode(url.password().unwrap_or_default()),
            )
        });
        Some(Self {
            host,
            port: url.port().unwrap_or(default_port),
            security,
            credentials,
            hello: ClientId::default(),
            timeout,
            acceptance,
        })
    }

    /// The same server with other timeouts.
    pub(crate) fn with_timeouts(&self, timeout: Duration, acceptance: Duration) -> Self {
        Self {
            timeout,
            acceptance,
            ..self.clone()
        }
    }

    /// Whether a login would cross the network unencrypted: credentials with plain SMTP (or
    /// STARTTLS only when the server offers it) to a host other than this machine.
    pub(crate) fn sends_password_in_clear(&self) -> bool {
        let unencrypted = matches!(
            self.security,
            Security::Plain | Security::StartTlsOpportunistic
        );
        let loopback = self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        self.credentials.is_some() && unencrypted && !loopback
    }

    fn tls(&self) -> Result<TlsParameters, SmtpFailure> {
        TlsParameters::new(self.host.clone()).map_err(SmtpFailure::Session)
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SmtpFailure> {
        let mut conn = if self.security == Security::Implicit {
            AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(self.timeout),
                &self.hello,
                Some(self.tls()?),
                None,
            )
            .await
            .map_err(SmtpFailure::Session)?
        } else {
            let tcp = tokio::time::timeout(
                self.timeout,
                TcpStream::connect((self.host.as_str(), self.port)),
            )
            .await
            .map_err(|_| SmtpFailure::Timeout)?
            .map_err(|_| SmtpFailure::Connect)?;
            tcp.set_nodelay(true).map_err(|_| SmtpFailure::Connect)?;
            let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                .await
                .map_err(SmtpFailure::Session)?;
            let starttls = match self.security {
                Security::StartTlsRequired => true,
                Security::StartTlsOpportunistic => conn.can_starttls(),
                Security::Plain | Security::Implicit => false,
            };
            if starttls {
                conn.starttls(self.tls()?, &self.hello)
                    .await
                    .map_err(SmtpFailure::Session)?;
            }
            conn
        };
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(SmtpFailure::Session)?;
        }
        Ok(conn)
    }
}

/// One mail transaction up to the message (MAIL, RCPT, DATA), as lettre's
/// `AsyncSmtpConnection::send` runs it, except that a refused `MAIL FROM` is told apart: the
/// sender is `CLINIC_MAIL_FROM` for every email, so its refusal (a mistyped or unverified sender,
/// an account not allowed to send as it) would refuse every email alike. It is the
/// configuration's trouble, to retry once it is fixed, not a reason to dead-letter the email.
async fn open_transaction(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    email: &[u8],
) -> Result<(), SmtpFailure> {
    let mut parameters = Vec::new();
    let non_ascii_address = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|address| !AsRef::<str>::as_ref(address).is_ascii());
    if non_ascii_address {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(SmtpFailure::Unsupported);
        }
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !email.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(SmtpFailure::Unsupported);
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    conn.command(Mail::new(envelope.from().cloned(), parameters))
        .await
        .map_err(|error| {
            // The server's answer refused the sender; a broken connection is no answer.
            if error.is_permanent() || error.is_transient() {
                SmtpFailure::Sender(error)
            } else {
                SmtpFailure::Smtp(error)
            }
        })?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), Vec::new()))
            .await
            .map_err(|error| match email_or_policy(error) {
                // A 5.7.x refusal of one recipient is as often that recipient's own policy
                // (a mailbox refusing outside senders) as ours (relay access denied): retried,
                // but no reason to hold every other email back.
                SmtpFailure::Policy(error) if !is_authentication_required(&error) => {
                    SmtpFailure::RecipientPolicy(error)
                }
                failure => failure,
            })?;
    }
    conn.command(Data).await.map_err(email_or_policy)?;
    Ok(())
}

/// A refusal after `MAIL FROM`: the email's own (an unknown mailbox, content refused), unless
/// the server refused on security or policy grounds ([`is_policy_refusal`]).
fn email_or_policy(error: lettre::transport::smtp::Error) -> SmtpFailure {
    if is_policy_refusal(&error) {
        SmtpFailure::Policy(error)
    } else {
        SmtpFailure::Smtp(error)
    }
}

/// 530: the server wants a login before it takes mail (credentials missing from the URL).
fn is_authentication_required(error: &lettre::transport::smtp::Error) -> bool {
    error.status().is_some_and(|code| code.to_string() == "530")
}

/// A permanent refusal on security or policy grounds: enhanced status 5.7.x (RFC 3463: relay
/// access denied, authentication required, sender not authorized, DMARC) or 530
/// (authentication required). Every email goes out with the same account and sender, so such a
/// refusal at one recipient or one message is almost always the configuration's, and would
/// meet every email alike.
pub(crate) fn is_policy_refusal(error: &lettre::transport::smtp::Error) -> bool {
    if !error.is_permanent() {
        return false;
    }
    if is_authentication_required(error) {
        return true;
    }
    std::error::Error::source(error).is_some_and(|text| {
        text.to_string()
            .split_whitespace()
            .next()
            .is_some_and(|first| first.starts_with("5.7."))
    })
}

fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Why a send failed, before it is reduced to a [`super::SendError`].
#[derive(Debug)]
pub(crate) enum SmtpFailure {
    /// lettre reported it while sending one email (a server answer, the protocol).
    Smtp(lettre::transport::smtp::Error),
    /// The server refused the sender (`MAIL FROM`), which is the same for every email: the
    /// configuration's or the server's trouble, like a refused login.
    Sender(lettre::transport::smtp::Error),
    /// The server refused the message on security or policy grounds, or asked for a login
    /// ([`is_policy_refusal`]): like a refused sender, the configuration's trouble.
    Policy(lettre::transport::smtp::Error),
    /// The server refused a recipient on policy grounds (5.7.x at `RCPT TO`): ours (relay access
    /// denied) or that recipient's. Worth retrying, but not the server failing.
    RecipientPolicy(lettre::transport::smtp::Error),
    /// The email needs an extension the server lacks (SMTPUTF8 for an address beyond ASCII,
    /// 8BITMIME for a body beyond ASCII): this server will never take it.
    Unsupported,
    /// lettre reported it while opening the session: the greeting, EHLO, STARTTLS or the login.
    /// Nothing about the email is at fault there (a refused login is a rotated password, a
    /// refused greeting a server in trouble), so even a 5xx answer is worth another try.
    Session(lettre::transport::smtp::Error),
    /// The TCP connection could not be made.
    Connect,
    /// The exchange before the message took too long.
    Timeout,
    /// The server had the whole message and did not answer in time: it may have taken it.
    NoAnswerToMessage,
}

/// How long closing a connection may take: once the message's outcome is settled, a server
/// slow to answer QUIT must not hold the send (and turn a sent email into a failed attempt).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How a connection is closed: politely (QUIT, after a transaction that went through) or by
/// lettre's abort (after a failure: the transaction may be half open).
#[derive(Clone, Copy)]
enum Closing {
    Quit,
    Abort,
}

/// Closes `conn` within [`CLOSE_TIMEOUT`]; past it the connection is simply dropped.
async fn close(mut conn: AsyncSmtpConnection, how: Closing) {
    let closing = async {
        match how {
            Closing::Quit => {
                let _ = conn.quit().await;
            }
            Closing::Abort => conn.abort().await,
        }
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing).await;
}

struct Idle {
    conn: AsyncSmtpConnection,
    since: Instant,
}

/// Up to `max_idle` open connections to one server, reused message after message.
pub(crate) struct SmtpPool {
    target: SmtpTarget,
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
}

impl SmtpPool {
    pub(crate) fn new(target: SmtpTarget, max_idle: usize) -> Self {
        Self {
            target,
            idle: Mutex::new(Vec::new()),
            max_idle: max_idle.max(1),
        }
    }

    pub(crate) fn target(&self) -> &SmtpTarget {
        &self.target
    }

    pub(crate) fn max_idle(&self) -> usize {
        self.max_idle
    }

    /// Sends one message on a pooled connection (a new one if none is idle). A connection that
    /// failed is closed, never reused; the caller decides whether to try the message again.
    ///
    /// The exchange up to the message has [`SmtpTarget::timeout`]; the server's answer to the
    /// message its own, longer [`SmtpTarget::acceptance`] (RFC 5321 4.5.3.2.6 asks for ten
    /// minutes): a server may scan a message before it answers, and one given up on then may
    /// well deliver it, so the retry would be a second copy.
    pub(crate) async fn send(&self, envelope: &Envelope, email: &[u8]) -> Result<(), SmtpFailure> {
        let opened = tokio::time::timeout(self.target.timeout, async {
            let mut conn = match self.checkout().await {
                Some(conn) => conn,
                None => self.target.connect().await?,
            };
            match open_transaction(&mut conn, envelope, email).await {
                Ok(()) => Ok(conn),
                Err(failure) => {
                    // A refused command leaves the transaction half open: close, as lettre does.
                    close(conn, Closing::Abort).await;
                    Err(failure)
                }
            }
        })
        .await;
        let mut conn = opened.map_err(|_| SmtpFailure::Timeout)??;
        let answered = tokio::time::timeout(self.target.acceptance, conn.message(email)).await;
        let result = match answered {
            Ok(answer) => answer.map(drop).map_err(email_or_policy),
            Err(_) => Err(SmtpFailure::NoAnswerToMessage),
        };
        match &result {
            Ok(()) if !conn.has_broken() => self.checkin(conn).await,
            // The server may still be busy with the message: nothing more is said to it (a
            // QUIT would wait for that answer too).
            Err(SmtpFailure::NoAnswerToMessage) => drop(conn),
            _ => close(conn, Closing::Abort).await,
        }
        result
    }

    async fn checkout(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let idle = self.idle.lock().await.pop()?;
            let age = idle.since.elapsed();
            let mut conn = idle.conn;
            if age > MAX_IDLE || (age > CHECK_AFTER && !conn.test_connected().await) {
                close(conn, Closing::Abort).await;
                continue;
            }
            return Some(conn);
        }
    }

    async fn checkin(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().await;
        if idle.len() < self.max_idle {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        } else {
            drop(idle);
            close(conn, Closing::Quit).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Option<(String, u16, Security, bool)> {
        SmtpTarget::parse(raw, Duration::from_secs(1), Duration::from_secs(1))
            .map(|t| (t.host, t.port, t.security, t.credentials.is_some()))
    }

    #[test]
    fn smtp_urls_choose_the_security_the_way_lettre_does() {
        assert_eq!(
            parse("smtp://127.0.0.1:1025"),
            Some(("127.0.0.1".into(), 1025, Security::Plain, false))
        );
        assert_eq!(
            parse("smtps://mail.example"),
            Some(("mail.example".into(), 465, Security::Implicit, false))
        );
        assert_eq!(
            parse("smtp://user:p%40ss@mail.example?tls=required"),
            Some(("mail.example".into(), 587, Security::StartTlsRequired, true))
        );
        assert_eq!(
            parse("smtp://mail.example:2525?tls=opportunistic"),
            Some((
                "mail.example".into(),
                2525,
                Security::StartTlsOpportunistic,
                false
            ))
        );
        assert_eq!(parse("smtp://mail.example?tls=sometimes"), None);
        assert_eq!(parse("http://mail.example"), None);
        assert_eq!(parse("not a url"), None);
        assert_eq!(percent_decode("p%40ss"), Some("p@ss".into()));
        assert_eq!(percent_decode("bad%4"), None);
    }
}
