//! Test support for the read side: running commands like the API would, catching the
//! projections up, dumping their tables, and a scripted clinic whose dashboard is known.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;

use clinic_domain::group::{
    Attendance, CorrectAttendance, FormGroup, JoinGroup, LeaveGroup, RecordSession,
};
use clinic_domain::member::{
    AdmitMember, CompleteCheckIn, CompleteIntake, DischargeMember, MarkCheckInMissed,
    RecordFollowUp, ReferMember, ScheduleCheckIn,
};
use clinic_domain::values::{
    AftercarePlan, AttendanceStatus, Capacity, CheckInChannel, Craving, DischargeReason,
    FollowUpOutcome, GroupModel, LevelOfCare, Mood, PersonName, ReferralSource, SessionMinutes,
    Stage, Text,
};
use clinic_domain::{
    aftercare, CheckInId, GroupCommand, GroupDecider, GroupId, MemberCommand, MemberDecider,
    MemberId, SessionId,
};
use clinic_infra::clinic::ClinicId;
use clinic_infra::commands::{CommandContext, CommandHandler};
use clinic_infra::event_store::{EventStore, StreamId};
use clinic_infra::keyring::{Keyring, MasterKey};
use clinic_infra::projections::{self, ProjectionName, ProjectionOptions};
use sqlx::PgPool;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The tests' master key: every keyring over a test database uses it, so each helper opens
/// what another sealed.
pub const TEST_MASTER_KEY: &str = "dGVzdHMtb25seS1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=";

/// A keyring over `pool` with the tests' master key.
pub fn keyring(pool: &PgPool) -> Keyring {
    Keyring::new(
        pool.clone(),
        MasterKey::from_base64(TEST_MASTER_KEY).unwrap(),
    )
}

/// Runs commands in one clinic as a staff member would.
pub struct Clinic {
    pub id: ClinicId,
    pub store: EventStore,
    pub keyring: Keyring,
    members: CommandHandler<MemberDecider>,
    groups: CommandHandler<GroupDecider>,
    /// The position of the last event appended through this helper.
    pub last_position: i64,
}

impl Clinic {
    pub fn new(pool: &PgPool, clinic: &str) -> Self {
        let store = EventStore::new(pool.clone());
        let keyring = keyring(pool);
        Self {
            id: ClinicId::parse(clinic).unwrap(),
            members: CommandHandler::new(store.clone(), keyring.clone()),
            groups: CommandHandler::new(store.clone(), keyring.clone()),
            store,
            keyring,
            last_position: 0,
        }
    }

    fn context(&self) -> CommandContext {
        CommandContext {
            clinic: self.id.clone(),
            actor: "clinician-test".into(),
            correlation_id: Uuid::new_v4(),
            idempotency_key: None,
            request_digest: None,
        }
    }

    pub async fn member(&mut self, member: MemberId, command: impl Into<MemberCommand>) {
        let stream = StreamId::of("member", member.as_uuid());
        let done = self
            .members
            .execute(&self.context(), &stream, None, command.into())
            .await
            .unwrap();
        if let Some(append) = done.append {
            self.last_position = append.last_position();
        }
    }

    pub async fn group(&mut self, group: GroupId, command: impl Into<GroupCommand>) {
        let stream = StreamId::of("group", group.as_uuid());
        let done = self
            .groups
            .execute(&self.context(), &stream, None, command.into())
            .await
            .unwrap();
        if let Some(append) = done.append {
            self.last_position = append.last_position();
        }
    }

    pub async fn refer(&mut self, member: MemberId, name: &str, at: OffsetDateTime) {
        self.member(
            member,
            ReferMember {
                member,
                name: PersonName::parse(name).unwrap(),
                email: None,
                phone: None,
                source: ReferralSource::SelfReferral,
                primary_substance: None,
                at,
            },
        )
        .await;
    }

    pub async fn intake(&mut self, member: MemberId, at: OffsetDateTime) {
        self.member(
            member,
            CompleteIntake {
                assessed_by: Text::parse("assessed by", "dr-ray").unwrap(),
                recommended_level: LevelOfCare::Residential,
                at,
            },
        )
        .await;
    }

    pub async fn admit(&mut self, member: MemberId, level: LevelOfCare, at: OffsetDateTime) {
        self.member(
            member,
            AdmitMember {
                level_of_care: level,
                primary_counselor: Some(Text::parse("counselor", "counselor-kim").unwrap()),
                at,
            },
        )
        .await;
    }

