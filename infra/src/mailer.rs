//! Composing and sending the service's emails: templates ([`Templates`], minijinja, plain text
//! and HTML) and SMTP ([`Mailer`]: lettre's async SMTP client on tokio, over pooled
//! connections with `TCP_NODELAY`; see `mailer/smtp.rs` for why).
//!
//! What an email may say is fixed here and nowhere else: a neutral sender name and subject, a
//! short warm text, the clinic's name and contact from configuration. The templates receive
//! nothing else, so no clinical detail (substance, diagnosis, level of care, group, topic,
//! attendance) and no name can reach an email: there is no variable to put it in.

use std::time::Duration;

mod smtp;

use std::sync::Arc;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;
use secrecy::ExposeSecret;

use crate::config::Config;
use smtp::{SmtpFailure, SmtpPool, SmtpTarget};

/// The sender's display name on every email: says who cares, not what for.
pub const SENDER_NAME: &str = "Care Team";

/// How long one message's SMTP exchange up to the message itself (connecting, TLS, the login,
/// `MAIL`, `RCPT`, `DATA`) may take before it counts as failed (and is retried).
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the server may take to answer a message it has whole. Longer than
/// [`SMTP_TIMEOUT`]: a server may scan a message before it answers (RFC 5321 4.5.3.2.6 asks
/// clients to wait ten minutes), and one given up on may still deliver it, so the retry would
/// be a second copy. Three minutes, inside the outbox's send deadline and lease.
pub const ACCEPTANCE_TIMEOUT: Duration = Duration::from_secs(180);

/// The emails the service sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EmailKind {
    /// To the member, when aftercare starts.
    AftercareWelcome,
    /// To the alumnus, at each due follow-up.
    FollowUpDue,
    /// To the primary counselor, when a member misses a second check-in in a row.
    OutreachNotice,
}

impl EmailKind {
    /// Every kind.
    pub const ALL: [Self; 3] = [
        Self::AftercareWelcome,
        Self::FollowUpDue,
        Self::OutreachNotice,
    ];

    /// The stored name (`outbox.kind`) and the templates' base name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AftercareWelcome => "aftercare_welcome",
            Self::FollowUpDue => "follow_up_due",
            Self::OutreachNotice => "outreach_notice",
        }
    }

    /// The neutral subject: nothing about treatment, no name.
    pub const fn subject(self) -> &'static str {
        match self {
            Self::AftercareWelcome => "A message from your care team",
            Self::FollowUpDue => "Checking in from your care team",
            Self::OutreachNotice => "A new item on your dashboard",
        }
    }

    /// Whether it goes to the member (and so needs their `email_outreach` consent).
    pub const fn to_member(self) -> bool {
        !matches!(self, Self::OutreachNotice)
    }
}

impl std::str::FromStr for EmailKind {
    type Err = ();

    fn from_str(raw: &str) -> Result<Self, ()> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == raw)
            .ok_or(())
    }
}

/// Who signs the emails: the clinic's name and how to reach it (`CLINIC_NAME`,
/// `CLINIC_CONTACT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branding {
    /// Signs every email.
    pub clinic_name: String,
    /// A phone number or link offered to members, if configured.
    pub contact: Option<String>,
}

impl Branding {
    /// From the configuration.
    pub fn from_config(config: &Config) -> Self {
        Self {
            clinic_name: config.clinic_name.clone(),
            contact: config.clinic_contact.clone(),
        }
    }
}

/// An email's subject and bodies, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// The subject line.
    pub subject: String,
    /// The text/plain part.
    pub text: String,
    /// The text/html part.
    pub html: String,
}

/// The email templates (`mailer/templates/<kind>.txt` and `.html`), compiled into the binary.
/// HTML parts are auto-escaped.
#[derive(Debug)]
pub struct Templates {
    env: minijinja::Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    /// Loads every template; a template that does not parse is a bug caught by the tests.
    pub fn new() -> Self {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in [
            (
                "aftercare_welcome.txt",
                include_str!("mailer/templates/aftercare_welcome.txt"),
            ),
            (
                "aftercare_welcome.html",
                include_str!("mailer/templates/aftercare_welcome.html"),
            ),
            (
                "follow_up_due.txt",
                include_str!("mailer/templates/follow_up_due.txt"),
            ),
            (
                "follow_up_due.html",
                include_str!("mailer/templates/follow_up_due.html"),
            ),
            (
                "outreach_notice.txt",
                include_str!("mailer/templates/outreach_notice.txt"),
            ),
            (
                "outreach_notice.html",
                include_str!("mailer/templates/outreach_notice.html"),
            ),
        ] {
            if let Err(error) = env.add_template(name, source) {
                tracing::error!(template = name, error = %error, "an email template does not parse");
            }
        }
        Self { env }
    }

