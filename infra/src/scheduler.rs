//! The scheduler: the events the passage of time produces, and the roster changes a member's
//! own stream calls for in their groups' streams.
//!
//! Every tick (`CLINIC_SCHEDULER_TICK_MS`) it reads, from the read models, the scheduled
//! check-ins past their due time and the planned follow-ups whose day has come (every clinic),
//! and runs `MarkCheckInMissed` / `MarkFollowUpDue` through the [`CommandHandler`] as
//! `system:scheduler`. Due times already in the past (a backdated discharge, a check-in
//! scheduled late) are simply found at the next tick. It also takes off each group's roster
//! the members who no longer belong there ([`GroupProfile::admits`]: discharged from
//! treatment, or erased), with `LeaveGroup`: otherwise every later session would have to list
//! them, and they would keep a seat and show as having stopped attending. A discharge and the
//! roster change are two streams, so the change follows the discharge by a tick; the member's
//! stream is read from the log first, so a readmission the read models have not caught up
//! with is never mistaken for a discharge.
//!
//! Exactly once: each command carries an idempotency key derived from the check-in or
//! follow-up id (or the roster entry), so its event id is the same whoever runs it and
//! whenever. A restart, a tick
//! that sees a read model not yet caught up, or a second instance racing this one finds the
//! event already stored and appends nothing. One instance is active at a time anyway (an
//! advisory lock, like the projection runners).

use std::time::Duration;

use clinic_domain::group::{GroupProfile, LeaveGroup};
use clinic_domain::member::{MarkCheckInMissed, MarkFollowUpDue};
use clinic_domain::values::Text;
use clinic_domain::{
    CheckInId, Decider, FollowUpId, GroupCommand, GroupDecider, GroupId, MemberCommand,
    MemberDecider, MemberId, StoredEvent,
};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::background::{unless_panicked, Panicked};
use crate::clinic::ClinicId;
use crate::commands::{CommandContext, CommandError, CommandHandler};
use crate::event_store::{EventStore, StreamId};
use crate::keyring::Keyring;
use crate::leadership::{sleep_or_stop, Candidate, Deposed};

/// The actor recorded on the scheduler's events.
pub const ACTOR: &str = "system:scheduler";

/// How often the scheduler runs, and how much one tick does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerOptions {
    /// The time between ticks (`CLINIC_SCHEDULER_TICK_MS`).
    pub tick: Duration,
    /// The most check-ins, and the most follow-ups, one tick handles (the rest wait a tick).
    pub per_tick: u32,
    /// How often a standby process tries to take over.
    pub standby_retry: Duration,
    /// How long after its due time a check-in not completed is marked missed
    /// (`CLINIC_CHECK_IN_GRACE_MINUTES`).
    pub check_in_grace: Duration,
}

impl SchedulerOptions {
    /// Ticking every `tick`.
    pub fn every(tick: Duration) -> Self {
        Self {
            tick,
            per_tick: 500,
            standby_retry: Duration::from_secs(2),
            check_in_grace: Duration::ZERO,
        }
    }
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// CheckInMissed events appended.
    pub check_ins_missed: u32,
    /// FollowUpDue events appended.
    pub follow_ups_due: u32,
    /// MemberLeft events appended for members who no longer belong on a roster.
    pub rosters_left: u32,
    /// Items already handled (by an earlier tick or another instance) or no longer due (a
    /// check-in completed meanwhile): nothing appended.
    pub unchanged: u32,
    /// Items that failed (logged; tried again next tick).
    pub failed: u32,
}

/// Why a tick could not read what is due.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The read models could not be read.
    #[error("the scheduler could not read the read models")]
    Database(#[from] sqlx::Error),
}

/// Turns due times into events.
#[derive(Debug, Clone)]
pub struct Scheduler {
    pool: PgPool,
    members: CommandHandler<MemberDecider>,
    groups: CommandHandler<GroupDecider>,
    per_tick: u32,
    check_in_grace: time::Duration,
}

impl Scheduler {
    /// A scheduler over the store's database.
    pub fn new(store: EventStore, keyring: Keyring, per_tick: u32) -> Self {
        Self {
            pool: store.pool().clone(),
            members: CommandHandler::new(store.clone(), keyring.clone()),
            groups: CommandHandler::new(store, keyring),
            per_tick,
            check_in_grace: time::Duration::ZERO,
        }
    }

    /// Marks a check-in missed only once `grace` has passed its due time
    /// (`CLINIC_CHECK_IN_GRACE_MINUTES`): a call made at 10:00 and entered at 10:05 is then
    /// recorded as completed, not refused as missed.
    #[must_use]
    pub fn with_check_in_grace(self, grace: std::time::Duration) -> Self {
        Self {
            check_in_grace: time::Duration::try_from(grace).unwrap_or(time::Duration::ZERO),
            ..self
        }
    }

