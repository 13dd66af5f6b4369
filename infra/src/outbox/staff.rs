//! The staff directory: which address a staff member's outreach notices go to
//! (`CLINIC_STAFF_EMAILS`), mirrored into `outbox_staff_emails` for the projection to read.

use std::collections::BTreeMap;

use sqlx::PgPool;

/// The clinic column of an entry that holds in every clinic.
pub const ANY_CLINIC: &str = "*";

/// Staff `sub` to email address, per clinic or for every clinic.
///
/// Parsed from `dr-lee=lee@clinic.example,north/dr-kim=kim@north.example`: an entry
/// `sub=address` holds in every clinic, `clinic/sub=address` in that clinic only (and wins
/// over the former there). Empty: no staff emails are configured, so outreach stays a
/// dashboard item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaffDirectory {
    entries: BTreeMap<(String, String), String>,
}

/// Why `CLINIC_STAFF_EMAILS` could not be read (names the entry's position, never its text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {entry} is not `sub=address` or `clinic/sub=address` with a valid address")]
pub struct InvalidStaffDirectory {
    /// The 1-based position of the bad entry.
    pub entry: usize,
}

impl StaffDirectory {
    /// Parses the comma-separated form (empty entries are ignored).
    pub fn parse(raw: &str) -> Result<Self, InvalidStaffDirectory> {
        let mut entries = BTreeMap::new();
        for (i, entry) in raw.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let invalid = InvalidStaffDirectory { entry: i + 1 };
            let (who, address) = entry.split_once('=').ok_or(invalid.clone())?;
            let (clinic, sub) = match who.trim().split_once('/') {
                Some((clinic, sub)) => (clinic.trim(), sub.trim()),
                None => (ANY_CLINIC, who.trim()),
            };
            let address = address.trim();
            if clinic.is_empty()
                || sub.is_empty()
                || address.parse::<lettre::Address>().is_err()
                || (clinic != ANY_CLINIC && crate::clinic::ClinicId::parse(clinic).is_err())
            {
                return Err(invalid);
            }
            entries.insert((clinic.to_owned(), sub.to_owned()), address.to_owned());
        }
        Ok(Self { entries })
    }

    /// A directory from `(clinic or "*", sub, address)` entries (tests).
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> Self {
        Self {
            entries: entries
                .into_iter()
                .map(|(c, s, a)| ((c.to_owned(), s.to_owned()), a.to_owned()))
                .collect(),
        }
    }

    /// The address of `sub` in `clinic`, if configured.
    pub fn address_of(&self, clinic: &str, sub: &str) -> Option<&str> {
        self.entries
            .get(&(clinic.to_owned(), sub.to_owned()))
            .or_else(|| self.entries.get(&(ANY_CLINIC.to_owned(), sub.to_owned())))
            .map(String::as_str)
    }

    /// Whether no staff email is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `(clinic or "*", sub, address)`, in order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.entries
            .iter()
            .map(|((c, s), a)| (c.as_str(), s.as_str(), a.as_str()))
    }
}

/// Replaces `outbox_staff_emails` with `directory`, in one transaction: what the outbox
/// projection reads from its next page on. Each process that starts the outbox does this, so
/// processes should share one `CLINIC_STAFF_EMAILS` (the last to start wins). Syncs take
/// turns on the table's lock: two processes starting together would otherwise each delete
/// only what the other had not yet committed, and the second insert would fail on the first's
/// rows (or, with different directories, leave both).
pub async fn sync_staff_directory(
    pool: &PgPool,
    directory: &StaffDirectory,
) -> Result<(), sqlx::Error> {
    let (mut clinics, mut subs, mut addresses) = (Vec::new(), Vec::new(), Vec::new());
    for (clinic, sub, address) in directory.entries() {
        clinics.push(clinic);
        subs.push(sub);
        addresses.push(address);
    }
    let mut tx = pool.begin().await?;
    // Blocks other syncs, not readers.
    sqlx::query("LOCK TABLE outbox_staff_emails IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM outbox_staff_emails")
        .execute(&mut *tx)
        .await?;
    sqlx::query(include_str!("sql/insert_staff_emails.sql"))
        .bind(&clinics)
        .bind(&subs)
        .bind(&addresses)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_emails_map_subs_to_addresses_per_clinic_or_everywhere() {
        let directory =
            StaffDirectory::parse(" dr-lee=lee@clinic.example, north/dr-lee=lee@north.example,,")
                .expect("valid");
        assert_eq!(
            directory.address_of("north", "dr-lee"),
            Some("lee@north.example")
        );
        assert_eq!(
            directory.address_of("south", "dr-lee"),
            Some("lee@clinic.example")
        );
        assert_eq!(directory.address_of("south", "dr-kim"), None);
        assert!(StaffDirectory::parse("")
            .expect("empty is valid")
            .is_empty());
    }

    #[test]
    fn a_bad_staff_entry_is_named_by_position() {
        assert_eq!(
            StaffDirectory::parse("a=a@x.example,nobody"),
            Err(InvalidStaffDirectory { entry: 2 })
        );
        assert_eq!(
            StaffDirectory::parse("dr-lee=not an address"),
            Err(InvalidStaffDirectory { entry: 1 })
        );
        assert_eq!(
            StaffDirectory::parse("North/dr-lee=lee@x.example"),
            Err(InvalidStaffDirectory { entry: 1 })
        );
        assert_eq!(
            StaffDirectory::parse("=lee@x.example"),
            Err(InvalidStaffDirectory { entry: 1 })
        );
    }
}
