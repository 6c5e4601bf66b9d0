//! How tracker concepts are written in the monolith's columns. Pure functions only; the SQL
//! lives in [`crate::db`].

use access::{DeviceKind, Role};
use contracts::OrderSource;

/// `orders.status` and `order_history.status` as the shift-manager screen reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyStatus {
    Accepted,
    InWork,
    Packed,
    HandedOver,
    Cancelled,
}

impl LegacyStatus {
    pub fn code(self) -> i16 {
        match self {
            LegacyStatus::Accepted => 1,
            LegacyStatus::InWork => 2,
            LegacyStatus::Packed => 3,
            LegacyStatus::HandedOver => 4,
            LegacyStatus::Cancelled => 5,
        }
    }
}

/// `orders.order_type`.
pub fn order_type_code(source: OrderSource) -> i16 {
    match source {
        OrderSource::Restaurant => 1,
        OrderSource::Delivery => 2,
        OrderSource::Pickup => 3,
    }
}

/// `membership.role`, numbered as the monolith's staff screens had them. A chain admin's row has
/// no unit: the role holds in every pizzeria. The on-call roles came after the monolith, which
/// has no code (and no screen) for them: `None`.
pub fn role_code(role: Role) -> Option<i16> {
    match role {
        Role::ChainAdmin => Some(1),
        Role::OfficeManager => Some(2),
        Role::ShiftManager => Some(3),
        Role::Cashier => Some(4),
        Role::KitchenStaff => Some(5),
        Role::OnCall | Role::OperationsViewer => None,
    }
}

/// `devices.device_type`.
pub fn device_type_code(kind: DeviceKind) -> i16 {
    match kind {
        DeviceKind::KitchenStation => 1,
        DeviceKind::OrderBoard => 2,
        DeviceKind::MotivationBoard => 3,
        DeviceKind::ShiftManagerScreen => 4,
    }
}

/// `order_history.stage` of a row about one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyStage {
    Completed,
    Undone,
    Remake,
}

impl LegacyStage {
    pub fn as_str(self) -> &'static str {
        match self {
            LegacyStage::Completed => "completed",
            LegacyStage::Undone => "undone",
            LegacyStage::Remake => "remake",
        }
    }
}

/// Whether an event with `incoming` sequence may set the status of an order whose status was
/// last set by the event with `applied` sequence. Equal means the same event again.
pub fn is_newer_status(applied: i64, incoming: i64) -> bool {
    incoming > applied
}

/// `order_items.modifiers`: the old till joined them with commas and the reports split on
/// commas, so a comma inside one modifier becomes a semicolon to keep the split right.
pub fn join_modifiers(modifiers: &[String]) -> String {
    let joined = modifiers
        .iter()
        .map(|m| m.trim().replace(',', ";"))
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join(",");
    fit(&joined, MODIFIERS_WIDTH).to_owned()
}

/// Column widths of the monolith's varchar columns. A value that does not fit is cut rather
/// than failing the event: a long name must not keep an order out of the reports.
pub const NAME_WIDTH: usize = 100;
pub const PRODUCT_NAME_WIDTH: usize = 200;
pub const SHORT_WIDTH: usize = 20;
pub const STATION_WIDTH: usize = 50;
pub const COMMENT_WIDTH: usize = 500;
const MODIFIERS_WIDTH: usize = 1000;

/// The longest prefix of `value` with at most `width` characters.
pub fn fit(value: &str, width: usize) -> &str {
    match value.char_indices().nth(width) {
        Some((end, _)) => &value[..end],
        None => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_the_ones_the_old_screen_reads() {
        let codes: Vec<i16> = [
            LegacyStatus::Accepted,
            LegacyStatus::InWork,
            LegacyStatus::Packed,
            LegacyStatus::HandedOver,
            LegacyStatus::Cancelled,
        ]
        .into_iter()
        .map(LegacyStatus::code)
        .collect();
        assert_eq!(codes, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn order_types_have_distinct_codes() {
        assert_eq!(order_type_code(OrderSource::Restaurant), 1);
        assert_eq!(order_type_code(OrderSource::Delivery), 2);
        assert_eq!(order_type_code(OrderSource::Pickup), 3);
    }

    #[test]
    fn roles_and_device_types_have_the_monoliths_codes() {
        let roles: Vec<i16> = Role::ALL.into_iter().filter_map(role_code).collect();
        assert_eq!(roles, [1, 2, 3, 4, 5]);
        let kinds: Vec<i16> = DeviceKind::ALL.into_iter().map(device_type_code).collect();
        assert_eq!(kinds, [1, 2, 3, 4]);
    }

    #[test]
    fn modifiers_are_comma_separated() {
        let modifiers = vec!["no onion".to_owned(), " extra cheese ".to_owned()];
        assert_eq!(join_modifiers(&modifiers), "no onion,extra cheese");
        assert_eq!(join_modifiers(&[]), "");
    }

    #[test]
    fn a_comma_inside_a_modifier_does_not_split_it() {
        let modifiers = vec![
            "sauce: bbq, garlic".to_owned(),
            "".to_owned(),
            "thin".to_owned(),
        ];
        let joined = join_modifiers(&modifiers);
        assert_eq!(joined, "sauce: bbq; garlic,thin");
        assert_eq!(joined.split(',').count(), 2);
    }

    #[test]
    fn only_a_newer_sequence_sets_the_status() {
        assert!(is_newer_status(3, 4));
        assert!(!is_newer_status(4, 4), "the same event again");
        assert!(!is_newer_status(4, 2), "a stale event");
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        assert_eq!(fit("Анна", 2), "Ан");
        assert_eq!(fit("Anna", 10), "Anna");
        assert_eq!(fit(&"x".repeat(150), NAME_WIDTH).len(), 100);
    }
}
