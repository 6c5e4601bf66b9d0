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
    icon: Option<&'static str>,
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

/// The pictures of [`BoardMode::Icon`]: foods and animals a child can name, none alike.
const ICONS: [&str; 20] = [
    "🍕", "🍎", "🍋", "🍉", "🍇", "🍓", "🥕", "🌽", "🍄", "🥨", "🐱", "🐶", "🦊", "🐻", "🐼", "🐸",
    "🐙", "🦋", "🐢", "🦉",
];

/// An order's picture: fixed by its number, so it is the same on the receipt, in Preparing
/// and in Ready, on every board and after every reload; neighbouring numbers differ.
fn icon(number: i32) -> &'static str {
    ICONS[number.unsigned_abs() as usize % ICONS.len()]
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
