//! What the screens show, decided in one place: allergens by name, how an order's status and
//! age read, station names.

use chrono::{DateTime, Local, Utc};

/// The allergen codes of the contract (the EU's fourteen) and how the kitchen reads them. The
/// tablets highlight exactly the allergens an order declares; modifiers are free text and are
/// never searched for allergy words (that guessed wrong in both directions).
pub const ALLERGENS: &[(&str, &str)] = &[
    ("celery", "Celery"),
    ("gluten", "Gluten"),
    ("crustaceans", "Crustaceans"),
    ("eggs", "Eggs"),
    ("fish", "Fish"),
    ("lupin", "Lupin"),
    ("milk", "Milk"),
    ("molluscs", "Molluscs"),
    ("mustard", "Mustard"),
    ("nuts", "Nuts"),
    ("peanuts", "Peanuts"),
    ("sesame", "Sesame"),
    ("soya", "Soya"),
    ("sulphites", "Sulphites"),
];

/// The known allergens by name, and the codes we have no name for (shown as they came, still
/// highlighted: an allergen is never dropped for being new to us).
pub fn allergens(codes: &[String]) -> (Vec<&'static str>, Vec<String>) {
    let mut known = Vec::new();
    let mut other = Vec::new();
    for code in codes {
        match ALLERGENS.iter().find(|(c, _)| c == code) {
            Some((_, name)) => known.push(*name),
            None => other.push(code.clone()),
        }
    }
    (known, other)
}

/// Every allergen as words, known names first.
pub fn allergen_names(codes: &[String]) -> Vec<String> {
    let (known, other) = allergens(codes);
    known.into_iter().map(str::to_owned).chain(other).collect()
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
        "OrderCancelledAfterHandOver" => "Cancelled by the till after hand-over",
        "OrderRunningLate" => "Running late",
        "OrderRushed" => "Rushed",
        _ => "Event",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allergens_are_named_from_their_codes_and_unknown_ones_are_kept() {
        let codes = ["nuts".to_owned(), "kiwi".to_owned(), "milk".to_owned()];
        assert_eq!(
            allergens(&codes),
            (vec!["Nuts", "Milk"], vec!["kiwi".to_owned()])
        );
        assert_eq!(allergen_names(&codes), ["Nuts", "Milk", "kiwi"]);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(65), "1:05");
        assert_eq!(duration(3725), "1:02:05");
        assert_eq!(duration(-3), "0:00");
        assert_eq!(station_title("cold_kitchen"), "Cold kitchen");
    }
}
