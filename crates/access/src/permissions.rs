//! Roles and the permissions they carry. The auth service grants roles and reports the
//! permissions in its introspection answers; services check permissions, never roles, so a
//! role can change what it carries without touching them.

use std::fmt;

/// Something a caller may do in a pizzeria. The names (`orders.read`) are the wire names of the
/// introspection answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Read orders, their timelines and the TV board.
    OrdersRead,
    /// Cancel, hand over, ask for a remake.
    OrdersManage,
    /// Station queues, taps and undo: the kitchen's own work.
    KitchenWork,
    /// Approve a station tablet's pairing request.
    DevicesApprove,
    /// Rename, move and revoke station tablets.
    DevicesManage,
    /// Create staff accounts, grant and revoke roles, deactivate accounts.
    StaffManage,
    /// Station and order reports.
    ReportsRead,
    /// The operations section: dead letters, the bus and the services' figures. Chain-wide.
    OperationsRead,
    /// Replay and discard dead letters. Chain-wide, and apart from reading: an on-call engineer
    /// may be shown what failed without being trusted to send it again.
    OperationsReplay,
}

impl Permission {
    // There is no `orders.intake`: orders come from order sources (the till, the website), which
    // show their own key (tracker `[order_sources]`), never a staff member's session, so a
    // permission for staff to place orders guarded nothing.
    pub const ALL: [Permission; 9] = [
        Permission::OrdersRead,
        Permission::OrdersManage,
        Permission::KitchenWork,
        Permission::DevicesApprove,
        Permission::DevicesManage,
        Permission::StaffManage,
        Permission::ReportsRead,
        Permission::OperationsRead,
        Permission::OperationsReplay,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::OrdersRead => "orders.read",
            Permission::OrdersManage => "orders.manage",
            Permission::KitchenWork => "kitchen.work",
            Permission::DevicesApprove => "devices.approve",
            Permission::DevicesManage => "devices.manage",
            Permission::StaffManage => "staff.manage",
            Permission::ReportsRead => "reports.read",
            Permission::OperationsRead => "operations.read",
            Permission::OperationsReplay => "operations.replay",
        }
    }

    /// `None` for a name this build does not know (a newer auth service may send more).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A staff role. A chain admin holds every permission in every pizzeria; the on-call roles hold
/// the operations permissions across the chain; every other role is held in one pizzeria.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    ChainAdmin,
    /// The franchisee's office: staff, devices, reports.
    OfficeManager,
    ShiftManager,
    Cashier,
    KitchenStaff,
    /// The engineer on call: reads the operations section and replays or discards dead letters.
    OnCall,
    /// Reads the operations section, and changes nothing.
    OperationsViewer,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::ChainAdmin,
        Role::OfficeManager,
        Role::ShiftManager,
        Role::Cashier,
        Role::KitchenStaff,
        Role::OnCall,
        Role::OperationsViewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::ChainAdmin => "chain_admin",
            Role::OfficeManager => "office_manager",
            Role::ShiftManager => "shift_manager",
            Role::Cashier => "cashier",
            Role::KitchenStaff => "kitchen_staff",
            Role::OnCall => "on_call",
            Role::OperationsViewer => "operations_viewer",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether the role is held across the chain rather than in one pizzeria.
    pub fn is_chain_wide(self) -> bool {
        matches!(
            self,
            Role::ChainAdmin | Role::OnCall | Role::OperationsViewer
        )
    }

    /// What the role may do in its pizzeria.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::ChainAdmin => &Permission::ALL,
            Role::OfficeManager => &[
                OrdersRead,
                OrdersManage,
                DevicesApprove,
                DevicesManage,
                StaffManage,
                ReportsRead,
            ],
            Role::ShiftManager => &[
                OrdersRead,
                OrdersManage,
                KitchenWork,
                DevicesApprove,
                ReportsRead,
            ],
            Role::Cashier => &[OrdersRead],
            Role::KitchenStaff => &[KitchenWork],
            Role::OnCall => &[OperationsRead, OperationsReplay],
            Role::OperationsViewer => &[OperationsRead],
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Permission::parse("orders.delete"), None);
        assert_eq!(Role::parse("owner"), None);
    }

    #[test]
    fn the_role_map_gives_each_role_its_work() {
        let has = |r: Role, p: Permission| r.permissions().contains(&p);
        for p in Permission::ALL {
            assert!(has(Role::ChainAdmin, p), "chain admin lacks {p}");
        }
        assert!(has(Role::KitchenStaff, Permission::KitchenWork));
        assert!(has(Role::ShiftManager, Permission::KitchenWork));
        assert!(!has(Role::KitchenStaff, Permission::OrdersManage));
        assert!(!has(Role::Cashier, Permission::KitchenWork));
        assert!(has(Role::Cashier, Permission::OrdersRead));
        // Removed: intake is by order source key; an older auth naming it is ignored.
        assert_eq!(Permission::parse("orders.intake"), None);
        assert!(has(Role::OfficeManager, Permission::StaffManage));
        assert!(!has(Role::ShiftManager, Permission::StaffManage));
        assert!(has(Role::ShiftManager, Permission::DevicesApprove));
        assert!(!has(Role::ShiftManager, Permission::DevicesManage));
    }

    #[test]
    fn the_admin_and_the_on_call_roles_are_chain_wide() {
        let wide: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| r.is_chain_wide())
            .collect();
        assert_eq!(
            wide,
            vec![Role::ChainAdmin, Role::OnCall, Role::OperationsViewer]
        );
    }

    #[test]
    fn reading_and_replaying_operations_are_separate_rights() {
        let has = |r: Role, p: Permission| r.permissions().contains(&p);
        assert!(has(Role::OnCall, Permission::OperationsRead));
        assert!(has(Role::OnCall, Permission::OperationsReplay));
        assert!(has(Role::OperationsViewer, Permission::OperationsRead));
        assert!(!has(Role::OperationsViewer, Permission::OperationsReplay));
        for role in [
            Role::OfficeManager,
            Role::ShiftManager,
            Role::Cashier,
            Role::KitchenStaff,
        ] {
            assert!(!has(role, Permission::OperationsRead), "{role}");
        }
        assert_eq!(
            Role::OnCall.permissions().len(),
            2,
            "on call touches no orders"
        );
    }
}
