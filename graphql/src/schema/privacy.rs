//! The privacy surface (`contract/privacy.graphql`): full 42 CFR 2.31 consents, disclosures
//! and their accounting, break-glass reads outside a reader's minimum-necessary scope, and
//! erasure. Consents and disclosures are read from the member's own stream (the legal record),
//! every read is access-logged under its data category.

use async_graphql::{ComplexObject, Context, Object, SimpleObject, ID};
use clinic_domain::member::{GiveConsent, RecordDisclosure, RevokeConsent};
use clinic_domain::values::Text;
use clinic_domain::{ConsentId, DisclosureId, MemberCommand, MemberId};
use clinic_infra::disclosures::{self, DisclosureRecord};
use clinic_infra::erasure;
use time::{Duration, OffsetDateTime};

use super::enums::{ConsentKind, ConsentScope, DataCategory};
use super::guard::{require_reading, roles, RoleGuard};
use super::member::{member_id, Member};
use super::mutation::{command_context, member_stream, new_id};
use super::times::{in_calendar, not_in_future};
use super::views::{self, log_reads, Read};
use super::{request, services};
use crate::error::{ApiError, ApiResult};

/// The accounting window when none is asked for: six years, HIPAA's documentation period.
pub const DEFAULT_ACCOUNTING_DAYS: i32 = 2190;

/// A written consent to disclose (42 CFR 2.31).
#[derive(SimpleObject, Clone, Debug)]
pub struct Consent {
    /// Its id.
    pub id: ID,
    /// What the clinic uses it for.
    pub scope: ConsentScope,
    /// Standard, treatment-payment-operations, or counseling notes.
    pub kind: ConsentKind,
    /// The named recipient, or a class ("treating providers").
    pub recipient: String,
    /// Why information may be disclosed.
    pub purpose: String,
    /// What information it covers.
    pub information: String,
    /// When it expires, if at a date.
    pub expires_at: Option<OffsetDateTime>,
    /// The expiry event or condition as written on the form (e.g. "end of treatment").
    pub expires_on: Option<String>,
    /// When its expiry event happened, as the record shows (for a consent until the end of
    /// treatment: the discharge ending the treatment it was signed in).
    pub ended_at: Option<OffsetDateTime>,
    /// The member, or a representative and their authority.
    pub signed_by: String,
    /// When it was signed.
    pub signed_at: OffsetDateTime,
    /// The version of the form used.
    pub form_version: String,
    /// When the member revoked it, if they did.
    pub revoked_at: Option<OffsetDateTime>,
    /// Whether it allows disclosures now (signed, not revoked, not expired, not ended).
    pub in_force: bool,
}

impl Consent {
    fn of(consent: &clinic_domain::consent::Consent, now: OffsetDateTime) -> Self {
        Self {
            id: ID(consent.id.to_string()),
            scope: consent.scope.into(),
            kind: consent.kind.into(),
            recipient: consent.recipient.clone(),
            purpose: consent.purpose.clone(),
            information: consent.information.clone(),
            expires_at: consent.expires_at,
            expires_on: consent.expires_on.clone(),
            ended_at: consent.ended_at,
            signed_by: consent.signed_by.clone(),
            signed_at: consent.signed_at,
            form_version: consent.form_version.clone(),
            revoked_at: consent.revoked_at,
            in_force: consent.in_force_at(now),
        }
    }
}

/// A disclosure of part of a member's record to a third party.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Disclosure {
    /// Its id.
    pub id: ID,
    /// The consent it relied on, as that consent stands now.
    pub consent: Consent,
    /// Who received the records.
    pub recipient: String,
    /// Why.
    pub purpose: String,
    /// What was disclosed.
    pub description: String,
    /// How (fax, secure email, ...).
    pub channel: String,
    /// When.
    pub disclosed_at: OffsetDateTime,
    /// The staff member who disclosed.
    pub disclosed_by: String,
    /// The 42 CFR 2.32 notice that accompanied the disclosure.
    pub notice: String,
    #[graphql(skip)]
    pub member_id: MemberId,
}

#[ComplexObject]
impl Disclosure {
    /// Whose records.
    async fn member(&self, ctx: &Context<'_>) -> ApiResult<Member> {
        let member = views::member_by_id(ctx, self.member_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("member {} not found", self.member_id)))?;
        views::log_member_reads(
            ctx,
            &[self.member_id],
            Read::Record,
            ctx.look_ahead(),
            false,
        )
        .await?;
        Ok(member)
    }
}

impl Disclosure {
    fn of(record: DisclosureRecord, now: OffsetDateTime) -> Self {
        Self {
            id: ID(record.id.to_string()),
            consent: Consent::of(&record.consent, now),
            recipient: record.recipient,
            purpose: record.purpose,
            description: record.description,
            channel: record.channel,
            disclosed_at: record.disclosed_at,
            disclosed_by: record.disclosed_by,
            notice: record.notice,
            member_id: record.member,
        }
    }
}

