//! The handler that mirrors events into the legacy tables: the tracker's orders, auth's staff
//! accounts and the devices service's kitchen devices.
//!
//! The bus consumer hands over a batch of events with the transaction its inbox rows are written
//! in, so an event is mirrored exactly once or not at all. A batch is written set-based: its
//! events are decoded, grouped by what they change, and each table is written once per batch
//! (see [`orders`]). The end state is the same whatever order and however often the events
//! arrive:
//! - an event for an order whose `OrderAcceptedByTracker` is not mirrored yet (nor in the same
//!   batch) fails as transient and comes back after a retry delay, by which time the accepted
//!   event has landed;
//! - a status only moves forward in the order's event sequence, so a late, stale event adds
//!   its history row but never overwrites newer state; users and devices keep a sequence of
//!   their own (see [`staff`] and [`devices`]);
//! - every history row names its event, so the same event never adds a second row.

mod devices;
mod orders;
mod staff;

use bus::consumer::{BatchError, Handler, HandlerError, Incoming};
use contracts::{DecodeError, Envelope, Event};
use sqlx::{Acquire, PgConnection};
use uuid::Uuid;

/// The sync worker's [`Handler`].
#[derive(Debug, Clone, Copy)]
pub struct LegacyMirror {
    /// How far ahead of what a row last applied an event's `sequence` may be. Sequences grow by
    /// one per event of a subject, and the rows only take a newer event; one message with a
    /// huge sequence (`auth.user.roles_changed` with a chain-admin role and sequence 2^62)
    /// would otherwise be the last word on its row for good. Such an event is dead-lettered
    /// with the reason instead.
    pub max_sequence_jump: i64,
}

impl Default for LegacyMirror {
    fn default() -> Self {
        LegacyMirror {
            max_sequence_jump: DEFAULT_MAX_SEQUENCE_JUMP,
        }
    }
}

/// Far more events than one order, user or device has between two that the mirror applies.
pub const DEFAULT_MAX_SEQUENCE_JUMP: i64 = 1000;

impl Handler for LegacyMirror {
    const BATCHED: bool = true;

    /// The batch path with a batch of one, so both paths write the same rows.
    async fn handle(&self, conn: &mut PgConnection, event: &Incoming) -> Result<(), HandlerError> {
        match mirror(conn, &[&event.envelope], self.max_sequence_jump).await {
            Ok(()) => Ok(()),
            Err(Failure::Events(mut failed)) => match failed.pop() {
                Some((_, error)) => Err(error.into()),
                None => Ok(()),
            },
            Err(Failure::Database(error)) => Err(MirrorError::Database(error).into()),
        }
    }

    async fn handle_batch<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [&'a Incoming],
    ) -> Result<(), BatchError> {
        let envelopes: Vec<&Envelope> = events.iter().map(|event| &event.envelope).collect();
        mirror(conn, &envelopes, self.max_sequence_jump)
            .await
            .map_err(|failure| match failure {
                Failure::Events(failed) => BatchError::Events(
                    failed
                        .into_iter()
                        .map(|(index, error)| (index, error.into()))
                        .collect(),
                ),
                // A constraint broken by one of the rows, which `mirror` could not pin on an event
                // (it only happens for a batch of one): that event is to blame.
                Failure::Database(error) if is_bad_data(&error) && events.len() == 1 => {
                    BatchError::Events(vec![(0, MirrorError::Database(error).into())])
                }
                // A deadlock, a lost connection: nobody's fault in particular.
                Failure::Database(error) => BatchError::Batch(error),
            })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("the event cannot be decoded")]
    Undecodable(#[source] DecodeError),
    /// The event contradicts itself, e.g. a product pointing at an item that is not there.
    #[error("the event is inconsistent: {0}")]
    Inconsistent(String),
    #[error("order {0} is not mirrored yet: its OrderAcceptedByTracker has not arrived")]
    OrderNotYetAccepted(Uuid),
    /// The event's sequence is further ahead of its row than any real history gets.
    #[error(
        "refused: sequence {sequence} of {subject} jumps more than {bound} ahead of the last \
         applied sequence {last}"
    )]
    SequenceJump {
        subject: String,
        sequence: i64,
        last: i64,
        bound: i64,
    },
    #[error(transparent)]
    Database(#[from] anyhow::Error),
}