    /// Renders `kind` for `branding`: the only variables are the clinic's name and contact.
    pub fn render(
        &self,
        kind: EmailKind,
        branding: &Branding,
    ) -> Result<RenderedEmail, minijinja::Error> {
        let contact = branding.contact.as_deref().unwrap_or("");
        let context = minijinja::context! {
            clinic_name => branding.clinic_name.as_str(),
            contact => contact,
            contact_is_link => contact.starts_with("https://") || contact.starts_with("http://"),
        };
        let render = |extension: &str| {
            self.env
                .get_template(&format!("{}.{extension}", kind.as_str()))
                .and_then(|template| template.render(&context))
        };
        Ok(RenderedEmail {
            subject: kind.subject().to_owned(),
            text: render("txt")?,
            html: render("html")?,
        })
    }
}

/// One email to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// The recipient's address.
    pub to: String,
    /// Which email.
    pub kind: EmailKind,
    /// The Message-ID header, `<...>` included: stable per outbox row.
    pub message_id: String,
}

/// Why an email was not sent. Carries no server text (it may quote the recipient): only
/// what a retry decision and an admin need.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The recipient is not a valid address: retrying cannot help.
    #[error("the recipient is not a valid address")]
    InvalidRecipient,
    /// The template failed to render: a bug; retrying cannot help.
    #[error("the email could not be rendered")]
    Template,
    /// The SMTP server refused or the exchange failed.
    #[error("smtp: {summary}")]
    Smtp {
        /// A 5xx answer: the server will refuse again.
        permanent: bool,
        /// The server, or the way to it, failed before this email was at stake (no connection,
        /// a refused greeting, login or sender): every email would fail the same way now.
        server: bool,
        /// The failure's category and SMTP code, e.g. `transient 451`, `connection`.
        summary: String,
    },
}

impl SendError {
    /// Whether retrying cannot succeed.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::InvalidRecipient | Self::Template => true,
            Self::Smtp { permanent, .. } => *permanent,
        }
    }

    /// Whether the failure is the server's rather than this email's (see `Smtp::server`): the
    /// worker then waits before trying any email, instead of trying each in turn.
    pub fn is_server_trouble(&self) -> bool {
        matches!(self, Self::Smtp { server: true, .. })
    }

    /// What `outbox.last_error` records: a category and an SMTP code, no personal data.
    pub fn summary(&self) -> String {
        match self {
            Self::InvalidRecipient => "invalid_recipient".to_owned(),
            Self::Template => "template".to_owned(),
            Self::Smtp { summary, .. } => summary.clone(),
        }
    }

    fn from_failure(failure: &SmtpFailure) -> Self {
        // The server's or the configuration's trouble, whatever its code: retried, and the
        // server gate paused.
        let server_trouble = |stage: &str, error: &lettre::transport::smtp::Error| Self::Smtp {
            permanent: false,
            server: true,
            summary: format!("{stage} {}", smtp_summary(error)),
        };
        match failure {
            SmtpFailure::Smtp(error) => Self::Smtp {
                permanent: error.is_permanent(),
                server: false,
                summary: smtp_summary(error),
            },
            SmtpFailure::Session(error) => server_trouble("session", error),
            SmtpFailure::Sender(error) => server_trouble("sender", error),
            SmtpFailure::Policy(error) => server_trouble("policy", error),
            SmtpFailure::RecipientPolicy(error) => Self::Smtp {
                permanent: false,
                server: false,
                summary: format!("recipient policy {}", smtp_summary(error)),
            },
            SmtpFailure::Unsupported => Self::Smtp {
                permanent: true,
                server: false,
                summary: "unsupported".to_owned(),
            },
            SmtpFailure::Connect => Self::Smtp {
                permanent: false,
                server: true,
                summary: "connection".to_owned(),
            },
            SmtpFailure::Timeout => Self::Smtp {
                permanent: false,
                server: true,
                summary: "timeout".to_owned(),
            },
            SmtpFailure::NoAnswerToMessage => Self::Smtp {
                permanent: false,
                server: true,
                summary: "no answer to the message (it may have arrived)".to_owned(),
            },
        }
    }
}