/// An email about a member and the consent that allowed it (42 CFR Part 2: each sent email
/// records its consent). No address: it is personal data.
#[derive(SimpleObject, Clone, Debug)]
pub struct MemberEmail {
    /// The outbox row.
    pub id: ID,
    /// `aftercare_welcome`, `follow_up_due` or `outreach_notice` (to staff).
    pub kind: String,
    /// `pending`, `sent`, `cancelled` or `dead`.
    pub status: String,
    /// The consent that allowed it (none for a notice to staff).
    pub consent_id: Option<ID>,
    /// Why it will not be sent, if cancelled (`consent_revoked`, `consent_expired`,
    /// `member_erased`, `stale`, `no_address`).
    pub cancel_reason: Option<String>,
    /// When it was queued.
    pub queued_at: OffsetDateTime,
    /// When the SMTP server accepted it.
    pub sent_at: Option<OffsetDateTime>,
}

/// The emails about a member, oldest first, each with the consent that allowed it.
pub async fn emails_of(ctx: &Context<'_>, member: MemberId) -> ApiResult<Vec<MemberEmail>> {
    let field = &super::member::EMAILS;
    require_reading(ctx, field.what, field.roles, member, field.category).await?;
    let (services, request) = (services(ctx)?, request(ctx)?);
    let emails = clinic_infra::outbox::emails_of(&services.pool, &request.staff.clinic, member)
        .await
        .map_err(ApiError::internal)?;
    log_reads(ctx, &[member], Read::Record(DataCategory::Consents), true).await?;
    Ok(emails
        .into_iter()
        .map(|email| MemberEmail {
            id: ID(email.id.to_string()),
            kind: email.kind.as_str().to_owned(),
            status: email.status,
            consent_id: email.consent_id.map(|c| ID(c.to_string())),
            cancel_reason: email.cancel_reason,
            queued_at: email.queued_at,
            sent_at: email.sent_at,
        })
        .collect())
}

/// The member's consents, newest last: `past` (as a member's past state holds them, in time
/// travel), or from their stream now. The read is checked and logged either way.
pub async fn consents_of(
    ctx: &Context<'_>,
    member: MemberId,
    past: Option<Vec<Consent>>,
) -> ApiResult<Vec<Consent>> {
    let field = &super::member::CONSENTS;
    require_reading(ctx, field.what, field.roles, member, field.category).await?;
    let shown = match past {
        Some(past) => past,
        None => consents_shown(
            &*views::member_state(ctx, member).await?,
            OffsetDateTime::now_utc(),
        ),
    };
    log_reads(ctx, &[member], Read::Record(DataCategory::Consents), true).await?;
    Ok(shown)
}

/// `state`'s consents as shown at `at` (in force then or not); an erased member's personal
/// texts read `(erased)`.
pub fn consents_shown(state: &clinic_domain::MemberState, at: OffsetDateTime) -> Vec<Consent> {
    state
        .consents()
        .iter()
        .map(|consent| {
            let mut shown = Consent::of(consent, at);
            if state.erased() {
                // The erasure emptied the consent's personal texts; say so, as everywhere else.
                for text in [
                    &mut shown.recipient,
                    &mut shown.purpose,
                    &mut shown.information,
                    &mut shown.signed_by,
                ] {
                    clinic_infra::codec::ERASED.clone_into(text);
                }
            }
            shown
        })
        .collect()
}

/// The answer of a consent mutation: `consent` as `member`'s record (`state`, after the write)
/// shows it now; read back from the record, so logged as a consents read.
async fn recorded_consent(
    ctx: &Context<'_>,
    member: MemberId,
    state: &clinic_domain::MemberState,
    consent: ConsentId,
) -> ApiResult<Consent> {
    let recorded = state
        .consents()
        .iter()
        .find(|c| c.id == consent)
        .ok_or_else(|| {
            ApiError::internal(std::io::Error::other("consent not in the member's record"))
        })?;
    log_reads(ctx, &[member], Read::Record(DataCategory::Consents), true).await?;
    Ok(Consent::of(recorded, OffsetDateTime::now_utc()))
}

/// The privacy queries.
#[derive(Default)]
pub struct PrivacyQuery;

