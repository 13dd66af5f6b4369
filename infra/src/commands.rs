//! Running a command against a stream: load its events, fold the state, `decide`, append the
//! decision with the stream's version as the expected one. The imperative shell around the
//! domain's deciders, written once for every stream kind.

use std::marker::PhantomData;

use clinic_domain::{Decider, StoredEvent};
use uuid::Uuid;

use crate::clinic::ClinicId;
use crate::codec::{self, CodecError};
use crate::event_store::{
    AppendResult, EventStore, EventStoreError, ExpectedVersion, Metadata, RecordedEvent, StreamId,
};
use crate::keyring::Keyring;

/// Who asks, on whose behalf, and how a retry is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    /// The tenant.
    pub clinic: ClinicId,
    /// The staff member's `sub`, or `system:<process>`.
    pub actor: String,
    /// Shared by everything one request causes.
    pub correlation_id: Uuid,
    /// The client's idempotency key: a retried command with the same key appends nothing new.
    pub idempotency_key: Option<String>,
    /// A digest of the request (operation and arguments) the idempotency key came with, when
    /// the caller can name one: a command whose key is stored with another request's digest
    /// is refused ([`CommandError::KeyReused`]) rather than taken for a retry. Stored on the
    /// command's first event, sealed as that event's personal fields are ([`Metadata::request`]).
    pub request_digest: Option<String>,
}

impl CommandContext {
    /// The id of something new the command creates (a consent, a disclosure): derived from the
    /// idempotency key when there is one, so a retried request names the same thing and finds
    /// it recorded; random otherwise.
    pub fn new_id(&self, what: &str) -> Uuid {
        match &self.idempotency_key {
            None => Uuid::new_v4(),
            Some(key) => {
                let name = format!("{}/{what}/{key}", self.clinic);
                Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, name.as_bytes())
            }
        }
    }
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Executed<S> {
    /// The stream's state after the command.
    pub state: S,
    /// The stream's version after the command.
    pub version: u64,
    /// Where the new events landed; for a retry, where the original request's landed
    /// (`duplicate`), so its answer can wait for them too; `None` when the decision was to
    /// record nothing.
    pub append: Option<AppendResult>,
}

/// Why a command did not run.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error + 'static> {
    /// A rule refused it (or its input was invalid); nothing was written.
    #[error(transparent)]
    Rejected(E),
    /// The client's expected version is not the stream's; nothing was written.
    #[error("the record changed since it was read: it is at version {actual}, not {expected}")]
    VersionMismatch {
        /// What the client expected.
        expected: u64,
        /// The stream's version.
        actual: u64,
    },
    /// A stored event could not be read or written (unknown type or schema version, member
    /// keys unavailable).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] EventStoreError),
    /// The idempotency key was stored with a different request: it is no retry, and running it
    /// as one would answer what the first request recorded. Nothing was written.
    #[error(
        "this Idempotency-Key was used for a different request (other arguments, or about a \
         member since erased); send each new request with a new key"
    )]
    KeyReused,
}

/// Runs commands of one stream kind.
#[derive(Debug, Clone)]
pub struct CommandHandler<D> {
    store: EventStore,
    keyring: Keyring,
    decider: PhantomData<fn() -> D>,
}

/// Attempts when another writer appends between our read and our append.
const MAX_ATTEMPTS: usize = 5;