/// A lettre error as `last_error` keeps it: a category and the SMTP code, never the text.
fn smtp_summary(error: &lettre::transport::smtp::Error) -> String {
    let code = error.status().map(|c| c.to_string());
    let category = if error.is_permanent() {
        "permanent"
    } else if error.is_transient() {
        "transient"
    } else if error.is_timeout() {
        "timeout"
    } else if error.is_tls() {
        "tls"
    } else if error.is_response() {
        "response"
    } else if error.is_client() {
        "client"
    } else {
        "connection"
    };
    match code {
        Some(code) => format!("{category} {code}"),
        None => category.to_owned(),
    }
}

/// Why a [`Mailer`] could not be built (names the variable, never its value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailerError {
    /// `CLINIC_SMTP_URL` does not parse as an SMTP URL lettre understands.
    #[error("CLINIC_SMTP_URL: not a usable smtp:// or smtps:// URL")]
    SmtpUrl,
    /// `CLINIC_SMTP_URL` would send its password unencrypted over the network.
    #[error("CLINIC_SMTP_URL: {CLEARTEXT_CREDENTIALS}")]
    CleartextCredentials,
    /// `CLINIC_MAIL_FROM` is not a valid address.
    #[error("CLINIC_MAIL_FROM: not a valid address")]
    From,
}

/// What `CLINIC_SMTP_URL` must be instead, when it carries credentials without TLS.
const CLEARTEXT_CREDENTIALS: &str = "credentials only over TLS (smtps://, or smtp://...?tls=required) unless the server is on this machine";

/// The SMTP URL as the mailer will use it, refused when it does not parse or when it would
/// send its password in clear across a network (plain `smtp://`, or STARTTLS only if offered,
/// with credentials, to a host other than this machine's loopback).
fn smtp_target(smtp_url: &str) -> Result<SmtpTarget, MailerError> {
    let target = SmtpTarget::parse(smtp_url, SMTP_TIMEOUT, ACCEPTANCE_TIMEOUT)
        .ok_or(MailerError::SmtpUrl)?;
    if target.sends_password_in_clear() {
        return Err(MailerError::CleartextCredentials);
    }
    Ok(target)
}

/// What is wrong with `CLINIC_SMTP_URL`, if anything, in the configuration's words.
pub(crate) fn smtp_url_problem(smtp_url: &str) -> Option<&'static str> {
    match smtp_target(smtp_url) {
        Ok(_) => None,
        Err(MailerError::CleartextCredentials) => Some(CLEARTEXT_CREDENTIALS),
        Err(_) => Some(
            "an smtp:// or smtps:// URL (with ?tls=required or ?tls=opportunistic for STARTTLS)",
        ),
    }
}