    /// Referral, intake and admission, a day apart, from `at`.
    pub async fn admitted(
        &mut self,
        member: MemberId,
        name: &str,
        level: LevelOfCare,
        at: OffsetDateTime,
    ) {
        self.refer(member, name, at).await;
        self.intake(member, at + Duration::days(1)).await;
        self.admit(member, level, at + Duration::days(2)).await;
    }

    pub async fn schedule_check_in(
        &mut self,
        member: MemberId,
        check_in: CheckInId,
        due_at: OffsetDateTime,
    ) {
        self.member(
            member,
            ScheduleCheckIn {
                check_in,
                due_at,
                channel: CheckInChannel::App,
                at: due_at - Duration::days(1),
            },
        )
        .await;
    }

    pub async fn complete_check_in(
        &mut self,
        member: MemberId,
        check_in: CheckInId,
        at: OffsetDateTime,
    ) {
        self.member(
            member,
            CompleteCheckIn {
                check_in,
                mood: Mood::new(4).unwrap(),
                craving: Craving::new(1).unwrap(),
                used: false,
                at,
            },
        )
        .await;
    }

    pub async fn miss_check_in(
        &mut self,
        member: MemberId,
        check_in: CheckInId,
        now: OffsetDateTime,
    ) {
        self.member(member, MarkCheckInMissed { check_in, now })
            .await;
    }

    pub async fn discharge(
        &mut self,
        member: MemberId,
        reason: DischargeReason,
        at: OffsetDateTime,
    ) {
        self.member(
            member,
            DischargeMember {
                reason,
                at,
                plan: AftercarePlan::AlumniGroup,
                follow_up_offsets_days: aftercare::DEFAULT_FOLLOW_UP_OFFSETS_DAYS.to_vec(),
            },
        )
        .await;
    }

    pub async fn form_group(&mut self, group: GroupId, name: &str, facilitator: &str) {
        self.group(
            group,
            FormGroup {
                group,
                name: Text::parse("name", name).unwrap(),
                model: GroupModel::SkillsDevelopment,
                facilitator: Some(Text::parse("facilitator", facilitator).unwrap()),
                capacity: Capacity::default(),
                schedule: None,
                alumni: false,
                online: false,
                at: T0,
            },
        )
        .await;
    }

    pub async fn join(&mut self, group: GroupId, member: MemberId) {
        self.group(
            group,
            JoinGroup {
                member,
                member_stage: Some(Stage::InTreatment),
                at: T0 + Duration::days(3),
            },
        )
        .await;
    }

    pub async fn leave(&mut self, group: GroupId, member: MemberId) {
        self.group(
            group,
            LeaveGroup {
                member,
                reason: Text::parse("reason", "moved").unwrap(),
                at: T0 + Duration::days(30),
            },
        )
        .await;
    }

    pub async fn session(
        &mut self,
        group: GroupId,
        session: SessionId,
        held_at: OffsetDateTime,
        attendance: &[(MemberId, AttendanceStatus)],
    ) {
        self.group(
            group,
            RecordSession {
                session,
                planned: false,
                held_at,
                topic: Text::parse("topic", "Coping with cravings").unwrap(),
                duration: SessionMinutes::default(),
                attendance: attendance
                    .iter()
                    .map(|(member_id, status)| Attendance {
                        member_id: *member_id,
                        status: *status,
                    })
                    .collect(),
            },
        )
        .await;
    }

    pub async fn correct(
        &mut self,
        group: GroupId,
        session: SessionId,
        member: MemberId,
        to: AttendanceStatus,
    ) {
        self.group(
            group,
            CorrectAttendance {
                session,
                member,
                to,
                reason: Text::parse("reason", "misrecorded").unwrap(),
                at: T0 + Duration::days(20),
            },
        )
        .await;
    }

    pub async fn record_follow_up(
        &mut self,
        member: MemberId,
        day: u16,
        outcome: FollowUpOutcome,
        at: OffsetDateTime,
    ) {
        self.member(
            member,
            RecordFollowUp {
                follow_up: aftercare::follow_up_id(member, 1, day),
                outcome,
                at,
            },
        )
        .await;
    }
}

/// The instant scripted clinics start at.
pub const T0: OffsetDateTime = datetime!(2026-01-05 09:00 UTC);

pub fn member(n: u128) -> MemberId {
    MemberId::new(Uuid::from_u128(0x3e3b_0000_0000 + n))
}

