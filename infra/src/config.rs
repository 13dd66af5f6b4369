//! The service's one typed configuration, read once at start from the environment.
//!
//! Names and defaults are those of `api/service.md` (README "Configuration"). A bad value is a
//! start-up error that names the variable; secrets are [`SecretString`]s and never printed.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;

use crate::keyring::MasterKey;
use crate::outbox::StaffDirectory;

/// Everything the service reads from its environment, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: the event store and read models (may carry a password).
    pub database_url: SecretString,
    /// `CLINIC_HTTP_ADDR`: where HTTP listens.
    pub http_addr: SocketAddr,
    /// `CLINIC_JWT_SECRET`: the HS256 secret of staff tokens; `serve` refuses to start without
    /// it unless `--dev` is given.
    pub jwt_secret: Option<SecretString>,
    /// `CLINIC_SMTP_URL`: where mail goes; without it mail waits in the outbox.
    pub smtp_url: Option<SecretString>,
    /// `CLINIC_MAIL_FROM`: the sender address of every email.
    pub mail_from: String,
    /// `CLINIC_SCHEDULER_TICK_MS`: how often due check-ins and follow-ups are examined.
    pub scheduler_tick: Duration,
    /// `CLINIC_RETENTION_DAYS`: how long treatment records are kept before erasure is allowed.
    pub retention_days: u32,
    /// `CLINIC_MASTER_KEY`: wraps every member's data key; `serve` refuses to start without it
    /// unless `--dev` is given. Kept out of the database on purpose.
    pub master_key: Option<MasterKey>,
    /// `CLINIC_STAFF_EMAILS`: staff `sub` to email address (`dr-lee=lee@clinic.example,...`,
    /// or `clinic/sub=address` for one clinic); outreach notices are emailed only to staff
    /// listed here. Empty by default: outreach stays a dashboard item.
    pub staff_emails: StaffDirectory,
    /// `CLINIC_NAME`: the name that signs emails (default `Your care team`).
    pub clinic_name: String,
    /// `CLINIC_CONTACT`: a phone number or link emails offer (none by default).
    pub clinic_contact: Option<String>,
    /// `CLINIC_OUTBOX_MAX_ATTEMPTS`: delivery attempts before an email is dead-lettered
    /// (default [`crate::outbox::worker::DEFAULT_MAX_ATTEMPTS`]).
    pub outbox_max_attempts: u32,
    /// `CLINIC_OUTBOX_MAX_BACKOFF_MS`: the cap of the retry delay (default
    /// [`crate::outbox::worker::DEFAULT_MAX_BACKOFF`], at most a day).
    pub outbox_max_backoff: Duration,
    /// `CLINIC_OUTBOX_CONCURRENCY`: emails one process sends at once (default 4).
    pub outbox_concurrency: usize,
    /// `CLINIC_DB_POOL_SIZE`: connections `serve` keeps to PostgreSQL (default
    /// [`DEFAULT_DB_POOL_SIZE`]). Size it to the database server's cores, not to the load.
    pub db_pool_size: u32,
    /// `CLINIC_AT_RISK_THRESHOLD`, `CLINIC_AT_RISK_THRESHOLDS`, `CLINIC_FOLLOW_UP_DAYS`,
    /// `CLINIC_CHECK_IN_GRACE_MINUTES`: the clinical rules a clinic sets for itself.
    pub rules: ClinicRules,
}

/// The clinical rules DOMAIN.md leaves to each clinic: the at-risk threshold ("configurable per
/// clinic": sessions a week below which a member in treatment is at risk) and the alumni
/// follow-up schedule (days after a completed discharge); and how long after its due time a
/// check-in is marked missed (none by default, as DOMAIN.md says: "by its due time"). Set by
/// the operator, for every clinic at once or (the threshold) clinic by clinic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClinicRules {
    at_risk_threshold: u32,
    at_risk_thresholds: std::collections::HashMap<String, u32>,
    follow_up_days: Vec<u16>,
    check_in_grace: Duration,
}

impl Default for ClinicRules {
    /// 3 sessions a week (DOMAIN.md: 3 to 4 is the dose), follow-ups at 7, 30, 90, 180 and 365
    /// days.
    fn default() -> Self {
        Self {
            at_risk_threshold: clinic_domain::engagement::DEFAULT_AT_RISK_THRESHOLD,
            at_risk_thresholds: std::collections::HashMap::new(),
            follow_up_days: clinic_domain::aftercare::DEFAULT_FOLLOW_UP_OFFSETS_DAYS.to_vec(),
            check_in_grace: Duration::ZERO,
        }
    }
}