    /// One pass at `now`: marks every overdue check-in missed and every follow-up whose day
    /// has come due, and takes members who no longer belong off rosters (up to `per_tick` of
    /// each).
    pub async fn tick(&self, now: OffsetDateTime) -> Result<TickReport, SchedulerError> {
        let mut report = TickReport::default();
        // Due before this (the grace after a due time past) and not completed: missed.
        let missed_by = now - self.check_in_grace;
        let overdue = sqlx::query(include_str!("scheduler/sql/overdue_check_ins.sql"))
            .bind(missed_by)
            .bind(i64::from(self.per_tick))
            .fetch_all(&self.pool)
            .await?;
        for row in &overdue {
            let clinic: String = row.try_get("clinic")?;
            let member = MemberId::new(row.try_get("member_id")?);
            let check_in = CheckInId::new(row.try_get("check_in_id")?);
            let command = MemberCommand::MarkCheckInMissed(MarkCheckInMissed {
                check_in,
                now: missed_by,
            });
            let key = format!("scheduler/check-in-missed/{check_in}");
            let outcome = isolated(self.run(&clinic, member, key, command)).await;
            report.count(outcome, |r| r.check_ins_missed += 1);
        }
        let falling_due = sqlx::query(include_str!("scheduler/sql/follow_ups_falling_due.sql"))
            .bind(now)
            .bind(i64::from(self.per_tick))
            .fetch_all(&self.pool)
            .await?;
        for row in &falling_due {
            let clinic: String = row.try_get("clinic")?;
            let member = MemberId::new(row.try_get("member_id")?);
            let follow_up = FollowUpId::new(row.try_get("follow_up_id")?);
            let command = MemberCommand::MarkFollowUpDue(MarkFollowUpDue { follow_up, now });
            let key = format!("scheduler/follow-up-due/{follow_up}");
            let outcome = isolated(self.run(&clinic, member, key, command)).await;
            report.count(outcome, |r| r.follow_ups_due += 1);
        }
        let out_of_place = sqlx::query(include_str!(
            "scheduler/sql/roster_entries_out_of_place.sql"
        ))
        .bind(i64::from(self.per_tick))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        for row in &out_of_place {
            let clinic: String = row.try_get("clinic")?;
            let group = GroupId::new(row.try_get("group_id")?);
            let member = MemberId::new(row.try_get("member_id")?);
            let joined: i64 = row.try_get("joined_position")?;
            let outcome = isolated(self.take_off_roster(&clinic, group, member, joined, now)).await;
            report.count(outcome, |r| r.rosters_left += 1);
        }
        Ok(report)
    }

    /// `LeaveGroup` for `member`, if the log confirms what the read models say: the member's
    /// stage no longer lets them on `group`'s roster.
    async fn take_off_roster(
        &self,
        clinic: &str,
        group: GroupId,
        member: MemberId,
        joined_position: i64,
        now: OffsetDateTime,
    ) -> Outcome {
        let Some(clinic) = clinic_of_row(clinic) else {
            return Outcome::Failed;
        };
        let member_stream = StreamId::of("member", member.as_uuid());
        let group_stream = StreamId::of("group", group.as_uuid());
        let member_state = match self.members.load(&clinic, &member_stream).await {
            Ok(state) => state,
            Err(error) => return read_failed(&error, &member_stream),
        };
        let group_state = match self.groups.load(&clinic, &group_stream).await {
            Ok(state) => state,
            Err(error) => return read_failed(&error, &group_stream),
        };
        let stage = member_state.group_eligibility();
        if group_state
            .profile()
            .is_none_or(|p: &GroupProfile| p.admits(stage))
        {
            // The read models lag the log (a readmission): the member still belongs.
            return Outcome::Unchanged;
        }
        let reason = if stage.is_some() {
            "left treatment"
        } else {
            "record erased"
        };
        let Ok(reason) = Text::parse("reason", reason) else {
            return Outcome::Failed;
        };
        // Off the roster from when they stopped belonging (a discharge, perhaps backdated),
        // as far as the group's recorded sessions allow; an erasure from now.
        let stopped_belonging = stage
            .and(member_state.last_discharge())
            .map_or(now, |(_, discharged_at)| discharged_at);
        let command = GroupCommand::LeaveGroup(LeaveGroup {
            member,
            reason,
            at: group_state
                .earliest_leave(member, stopped_belonging)
                .min(now),
        });
        let key = format!("scheduler/left-roster/{group}/{member}/{joined_position}");
        execute_as_scheduler(&self.groups, clinic, group_stream, key, command).await
    }

    async fn run(
        &self,
        clinic: &str,
        member: MemberId,
        idempotency_key: String,
        command: MemberCommand,
    ) -> Outcome {
        let Some(clinic) = clinic_of_row(clinic) else {
            return Outcome::Failed;
        };
        let stream = StreamId::of("member", member.as_uuid());
        execute_as_scheduler(&self.members, clinic, stream, idempotency_key, command).await
    }
}

/// One item of a tick, kept from the others: an item whose stream panics while folding or
/// deciding (a bug, or a stored value from before a check existed) fails alone, logged, and
/// is tried again at the next tick, while the tick goes on to the items after it.
async fn isolated(item: impl std::future::Future<Output = Outcome>) -> Outcome {
    unless_panicked(item).await.unwrap_or_else(|Panicked| {
        tracing::error!(
            "a scheduler item panicked (see the panic above); it is retried at the next tick"
        );
        Outcome::Failed
    })
}

