//! Live updates over websocket (`/graphql/ws`, graphql-transport-ws).

use std::time::Duration;

use async_graphql::{Context, Subscription};
use clinic_infra::event_store::{
    CommitChanges, EventStore, LogCursor, Notifications, RecordedEvent, Scope,
};
use futures::stream::{self, Stream, StreamExt};
use time::OffsetDateTime;

use clinic_infra::read_models;

use super::audit::{members_named, Event};
use super::dashboard::PipelineBoard;
use super::enums::DataCategory;
use super::guard::{roles, RoleGuard};
use super::views::{Read, Reader};
use super::{RequestContext, Services};
use crate::error::ApiError;

/// How often a subscription reads the log when no notification arrives.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The root subscription.
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// New events of the caller's clinic as they are appended, optionally only of streams whose
    /// id starts with `streamPrefix` (e.g. `member-` or one stream's id). Auditors and admins.
    #[graphql(guard = "RoleGuard::new(\"follow the event log\", roles::AUDIT)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        stream_prefix: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Event>>> {
        let services = ctx.data::<Services>()?;
        let request = ctx.data::<RequestContext>()?;
        let scope = Scope::Clinic(request.staff.clinic.clone());
        let store = services.store.clone();
        let start = store.log_head(&scope).await.map_err(ApiError::from)?;
        let notifications = Notifications::listen(services.store.pool());
        let prefix = stream_prefix.unwrap_or_default();
        let state = Follow {
            store,
            scope,
            cursor: start,
            notifications,
            buffered: Vec::new(),
            reader: Reader::of(ctx)?,
        };
        // The state is gone after a failure: the error is the subscription's last item.
        let events = stream::unfold(Some(state), move |state| {
            let prefix = prefix.clone();
            async move {
                let mut state = state?;
                loop {
                    if let Some(event) = state.buffered.pop() {
                        if event.stream_id.starts_with(&prefix) {
                            // Pushed only once the read is in the access log.
                            let members = members_named(std::slice::from_ref(&event));
                            let read = Read::List(DataCategory::History);
                            if let Err(error) = state.reader.log(&members, read).await {
                                return Some((Err(error.into()), None));
                            }
                            return Some((Ok(Event::of(event, None)), Some(state)));
                        }
                        continue;
                    }
                    // Wake on a notification or the poll interval, whichever comes first.
                    state.notifications.next(POLL_INTERVAL).await;
                    match state.store.read_log(&state.scope, state.cursor, 100).await {
                        Ok(page) => {
                            state.cursor = page.next;
                            state.buffered = page.events.into_iter().rev().collect();
                        }
                        Err(error) => return Some((Err(ApiError::from(error).into()), None)),
                    }
                }
            }
        });
        Ok(until_expiry(request, events))
    }

    /// The pipeline board now, then again each time it changes (members per stage and per
    /// level of care; counts only, no one named).
    #[graphql(guard = "RoleGuard::new(\"see the pipeline\", roles::READ_MEMBERS)")]
    async fn pipeline_changed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<PipelineBoard>>> {
        let services = ctx.data::<Services>()?;
        let request = ctx.data::<RequestContext>()?;
        let state = Watch {
            clinic: request.staff.clinic.clone(),
            changes: services.boards.changes(),
            boards: services.boards.clone(),
            last: None,
        };
        // As `events`: a failure is said, then the subscription ends. The board changes only
        // when the members projection commits: woken then (not at the append, which the
        // projection has not folded yet), it reads through the server's copy, so the open
        // dashboards of a clinic share a read per commit.
        let boards = stream::unfold(Some(state), |state| async move {
            let mut state = state?;
            loop {
                state.changes.seen();
                let board = match state.boards.board(&state.clinic).await {
                    Ok(board) => board,
                    Err(error) => return Some((Err(ApiError::from(error).into()), None)),
                };
                if state.last.as_ref() != Some(&board) {
                    state.last = Some(board.clone());
                    return Some((Ok(PipelineBoard::from(board)), Some(state)));
                }
                state.changes.next(POLL_INTERVAL).await;
            }
        });
        Ok(until_expiry(request, boards))
    }
}

/// A subscription lives no longer than the token it was opened with: at its `exp` the stream
/// ends (the client opens a new one with a fresh token).
fn until_expiry<S: Stream + Send>(
    request: &RequestContext,
    items: S,
) -> impl Stream<Item = S::Item> {
    let left = (request.staff.expires_at - OffsetDateTime::now_utc())
        .try_into()
        .unwrap_or(Duration::ZERO);
    items.take_until(tokio::time::sleep(left))
}

/// State of a pipeline subscription: the last board sent.
struct Watch {
    clinic: clinic_infra::clinic::ClinicId,
    boards: read_models::BoardCache,
    changes: CommitChanges,
    last: Option<read_models::PipelineBoard>,
}

struct Follow {
    store: EventStore,
    scope: Scope,
    cursor: LogCursor,
    notifications: Notifications,
    /// Read but not yet delivered, last first.
    buffered: Vec<RecordedEvent>,
    /// Who follows: each pushed event is logged as their read.
    reader: Reader,
}