impl<D> CommandHandler<D>
where
    D: Decider,
    D::Event: StoredEvent,
    D::Command: Clone,
    D::Error: std::error::Error + 'static,
{
    /// A handler over the store.
    pub fn new(store: EventStore, keyring: Keyring) -> Self {
        Self {
            store,
            keyring,
            decider: PhantomData,
        }
    }

    /// The stream's current state (a fact another command depends on, read now).
    pub async fn load(
        &self,
        clinic: &ClinicId,
        stream: &StreamId,
    ) -> Result<D::State, CommandError<D::Error>> {
        Ok(self.load_recorded(clinic, stream).await?.0)
    }

    /// The stream's current state and its events as stored.
    async fn load_recorded(
        &self,
        clinic: &ClinicId,
        stream: &StreamId,
    ) -> Result<(D::State, Vec<RecordedEvent>), CommandError<D::Error>> {
        let recorded = self.store.read_stream(clinic, stream, 1).await?;
        let events: Vec<D::Event> = codec::decode_all(&self.keyring, &recorded).await?;
        let state = events.iter().fold(D::State::default(), D::evolve);
        Ok((state, recorded))
    }

    /// Decides `command` on the stream's current state and appends the result.
    ///
    /// With `expected_version`, the command runs only if the stream is at that version (the
    /// client's optimistic lock). Without it, a concurrent append between read and write makes
    /// the handler re-read and decide again (the rules are checked against fresh state each
    /// time, never skipped). With an idempotency key, a retry of a command that was recorded
    /// returns the current state and appends nothing.
    pub async fn execute(
        &self,
        context: &CommandContext,
        stream: &StreamId,
        expected_version: Option<u64>,
        command: D::Command,
    ) -> Result<Executed<D::State>, CommandError<D::Error>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (state, recorded) = self.load_recorded(&context.clinic, stream).await?;
            let version = recorded.len() as u64;
            if let Some((first, original)) = stored_by_key(context, stream, &recorded) {
                self.check_same_request(context, first).await?;
                return Ok(Executed {
                    state,
                    version,
                    append: Some(original),
                });
            }
            if let Some(expected) = expected_version {
                if expected != version {
                    return Err(CommandError::VersionMismatch {
                        expected,
                        actual: version,
                    });
                }
            }
            let events = D::decide(&state, command.clone()).map_err(CommandError::Rejected)?;
            if events.is_empty() {
                return Ok(Executed {
                    state,
                    version,
                    append: None,
                });
            }
            let mut rows = Vec::with_capacity(events.len());
            for (index, event) in events.iter().enumerate() {
                let metadata = Metadata {
                    actor: context.actor.clone(),
                    correlation_id: context.correlation_id,
                    causation_id: None,
                    request: context
                        .request_digest
                        .clone()
                        .filter(|_| index == 0 && context.idempotency_key.is_some()),
                };
                let id = event_id(context, stream, index);
                rows.push(
                    codec::encode(&self.keyring, &context.clinic, stream, event, id, metadata)
                        .await?,
                );
            }
            let expected = if version == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exactly(version)
            };
            match self
                .store
                .append(&context.clinic, stream, expected, &rows)
                .await
            {
                // Another request with this key stored its events between our read and our
                // append (their ids come from the key; all of them, or some when it decided
                // fewer events): read them back, to answer as a retry of that request, or
                // refuse if it was another one. The next read finds them, so this is once.
                Ok(append) if append.duplicate => {
                    if attempt >= MAX_ATTEMPTS {
                        return Err(CommandError::VersionMismatch {
                            expected: version,
                            actual: append.stream_version,
                        });
                    }
                }
                Err(EventStoreError::Duplicate { .. })
                    if context.idempotency_key.is_some() && attempt < MAX_ATTEMPTS => {}
                Ok(append) => {
                    let state = events.iter().fold(state, D::evolve);
                    return Ok(Executed {
                        state,
                        version: append.stream_version,
                        append: Some(append),
                    });
                }
                Err(EventStoreError::Conflict { actual, .. }) => {
                    if let Some(expected) = expected_version {
                        return Err(CommandError::VersionMismatch { expected, actual });
                    }
                    if attempt >= MAX_ATTEMPTS {
                        return Err(CommandError::VersionMismatch {
                            expected: version,
                            actual,
                        });
                    }
                }
                Err(other) => return Err(other.into()),
            }
        }
    }
}

impl<D> CommandHandler<D>
where
    D: Decider,
    D::Error: std::error::Error + 'static,
{
    /// Refuses a command whose idempotency key is stored with a different request. A stored
    /// event without a digest (written before digests were kept, or by a caller that names
    /// none) passes, as every retry did before. One whose digest was erased with its member
    /// cannot be compared, and is refused: taken for a retry, a request about another member
    /// sent with that key would be answered with the erased member's result and dropped.
    async fn check_same_request(
        &self,
        context: &CommandContext,
        stored_first: &RecordedEvent,
    ) -> Result<(), CommandError<D::Error>> {
        let Some(asked) = &context.request_digest else {
            return Ok(());
        };
        let stored = codec::request_of(&self.keyring, stored_first)
            .await
            .map_err(CodecError::from)?;
        match stored {
            Some(stored) if stored != *asked => Err(CommandError::KeyReused),
            _ => Ok(()),
        }
    }
}

/// The events a request with the context's idempotency key stored in `recorded` (the first one,
/// and where they all landed, as a retried append is answered), if it stored any.
fn stored_by_key<'r>(
    context: &CommandContext,
    stream: &StreamId,
    recorded: &'r [RecordedEvent],
) -> Option<(&'r RecordedEvent, AppendResult)> {
    context.idempotency_key.as_ref()?;
    let first_id = event_id(context, stream, 0);
    let start = recorded.iter().position(|row| row.event_id == first_id)?;
    let stored: Vec<&RecordedEvent> = recorded[start..]
        .iter()
        .enumerate()
        .take_while(|(index, row)| row.event_id == event_id(context, stream, *index))
        .map(|(_, row)| row)
        .collect();
    let last = stored.last()?;
    Some((
        stored[0],
        AppendResult {
            stream_version: last.version as u64,
            positions: stored.iter().map(|row| row.position).collect(),
            duplicate: true,
        },
    ))
}

/// Event ids: random, or derived from the idempotency key so a retry produces the same ids
/// (and the store recognises it).
fn event_id(context: &CommandContext, stream: &StreamId, index: usize) -> Uuid {
    match &context.idempotency_key {
        None => Uuid::new_v4(),
        Some(key) => {
            let name = format!("{}/{}/{}/{}", context.clinic, stream, key, index);
            Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, name.as_bytes())
        }
    }
}

/// The uuid v5 namespace of idempotent event ids.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x4f1e_2a6b_9c1d_4e8f_a0b2_7d3c_5e6f_8a9b);
