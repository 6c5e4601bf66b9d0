//! Auth's user events into `membership`.
//!
//! `UserCreated` and `UserRolesChanged` carry the login, display name and the full role list,
//! so the user's rows are replaced, never patched, and only by an event newer than the one they
//! came from (`sync_user_state.last_sequence`). Deactivation carries no roles; it only clears
//! `is_active`, which no later event sets again, so it needs no sequence of its own and a late,
//! older roles event still lands. `SessionRevoked` is not mirrored: the monolith kept no
//! sessions.

use access::Role;
use anyhow::Context;
use chrono::{DateTime, Utc};
use contracts::{Envelope, Event, StaffRoleGrant, UserCreated, UserDeactivated, UserRolesChanged};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{MirrorError, check_jump, decode};
use crate::db::{self, Membership};
use crate::legacy::{self, NAME_WIDTH, fit};

/// A user event, decoded and checked.
pub(super) struct UserEvent {
    user_uuid: Uuid,
    sequence: i64,
    at: DateTime<Utc>,
    /// False when the event says the user is not active.
    active: bool,
    /// The user's rows as the event has them; `None` when it does not carry them.
    rows: Option<UserRows>,
}

struct UserRows {
    login: String,
    display_name: String,
    roles: Vec<Membership>,
}

impl UserRows {
    fn new(
        login: &str,
        display_name: &str,
        grants: &[StaffRoleGrant],
    ) -> Result<Self, MirrorError> {
        Ok(UserRows {
            login: fit(login, NAME_WIDTH).to_owned(),
            display_name: fit(display_name, NAME_WIDTH).to_owned(),
            roles: memberships(grants)?,
        })
    }
}

/// Decodes an auth user event; `None` for any other type.
pub(super) fn plan(envelope: &Envelope) -> Result<Option<UserEvent>, MirrorError> {
    let event = match envelope.event_type.as_str() {
        UserCreated::TYPE => {
            let e: UserCreated = decode(envelope)?;
            UserEvent {
                user_uuid: e.user_id,
                sequence: envelope.sequence,
                at: e.at,
                active: e.active,
                rows: Some(UserRows::new(&e.login, &e.display_name, &e.roles)?),
            }
        }
        UserRolesChanged::TYPE => {
            let e: UserRolesChanged = decode(envelope)?;
            UserEvent {
                user_uuid: e.user_id,
                sequence: envelope.sequence,
                at: e.at,
                active: true,
                rows: Some(UserRows::new(&e.login, &e.display_name, &e.roles)?),
            }
        }
        UserDeactivated::TYPE => {
            let e: UserDeactivated = decode(envelope)?;
            UserEvent {
                user_uuid: e.user_id,
                sequence: envelope.sequence,
                at: e.at,
                active: false,
                rows: None,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(event))
}

/// The membership rows of a role list: one per unit and role, a chain admin's without a unit.
/// A role the monolith has no code for is left out: a newer auth may grant roles the old
/// screens never knew.
fn memberships(grants: &[StaffRoleGrant]) -> Result<Vec<Membership>, MirrorError> {
    let mut rows = Vec::with_capacity(grants.len());
    for grant in grants {
        let Some((role, code)) =
            Role::parse(&grant.role).and_then(|r| Some((r, legacy::role_code(r)?)))
        else {
            tracing::warn!(role = %grant.role, "not mirrored: the monolith has no code for the role");
            continue;
        };
        let unit_id = if role.is_chain_wide() {
            None
        } else {
            Some(grant.pizzeria_id.ok_or_else(|| {
                MirrorError::Inconsistent(format!("the role {} names no pizzeria", grant.role))
            })?)
        };
        rows.push(Membership {
            unit_id,
            role: code,
        });
    }
    rows.sort();
    rows.dedup();
    Ok(rows)
}

#[tracing::instrument(skip_all, fields(user_uuid = %event.user_uuid, sequence = event.sequence))]
pub(super) async fn apply(
    conn: &mut PgConnection,
    event: &UserEvent,
    max_sequence_jump: i64,
) -> Result<(), MirrorError> {
    let rows_sequence = db::lock_user_state(conn, event.user_uuid, event.at)
        .await
        .context("locking the user's sync state")?;
    let subject = format!("user {}", event.user_uuid);
    check_jump(&subject, event.sequence, rows_sequence, max_sequence_jump)?;
    let newer_rows = event
        .rows
        .as_ref()
        .filter(|_| event.sequence > rows_sequence);
    db::update_user_state(
        conn,
        event.user_uuid,
        newer_rows.map_or(0, |_| event.sequence),
        event.active,
        event.at,
    )
    .await
    .context("updating the user's sync state")?;
    match newer_rows {
        Some(rows) => db::replace_membership(
            conn,
            event.user_uuid,
            &rows.login,
            &rows.display_name,
            &rows.roles,
        )
        .await
        .context("replacing the user's membership rows")?,
        None => {
            if event.rows.is_some() {
                tracing::debug!(
                    applied_sequence = rows_sequence,
                    "stale roles event: the rows stay as a newer one left them"
                );
            }
            db::refresh_membership(conn, event.user_uuid)
                .await
                .context("updating the user's membership rows")?
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(role: &str, pizzeria_id: Option<Uuid>) -> StaffRoleGrant {
        StaffRoleGrant {
            role: role.into(),
            pizzeria_id,
        }
    }

    #[test]
    fn a_chain_admin_has_one_row_without_a_unit() {
        let unit = Uuid::new_v4();
        let rows = memberships(&[
            grant("shift_manager", Some(unit)),
            grant("chain_admin", None),
            grant("shift_manager", Some(unit)),
        ])
        .expect("valid roles");
        assert_eq!(
            rows,
            vec![
                Membership {
                    unit_id: None,
                    role: 1
                },
                Membership {
                    unit_id: Some(unit),
                    role: 3
                },
            ]
        );
    }

    #[test]
    fn an_unknown_role_is_left_out_and_a_unit_role_needs_a_unit() {
        let unit = Uuid::new_v4();
        let rows = memberships(&[grant("pizza_tester", Some(unit))]).expect("skipped");
        assert!(rows.is_empty());
        assert!(matches!(
            memberships(&[grant("cashier", None)]),
            Err(MirrorError::Inconsistent(_))
        ));
    }
}
