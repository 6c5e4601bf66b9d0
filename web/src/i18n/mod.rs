//! The languages of the screens, decided once per request.
//!
//! - [`Lang`] is every language the screens speak; [`Text`] holds every string of every page
//!   (and [`catalogue::JsText`] those of the page script), one static per language, so a string
//!   missing in one language does not compile.
//! - Which language: a paired device speaks the language its approver chose (kept by the devices
//!   service), a signed-in person the one they chose (kept by auth); otherwise the browser's
//!   `Accept-Language`, then English.
//! - [`negotiate`] (a middleware) starts every request in the browser's language; the viewer
//!   extractors switch it to the device's or the person's once they know who is looking. It is
//!   request-scoped (a task-local) rather than passed around, because the error pages are
//!   rendered by `ResponseError`, which has no request to ask.

pub mod catalogue;
pub mod ops;

use std::cell::Cell;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header,
    middleware::Next,
};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

pub use catalogue::{JsText, Text};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lang {
    #[default]
    En,
    Ru,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ru];

    pub fn code(self) -> &'static str {
        self.text().code
    }

    /// `None` for a language the screens do not speak.
    pub fn parse(code: &str) -> Option<Lang> {
        let code = access::language_code(code)?;
        Self::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The language's name in itself, for choosing it.
    pub fn autonym(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Ru => "Русский",
        }
    }

    pub fn text(self) -> &'static Text {
        match self {
            Lang::En => &catalogue::EN,
            Lang::Ru => &catalogue::RU,
        }
    }

    /// The first language of an `Accept-Language` header we speak, by preference (`q`).
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut wanted: Vec<(f32, Lang)> = header
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let tag = pieces.next()?.trim();
                let q = pieces
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                let primary = tag.split('-').next()?;
                Some((q, Lang::parse(primary)?)).filter(|(q, _)| *q > 0.0)
            })
            .collect();
        // Stable: equal weights keep the header's order.
        wanted.sort_by(|a, b| b.0.total_cmp(&a.0));
        wanted.first().map(|(_, l)| *l)
    }

    /// The word for `n` things: `forms` are `[one, few, many]` (English uses `one` and
    /// `many`; Russian all three).
    pub fn plural(self, n: i64, forms: &[&'static str; 3]) -> &'static str {
        let n = n.unsigned_abs();
        match self {
            Lang::En => {
                if n == 1 {
                    forms[0]
                } else {
                    forms[2]
                }
            }
            Lang::Ru => match (n % 10, n % 100) {
                (1, 11) => forms[2],
                (1, _) => forms[0],
                (2..=4, 12..=14) => forms[2],
                (2..=4, _) => forms[1],
                _ => forms[2],
            },
        }
    }
}

impl Text {
    /// The page script's strings as JSON, for the `data-strings` attribute (askama escapes
    /// it; the browser unescapes it).
    pub fn js_json(&self) -> String {
        serde_json::to_string(&self.js).unwrap_or_else(|_| "{}".to_owned())
    }
}

tokio::task_local! {
    static CURRENT: Cell<Lang>;
}

/// The language of the request being served (English outside one).
pub fn current() -> Lang {
    CURRENT.try_with(Cell::get).unwrap_or_default()
}

/// The strings of the request being served.
pub fn text() -> &'static Text {
    current().text()
}

/// The viewer's own choice (a device's or a person's), when they made one we speak; without
/// one the browser's language stays.
pub fn choose(code: Option<&str>) {
    if let Some(lang) = code.and_then(Lang::parse) {
        let _ = CURRENT.try_with(|c| c.set(lang));
    }
}

/// Middleware: every request starts in the browser's language (`Accept-Language`), else
/// English.
pub async fn negotiate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let lang = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Lang::from_accept_language)
        .unwrap_or_default();
    CURRENT.scope(Cell::new(lang), next.call(req)).await
}

/// `template` with each `{name}` replaced by its value.
pub fn fill(template: &str, values: &[(&str, &dyn std::fmt::Display)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), &value.to_string());
    }
    out
}

/// A pizzeria's time zone from its IANA name; UTC for a name we do not know (the tracker
/// checks names when they are set, so that is an older or newer zone database than ours).
pub fn time_zone(name: &str) -> Tz {
    name.parse().unwrap_or(Tz::UTC)
}

/// The time of day in the pizzeria's time zone, `14:05`.
pub fn clock(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%H:%M").to_string()
}

/// The time of day with seconds in the pizzeria's time zone, `14:05:09`.
pub fn clock_seconds(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%H:%M:%S").to_string()
}

/// A station's name in the kitchen's words: the stations every pizzeria has are translated,
/// any other code reads as a title (`cold_kitchen` → `Cold kitchen`).
pub fn station_title(code: &str) -> String {
    known_station(code).map_or_else(|| crate::screens::station_title(code), str::to_owned)
}

/// The name of a station every pizzeria has, in the request's language; `None` for a station
/// of the pizzeria's own, whose name is its configuration's.
pub fn known_station(code: &str) -> Option<&'static str> {
    let known: &[(&str, &str, &str)] = &[
        ("dough", "Dough", "Тесто"),
        ("topping", "Topping", "Начинка"),
        ("oven", "Oven", "Печь"),
        ("packing", "Packing", "Упаковка"),
        ("cold_kitchen", "Cold kitchen", "Холодный цех"),
        ("drinks", "Drinks", "Напитки"),
    ];
    let (_, en, ru) = known.iter().find(|(c, _, _)| *c == code)?;
    Some(match current() {
        Lang::En => en,
        Lang::Ru => ru,
    })
}

#[cfg(test)]
mod tests;
