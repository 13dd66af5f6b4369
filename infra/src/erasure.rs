//! Erasing a member (crypto-shredding): the domain decides whether the records may go (the
//! retention rule), `MemberErased` is appended, and the member's data key is destroyed. The
//! projections then scrub the read models and the outbox cancels the member's pending mail (both
//! on `MemberErased`); the log keeps every event, its personal fields now unreadable.
//!
//! Append first, destroy second: a refused erasure must leave the key alone. If the process
//! dies between the two, erasing again appends nothing (the domain treats a second erasure as a
//! no-op) and destroys the key, so an erasure is always completed by retrying it.

use clinic_domain::member::EraseMember;
use clinic_domain::values::Text;
use clinic_domain::{MemberCommand, MemberDecider, MemberError, MemberId};
use time::OffsetDateTime;

use crate::codec::CodecError;
use crate::commands::{CommandContext, CommandError, CommandHandler};
use crate::event_store::StreamId;
use crate::keyring::Keyring;

/// What an erasure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erasure {
    /// The log position of `MemberErased` (for a retried request, the original's); `None`
    /// when the member was already erased.
    pub erased_at_position: Option<i64>,
    /// Whether a live data key was destroyed now (false when it already was).
    pub key_destroyed: bool,
}

/// Erases `member` for `reason` (a category such as "member request", never personal data),
/// if the retention rule allows it at `at`; see the module's doc.
pub async fn erase_member(
    members: &CommandHandler<MemberDecider>,
    keyring: &Keyring,
    context: &CommandContext,
    member: MemberId,
    reason: &str,
    retention_days: u32,
    at: OffsetDateTime,
) -> Result<Erasure, CommandError<MemberError>> {
    let command = EraseMember {
        reason: Text::parse("reason", reason)
            .map_err(|error| CommandError::Rejected(MemberError::from(error)))?,
        at,
        retention_days,
    };
    let stream = StreamId::of("member", member.as_uuid());
    let executed = members
        .execute(context, &stream, None, MemberCommand::EraseMember(command))
        .await?;
    let key_destroyed = keyring
        .destroy(&context.clinic, member.as_uuid())
        .await
        .map_err(|error| CommandError::Codec(CodecError::from(error)))?;
    Ok(Erasure {
        erased_at_position: executed.append.map(|append| append.last_position()),
        key_destroyed,
    })
}

/// Why an erasure was refused, in words for the admin who asked (who may see the member's
/// dates); `None` for refusals that are not about the erasure rules.
pub fn explain_refusal(error: &MemberError, retention_days: u32) -> Option<String> {
    match error {
        MemberError::RetentionNotElapsed { until } => Some(format!(
            "the member's records must be kept for {retention_days} days after their last \
             discharge or the last disclosure of their records, whichever is later \
             (CLINIC_RETENTION_DAYS): they can be erased from {}",
            until.date()
        )),
        // Erasure refuses a stage only when the member has treatment records and is not
        // discharged.
        MemberError::WrongStage {
            command: "erase", ..
        } => Some(
            "the member is in treatment: treatment records are kept while treatment lasts and \
             for the retention period after discharge"
                .to_owned(),
        ),
        _ => None,
    }
}