#[Object]
impl PrivacyQuery {
    /// The accounting of disclosures: every disclosure of the member's records in the last
    /// `sinceDays` days (default 2190, six years), newest first.
    #[graphql(
        guard = "RoleGuard::new(\"read the accounting of disclosures\", roles::DISCLOSURES).reading(member_id.clone(), DataCategory::Disclosures)",
        complexity = "crate::schema::nested_list(child_complexity)"
    )]
    async fn disclosures(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        since_days: Option<i32>,
    ) -> ApiResult<Vec<Disclosure>> {
        let member = self::member_id(&member_id)?;
        let days = since_days.unwrap_or(DEFAULT_ACCOUNTING_DAYS);
        if !(1..=36_500).contains(&days) {
            return Err(ApiError::BadInput(
                "`sinceDays` must be between 1 and 36500".into(),
            ));
        }
        let (services, request) = (services(ctx)?, request(ctx)?);
        let now = OffsetDateTime::now_utc();
        let records = disclosures::accounting(
            &services.store,
            &services.keyring,
            &request.staff.clinic,
            member,
            now - Duration::days(i64::from(days)),
        )
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound(format!("member {member} not found")))?;
        log_reads(
            ctx,
            &[member],
            Read::Record(DataCategory::Disclosures),
            true,
        )
        .await?;
        Ok(records
            .into_iter()
            .map(|record| Disclosure::of(record, now))
            .collect())
    }

    /// A read of a member outside the reader's minimum-necessary scope (a facilitator reading
    /// someone not on their rosters), with a stated reason; logged with the reason and listed
    /// in `breakGlassReads` for review.
    #[graphql(
        guard = "RoleGuard::new(\"read member records\", roles::READ_MEMBERS).reading(id.clone(), DataCategory::Profile)"
    )]
    async fn member_break_glass(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: String,
    ) -> ApiResult<Option<Member>> {
        let member = member_id(&id)?;
        let reason = Text::parse("reason", &reason)?;
        let found = views::member_by_id(ctx, member).await?;
        if found.is_some() {
            views::log_break_glass(ctx, member, reason.as_str()).await?;
        }
        Ok(found)
    }
}

/// The privacy mutations.
#[derive(Default)]
pub struct PrivacyMutation;

#[Object]
impl PrivacyMutation {
    /// Records a full written consent (42 CFR 2.31); `giveConsent(memberId, scope)` stays the
    /// short form for the member's own email outreach. It states its end: `expiresAt` (a
    /// date after `signedAt`) or `expiresOn` (an event or condition; "none" only for
    /// TREATMENT_PAYMENT_OPERATIONS).
    #[graphql(guard = "RoleGuard::new(\"record consent\", roles::INTAKE)")]
    #[allow(clippy::too_many_arguments)]
    async fn record_consent(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        scope: ConsentScope,
        kind: ConsentKind,
        recipient: String,
        purpose: String,
        information: String,
        expires_at: Option<OffsetDateTime>,
        expires_on: Option<String>,
        signed_by: String,
        signed_at: OffsetDateTime,
        form_version: String,
    ) -> ApiResult<Consent> {
        let member = self::member_id(&member_id)?;
        let consent = ConsentId::new(new_id(ctx, "consent", &member.to_string())?);
        let signed_at = not_in_future("signedAt", Some(signed_at))?;
        let expires_at = expires_at
            .map(|expires| in_calendar("expiresAt", expires))
            .transpose()?;
        if expires_at.is_some_and(|expires| expires <= signed_at) {
            return Err(ApiError::BadInput(
                "`expiresAt` must be after `signedAt`".into(),
            ));
        }
        let command = GiveConsent {
            consent,
            scope: scope.into(),
            kind: kind.into(),
            recipient: Text::parse("recipient", &recipient)?,
            purpose: Text::parse("purpose", &purpose)?,
            information: Text::parse("information", &information)?,
            expires_at,
            expires_on: expires_on
                .as_deref()
                .map(|on| Text::parse("expiresOn", on))
                .transpose()?,
            signed_by: Text::parse("signedBy", &signed_by)?,
            signed_at,
            form_version: Text::parse("formVersion", &form_version)?,
        };
        let state = execute(ctx, member, command.into()).await?;
        recorded_consent(ctx, member, &state, consent).await
    }

    /// Records the member's revocation of one consent, as received (`receivedAt` may be in
    /// the past: a revocation stops disclosures from when it was received, so one recorded
    /// late is refused for any disclosure after that; `howReceived`: in writing, orally, ...;
    /// never dated at or before the consent's signing).
    /// `revokeConsent(memberId, scope)` stays the short form revoking every consent of a scope.
    #[graphql(guard = "RoleGuard::new(\"record consent\", roles::INTAKE)")]
    async fn record_revocation(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        consent_id: ID,
        how_received: String,
        received_at: Option<OffsetDateTime>,
    ) -> ApiResult<Consent> {
        let member = self::member_id(&member_id)?;
        let consent = ConsentId::new(super::audit::parse_uuid(&consent_id)?);
        let command = RevokeConsent {
            consent,
            how_received: Text::parse("howReceived", &how_received)?,
            at: not_in_future("receivedAt", received_at)?,
        };
        let state = execute(ctx, member, command.into()).await?;
        recorded_consent(ctx, member, &state, consent).await
    }