pub fn group(n: u128) -> GroupId {
    GroupId::new(Uuid::from_u128(0x6409_0000_0000 + n))
}

pub fn session(n: u128) -> SessionId {
    SessionId::new(Uuid::from_u128(0x5e55_0000_0000 + n))
}

pub fn check_in(n: u128) -> CheckInId {
    CheckInId::new(Uuid::from_u128(0xc4ec_0000_0000 + n))
}

/// Small pages, quick polls: tests see several pages and no long waits.
pub fn options(batch_size: u32) -> ProjectionOptions {
    ProjectionOptions {
        batch_size,
        poll_interval: std::time::Duration::from_millis(50),
        standby_retry: std::time::Duration::from_millis(50),
    }
}

/// Every projection caught up to the end of the log as it is now.
///
/// A catch-up stops short of events whose transaction is older than one still running
/// anywhere on the server (another test's database included), so it is repeated until the
/// checkpoints pass the last position (a bounded wait).
pub async fn catch_up_all(pool: &PgPool) {
    let last: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(pool)
        .await
        .unwrap();
    for _ in 0..2000 {
        for &projection in ProjectionName::ALL {
            projections::catch_up(pool, &keyring(pool), projection, &options(500))
                .await
                .unwrap();
        }
        let freshness = projections::wait_until_caught_up(
            pool,
            ProjectionName::ALL,
            last,
            std::time::Duration::ZERO,
        )
        .await
        .unwrap();
        if freshness == projections::Freshness::CaughtUp {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("the projections did not reach position {last}");
}

/// Every read-model table's rows as sorted JSON, to compare two runs.
pub async fn dump(pool: &PgPool) -> BTreeMap<&'static str, String> {
    let mut tables = BTreeMap::new();
    for projection in ProjectionName::ALL {
        for &table in projection.tables() {
            let rows: String = sqlx::query_scalar(&format!(
                "SELECT coalesce(json_agg(r ORDER BY r::text), '[]')::text
                   FROM (SELECT to_jsonb(t) AS r FROM {table} t) rows"
            ))
            .fetch_one(pool)
            .await
            .unwrap();
            tables.insert(table, rows);
        }
    }
    tables
}

/// Empties every read model and puts the checkpoints back at the start of the log.
pub async fn reset(pool: &PgPool) {
    for projection in ProjectionName::ALL {
        for &table in projection.tables() {
            sqlx::query(&format!("TRUNCATE {table}"))
                .execute(pool)
                .await
                .unwrap();
        }
    }
    sqlx::query("UPDATE projection_checkpoints SET transaction_id = 0, position = 0")
        .execute(pool)
        .await
        .unwrap();
}

#[track_caller]
pub fn assert_same_tables(
    got: &BTreeMap<&'static str, String>,
    expected: &BTreeMap<&'static str, String>,
) {
    for (table, rows) in expected {
        assert!(
            got.get(table) == Some(rows),
            "table {table} differs\nexpected: {rows}\n     got: {:?}",
            got.get(table)
        );
    }
}

/// What a newer release's migration does to the database while this build runs on it: records
/// a migration newer than every one this build embeds and, as migration 12 does, sets
/// `refold`'s checkpoint back to the start of the log and empties its tables, in one
/// transaction (in the order ARCHITECTURE asks of such migrations: checkpoint first).
pub async fn newer_release_migrates(pool: &PgPool, refold: Option<ProjectionName>) -> i64 {
    let mut tx = pool.begin().await.unwrap();
    let version = record_newer_migration(&mut tx).await;
    if let Some(projection) = refold {
        // The checkpoint first, then the tables: the runner's lock order.
        sqlx::query(
            "UPDATE projection_checkpoints SET transaction_id = 0, position = 0
              WHERE projection = $1",
        )
        .bind(projection.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
        for &table in projection.tables() {
            sqlx::query(&format!("TRUNCATE {table}"))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
    }
    tx.commit().await.unwrap();
    version
}

/// Records, on `conn`, a migration newer than every one this build embeds; returns its version.
pub async fn record_newer_migration(conn: &mut sqlx::PgConnection) -> i64 {
    let version = clinic_infra::db::newest_embedded_migration() + 1;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES ($1, 'a newer release', true, '\\x00', 0)",
    )
    .bind(version)
    .execute(conn)
    .await
    .unwrap();
    version
}
