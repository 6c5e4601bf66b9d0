//! The caller, as the auth service describes it, and the wire format of introspection.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::permissions::Permission;

/// A signed-in staff member and what they may do where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffPrincipal {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub login: String,
    pub display_name: String,
    /// Every permission in every pizzeria.
    pub chain_admin: bool,
    /// What chain-wide roles other than the chain admin's give (the on-call roles' operations
    /// permissions): held in every pizzeria, and for what belongs to no pizzeria.
    pub chain_permissions: Vec<Permission>,
    pub grants: Vec<Grant>,
    /// When the session ends if it is not used again (the idle timeout), or at the latest (the
    /// absolute timeout). A cached answer never outlives it.
    pub expires_at: DateTime<Utc>,
    /// The language the person chose for the screens (a code of [`crate::LANGUAGES`]); `None`:
    /// their browser's.
    pub language: Option<String>,
}

/// One role in one pizzeria and the permissions it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub pizzeria_id: Uuid,
    /// The role's wire name (`shift_manager`); a string, so a role added later in the auth
    /// service does not break this build.
    pub role: String,
    pub permissions: Vec<Permission>,
}

impl StaffPrincipal {
    /// Whether the caller may do `permission` in `pizzeria_id`.
    pub fn can(&self, pizzeria_id: Uuid, permission: Permission) -> bool {
        self.can_chain_wide(permission)
            || self
                .grants
                .iter()
                .any(|g| g.pizzeria_id == pizzeria_id && g.permissions.contains(&permission))
    }

    /// Whether the caller may do `permission` in some pizzeria: what a route whose pizzeria is
    /// in the body checks before reading it (permission before validation).
    pub fn can_somewhere(&self, permission: Permission) -> bool {
        self.chain_admin
            || self
                .grants
                .iter()
                .any(|g| g.permissions.contains(&permission))
    }

    /// Whether the caller may do `permission` across the chain, for what belongs to no
    /// pizzeria (the bus, dead letters): a chain admin, or a chain-wide role that carries it.
    pub fn can_chain_wide(&self, permission: Permission) -> bool {
        self.chain_admin || self.chain_permissions.contains(&permission)
    }

    /// Whether the caller has any role in `pizzeria_id` (or is a chain admin).
    pub fn works_in(&self, pizzeria_id: Uuid) -> bool {
        self.chain_admin || self.grants.iter().any(|g| g.pizzeria_id == pizzeria_id)
    }

    /// Whether the caller holds `role` in `pizzeria_id`.
    pub fn has_role(&self, pizzeria_id: Uuid, role: crate::Role) -> bool {
        self.grants
            .iter()
            .any(|g| g.pizzeria_id == pizzeria_id && g.role == role.as_str())
    }
}

/// `POST /internal/v1/introspect` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct IntrospectionRequest {
    pub token: String,
}

/// Auth's `POST /internal/v1/users/status` (behind the same service key): whether users are
/// still active. The devices service asks it about the staff who approved its devices.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserStatusRequest {
    pub user_ids: Vec<uuid::Uuid>,
}

/// One entry per known user asked about; unknown ids are left out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserStatusResponse {
    pub users: Vec<UserStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserStatus {
    pub user_id: uuid::Uuid,
    pub active: bool,
}

/// The answer: `{"active": false}` for a token that is unknown, expired or revoked, or whose
/// user is deactivated; otherwise `active` with the session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntrospectionResponse {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub login: String,
    pub display_name: String,
    pub chain_admin: bool,
    /// Permission names held across the chain by the on-call roles; absent from older auth
    /// services, and a name this build does not know is ignored.
    #[serde(default)]
    pub chain_permissions: Vec<String>,
    pub grants: Vec<GrantInfo>,
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrantInfo {
    pub pizzeria_id: Uuid,
    pub role: String,
    /// Permission names; a name this build does not know is ignored.
    pub permissions: Vec<String>,
}