/// The clinic a read-model row names; `None` (logged) if it is not a valid one.
fn clinic_of_row(clinic: &str) -> Option<ClinicId> {
    let parsed = ClinicId::parse(clinic).ok();
    if parsed.is_none() {
        tracing::warn!("a read-model row names an invalid clinic; skipped");
    }
    parsed
}

fn read_failed(error: &(dyn std::error::Error + 'static), stream: &StreamId) -> Outcome {
    tracing::warn!(error = %crate::error_chain(error), %stream, "the scheduler could not read a stream");
    Outcome::Failed
}

/// Runs `command` on `stream` as the scheduler, exactly once per `idempotency_key`.
async fn execute_as_scheduler<D>(
    handler: &CommandHandler<D>,
    clinic: ClinicId,
    stream: StreamId,
    idempotency_key: String,
    command: D::Command,
) -> Outcome
where
    D: Decider,
    D::Event: StoredEvent,
    D::Command: Clone,
    D::Error: std::error::Error + Send + Sync + 'static,
{
    let context = CommandContext {
        clinic,
        actor: ACTOR.to_owned(),
        // The same item always gets the same correlation id, across retries.
        correlation_id: Uuid::new_v5(&CORRELATION_NAMESPACE, idempotency_key.as_bytes()),
        request_digest: None,
        idempotency_key: Some(idempotency_key),
    };
    match handler.execute(&context, &stream, None, command).await {
        // A duplicate append is another instance's identical event: nothing new.
        Ok(executed) if executed.append.as_ref().is_some_and(|a| !a.duplicate) => Outcome::Appended,
        Ok(_) => Outcome::Unchanged,
        // Completed, missed or marked due meanwhile (or the member was erased): time has
        // nothing left to record.
        Err(CommandError::Rejected(error)) => {
            tracing::debug!(%error, "nothing to record");
            Outcome::Unchanged
        }
        Err(error) => {
            tracing::warn!(error = %crate::error_chain(&error), %stream, "scheduler command failed");
            Outcome::Failed
        }
    }
}

enum Outcome {
    Appended,
    Unchanged,
    Failed,
}

impl TickReport {
    fn count(&mut self, outcome: Outcome, appended: impl FnOnce(&mut Self)) {
        match outcome {
            Outcome::Appended => appended(self),
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Failed => self.failed += 1,
        }
    }
}

/// The uuid v5 namespace of the scheduler's correlation ids.
const CORRELATION_NAMESPACE: Uuid = Uuid::from_u128(0x7a3c_51e2_0b4d_4f6a_9e81_c2d5_36f7_a4b8);

/// Runs the scheduler until `stop` turns true: on standby while another process leads, then
/// ticking every `options.tick` at the wall clock's time. Errors are logged; it returns when
/// stopped, or for good when a newer release has migrated the database (its rules decide what
/// falls due from then on). That is checked before each tick: a tick already running when the
/// migration commits finishes by this build's rules (each of its events still decided by the
/// domain against the stream as it is).
pub async fn run(
    pool: PgPool,
    keyring: Keyring,
    options: SchedulerOptions,
    mut stop: watch::Receiver<bool>,
) {
    let scheduler = Scheduler::new(EventStore::new(pool.clone()), keyring, options.per_tick)
        .with_check_in_grace(options.check_in_grace);
    let mut candidate = Candidate::new("scheduler");
    loop {
        if *stop.borrow() {
            return;
        }
        match candidate.try_lead(&pool).await {
            Ok(Some(mut leader)) => {
                tracing::info!("running the scheduler");
                loop {
                    match leader.check().await {
                        Ok(()) => {}
                        Err(Deposed::Superseded(superseded)) => {
                            // For good: this build's rules are older than the database's schema.
                            tracing::error!(
                                %superseded,
                                "stopped the scheduler for good; restart this process on the new release"
                            );
                            leader.release().await;
                            return;
                        }
                        Err(error @ Deposed::CheckFailed(_)) => {
                            tracing::warn!(error = %crate::error_chain(&error), "lost the scheduler's lock");
                            break;
                        }
                    }
                    match scheduler.tick(OffsetDateTime::now_utc()).await {
                        Ok(report) if report != TickReport::default() => {
                            tracing::info!(?report, "scheduler tick");
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(error = %crate::error_chain(&error), "scheduler tick failed");
                        }
                    }
                    if sleep_or_stop(&mut stop, options.tick).await {
                        leader.release().await;
                        return;
                    }
                }
                leader.release().await;
            }
            Ok(None) => tracing::debug!("another process runs the scheduler"),
            Err(error) => tracing::warn!(
                error = %crate::error_chain(&error),
                "could not take the scheduler's lock"
            ),
        }
        if sleep_or_stop(&mut stop, options.standby_retry).await {
            return;
        }
    }
}

/// Starts the scheduler task; it stops when `stop` turns true.
pub fn spawn(
    pool: &PgPool,
    keyring: &Keyring,
    options: SchedulerOptions,
    stop: &watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(run(pool.clone(), keyring.clone(), options, stop.clone()))
}
