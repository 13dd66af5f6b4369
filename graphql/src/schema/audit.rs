//! The auditors' operations: the clinic's log, its integrity, and who read what. These read
//! the log (or the access log) itself; the one projection they consult, `memberAsOf`'s list of
//! the member's groups, is first brought up to the log's head.

use std::collections::BTreeSet;

use async_graphql::{Context, Object, SimpleObject, ID};
use clinic_domain::engagement::{self, ENGAGEMENT_WINDOW};
use clinic_domain::{GroupEvent, GroupId, GroupState, MemberId};
use clinic_infra::access_log::{self, AccessQuery};
use clinic_infra::event_store::{RecordedEvent, Scope, StreamId};
use clinic_infra::keyring::KeySet;
use clinic_infra::projections::ProjectionName;
use time::OffsetDateTime;

use super::enums::{DataCategory, Role};
use super::guard::{roles, RoleGuard};
use super::scalars::{self, PageInfo, EVENT_PAGES, LIST_PAGES};
use super::views::Read;
use crate::error::{ApiError, ApiResult};

/// One event of the log, as auditors see it.
#[derive(SimpleObject, Clone, Debug)]
pub struct Event {
    /// Global position in the log.
    pub position: i64,
    /// `member-<uuid>` or `group-<uuid>`.
    pub stream_id: String,
    /// 1, 2, 3… within the stream.
    pub version: i64,
    /// The stable event name, e.g. `SessionHeld`.
    #[graphql(name = "type")]
    pub event_type: String,
    /// The payload: as stored in the log-wide `events` (personal fields sealed,
    /// `enc:v1:...`), opened in a member's `history` (`(erased)` once the member is erased).
    pub data: async_graphql::Json<serde_json::Value>,
    /// When it was recorded.
    pub recorded_at: OffsetDateTime,
    /// Who caused it.
    pub actor: String,
}