impl From<MirrorError> for HandlerError {
    fn from(error: MirrorError) -> Self {
        match error {
            MirrorError::Undecodable(_)
            | MirrorError::Inconsistent(_)
            | MirrorError::SequenceJump { .. } => HandlerError::Permanent(error.into()),
            MirrorError::OrderNotYetAccepted(_) => HandlerError::Waiting(error.into()),
            MirrorError::Database(error) if is_bad_data(&error) => HandlerError::Permanent(error),
            MirrorError::Database(error) => HandlerError::Transient(error),
        }
    }
}

/// A database error that no retry can fix: the row breaks a type or a constraint (SQLSTATE
/// classes 22 and 23). Anything else (a lost connection, a deadlock) may pass on retry.
fn is_bad_data(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<sqlx::Error>())
        .filter_map(|e| e.as_database_error())
        .filter_map(|e| e.code())
        .any(|code| code.starts_with("22") || code.starts_with("23"))
}

/// Why a batch could not be applied.
#[derive(Debug)]
pub enum Failure {
    /// These events (by position in the batch) cannot be applied; the rest could be.
    Events(Vec<(usize, MirrorError)>),
    /// A statement for the whole batch failed; which event caused it is not known.
    Database(anyhow::Error),
}

impl Failure {
    fn database(what: &'static str) -> impl FnOnce(sqlx::Error) -> Failure {
        move |error| Failure::Database(anyhow::Error::new(error).context(what))
    }

    fn event(index: usize, error: MirrorError) -> Failure {
        Failure::Events(vec![(index, error)])
    }

    /// The event at `index` failed: its own fault, or the database's (`MirrorError::Database`).
    fn of(index: usize, error: MirrorError) -> Failure {
        match error {
            MirrorError::Database(error) => Failure::Database(error),
            other => Failure::event(index, other),
        }
    }
}

/// Writes what `envelopes` say into the legacy tables, as one unit inside the caller's
/// transaction. On failure, names the events that failed, or says the batch failed as a whole.
///
/// A row with bad data fails the batch's whole statement without saying whose row it was, so
/// then the batch is rolled back to a savepoint and applied one event at a time to find it.
#[tracing::instrument(skip_all, fields(events = envelopes.len()))]
pub async fn mirror(
    conn: &mut PgConnection,
    envelopes: &[&Envelope],
    max_sequence_jump: i64,
) -> Result<(), Failure> {
    if envelopes.len() < 2 {
        return apply(conn, envelopes, max_sequence_jump).await;
    }
    let mut savepoint = conn
        .begin()
        .await
        .map_err(Failure::database("starting a savepoint"))?;
    match apply(&mut savepoint, envelopes, max_sequence_jump).await {
        Ok(()) => savepoint
            .commit()
            .await
            .map_err(Failure::database("releasing the savepoint")),
        Err(Failure::Database(error)) if is_bad_data(&error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "a batch has bad data; applying it one event at a time to find it"
            );
            savepoint
                .rollback()
                .await
                .map_err(Failure::database("rolling back to the savepoint"))?;
            for (index, envelope) in envelopes.iter().enumerate() {
                apply(conn, &[envelope], max_sequence_jump).await.map_err(
                    |failure| match failure {
                        Failure::Events(failed) => Failure::Events(
                            failed
                                .into_iter()
                                .map(|(_, error)| (index, error))
                                .collect(),
                        ),
                        Failure::Database(error) if is_bad_data(&error) => {
                            Failure::event(index, MirrorError::Database(error))
                        }
                        whole => whole,
                    },
                )?;
            }
            Ok(())
        }
        // The consumer rolls the whole transaction back.
        Err(failure) => Err(failure),
    }
}