impl ClinicRules {
    /// The most sessions a week a threshold may ask for (two a day).
    pub const MAX_AT_RISK_THRESHOLD: u32 = 14;

    /// `clinic`'s at-risk threshold: its own if set, else every clinic's.
    pub fn at_risk_threshold(&self, clinic: &crate::clinic::ClinicId) -> u32 {
        self.at_risk_thresholds
            .get(clinic.as_str())
            .copied()
            .unwrap_or(self.at_risk_threshold)
    }

    /// Days after a completed discharge when alumni follow-ups fall due, ascending.
    pub fn follow_up_days(&self) -> &[u16] {
        &self.follow_up_days
    }

    /// How long after its due time a check-in not completed is marked missed.
    pub fn check_in_grace(&self) -> Duration {
        self.check_in_grace
    }

    /// Reads the three variables through `get` (unset: the defaults).
    fn parse(get: &impl Fn(&'static str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let threshold_range = 1..=Self::MAX_AT_RISK_THRESHOLD;
        let at_risk_threshold =
            parse_number(get, "CLINIC_AT_RISK_THRESHOLD", defaults.at_risk_threshold)?;
        if !threshold_range.contains(&at_risk_threshold) {
            return Err(ConfigError {
                variable: "CLINIC_AT_RISK_THRESHOLD",
                expected: "sessions a week, a whole number from 1 to 14",
            });
        }
        let mut at_risk_thresholds = std::collections::HashMap::new();
        for entry in get("CLINIC_AT_RISK_THRESHOLDS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let parsed = entry.split_once('=').and_then(|(clinic, threshold)| {
                let clinic = crate::clinic::ClinicId::parse(clinic.trim()).ok()?;
                let threshold: u32 = threshold.trim().parse().ok()?;
                threshold_range
                    .contains(&threshold)
                    .then_some((clinic, threshold))
            });
            let invalid = ConfigError {
                variable: "CLINIC_AT_RISK_THRESHOLDS",
                expected: "comma-separated clinic=sessions entries, each clinic once, sessions \
                           from 1 to 14",
            };
            let Some((clinic, threshold)) = parsed else {
                return Err(invalid);
            };
            if at_risk_thresholds
                .insert(clinic.as_str().to_owned(), threshold)
                .is_some()
            {
                return Err(invalid);
            }
        }
        let follow_up_days = match get("CLINIC_FOLLOW_UP_DAYS") {
            None => defaults.follow_up_days,
            Some(raw) => {
                let days: Option<Vec<u16>> = raw
                    .split(',')
                    .map(|d| d.trim().parse().ok().filter(|d| (1..=3650).contains(d)))
                    .collect();
                match days {
                    Some(days)
                        if !days.is_empty()
                            && days.len() <= 20
                            && days.windows(2).all(|w| w[0] < w[1]) =>
                    {
                        days
                    }
                    _ => {
                        return Err(ConfigError {
                            variable: "CLINIC_FOLLOW_UP_DAYS",
                            expected: "comma-separated days after discharge, ascending, each \
                                       from 1 to 3650 (at most 20)",
                        })
                    }
                }
            }
        };
        let grace_minutes: u64 = parse_number(get, "CLINIC_CHECK_IN_GRACE_MINUTES", 0)?;
        if grace_minutes > 1440 {
            return Err(ConfigError {
                variable: "CLINIC_CHECK_IN_GRACE_MINUTES",
                expected: "minutes, a whole number from 0 to 1440",
            });
        }
        Ok(Self {
            at_risk_threshold,
            at_risk_thresholds,
            follow_up_days,
            check_in_grace: Duration::from_secs(grace_minutes * 60),
        })
    }
}

/// A variable that is set but unusable. The message names it and says what is expected, never
/// the value (it may be a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {expected}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What a valid value looks like.
    pub expected: &'static str,
}

/// The default `CLINIC_NAME`: neutral, like everything an email shows.
pub const DEFAULT_CLINIC_NAME: &str = "Your care team";

/// The default `CLINIC_DB_POOL_SIZE`. More connections than a database server has cores for
/// only make queries wait on each other inside it: on two cores, 16 connections served the
/// member page 20% less often than 8, with a p99 half as long again
/// (`docs/benchmark-history.md`, "A smaller connection pool").
pub const DEFAULT_DB_POOL_SIZE: u32 = 8;