impl Event {
    /// The event as auditors see it: `data` as stored (personal fields sealed), or with the
    /// personal fields opened when `keys` are given (a member's own history, an access-logged
    /// read of their record).
    pub fn of(event: RecordedEvent, keys: Option<&KeySet>) -> Self {
        let actor = event.metadata["actor"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned();
        let data = match keys {
            Some(keys) => clinic_infra::codec::reveal(keys, &event),
            None => event.data,
        };
        Self {
            position: event.position,
            stream_id: event.stream_id,
            version: event.version,
            event_type: event.event_type,
            data: async_graphql::Json(data),
            recorded_at: event.recorded_at,
            actor,
        }
    }
}

/// An event and its cursor.
#[derive(SimpleObject, Clone, Debug)]
pub struct EventEdge {
    /// Pass as `after` to continue after this event.
    pub cursor: String,
    /// The event.
    pub node: Event,
}

/// A page of events.
#[derive(SimpleObject, Clone, Debug)]
pub struct EventConnection {
    /// The events.
    pub edges: Vec<EventEdge>,
    /// Where the page ends.
    pub page_info: PageInfo,
}

impl EventConnection {
    /// A page from `limit + 1` fetched events (the extra one tells whether more follow).
    pub fn from_fetched(
        mut events: Vec<RecordedEvent>,
        keys: Option<&KeySet>,
        limit: i64,
        cursor_of: fn(&RecordedEvent) -> i64,
    ) -> Self {
        let has_next_page = events.len() as i64 > limit;
        events.truncate(limit as usize);
        let edges: Vec<EventEdge> = events
            .into_iter()
            .map(|event| EventEdge {
                cursor: scalars::encode(cursor_of(&event)),
                node: Event::of(event, keys),
            })
            .collect();
        Self {
            page_info: PageInfo {
                has_next_page,
                end_cursor: edges.last().map(|edge| edge.cursor.clone()),
            },
            edges,
        }
    }
}

/// The outcome of an integrity check of the clinic's log.
#[derive(SimpleObject, Clone, Debug)]
pub struct IntegrityReport {
    /// True when every chain is intact.
    pub ok: bool,
    /// Streams examined.
    pub streams_checked: i64,
    /// Events whose hash was recomputed.
    pub events_checked: i64,
    /// Streams whose chain is broken.
    pub broken_streams: Vec<String>,
}

/// One read of a member's record.
#[derive(SimpleObject, Clone, Debug)]
pub struct AccessRecord {
    /// The reader.
    pub actor: String,
    /// Whose record.
    pub member_id: ID,
    /// When.
    pub at: OffsetDateTime,
    /// The GraphQL operation.
    pub operation: String,
    /// The reader's role.
    pub role: Role,
    /// read, query or export.
    pub action: String,
    /// Which part of the record.
    pub category: Option<DataCategory>,
    /// Whether it was allowed.
    pub allowed: bool,
    /// The stated reason of a break-glass read.
    pub break_glass_reason: Option<String>,
}

/// An access record and its cursor.
#[derive(SimpleObject, Clone, Debug)]
pub struct AccessEdge {
    /// Pass as `after` to continue.
    pub cursor: String,
    /// The record.
    pub node: AccessRecord,
}

/// A page of the access log, newest first.
#[derive(SimpleObject, Clone, Debug)]
pub struct AccessConnection {
    /// The records.
    pub edges: Vec<AccessEdge>,
    /// Where the page ends.
    pub page_info: PageInfo,
}

/// An email that could not be delivered after every attempt (admins retry or follow up by
/// other means). Carries no personal data: the member's id, the kind, the failure's category.
#[derive(SimpleObject, Clone, Debug)]
pub struct DeadLetter {
    /// The outbox row.
    pub id: ID,
    /// The member it concerns.
    pub member_id: ID,
    /// aftercare_welcome, follow_up_due or outreach_notice.
    pub kind: String,
    /// Attempts made.
    pub attempts: i32,
    /// The last failure's category and SMTP code.
    pub last_error: Option<String>,
    /// Its Message-ID.
    pub message_id: String,
    /// When it was queued.
    pub created_at: OffsetDateTime,
}

/// The auditors' queries.
#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The clinic's whole log in position order (auditors and admins).
    #[graphql(
        guard = "RoleGuard::new(\"read the event log\", roles::AUDIT)",
        complexity = "EVENT_PAGES.complexity(first, child_complexity)"
    )]
    async fn events(
        &self,
        ctx: &Context<'_>,
        after_position: Option<i64>,
        first: Option<i32>,
    ) -> ApiResult<EventConnection> {
        Ok(events(ctx, after_position, first).await?)
    }

    /// Recomputes every hash chain of the clinic's log (auditors and admins).
    #[graphql(guard = "RoleGuard::new(\"verify the log\", roles::AUDIT)")]
    async fn verify_integrity(&self, ctx: &Context<'_>) -> ApiResult<IntegrityReport> {
        let (services, request) = (super::services(ctx)?, super::request(ctx)?);
        let report = services
            .store
            .verify(&Scope::Clinic(request.staff.clinic.clone()))
            .await
            .map_err(ApiError::from)?;
        Ok(IntegrityReport {
            ok: report.ok(),
            streams_checked: report.streams_checked,
            events_checked: report.events_checked,
            broken_streams: report.broken_streams,
        })
    }

    /// Who read which member's record, newest first (auditors and admins).
    #[graphql(
        guard = "RoleGuard::new(\"read the access log\", roles::AUDIT)",
        complexity = "LIST_PAGES.complexity(first, child_complexity)"
    )]
    async fn access_log(
        &self,
        ctx: &Context<'_>,
        member_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<AccessConnection> {
        let member_id = member_id.map(|id| parse_uuid(&id)).transpose()?;
        Ok(access_page(ctx, member_id, false, first, after).await?)
    }

    /// Emails given up on after every attempt, newest first (admins, who requeue them, and
    /// auditors). Each names a member, so the list is logged as a read of their emails.
    #[graphql(
        guard = "RoleGuard::new(\"see undeliverable emails\", roles::AUDIT)",
        complexity = "EVENT_PAGES.complexity(first, child_complexity)"
    )]
    async fn dead_letters(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> ApiResult<Vec<DeadLetter>> {
        let (services, request) = (super::services(ctx)?, super::request(ctx)?);
        let limit = i64::from(EVENT_PAGES.of(first)?);
        let letters =
            clinic_infra::outbox::dead_letters(&services.pool, &request.staff.clinic, limit)
                .await
                .map_err(ApiError::internal)?;
        let members: Vec<MemberId> = letters.iter().map(|letter| letter.member_id).collect();
        super::views::log_reads(ctx, &members, Read::List(DataCategory::Consents), true).await?;
        Ok(letters
            .into_iter()
            .map(|letter| DeadLetter {
                id: ID(letter.id.to_string()),
                member_id: ID(letter.member_id.to_string()),
                kind: letter.kind.as_str().to_owned(),
                attempts: letter.attempts,
                last_error: letter.last_error,
                message_id: letter.message_id,
                created_at: letter.created_at,
            })
            .collect())
    }

    /// The member as the events recorded up to `at` describe them (time travel).
    #[graphql(
        guard = "RoleGuard::new(\"read a member's past\", roles::HISTORY).reading(id.clone(), DataCategory::History)"
    )]
    async fn member_as_of(
        &self,
        ctx: &Context<'_>,
        id: ID,
        at: OffsetDateTime,
    ) -> ApiResult<Option<super::member::Member>> {
        let member = super::member::member_id(&id)?;
        let at = super::times::in_calendar("at", at)?;
        let (services, request) = (super::services(ctx)?, super::request(ctx)?);
        // Engagement as it stood at `at`: the sessions of the 7 days before it, from the streams
        // of the groups where the member has such a session, as recorded up to `at` (a session
        // recorded later, or a later correction, is not counted), by the domain's rule. Which
        // groups comes from the groups read model, so it must first have applied the clinic's
        // log as commit-safe readers see it now (a bounded wait): a lagging or refolding one
        // would leave a group out.
        let head = services
            .store
            .log_head(&Scope::Clinic(request.staff.clinic.clone()))
            .await?;
        super::views::wait_until(ctx, &[ProjectionName::Groups], head.position).await?;
        let window = at
            .checked_sub(ENGAGEMENT_WINDOW)
            .unwrap_or(time::PrimitiveDateTime::MIN.assume_utc());
        let groups = clinic_infra::read_models::groups_attended_between(
            &services.pool,
            &request.staff.clinic,
            member,
            window,
            at,
        )
        .await?;
        // The groups they had joined by then (the read models keep only today's rosters): which
        // of them they were still on comes from those groups' streams below.
        let joined = services
            .store
            .streams_naming(
                &request.staff.clinic,
                "MemberJoined",
                "member_id",
                &member.to_string(),
                at,
            )
            .await?;
        // The member's stream and those groups' streams, as of `at`, in one round trip.
        let stream = StreamId::of("member", member.as_uuid());
        let mut streams: Vec<StreamId> = std::iter::once(stream.clone())
            .chain(groups.iter().map(|g| StreamId::of("group", g.as_uuid())))
            .chain(joined)
            .collect();
        streams.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        streams.dedup();
        let (events, group_rows): (Vec<_>, Vec<_>) = services
            .store
            .read_streams_as_of(&request.staff.clinic, &streams, at)
            .await?
            .into_iter()
            .partition(|row| row.stream_id == stream.as_str());
        // No member keys: attendance and rosters have no personal field, and other members' are
        // not opened. Rows come in stream order, so each group's events are consecutive.
        let mut group_events: Vec<GroupEvent> = Vec::with_capacity(group_rows.len());
        let mut on_roster = Vec::new();
        for rows in group_rows.chunk_by(|a, b| a.stream_id == b.stream_id) {
            let first = group_events.len();
            for row in rows {
                group_events.push(
                    clinic_infra::codec::decode(&KeySet::default(), row)
                        .map_err(ApiError::internal)?,
                );
            }
            let state = GroupState::from_events(&group_events[first..]);
            if let Ok(group) = GroupId::from_stream_id(&rows[0].stream_id) {
                if state.is_on_roster(member) {
                    on_roster.push(group);
                }
            }
        }
        let attended = engagement::sessions_attended(member, &group_events, at);
        let keys =
            clinic_infra::codec::current_keys_for(&services.keyring, &services.pool, &events)
                .await?;
        let view = super::member::snapshot(member, &events, &keys, attended, on_roster, at)?;
        if view.is_some() {
            super::views::log_reads(
                ctx,
                &[member],
                super::views::Read::Record(DataCategory::History),
                true,
            )
            .await?;
        }
        Ok(view.map(|view| super::member::Member(std::sync::Arc::new(view))))
    }

    /// Reads that needed a break-glass reason, for review (auditors and admins).
    #[graphql(
        guard = "RoleGuard::new(\"review break-glass reads\", roles::AUDIT)",
        complexity = "LIST_PAGES.complexity(first, child_complexity)"
    )]
    async fn break_glass_reads(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<AccessConnection> {
        Ok(access_page(ctx, None, true, first, after).await?)
    }
}