/// Decodes and groups the events, then writes them: orders set-based, users and devices (a
/// trickle next to the orders) one by one.
async fn apply(
    conn: &mut PgConnection,
    envelopes: &[&Envelope],
    max_sequence_jump: i64,
) -> Result<(), Failure> {
    let mut orders = orders::Batch::default();
    let mut users = Vec::new();
    let mut devices = Vec::new();
    for (index, envelope) in envelopes.iter().enumerate() {
        let planned = plan(envelope).map_err(|error| Failure::event(index, error))?;
        match planned {
            Planned::Order(event) => orders.push(index, envelope, event),
            Planned::User(event) => users.push((index, event)),
            Planned::Device(event) => devices.push((index, event)),
            Planned::Nothing => {}
        }
    }
    orders.apply(conn, max_sequence_jump).await?;
    for (index, event) in &users {
        staff::apply(conn, event, max_sequence_jump)
            .await
            .map_err(|e| Failure::of(*index, e))?;
    }
    for (index, event) in &devices {
        devices::apply(conn, event, max_sequence_jump)
            .await
            .map_err(|e| Failure::of(*index, e))?;
    }
    Ok(())
}

/// Refuses an event whose `sequence` is more than `bound` ahead of `last`, the sequence its
/// row last applied (0 for a subject not seen yet).
fn check_jump(subject: &str, sequence: i64, last: i64, bound: i64) -> Result<(), MirrorError> {
    if sequence.saturating_sub(last) > bound {
        return Err(MirrorError::SequenceJump {
            subject: subject.to_owned(),
            sequence,
            last,
            bound,
        });
    }
    Ok(())
}

/// What one event will change.
enum Planned {
    Order(orders::OrderEvent),
    User(staff::UserEvent),
    Device(devices::DeviceEvent),
    /// Nothing the legacy tables have a place for.
    Nothing,
}

fn plan(envelope: &Envelope) -> Result<Planned, MirrorError> {
    if let Some(event) = orders::plan(envelope)? {
        return Ok(Planned::Order(event));
    }
    if let Some(event) = staff::plan(envelope)? {
        return Ok(Planned::User(event));
    }
    if let Some(event) = devices::plan(envelope)? {
        return Ok(Planned::Device(event));
    }
    tracing::debug!(
        event_id = %envelope.id,
        event_type = %envelope.event_type,
        "not mirrored: the legacy tables have no place for it"
    );
    Ok(Planned::Nothing)
}

fn decode<E: Event>(envelope: &Envelope) -> Result<E, MirrorError> {
    envelope.decode().map_err(MirrorError::Undecodable)
}

/// Converts a count from the event into the monolith's narrower integer column.
fn narrow<T, U>(value: T, field: &str) -> Result<U, MirrorError>
where
    T: Copy + std::fmt::Display,
    U: TryFrom<T>,
{
    U::try_from(value).map_err(|_| {
        MirrorError::Inconsistent(format!("{field} {value} does not fit the legacy column"))
    })
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use contracts::{OrderInWork, OrderPacked};

    use super::*;

    #[test]
    fn an_event_before_its_order_waits_for_it() {
        let error = HandlerError::from(MirrorError::OrderNotYetAccepted(Uuid::nil()));
        assert!(matches!(error, HandlerError::Waiting(_)));
    }

    #[test]
    fn an_undecodable_event_is_dead_lettered_at_once() {
        let at = Utc::now();
        let event = OrderPacked {
            order_id: Uuid::new_v4(),
            pizzeria_id: Uuid::new_v4(),
            at,
        };
        let mut envelope = Envelope::wrap("tracker", &event, 1, None).expect("wraps");
        envelope.event_type = OrderInWork::TYPE.to_owned();
        envelope.data = serde_json::json!({ "order_id": "not a uuid" });
        let error = decode::<OrderInWork>(&envelope).expect_err("bad data");
        let error = HandlerError::from(error);
        assert!(matches!(error, HandlerError::Permanent(_)));
        assert!(error.to_string().contains("cannot be decoded"), "{error}");
    }

    #[test]
    fn a_lost_connection_is_retried() {
        let error = MirrorError::from(anyhow::Error::new(sqlx::Error::PoolTimedOut).context("x"));
        assert!(matches!(
            HandlerError::from(error),
            HandlerError::Transient(_)
        ));
    }

    #[test]
    fn a_number_too_large_for_the_legacy_column_is_inconsistent() {
        assert_eq!(narrow::<u32, i16>(3, "quantity").ok(), Some(3));
        assert!(matches!(
            narrow::<u32, i16>(40_000, "quantity"),
            Err(MirrorError::Inconsistent(_))
        ));
    }
}