    /// Records that part of the record was shared with a third party: refused (`CONFLICT`)
    /// unless the consent is in force and names the recipient (or `recipientClass`, a class it
    /// names). The disclosure carries the 42 CFR 2.32 notice.
    #[graphql(guard = "RoleGuard::new(\"record disclosures\", roles::DISCLOSE)")]
    #[allow(clippy::too_many_arguments)]
    async fn record_disclosure(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        consent_id: ID,
        recipient: String,
        purpose: String,
        description: String,
        channel: String,
        recipient_class: Option<String>,
    ) -> ApiResult<Disclosure> {
        let member = self::member_id(&member_id)?;
        let request = request(ctx)?;
        let disclosure = DisclosureId::new(new_id(ctx, "disclosure", &member.to_string())?);
        let command = RecordDisclosure {
            disclosure,
            consent: ConsentId::new(super::audit::parse_uuid(&consent_id)?),
            recipient: Text::parse("recipient", &recipient)?,
            recipient_class: recipient_class
                .as_deref()
                .map(|class| Text::parse("recipientClass", class))
                .transpose()?,
            purpose: Text::parse("purpose", &purpose)?,
            description: Text::parse("description", &description)?,
            channel: Text::parse("channel", &channel)?,
            disclosed_by: Text::parse("disclosedBy", &request.staff.sub)?,
            at: OffsetDateTime::now_utc(),
        };
        execute(ctx, member, command.into()).await?;
        let services = services(ctx)?;
        let record = disclosures::accounting(
            &services.store,
            &services.keyring,
            &request.staff.clinic,
            member,
            OffsetDateTime::UNIX_EPOCH,
        )
        .await
        .map_err(ApiError::internal)?
        .unwrap_or_default()
        .into_iter()
        .find(|record| record.id == disclosure)
        .ok_or_else(|| ApiError::internal(std::io::Error::other("disclosure not recorded")))?;
        // The answer is read back from the member's record, with the consent it relied on.
        log_reads(
            ctx,
            &[member],
            Read::Record(DataCategory::Disclosures),
            true,
        )
        .await?;
        Ok(Disclosure::of(record, OffsetDateTime::now_utc()))
    }

    /// Erases the member's personal data (admins): their data key is destroyed, so every
    /// personal field in the log becomes unreadable while the log still verifies; read models
    /// are scrubbed and pending emails cancelled. A member never admitted can be erased at
    /// once; one with treatment records only after the retention period following their last
    /// discharge (`CONFLICT` otherwise, saying until when). Erasing twice is harmless. The
    /// reason stays readable: a category ("member request"), never the member's name, email or
    /// phone (`BAD_USER_INPUT`).
    #[graphql(guard = "RoleGuard::new(\"erase members\", roles::ADMIN)")]
    async fn erase_member(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        reason: String,
    ) -> ApiResult<bool> {
        let member = self::member_id(&member_id)?;
        let services = services(ctx)?;
        let erased = erasure::erase_member(
            &services.members,
            &services.keyring,
            &command_context(ctx)?,
            member,
            &reason,
            services.retention_days,
            OffsetDateTime::now_utc(),
        )
        .await;
        // Whatever came of it (an append whose key could not be destroyed is an error too), no
        // record this request loaded before may show the member's details after it.
        views::forget_member_states(ctx);
        let erased = erased.map_err(|error| match &error {
            clinic_infra::commands::CommandError::Rejected(refusal) => {
                match erasure::explain_refusal(refusal, services.retention_days) {
                    Some(why) => ApiError::Conflict(why),
                    None => error.into(),
                }
            }
            _ => error.into(),
        })?;
        if let Some(position) = erased.erased_at_position {
            views::wait_for(ctx, position).await?;
        }
        tracing::info!(member = %member, key_destroyed = erased.key_destroyed, "member erased");
        Ok(true)
    }
}

/// Runs a member command (no expected version: these records only add facts) and returns the
/// member's state after it, waiting until the read models have it.
async fn execute(
    ctx: &Context<'_>,
    member: MemberId,
    command: MemberCommand,
) -> ApiResult<clinic_domain::MemberState> {
    let services = services(ctx)?;
    let executed = services
        .members
        .execute(
            &command_context(ctx)?,
            &member_stream(member),
            None,
            command,
        )
        .await?;
    if let Some(append) = &executed.append {
        views::wait_for(ctx, append.last_position()).await?;
    }
    Ok(executed.state)
}