/// Sends rendered emails over SMTP, on up to `connections` pooled connections. TLS as the URL
/// asks: `smtps://` for implicit TLS, `smtp://…?tls=required` (or `opportunistic`) for
/// STARTTLS, plain `smtp://` otherwise; credentials from the URL. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    pool: Arc<SmtpPool>,
    from: Mailbox,
    templates: std::sync::Arc<Templates>,
    branding: Branding,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds the URL's credentials: never printed.
        f.debug_struct("Mailer")
            .field("from", &self.from.email.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `smtp_url`, sending as `SENDER_NAME <from>`, keeping up to `connections`
    /// SMTP connections open between messages.
    pub fn new(
        smtp_url: &str,
        from: &str,
        branding: Branding,
        connections: u32,
    ) -> Result<Self, MailerError> {
        let target = smtp_target(smtp_url)?;
        let from = from.parse().map_err(|_| MailerError::From)?;
        Ok(Self {
            pool: Arc::new(SmtpPool::new(
                target,
                usize::try_from(connections).unwrap_or(usize::MAX),
            )),
            from: Mailbox::new(Some(SENDER_NAME.to_owned()), from),
            templates: std::sync::Arc::new(Templates::new()),
            branding,
        })
    }

    /// The configured mailer, or `None` without `CLINIC_SMTP_URL` (mail then waits in the
    /// outbox).
    pub fn from_config(config: &Config) -> Result<Option<Self>, MailerError> {
        if config.smtp_url.is_some() && config.mail_from.ends_with(".invalid") {
            // The default sender: a reserved domain no real server accepts mail from. Every
            // email would be retried, then dead-lettered, for want of CLINIC_MAIL_FROM.
            tracing::warn!(
                mail_from = %config.mail_from,
                "CLINIC_SMTP_URL is set but CLINIC_MAIL_FROM is not a deliverable sender; set it to the clinic's own address"
            );
        }
        config
            .smtp_url
            .as_ref()
            .map(|url| {
                Self::new(
                    url.expose_secret(),
                    &config.mail_from,
                    Branding::from_config(config),
                    u32::try_from(config.outbox_concurrency).unwrap_or(u32::MAX),
                )
            })
            .transpose()
    }

    /// Builds the MIME message for `email` (plain text and HTML alternatives), to its address
    /// with the domain in ASCII ([`ascii_domain`]).
    pub fn compose(&self, email: &OutgoingEmail) -> Result<Message, SendError> {
        let to: lettre::Address = ascii_domain(&email.to)
            .and_then(|to| to.parse().ok())
            .ok_or(SendError::InvalidRecipient)?;
        let rendered = self
            .templates
            .render(email.kind, &self.branding)
            .map_err(|_| SendError::Template)?;
        Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(rendered.subject)
            .message_id(Some(email.message_id.clone()))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(rendered.text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(rendered.html),
                    ),
            )
            .map_err(|_| SendError::Template)
    }

    /// Sends `email`. Returns once the server accepted it.
    pub async fn send(&self, email: &OutgoingEmail) -> Result<(), SendError> {
        let message = self.compose(email)?;
        self.send_message(message).await
    }

    /// Sends an already composed message, within [`SMTP_TIMEOUT`] up to the message and
    /// [`ACCEPTANCE_TIMEOUT`] for the server's answer to it.
    pub async fn send_message(&self, message: Message) -> Result<(), SendError> {
        self.pool
            .send(message.envelope(), &message.formatted())
            .await
            .map_err(|failure| SendError::from_failure(&failure))
    }

    /// The same mailer with other timeouts than [`SMTP_TIMEOUT`] and [`ACCEPTANCE_TIMEOUT`]
    /// (tests of slow servers use seconds), and no connection of the original's.
    #[must_use]
    pub fn with_timeouts(self, exchange: Duration, acceptance: Duration) -> Self {
        let target = self.pool.target().with_timeouts(exchange, acceptance);
        Self {
            pool: Arc::new(SmtpPool::new(target, self.pool.max_idle())),
            ..self
        }
    }
}

