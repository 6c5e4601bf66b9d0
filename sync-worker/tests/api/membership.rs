use chrono::{DateTime, TimeDelta, Utc};
use contracts::{SessionRevoked, StaffRoleGrant, UserCreated, UserDeactivated, UserRolesChanged};
use uuid::Uuid;

use crate::helpers::{Message, TestApp, spawn_app};

/// A `membership` row without its key and user.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct MembershipRow {
    login: String,
    display_name: String,
    unit_id: Option<Uuid>,
    role: i16,
    is_active: bool,
    created_at: DateTime<Utc>,
    changed_at: DateTime<Utc>,
}

async fn membership(app: &TestApp, user_uuid: Uuid) -> Vec<MembershipRow> {
    sqlx::query_as(
        "select login, display_name, unit_id, role, is_active, created_at, changed_at
         from membership where user_uuid = $1 order by role, unit_id",
    )
    .bind(user_uuid)
    .fetch_all(&app.db.pool)
    .await
    .expect("read membership")
}

/// A user's life in auth: created as a shift manager in one pizzeria and kitchen staff in
/// another, made chain admin and cashier (and nothing else), logged out once, deactivated.
struct TestUser {
    user_id: Uuid,
    units: [Uuid; 2],
    start: DateTime<Utc>,
}

impl TestUser {
    fn new(units: [Uuid; 2]) -> Self {
        TestUser {
            user_id: Uuid::new_v4(),
            units,
            start: DateTime::from_timestamp(1_700_000_000, 0).expect("a valid time"),
        }
    }

    fn at(&self, sequence: i64) -> DateTime<Utc> {
        self.start + TimeDelta::seconds(sequence)
    }

    fn grant(role: &str, pizzeria_id: Option<Uuid>) -> StaffRoleGrant {
        StaffRoleGrant {
            role: role.into(),
            pizzeria_id,
        }
    }

    fn life(&self) -> Vec<Message> {
        let [a, b] = self.units;
        vec![
            Message::from_service(
                "auth",
                1,
                &UserCreated {
                    user_id: self.user_id,
                    login: "olga.k".into(),
                    display_name: "Olga K.".into(),
                    roles: vec![
                        Self::grant("shift_manager", Some(a)),
                        Self::grant("kitchen_staff", Some(b)),
                    ],
                    active: true,
                    at: self.at(1),
                    actor_id: None,
                },
            ),
            Message::from_service(
                "auth",
                2,
                &UserRolesChanged {
                    user_id: self.user_id,
                    login: "olga.k".into(),
                    display_name: "Olga Kuznetsova".into(),
                    roles: vec![
                        Self::grant("chain_admin", None),
                        Self::grant("cashier", Some(a)),
                    ],
                    at: self.at(2),
                    actor_id: Some(Uuid::new_v4()),
                },
            ),
            Message::from_service(
                "auth",
                3,
                &SessionRevoked {
                    user_id: self.user_id,
                    session_id: Uuid::new_v4(),
                    at: self.at(3),
                    reason: "logout".into(),
                    actor_id: None,
                },
            ),
            Message::from_service(
                "auth",
                4,
                &UserDeactivated {
                    user_id: self.user_id,
                    at: self.at(4),
                    actor_id: Some(Uuid::new_v4()),
                },
            ),
        ]
    }

    /// What the whole life leaves in `membership`.
    fn expected(&self) -> Vec<MembershipRow> {
        let row = |unit_id, role| MembershipRow {
            login: "olga.k".into(),
            display_name: "Olga Kuznetsova".into(),
            unit_id,
            role,
            is_active: false,
            created_at: self.at(1),
            changed_at: self.at(4),
        };
        vec![row(None, 1), row(Some(self.units[0]), 4)]
    }
}

async fn wait_for_membership(
    app: &TestApp,
    user: &TestUser,
    what: &str,
    done: impl Fn(&[MembershipRow]) -> bool,
) -> Vec<MembershipRow> {
    testkit::eventually(what, crate::helpers::PATIENCE, || async {
        let rows = membership(app, user.user_id).await;
        done(&rows).then_some(rows)
    })
    .await
}

#[tokio::test]
async fn a_user_and_their_roles_are_mirrored_into_membership() {
    let app = spawn_app().await;
    let user = TestUser::new([Uuid::new_v4(), Uuid::new_v4()]);
    let life = user.life();

    app.publish(&life[0]).await;
    let created = wait_for_membership(&app, &user, "the user's rows", |rows| rows.len() == 2).await;
    let [a, b] = user.units;
    let roles: Vec<(Option<Uuid>, i16, bool)> = created
        .iter()
        .map(|r| (r.unit_id, r.role, r.is_active))
        .collect();
    assert_eq!(roles, vec![(Some(a), 3, true), (Some(b), 5, true)]);
    assert!(created.iter().all(|r| r.login == "olga.k"), "{created:?}");

    app.publish_all(&life[1..]).await;
    let rows = wait_for_membership(&app, &user, "the user deactivated", |rows| {
        rows.iter().all(|r| !r.is_active)
    })
    .await;
    assert_eq!(rows, user.expected());
}

#[tokio::test]
async fn duplicated_and_shuffled_user_events_leave_the_same_end_state() {
    let app = spawn_app().await;
    let units = [Uuid::new_v4(), Uuid::new_v4()];
    let in_order = TestUser::new(units);
    let shuffled = TestUser::new(units);

    // Newest first, the deactivation lands before the roles it does not carry, and the roles
    // change before the creation it replaces.
    app.publish_straight_and_shuffled(&in_order.life(), &shuffled.life())
        .await;
    assert_eq!(
        membership(&app, in_order.user_id).await,
        in_order.expected()
    );
    assert_eq!(
        membership(&app, shuffled.user_id).await,
        shuffled.expected()
    );
}

#[tokio::test]
async fn a_roles_change_with_a_huge_sequence_is_refused_and_does_not_freeze_the_user() {
    let app = spawn_app().await;
    let user = TestUser::new([Uuid::new_v4(), Uuid::new_v4()]);
    let life = user.life();
    app.publish(&life[0]).await;
    let created = wait_for_membership(&app, &user, "the user's rows", |rows| rows.len() == 2).await;

    // A chain-admin grant that would have been the last word on this user for good.
    let forged = Message::from_service(
        "auth",
        1 << 62,
        &UserRolesChanged {
            user_id: user.user_id,
            login: "olga.k".into(),
            display_name: "Olga K.".into(),
            roles: vec![TestUser::grant("chain_admin", None)],
            at: user.at(2),
            actor_id: None,
        },
    );
    app.publish(&forged).await;
    let letters = app.wait_for_dead_letters(1).await;
    let error = letters[0].error.as_deref().unwrap_or_default();
    assert!(
        error.contains("jumps more than 1000 ahead of the last applied sequence 1"),
        "{error}"
    );
    assert_eq!(letters[0].attempts, Some(1), "refused at once, not retried");
    assert_eq!(membership(&app, user.user_id).await, created);

    // The user's real history still applies.
    app.publish_all(&life[1..]).await;
    let rows = wait_for_membership(&app, &user, "the user deactivated", |rows| {
        rows.iter().all(|r| !r.is_active)
    })
    .await;
    assert_eq!(rows, user.expected());
}