/// The default `DATABASE_URL`: the local PostgreSQL with trust auth.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/clinic";

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A value that is not UTF-8 is a mistake to name, not an unset variable (which would
        // quietly mean the default: another database, another retention).
        let not_unicode = std::cell::Cell::new(None);
        let config = Self::from_lookup(|name| match std::env::var(name) {
            Ok(value) => Some(value),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                not_unicode.set(not_unicode.get().or(Some(name)));
                None
            }
        });
        match not_unicode.get() {
            Some(variable) => Err(ConfigError {
                variable,
                expected: "UTF-8 text",
            }),
            None => config,
        }
    }

    /// Reads variables through `lookup`, so tests build a `Config` without touching the
    /// process environment. Empty values count as unset.
    pub fn from_lookup(
        lookup: impl Fn(&'static str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |name: &'static str| lookup(name).filter(|value| !value.trim().is_empty());
        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            return Err(ConfigError {
                variable: "DATABASE_URL",
                expected: "a postgres:// or postgresql:// URL",
            });
        }
        let http_addr = get("CLINIC_HTTP_ADDR")
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned())
            .parse()
            .map_err(|_| ConfigError {
                variable: "CLINIC_HTTP_ADDR",
                expected: "a socket address such as 127.0.0.1:8080",
            })?;
        let jwt_secret = get("CLINIC_JWT_SECRET");
        if jwt_secret.as_ref().is_some_and(|s| s.len() < 16) {
            return Err(ConfigError {
                variable: "CLINIC_JWT_SECRET",
                expected: "at least 16 characters",
            });
        }
        let smtp_url = get("CLINIC_SMTP_URL");
        if let Some(expected) = smtp_url
            .as_deref()
            .and_then(crate::mailer::smtp_url_problem)
        {
            return Err(ConfigError {
                variable: "CLINIC_SMTP_URL",
                expected,
            });
        }
        let mail_from = get("CLINIC_MAIL_FROM").unwrap_or_else(|| "no-reply@clinic.invalid".into());
        if !looks_like_address(&mail_from) {
            return Err(ConfigError {
                variable: "CLINIC_MAIL_FROM",
                expected: "an email address such as no-reply@clinic.example",
            });
        }
        // An address outside ASCII needs SMTPUTF8, which many relays lack: the mailer would
        // then fail every email before sending it, each dead-lettered at once as if the member's
        // address were at fault. Refused here, where the fix is one variable.
        if !mail_from.is_ascii() {
            return Err(ConfigError {
                variable: "CLINIC_MAIL_FROM",
                expected: "an ASCII email address (an internationalised domain in its xn-- \
                           form, as `idn` or the registrar gives it)",
            });
        }
        let tick_ms: u64 = parse_number(&get, "CLINIC_SCHEDULER_TICK_MS", 1000)?;
        // Below 10 ms the scheduler's queries run back to back; above an hour a missed check-in
        // waits that long to be noticed.
        if !(10..=3_600_000).contains(&tick_ms) {
            return Err(ConfigError {
                variable: "CLINIC_SCHEDULER_TICK_MS",
                expected: "a whole number of milliseconds from 10 to 3600000 (an hour)",
            });
        }
        let retention_days = parse_number(&get, "CLINIC_RETENTION_DAYS", MIN_RETENTION_DAYS)?;
        // Erasure ends the accounting of disclosures with the records, and a member may ask for
        // the disclosures of the last six years: records are kept at least that long.
        if retention_days < MIN_RETENTION_DAYS {
            return Err(ConfigError {
                variable: "CLINIC_RETENTION_DAYS",
                expected: "a whole number of days, at least 2190 (six years: the accounting of \
                           disclosures, 45 CFR 164.528, must stay available that long)",
            });
        }
        let master_key = get("CLINIC_MASTER_KEY")
            .map(|text| MasterKey::from_base64(&text))
            .transpose()
            .map_err(|_| ConfigError {
                variable: "CLINIC_MASTER_KEY",
                expected: "base64 of 32 random bytes (e.g. `openssl rand -base64 32`)",
            })?;
        let staff_emails = StaffDirectory::parse(&get("CLINIC_STAFF_EMAILS").unwrap_or_default())
            .map_err(|_| ConfigError {
            variable: "CLINIC_STAFF_EMAILS",
            expected: "comma-separated sub=address (or clinic/sub=address) entries",
        })?;
        let clinic_name = get("CLINIC_NAME").map_or_else(
            || DEFAULT_CLINIC_NAME.to_owned(),
            |name| name.trim().to_owned(),
        );
        if clinic_name.chars().count() > 100 || clinic_name.contains(['\r', '\n']) {
            return Err(ConfigError {
                variable: "CLINIC_NAME",
                expected: "one line of at most 100 characters",
            });
        }
        let clinic_contact = get("CLINIC_CONTACT").map(|contact| contact.trim().to_owned());
        if clinic_contact
            .as_ref()
            .is_some_and(|c| c.chars().count() > 200 || c.contains(['\r', '\n']))
        {
            return Err(ConfigError {
                variable: "CLINIC_CONTACT",
                expected: "one line of at most 200 characters (a phone number or a link)",
            });
        }
        let outbox_max_attempts: u32 = parse_number(
            &get,
            "CLINIC_OUTBOX_MAX_ATTEMPTS",
            crate::outbox::worker::DEFAULT_MAX_ATTEMPTS,
        )?;
        if outbox_max_attempts == 0 {
            return Err(ConfigError {
                variable: "CLINIC_OUTBOX_MAX_ATTEMPTS",
                expected: "a whole number above 0",
            });
        }
        let max_backoff_ms: u64 = parse_number(
            &get,
            "CLINIC_OUTBOX_MAX_BACKOFF_MS",
            crate::outbox::worker::DEFAULT_MAX_BACKOFF.as_millis() as u64,
        )?;
        // A day at most: an email is sent within 14 days of falling due or not at all, and
        // longer pauses would spend that window waiting rather than trying.
        if !(1..=86_400_000).contains(&max_backoff_ms) {
            return Err(ConfigError {
                variable: "CLINIC_OUTBOX_MAX_BACKOFF_MS",
                expected: "a whole number of milliseconds from 1 to 86400000 (a day)",
            });
        }
        let outbox_concurrency: usize = parse_number(&get, "CLINIC_OUTBOX_CONCURRENCY", 4)?;
        if !(1..=64).contains(&outbox_concurrency) {
            return Err(ConfigError {
                variable: "CLINIC_OUTBOX_CONCURRENCY",
                expected: "a whole number from 1 to 64",
            });
        }
        let db_pool_size: u32 = parse_number(&get, "CLINIC_DB_POOL_SIZE", DEFAULT_DB_POOL_SIZE)?;
        if !(2..=500).contains(&db_pool_size) {
            return Err(ConfigError {
                variable: "CLINIC_DB_POOL_SIZE",
                expected: "a whole number from 2 to 500",
            });
        }
        let rules = ClinicRules::parse(&get)?;
        Ok(Self {
            database_url: database_url.into(),
            http_addr,
            jwt_secret: jwt_secret.map(Into::into),
            smtp_url: smtp_url.map(Into::into),
            mail_from,
            scheduler_tick: Duration::from_millis(tick_ms),
            retention_days,
            master_key,
            staff_emails,
            clinic_name,
            clinic_contact,
            outbox_max_attempts,
            outbox_max_backoff: Duration::from_millis(max_backoff_ms),
            outbox_concurrency,
            db_pool_size,
            rules,
        })
    }
}