/// `address` with its domain in ASCII: an internationalised domain (`bücher.example`) in its
/// `xn--` form, which every relay takes, where the form as written needs SMTPUTF8, which many
/// relays lack (the email would be dead-lettered for it). The local part is left as written
/// (it has no ASCII form). `None` when the domain is no domain.
pub fn ascii_domain(address: &str) -> Option<String> {
    let (local, domain) = address.rsplit_once('@')?;
    let domain = idna::domain_to_ascii(domain).ok()?;
    (!domain.is_empty()).then(|| format!("{local}@{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn branding(contact: Option<&str>) -> Branding {
        Branding {
            clinic_name: "Harbor Outpatient".into(),
            contact: contact.map(Into::into),
        }
    }

    #[test]
    fn every_email_renders_text_and_html_with_the_clinics_name_and_contact() {
        let templates = Templates::new();
        for kind in EmailKind::ALL {
            let email = templates
                .render(kind, &branding(Some("+1 555 0100")))
                .expect("renders");
            assert_eq!(email.subject, kind.subject());
            assert!(email.text.contains("Harbor Outpatient"), "{kind:?}");
            assert!(email.html.contains("Harbor Outpatient"), "{kind:?}");
            assert!(email.html.starts_with("<!DOCTYPE html>"));
            if kind.to_member() {
                assert!(email.text.contains("+1 555 0100"), "{kind:?}");
                assert!(email.html.contains("+1 555 0100"), "{kind:?}");
            }
        }
    }

    #[test]
    fn without_a_contact_no_contact_line_is_written() {
        let email = Templates::new()
            .render(EmailKind::FollowUpDue, &branding(None))
            .expect("renders");
        assert!(!email.text.contains("reach us"));
        assert!(!email.html.contains("reach us"));
    }

    #[test]
    fn a_link_contact_is_a_link_and_html_is_escaped() {
        let templates = Templates::new();
        let email = templates
            .render(
                EmailKind::AftercareWelcome,
                &branding(Some("https://care.example/talk")),
            )
            .expect("renders");
        // minijinja escapes `/` too; browsers read the entities back in attributes.
        assert!(
            email
                .html
                .contains(r#"<a href="https:&#x2f;&#x2f;care.example&#x2f;talk">"#),
            "{}",
            email.html
        );
        let email = templates
            .render(
                EmailKind::AftercareWelcome,
                &Branding {
                    clinic_name: "A <b>&</b> B".into(),
                    contact: None,
                },
            )
            .expect("renders");
        assert!(
            email.html.contains("A &lt;b&gt;&amp;&lt;&#x2f;b&gt; B"),
            "{}",
            email.html
        );
        assert!(email.text.contains("A <b>&</b> B"));
    }

    #[test]
    fn subjects_are_neutral() {
        for kind in EmailKind::ALL {
            let subject = kind.subject().to_lowercase();
            for word in [
                "treatment",
                "recovery",
                "addiction",
                "substance",
                "rehab",
                "missed",
            ] {
                assert!(!subject.contains(word), "{kind:?}: {word}");
            }
        }
    }

    #[test]
    fn an_internationalised_domain_is_written_in_ascii() {
        assert_eq!(
            ascii_domain("ann@b\u{fc}cher.example").as_deref(),
            Some("ann@xn--bcher-kva.example")
        );
        assert_eq!(
            ascii_domain("ann@example.org").as_deref(),
            Some("ann@example.org")
        );
        for no_domain in ["ann", "ann@"] {
            assert_eq!(ascii_domain(no_domain), None, "{no_domain}");
        }
    }

    #[test]
    fn kinds_round_trip_through_their_stored_names() {
        for kind in EmailKind::ALL {
            assert_eq!(kind.as_str().parse(), Ok(kind));
        }
        assert_eq!("newsletter".parse::<EmailKind>(), Err(()));
    }

    #[tokio::test]
    async fn a_message_carries_the_rows_message_id_and_a_neutral_sender() {
        let mailer = Mailer::new(
            "smtp://127.0.0.1:2525",
            "no-reply@clinic.invalid",
            branding(None),
            1,
        )
        .expect("valid");
        let message = mailer
            .compose(&OutgoingEmail {
                to: "ann@example.org".into(),
                kind: EmailKind::AftercareWelcome,
                message_id: "<outbox-1@north.clinic.invalid>".into(),
            })
            .expect("composes");
        let raw = String::from_utf8(message.formatted()).expect("utf-8");
        assert!(
            raw.contains("Message-ID: <outbox-1@north.clinic.invalid>"),
            "{raw}"
        );
        assert!(
            raw.contains("From: \"Care Team\" <no-reply@clinic.invalid>"),
            "{raw}"
        );
        assert!(raw.contains("text/plain") && raw.contains("text/html"));
        assert_eq!(
            mailer
                .compose(&OutgoingEmail {
                    to: "not an address".into(),
                    kind: EmailKind::FollowUpDue,
                    message_id: "<x@y>".into(),
                })
                .unwrap_err(),
            SendError::InvalidRecipient
        );
    }

    #[tokio::test]
    async fn smtp_urls_choose_tls_and_bad_ones_are_refused() {
        for url in [
            "smtp://127.0.0.1:1025",
            "smtps://mail.example:465",
            "smtp://user:pass@mail.example:587?tls=required",
        ] {
            assert!(
                Mailer::new(url, "a@b.example", branding(None), 1).is_ok(),
                "{url}"
            );
        }
        assert_eq!(
            Mailer::new("not a url", "a@b.example", branding(None), 1).unwrap_err(),
            MailerError::SmtpUrl
        );
        assert_eq!(
            Mailer::new("smtp://127.0.0.1:1025", "nobody", branding(None), 1).unwrap_err(),
            MailerError::From
        );
        // A password in clear is refused across a network, allowed to this machine.
        for url in [
            "smtp://user:pass@mail.example:587",
            "smtp://user:pass@mail.example:587?tls=opportunistic",
        ] {
            assert_eq!(
                Mailer::new(url, "a@b.example", branding(None), 1).unwrap_err(),
                MailerError::CleartextCredentials,
                "{url}"
            );
        }
        for url in [
            "smtp://user:pass@127.0.0.1:1025",
            "smtp://user:pass@localhost:1025",
            "smtp://user:pass@[::1]:1025",
        ] {
            assert!(
                Mailer::new(url, "a@b.example", branding(None), 1).is_ok(),
                "{url}"
            );
        }
    }
}
