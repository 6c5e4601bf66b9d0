//! What the screens show, decided in one place: allergens by name, how an order's status and
//! age read, station names.

use crate::i18n::{self, Lang};

/// The allergen codes of the contract (the EU's fourteen) and how the kitchen reads them, in
/// English and Russian. The tablets highlight exactly the allergens an order declares;
/// modifiers are free text and are never searched for allergy words (that guessed wrong in
/// both directions).
pub const ALLERGENS: &[(&str, &str, &str)] = &[
    ("celery", "Celery", "Сельдерей"),
    ("gluten", "Gluten", "Глютен"),
    ("crustaceans", "Crustaceans", "Ракообразные"),
    ("eggs", "Eggs", "Яйца"),
    ("fish", "Fish", "Рыба"),
    ("lupin", "Lupin", "Люпин"),
    ("milk", "Milk", "Молоко"),
    ("molluscs", "Molluscs", "Моллюски"),
    ("mustard", "Mustard", "Горчица"),
    ("nuts", "Nuts", "Орехи"),
    ("peanuts", "Peanuts", "Арахис"),
    ("sesame", "Sesame", "Кунжут"),
    ("soya", "Soya", "Соя"),
    ("sulphites", "Sulphites", "Сульфиты"),
];

/// The known allergens by name (in the request's language), and the codes we have no name
/// for (shown as they came, still highlighted: an allergen is never dropped for being new to
/// us).
pub fn allergens(codes: &[String]) -> (Vec<&'static str>, Vec<String>) {
    let lang = i18n::current();
    let mut known = Vec::new();
    let mut other = Vec::new();
    for code in codes {
        match ALLERGENS.iter().find(|(c, _, _)| c == code) {
            Some((_, en, ru)) => known.push(match lang {
                Lang::En => *en,
                Lang::Ru => *ru,
            }),
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
    let t = i18n::text();
    match status {
        "accepted" => t.status_accepted,
        "in_work" => t.status_in_work,
        "packed" => t.status_packed,
        "handed_over" => t.status_handed_over,
        "cancelled" => t.status_cancelled,
        _ => t.status_unknown,
    }
}

/// The statuses the manager's order list filters by.
pub const STATUSES: &[&str] = &["accepted", "in_work", "packed", "handed_over", "cancelled"];

/// The filters of the manager's order list: query value and label, "all" first.
pub fn status_filters() -> Vec<(&'static str, &'static str)> {
    std::iter::once(("", i18n::text().all))
        .chain(STATUSES.iter().map(|s| (*s, status_label(s))))
        .collect()
}

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

/// A human name for a timeline entry's event type.
pub fn timeline_label(kind: &str) -> &'static str {
    let t = i18n::text();
    match kind {
        "OrderAcceptedByTracker" => t.tl_accepted,
        "OrderInWork" => t.tl_in_work,
        "ProductStageCompleted" => t.tl_stage_done,
        "ProductStageUndone" => t.tl_stage_undone,
        "ProductRemakeRequested" => t.tl_remake,
        "OrderPacked" => t.tl_packed,
        "OrderHandedOver" => t.tl_handed_over,
        "OrderCancelled" => t.tl_cancelled,
        "OrderCancelledAfterHandOver" => t.tl_cancelled_after_hand_over,
        "OrderRunningLate" => t.tl_late,
        "OrderRushed" => t.tl_rushed,
        _ => t.tl_event,
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