/// The shortest retention: six years, the period of the accounting of disclosures (45 CFR
/// 164.528) that erasure would otherwise cut short. Also the default.
pub const MIN_RETENTION_DAYS: u32 = 2190;

fn parse_number<T: std::str::FromStr>(
    get: &impl Fn(&'static str) -> Option<String>,
    variable: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|_| ConfigError {
            variable,
            expected: "a whole number",
        }),
    }
}

fn looks_like_address(raw: &str) -> bool {
    match raw.split_once('@') {
        Some((local, domain)) => !local.is_empty() && domain.contains('.') && !raw.contains(' '),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn an_empty_environment_gives_the_documented_defaults() {
        let config = config(&[]).expect("defaults are valid");
        assert_eq!(config.database_url.expose_secret(), DEFAULT_DATABASE_URL);
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:8080");
        assert!(config.jwt_secret.is_none());
        assert!(config.smtp_url.is_none());
        assert_eq!(config.mail_from, "no-reply@clinic.invalid");
        assert_eq!(config.scheduler_tick, Duration::from_millis(1000));
        assert_eq!(config.retention_days, 2190);
        assert!(config.staff_emails.is_empty());
        assert_eq!(config.clinic_name, "Your care team");
        assert!(config.clinic_contact.is_none());
        assert_eq!(config.outbox_max_attempts, 60);
        assert_eq!(config.outbox_max_backoff, Duration::from_secs(3600));
        assert_eq!(config.outbox_concurrency, 4);
    }

    #[test]
    fn the_clinical_rules_are_set_for_every_clinic_or_clinic_by_clinic() {
        let north = crate::clinic::ClinicId::parse("north").unwrap();
        let south = crate::clinic::ClinicId::parse("south").unwrap();
        let defaults = config(&[]).expect("valid").rules;
        assert_eq!(defaults.at_risk_threshold(&north), 3);
        assert_eq!(defaults.follow_up_days(), [7, 30, 90, 180, 365]);
        assert_eq!(defaults.check_in_grace(), Duration::ZERO);
        let set = config(&[
            ("CLINIC_AT_RISK_THRESHOLD", "4"),
            ("CLINIC_AT_RISK_THRESHOLDS", "south=2, east = 5"),
            ("CLINIC_FOLLOW_UP_DAYS", "14, 60,365"),
            ("CLINIC_CHECK_IN_GRACE_MINUTES", "30"),
        ])
        .expect("valid")
        .rules;
        assert_eq!(set.at_risk_threshold(&north), 4, "every clinic's");
        assert_eq!(set.at_risk_threshold(&south), 2, "its own");
        assert_eq!(set.follow_up_days(), [14, 60, 365]);
        assert_eq!(set.check_in_grace(), Duration::from_secs(1800));
        for (variable, value) in [
            ("CLINIC_AT_RISK_THRESHOLD", "0"),
            ("CLINIC_AT_RISK_THRESHOLD", "15"),
            ("CLINIC_AT_RISK_THRESHOLDS", "south"),
            ("CLINIC_AT_RISK_THRESHOLDS", "south=0"),
            ("CLINIC_AT_RISK_THRESHOLDS", "=3"),
            ("CLINIC_AT_RISK_THRESHOLDS", "north=2,north=4"),
            ("CLINIC_FOLLOW_UP_DAYS", "30,7"),
            ("CLINIC_FOLLOW_UP_DAYS", "7,7"),
            ("CLINIC_FOLLOW_UP_DAYS", "0,7"),
            ("CLINIC_FOLLOW_UP_DAYS", "7,soon"),
            ("CLINIC_CHECK_IN_GRACE_MINUTES", "1441"),
            ("CLINIC_CHECK_IN_GRACE_MINUTES", "-5"),
        ] {
            let error = config(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable, "{variable}={value}");
        }
    }

    #[test]
    fn the_outbox_settings_are_read_and_checked() {
        let set = config(&[
            ("CLINIC_STAFF_EMAILS", "dr-lee=lee@clinic.example"),
            ("CLINIC_NAME", "Harbor Outpatient Services"),
            ("CLINIC_CONTACT", "+1 555 0100"),
            ("CLINIC_OUTBOX_MAX_ATTEMPTS", "3"),
            ("CLINIC_OUTBOX_MAX_BACKOFF_MS", "1500"),
            ("CLINIC_OUTBOX_CONCURRENCY", "8"),
        ])
        .expect("valid");
        assert_eq!(
            set.staff_emails.address_of("north", "dr-lee"),
            Some("lee@clinic.example")
        );
        assert_eq!(set.clinic_name, "Harbor Outpatient Services");
        assert_eq!(set.clinic_contact.as_deref(), Some("+1 555 0100"));
        assert_eq!(set.outbox_max_attempts, 3);
        assert_eq!(set.outbox_max_backoff, Duration::from_millis(1500));
        assert_eq!(set.outbox_concurrency, 8);
        for (variable, value) in [
            ("CLINIC_STAFF_EMAILS", "dr-lee"),
            ("CLINIC_NAME", "two\nlines"),
            ("CLINIC_OUTBOX_MAX_ATTEMPTS", "0"),
            ("CLINIC_OUTBOX_MAX_BACKOFF_MS", "0"),
            ("CLINIC_OUTBOX_MAX_BACKOFF_MS", "soon"),
            ("CLINIC_OUTBOX_CONCURRENCY", "0"),
        ] {
            let error = config(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable, "{variable}={value}");
        }
        let error = config(&[("CLINIC_STAFF_EMAILS", "dr-lee=secret-address")]).unwrap_err();
        assert!(
            !error.to_string().contains("secret-address"),
            "never echo a value"
        );
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let error = config(&[("CLINIC_SCHEDULER_TICK_MS", "soon")]).unwrap_err();
        assert_eq!(error.variable, "CLINIC_SCHEDULER_TICK_MS");
        let error = config(&[("CLINIC_HTTP_ADDR", "localhost")]).unwrap_err();
        assert_eq!(error.variable, "CLINIC_HTTP_ADDR");
        let error = config(&[("DATABASE_URL", "mysql://x")]).unwrap_err();
        assert_eq!(error.variable, "DATABASE_URL");
        let error = config(&[("CLINIC_JWT_SECRET", "short")]).unwrap_err();
        assert_eq!(error.variable, "CLINIC_JWT_SECRET");
        assert!(!error.to_string().contains("short"), "never echo a secret");
        for url in ["http://x", "smtp://user:secret@mail.example:587"] {
            let error = config(&[("CLINIC_SMTP_URL", url)]).unwrap_err();
            assert_eq!(error.variable, "CLINIC_SMTP_URL", "{url}");
            assert!(!error.to_string().contains("secret"), "never echo a secret");
        }
        for (variable, value) in [
            ("CLINIC_SCHEDULER_TICK_MS", "0"),
            ("CLINIC_SCHEDULER_TICK_MS", "3600001"),
            ("CLINIC_OUTBOX_MAX_BACKOFF_MS", "0"),
            ("CLINIC_OUTBOX_MAX_BACKOFF_MS", "86400001"),
        ] {
            let error = config(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable, "{value}");
        }
        for sender in [
            "nobody",
            "no-reply@klinik-m\u{fc}nchen.de",
            "b\u{fc}ro@clinic.example",
        ] {
            let error = config(&[("CLINIC_MAIL_FROM", sender)]).unwrap_err();
            assert_eq!(error.variable, "CLINIC_MAIL_FROM", "{sender}");
        }
        let punycode = config(&[("CLINIC_MAIL_FROM", "no-reply@xn--klinik-mnchen-3ob.de")]);
        assert!(
            punycode.is_ok(),
            "an internationalised domain in its ASCII form"
        );
        for short in ["-1", "0", "30", "2189"] {
            let error = config(&[("CLINIC_RETENTION_DAYS", short)]).unwrap_err();
            assert_eq!(error.variable, "CLINIC_RETENTION_DAYS", "{short}");
        }
        let kept = config(&[("CLINIC_RETENTION_DAYS", "3650")]).unwrap();
        assert_eq!(kept.retention_days, 3650);
        let short_key = "c2VjcmV0LWJ1dC1zaG9ydA==";
        let error = config(&[("CLINIC_MASTER_KEY", short_key)]).unwrap_err();
        assert_eq!(error.variable, "CLINIC_MASTER_KEY");
        assert!(
            !error.to_string().contains(short_key),
            "never echo a secret"
        );
        let error = config(&[("CLINIC_MASTER_KEY", "%%%")]).unwrap_err();
        assert_eq!(error.variable, "CLINIC_MASTER_KEY");
        for value in ["1", "501", "many"] {
            let error = config(&[("CLINIC_DB_POOL_SIZE", value)]).unwrap_err();
            assert_eq!(error.variable, "CLINIC_DB_POOL_SIZE", "{value}");
        }
    }

    #[test]
    fn set_values_are_used() {
        let config = config(&[
            ("CLINIC_HTTP_ADDR", "0.0.0.0:9000"),
            ("CLINIC_JWT_SECRET", "a-long-enough-secret"),
            ("CLINIC_SCHEDULER_TICK_MS", "250"),
            ("CLINIC_SMTP_URL", "smtp://127.0.0.1:1025"),
            ("CLINIC_DB_POOL_SIZE", "24"),
            (
                "CLINIC_MASTER_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            ),
        ])
        .expect("valid");
        assert!(config.master_key.is_some());
        assert_eq!(config.http_addr.port(), 9000);
        assert_eq!(config.scheduler_tick, Duration::from_millis(250));
        assert!(config.smtp_url.is_some());
        assert!(config.jwt_secret.is_some());
        assert_eq!(config.db_pool_size, 24);
    }
}
