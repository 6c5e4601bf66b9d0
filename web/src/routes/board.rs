//! The TV order board in the dining room: "Preparing" and "Ready", by name, or by number for
//! customers who asked for privacy. At most `board_max_orders` (Dodo's board shows 16), ready
//! ones first and newest first; the cells shrink as the count grows, and long names end in an
//! ellipsis, so both columns always fit the screen. A ready order leaves the board
//! `board_ready_seconds` after it was packed (the tracker's `packed_at`), so every web instance
//! and every restart agree on when.

use access::DeviceKind;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    config::Settings,
    errors::{LiveError, PageError, html},
    i18n::{self, Text},
    session::{Csrf, DeviceViewer},
    upstream::Service,
};

use super::{AppState, live_fragment, staff::screen_of, with_csrf};

#[derive(Debug, Deserialize)]
struct Entry {
    number: i32,
    name: Option<String>,
    /// Set on ready orders.
    packed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
struct Board {
    preparing: Vec<Entry>,
    ready: Vec<Entry>,
}

/// Late orders are not flagged here: the board is for customers.
pub struct Ticket {
    number: i32,
    name: Option<String>,
    /// The picture beside the number in [`BoardMode::Icon`].
    icon: Option<Icon>,
    /// In the Ready column (the page script chimes for each new one).
    ready: bool,
}

/// How the board shows customers, as the manager chose it for this board (Dodo's board has
/// the same three): their name (unless their order asked for its number only), the number
/// only, or a picture with the number, which a customer finds faster than a number alone and
/// which tells nobody else who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardMode {
    Name,
    Number,
    Icon,
}

impl BoardMode {
    /// The device's mode; a board without one (or one this build does not know) shows names,
    /// as boards always did.
    fn of(viewer: &DeviceViewer) -> Self {
        match viewer.device.board_mode.as_deref() {
            Some("number") => BoardMode::Number,
            Some("icon") => BoardMode::Icon,
            _ => BoardMode::Name,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            BoardMode::Name => "name",
            BoardMode::Number => "number",
            BoardMode::Icon => "icon",
        }
    }
}

/// The shapes of [`BoardMode::Icon`], drawn as SVG paths on a 24×24 grid: simple enough to
/// tell apart across a dining room and to name ("the blue star"), and drawn by the page
/// itself, so a TV without an emoji font shows them too.
const SHAPES: [&str; 10] = [
    "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z",
    "M4 4h16v16H4z",
    "M12 3l9 17H3z",
    "M12 2l10 10-10 10L2 12z",
    "M12 2l2.9 6.3 6.9.8-5.1 4.7 1.4 6.8L12 17.3l-6.1 3.3 1.4-6.8-5.1-4.7 6.9-.8z",
    "M12 21s-8-5.2-8-11a4.5 4.5 0 0 1 8-2.8A4.5 4.5 0 0 1 20 10c0 5.8-8 11-8 11z",
    "M7 3h10l5 9-5 9H7l-5-9z",
    "M9 3h6v6h6v6h-6v6H9v-6H3V9h6z",
    "M15 3a9 9 0 1 0 6 15A7 7 0 0 1 15 3z",
    "M12 2s7 8 7 13a7 7 0 0 1-14 0c0-5 7-13 7-13z",
];

/// The colours the shapes come in (a CSS class each, `app.css`).
const COLOURS: [&str; 2] = ["icon-blue", "icon-orange"];

/// An order's picture: a shape and a colour fixed by its number, so it is the same in
/// Preparing and in Ready, on every board and after every reload; neighbouring numbers have
/// different shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icon {
    pub path: &'static str,
    pub colour: &'static str,
}

fn icon(number: i32) -> Icon {
    let n = number.unsigned_abs() as usize;
    Icon {
        path: SHAPES[n % SHAPES.len()],
        colour: COLOURS[n / SHAPES.len() % COLOURS.len()],
    }
}

/// How tightly a column packs its tickets, so up to `board_max_orders` fit without scrolling.
fn density(count: usize) -> &'static str {
    match count {
        0..=6 => "roomy",
        7..=12 => "dense",
        _ => "packed",
    }
}

#[derive(Template)]
#[template(path = "board_columns.html")]
struct BoardColumns {
    t: &'static Text,
    preparing: Vec<Ticket>,
    ready: Vec<Ticket>,
}

impl BoardColumns {
    fn preparing_density(&self) -> &'static str {
        density(self.preparing.len())
    }

    fn ready_density(&self) -> &'static str {
        density(self.ready.len())
    }
}

#[derive(Template)]
#[template(path = "board.html")]
struct BoardPage {
    t: &'static Text,
    /// `name`, `number` or `icon`.
    mode: &'static str,
    csrf: String,
    /// `board_columns.html`, rendered (and escaped) by askama.
    columns: String,
    poll_seconds: u64,
}

fn board_device(viewer: &DeviceViewer) -> Result<Uuid, PageError> {
    match viewer.device.kind {
        DeviceKind::OrderBoard => Ok(viewer.device.pizzeria_id),
        kind => Err(PageError::Elsewhere(screen_of(kind))),
    }
}

fn ticket(e: Entry, mode: BoardMode, ready: bool) -> Ticket {
    Ticket {
        number: e.number,
        name: e
            .name
            .filter(|n| mode == BoardMode::Name && !n.trim().is_empty()),
        icon: (mode == BoardMode::Icon).then(|| icon(e.number)),
        ready,
    }
}