async fn events(
    ctx: &Context<'_>,
    after: Option<i64>,
    first: Option<i32>,
) -> ApiResult<EventConnection> {
    let services = super::services(ctx)?;
    let request = super::request(ctx)?;
    let limit = i64::from(EVENT_PAGES.of(first)?);
    // A position this API issued, as cursors are: a negative one is a mistake to report, not
    // the log's start.
    let after = match after {
        Some(position) if position < 0 => {
            return Err(ApiError::BadInput(
                "`afterPosition` must not be negative".into(),
            ))
        }
        after => after.unwrap_or(0),
    };
    let fetched = services
        .store
        .read_log_by_position(
            &Scope::Clinic(request.staff.clinic.clone()),
            after,
            (limit + 1) as u32,
        )
        .await?;
    let shown = fetched.len().min(limit as usize);
    let members = members_named(&fetched[..shown]);
    super::views::log_reads(ctx, &members, Read::List(DataCategory::History), true).await?;
    Ok(EventConnection::from_fetched(fetched, None, limit, |e| {
        e.position
    }))
}

/// The members whose records `events` show: each member stream's member, and every member a
/// group event names (`member_id` anywhere in its data: joins, attendance, corrections; and
/// the plain list of ids a schema-v1 `SessionHeld` keeps under `attendance`). Reading the log
/// is reading their records, so the access log names them.
pub(super) fn members_named(events: &[RecordedEvent]) -> Vec<MemberId> {
    let mut found = BTreeSet::new();
    for event in events {
        members_in(&event.stream_id, &event.data, &mut found);
    }
    found.into_iter().collect()
}

