//! What the screens show, decided in one place: which modifiers matter for allergies, how an
//! order's status and age read, station names.

use chrono::{DateTime, Local, Utc};

/// Modifiers that mention any of these (case-insensitively) are highlighted on the station
/// cards: what a pizzamaker must not miss. The one list of them.
pub const ALLERGY_WORDS: &[&str] = &[
    "allerg",
    "nut",
    "peanut",
    "gluten",
    "lactose",
    "milk",
    "dairy",
    "egg",
    "soy",
    "sesame",
    "celery",
    "mustard",
    "shellfish",
    "fish",
    "vegan",
];

pub fn is_allergy_relevant(modifier: &str) -> bool {
    let lower = modifier.to_lowercase();
    ALLERGY_WORDS.iter().any(|w| lower.contains(w))
}

/// A modifier and whether to highlight it.
#[derive(Debug, Clone)]
pub struct Modifier {
    pub text: String,
    pub allergy: bool,
}

pub fn modifiers(list: &[String]) -> Vec<Modifier> {
    list.iter()
        .map(|m| Modifier {
            text: m.clone(),
            allergy: is_allergy_relevant(m),
        })
        .collect()
}

/// The order status as the people in the kitchen say it.
pub fn status_label(status: &str) -> &'static str {
    match status {
        "accepted" => "Accepted",
        "in_work" => "In work",
        "packed" => "Ready",
        "handed_over" => "Handed over",
        "cancelled" => "Cancelled",
        _ => "Unknown",
    }
}

/// The filters of the manager's order list: query value and label.
pub const STATUS_FILTERS: &[(&str, &str)] = &[
    ("", "All"),
    ("accepted", "Accepted"),
    ("in_work", "In work"),
    ("packed", "Ready"),
    ("handed_over", "Handed over"),
    ("cancelled", "Cancelled"),
];

/// A station code as a title: `oven` → `Oven`, `cold_kitchen` → `Cold kitchen`.
pub fn station_title(code: &str) -> String {
    let spaced = code.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `m:ss`, or `h:mm:ss` from an hour on.
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The time of day on this server's clock, `14:05`.
pub fn clock(at: DateTime<Utc>) -> String {
    at.with_timezone(&Local).format("%H:%M").to_string()
}

/// A human name for a timeline entry's event type.
pub fn timeline_label(kind: &str) -> &'static str {
    match kind {
        "OrderAcceptedByTracker" => "Order accepted",
        "OrderInWork" => "Kitchen started",
        "ProductStageCompleted" => "Stage done",
        "ProductStageUndone" => "Stage undone",
        "ProductRemakeRequested" => "Remake requested",
        "OrderPacked" => "Packed, ready",
        "OrderHandedOver" => "Handed over",
        "OrderCancelled" => "Cancelled",
        "OrderRunningLate" => "Running late",
        _ => "Event",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allergy_modifiers_are_spotted() {
        assert!(is_allergy_relevant("NUT allergy"));
        assert!(is_allergy_relevant("gluten-free base"));
        assert!(is_allergy_relevant("no lactose"));
        assert!(!is_allergy_relevant("no onion"));
        assert!(!is_allergy_relevant("extra cheese"));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(65), "1:05");
        assert_eq!(duration(3725), "1:02:05");
        assert_eq!(duration(-3), "0:00");
        assert_eq!(station_title("cold_kitchen"), "Cold kitchen");
    }
}