/// The ready orders packed less than `linger` ago, newest first (one without `packed_at`
/// stays, last: it cannot say how long it has been ready).
fn still_ready(
    ready: Vec<Entry>,
    now: DateTime<Utc>,
    linger: chrono::Duration,
    mode: BoardMode,
) -> Vec<Ticket> {
    let mut ready: Vec<Entry> = ready
        .into_iter()
        .filter(|e| e.packed_at.is_none_or(|at| now - at < linger))
        .collect();
    ready.sort_by_key(|e| std::cmp::Reverse(e.packed_at));
    ready.into_iter().map(|e| ticket(e, mode, true)).collect()
}

async fn columns(
    state: &AppState,
    settings: &Settings,
    viewer: &DeviceViewer,
    pizzeria_id: Uuid,
) -> Result<(Vec<Ticket>, Vec<Ticket>), PageError> {
    let board: Board = state
        .upstream
        .get_conditional(
            Service::Tracker,
            &format!("/api/v1/pizzerias/{pizzeria_id}/board"),
            &viewer.token,
        )
        .await
        .map_err(PageError::for_device)?;
    let linger = chrono::Duration::seconds(settings.screens.board_ready_seconds);
    let mode = BoardMode::of(viewer);
    let ready = still_ready(board.ready, Utc::now(), linger, mode);
    let max = settings.screens.board_max_orders;
    let ready: Vec<Ticket> = ready.into_iter().take(max).collect();
    let preparing = board
        .preparing
        .into_iter()
        .take(max - ready.len())
        .map(|e| ticket(e, mode, false))
        .collect();
    Ok((preparing, ready))
}

/// `GET /board`
pub async fn board_page(
    viewer: DeviceViewer,
    state: web::Data<AppState>,
    settings: web::Data<Settings>,
    csrf: Csrf,
) -> Result<HttpResponse, PageError> {
    let pizzeria_id = board_device(&viewer)?;
    let (preparing, ready) = columns(&state, &settings, &viewer, pizzeria_id).await?;
    let t = i18n::text();
    let columns = BoardColumns {
        t,
        preparing,
        ready,
    }
    .render()
    .map_err(|e| PageError::Internal(anyhow::anyhow!("cannot render the board: {e}")))?;
    let page = BoardPage {
        t,
        mode: BoardMode::of(&viewer).as_str(),
        csrf: csrf.token.clone(),
        columns,
        poll_seconds: settings.screens.poll_seconds,
    };
    Ok(with_csrf(html(&page)?, &csrf))
}

/// `GET /board/live`
pub async fn board_live(
    req: HttpRequest,
    viewer: DeviceViewer,
    state: web::Data<AppState>,
    settings: web::Data<Settings>,
) -> Result<HttpResponse, LiveError> {
    let pizzeria_id = board_device(&viewer)?;
    let (preparing, ready) = columns(&state, &settings, &viewer, pizzeria_id).await?;
    let body = BoardColumns {
        t: i18n::text(),
        preparing,
        ready,
    }
    .render()
    .map_err(|e| PageError::Internal(anyhow::anyhow!("cannot render the board: {e}")))?;
    Ok(live_fragment(&req, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_order_leaves_the_board_its_linger_after_it_was_packed() {
        let now = Utc::now();
        let entry = |number, ago: Option<i64>| Entry {
            number,
            name: Some(format!("Guest {number}")),
            packed_at: ago.map(|s| now - chrono::Duration::seconds(s)),
        };
        let ready = still_ready(
            vec![entry(1, Some(700)), entry(2, Some(599)), entry(3, None)],
            now,
            chrono::Duration::seconds(600),
            BoardMode::Name,
        );
        let numbers: Vec<i32> = ready.iter().map(|t| t.number).collect();
        assert_eq!(numbers, [2, 3]);
    }

    #[test]
    fn ready_orders_are_newest_first() {
        let now = Utc::now();
        let entry = |number, ago: i64| Entry {
            number,
            name: None,
            packed_at: Some(now - chrono::Duration::seconds(ago)),
        };
        let ready = still_ready(
            vec![entry(1, 30), entry(2, 10), entry(3, 20)],
            now,
            chrono::Duration::seconds(600),
            BoardMode::Name,
        );
        let numbers: Vec<i32> = ready.iter().map(|t| t.number).collect();
        assert_eq!(numbers, [2, 3, 1]);
    }

    #[test]
    fn each_mode_shows_what_it_promises() {
        let entry = || Entry {
            number: 4204,
            name: Some("Anna".into()),
            packed_at: None,
        };
        let named = ticket(entry(), BoardMode::Name, true);
        assert_eq!(named.name.as_deref(), Some("Anna"));
        assert!(named.icon.is_none());
        let number = ticket(entry(), BoardMode::Number, true);
        assert!(number.name.is_none() && number.icon.is_none());
        let pictured = ticket(entry(), BoardMode::Icon, false);
        assert!(pictured.name.is_none());
        assert_eq!(pictured.icon, Some(icon(4204)));
        // Neighbouring numbers never share a picture.
        assert!((1..200).all(|n| icon(n) != icon(n + 1)));
    }
}