impl From<SessionInfo> for StaffPrincipal {
    fn from(s: SessionInfo) -> Self {
        StaffPrincipal {
            user_id: s.user_id,
            session_id: s.session_id,
            login: s.login,
            display_name: s.display_name,
            chain_admin: s.chain_admin,
            chain_permissions: s
                .chain_permissions
                .iter()
                .filter_map(|p| Permission::parse(p))
                .collect(),
            grants: s
                .grants
                .into_iter()
                .map(|g| Grant {
                    pizzeria_id: g.pizzeria_id,
                    role: g.role,
                    permissions: g
                        .permissions
                        .iter()
                        .filter_map(|p| Permission::parse(p))
                        .collect(),
                })
                .collect(),
            expires_at: s.expires_at,
            language: s.language,
        }
    }
}

impl From<&StaffPrincipal> for SessionInfo {
    fn from(p: &StaffPrincipal) -> Self {
        SessionInfo {
            user_id: p.user_id,
            session_id: p.session_id,
            login: p.login.clone(),
            display_name: p.display_name.clone(),
            chain_admin: p.chain_admin,
            chain_permissions: p
                .chain_permissions
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            grants: p
                .grants
                .iter()
                .map(|g| GrantInfo {
                    pizzeria_id: g.pizzeria_id,
                    role: g.role.clone(),
                    permissions: g
                        .permissions
                        .iter()
                        .map(|p| p.as_str().to_owned())
                        .collect(),
                })
                .collect(),
            expires_at: p.expires_at,
            language: p.language.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;

    fn principal(chain_admin: bool, grants: Vec<Grant>) -> StaffPrincipal {
        StaffPrincipal {
            user_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
            login: "anna".into(),
            display_name: "Anna".into(),
            chain_admin,
            chain_permissions: vec![],
            grants,
            expires_at: Utc::now(),
            language: None,
        }
    }

    #[test]
    fn can_is_per_pizzeria() {
        let (here, there) = (Uuid::new_v4(), Uuid::new_v4());
        let p = principal(
            false,
            vec![Grant {
                pizzeria_id: here,
                role: Role::KitchenStaff.as_str().into(),
                permissions: Role::KitchenStaff.permissions().to_vec(),
            }],
        );
        assert!(p.can(here, Permission::KitchenWork));
        assert!(!p.can(here, Permission::OrdersManage));
        assert!(!p.can(there, Permission::KitchenWork));
        assert!(p.works_in(here) && !p.works_in(there));
        assert!(p.has_role(here, Role::KitchenStaff));
        let admin = principal(true, vec![]);
        assert!(admin.can(there, Permission::StaffManage));
        assert!(admin.works_in(there));
        assert!(admin.can_chain_wide(Permission::OperationsReplay));
    }

    #[test]
    fn on_call_permissions_hold_across_the_chain_and_nothing_else() {
        let mut on_call = principal(false, vec![]);
        on_call.chain_permissions = vec![Permission::OperationsRead];
        assert!(on_call.can_chain_wide(Permission::OperationsRead));
        assert!(!on_call.can_chain_wide(Permission::OperationsReplay));
        assert!(on_call.can(Uuid::new_v4(), Permission::OperationsRead));
        assert!(!on_call.can(Uuid::new_v4(), Permission::OrdersRead));
        assert!(!on_call.works_in(Uuid::new_v4()));
        let back = SessionInfo::from(&on_call);
        assert_eq!(back.chain_permissions, vec!["operations.read"]);
        assert_eq!(StaffPrincipal::from(back), on_call);
    }

    #[test]
    fn unknown_permission_names_are_ignored() {
        let info: SessionInfo = serde_json::from_value(serde_json::json!({
            "user_id": Uuid::new_v4(), "session_id": Uuid::new_v4(), "login": "a",
            "display_name": "A", "chain_admin": false, "expires_at": Utc::now(),
            "grants": [{"pizzeria_id": Uuid::new_v4(), "role": "night_baker",
                        "permissions": ["kitchen.work", "ovens.calibrate"]}]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let p = StaffPrincipal::from(info);
        assert_eq!(p.grants[0].permissions, vec![Permission::KitchenWork]);
        let back = SessionInfo::from(&p);
        assert_eq!(back.grants[0].permissions, vec!["kitchen.work"]);
    }
}