fn members_in(stream_id: &str, data: &serde_json::Value, found: &mut BTreeSet<MemberId>) {
    fn id(value: &serde_json::Value) -> Option<MemberId> {
        value
            .as_str()
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
            .map(MemberId::new)
    }
    fn walk(value: &serde_json::Value, found: &mut BTreeSet<MemberId>) {
        match value {
            serde_json::Value::Object(fields) => {
                for (key, field) in fields {
                    match (key.as_str(), field) {
                        ("member_id", _) => found.extend(id(field)),
                        ("attendance", serde_json::Value::Array(items)) => {
                            found.extend(items.iter().filter_map(id));
                            walk(field, found);
                        }
                        _ => walk(field, found),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|item| walk(item, found)),
            _ => {}
        }
    }
    if let Ok(member) = MemberId::from_stream_id(stream_id) {
        found.insert(member);
    }
    walk(data, found);
}

/// An access-log cursor: `<row id>.<ordinal>` (a list row gives an entry per member). A bare
/// `<row id>`, as issued before lists were one row, still means "before that row".
fn decode_access_cursor(cursor: &str) -> ApiResult<(i64, i32)> {
    match cursor.split_once('.') {
        Some((id, ordinal)) => id.parse().ok().zip(ordinal.parse().ok()),
        None => cursor.parse().ok().map(|id| (id, 0)),
    }
    .ok_or_else(|| ApiError::BadInput("the `after` cursor is not one this API issued".into()))
}

async fn access_page(
    ctx: &Context<'_>,
    member_id: Option<uuid::Uuid>,
    break_glass_only: bool,
    first: Option<i32>,
    after: Option<String>,
) -> ApiResult<AccessConnection> {
    let services = super::services(ctx)?;
    let request = super::request(ctx)?;
    let limit = i64::from(LIST_PAGES.of(first)?);
    let before = after.as_deref().map(decode_access_cursor).transpose()?;
    let mut rows = access_log::list(
        &services.pool,
        &request.staff.clinic,
        &AccessQuery {
            member_id,
            break_glass_only,
            before,
            limit: limit + 1,
        },
    )
    .await?;
    let has_next_page = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    // Break-glass reasons are sealed under their member's key (`views::log_break_glass`).
    let keys = services
        .keyring
        .current_keys(
            &services.pool,
            rows.iter()
                .filter_map(|row| row.break_glass_reason.as_deref())
                .filter_map(clinic_infra::codec::sealed_subject),
        )
        .await?;
    let edges = rows
        .into_iter()
        .map(|row| {
            let role = row
                .role
                .parse::<crate::auth::Role>()
                .map_err(ApiError::internal)?;
            Ok(AccessEdge {
                cursor: format!("{}.{}", row.id, row.ordinal),
                node: AccessRecord {
                    actor: row.actor,
                    member_id: ID(row.member_id.to_string()),
                    at: row.at,
                    operation: row.operation,
                    role: role.into(),
                    action: row.action,
                    category: row.category.as_deref().and_then(DataCategory::parse),
                    allowed: row.allowed,
                    break_glass_reason: row.break_glass_reason.as_deref().map(|reason| {
                        clinic_infra::codec::open_text(
                            &keys,
                            super::views::BREAK_GLASS_REASON,
                            reason,
                        )
                    }),
                },
            })
        })
        .collect::<ApiResult<Vec<AccessEdge>>>()?;
    Ok(AccessConnection {
        page_info: PageInfo {
            has_next_page,
            end_cursor: edges.last().map(|edge| edge.cursor.clone()),
        },
        edges,
    })
}

/// Parses an id argument.
pub fn parse_uuid(id: &ID) -> ApiResult<uuid::Uuid> {
    uuid::Uuid::parse_str(id.as_str()).map_err(|_| {
        // Shown back, but never more than an id's length, nor a control character.
        let shown: String = id
            .as_str()
            .chars()
            .take(40)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        let more = if id.as_str().chars().count() > 40 {
            "…"
        } else {
            ""
        };
        ApiError::BadInput(format!("`{shown}{more}` is not an id"))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_id_that_is_not_one_is_shown_back_short_and_printable() {
        let id = uuid::Uuid::from_u128(7);
        assert_eq!(parse_uuid(&ID(id.to_string())).ok(), Some(id));
        let long = format!("{}\u{0}", "x".repeat(100_000));
        let message = parse_uuid(&ID(long)).unwrap_err().message();
        assert_eq!(message, format!("`{}…` is not an id", "x".repeat(40)));
        let message = parse_uuid(&ID("ab\u{0}c".into())).unwrap_err().message();
        assert_eq!(message, "`ab?c` is not an id");
    }

    #[test]
    fn access_cursors_name_a_row_and_a_place_and_old_cursors_still_page() {
        assert_eq!(decode_access_cursor("41.3").unwrap(), (41, 3));
        // Issued before lists were one row: "before row 41".
        assert_eq!(decode_access_cursor("41").unwrap(), (41, 0));
        assert!(decode_access_cursor("41.x").is_err());
        assert!(decode_access_cursor("").is_err());
    }

    #[test]
    fn the_log_names_the_members_of_member_streams_and_of_group_events() {
        let (a, b, c, d) = (
            uuid::Uuid::from_u128(0xA),
            uuid::Uuid::from_u128(0xB),
            uuid::Uuid::from_u128(0xC),
            uuid::Uuid::from_u128(0xD),
        );
        let mut found = BTreeSet::new();
        members_in(
            &format!("member-{a}"),
            &json!({ "goal": "sealed" }),
            &mut found,
        );
        // v2 attendance, a join, and a v1 session's plain list of the members present.
        let group = format!("group-{}", uuid::Uuid::from_u128(0x6));
        members_in(
            &group,
            &json!({ "attendance": [{ "member_id": b.to_string(), "status": "present" }] }),
            &mut found,
        );
        members_in(&group, &json!({ "member_id": c.to_string() }), &mut found);
        members_in(
            &group,
            &json!({ "attendance": [d.to_string()] }),
            &mut found,
        );
        members_in(
            &group,
            &json!({ "topic": "no one named", "capacity": 12 }),
            &mut found,
        );
        let expected: BTreeSet<MemberId> = [a, b, c, d].into_iter().map(MemberId::new).collect();
        assert_eq!(found, expected);
    }
}
