//! The TV order board in the dining room: "Preparing" and "Ready", by name, or by number for
//! customers who asked for privacy. At most `board_max_orders`; a ready order leaves the board
//! `board_ready_seconds` after it first appeared there.

use access::DeviceKind;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    config::Settings,
    errors::{LiveError, PageError, html},
    session::{Csrf, DeviceViewer},
    upstream::Service,
};

use super::{AppState, live_fragment, staff::screen_of, with_csrf};

#[derive(Debug, Deserialize)]
struct Entry {
    number: i32,
    name: Option<String>,
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
}

#[derive(Template)]
#[template(path = "board_columns.html")]
struct BoardColumns {
    preparing: Vec<Ticket>,
    ready: Vec<Ticket>,
}

#[derive(Template)]
#[template(path = "board.html")]
struct BoardPage {
    csrf: String,
    preparing: Vec<Ticket>,
    ready: Vec<Ticket>,
    poll_seconds: u64,
}

fn board_device(viewer: &DeviceViewer) -> Result<Uuid, PageError> {
    match viewer.device.kind {
        DeviceKind::OrderBoard => Ok(viewer.device.pizzeria_id),
        kind => Err(PageError::Elsewhere(screen_of(kind))),
    }
}

fn ticket(e: Entry) -> Ticket {
    Ticket {
        number: e.number,
        name: e.name.filter(|n| !n.trim().is_empty()),
    }
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
    let now = Utc::now();
    let linger = chrono::Duration::seconds(settings.screens.board_ready_seconds);
    let ready: Vec<Ticket> = {
        let mut since = state
            .ready_since
            .lock()
            .map_err(|_| PageError::Internal(anyhow::anyhow!("the board memory is poisoned")))?;
        let numbers: Vec<i32> = board.ready.iter().map(|e| e.number).collect();
        since.retain(|(p, n), _| *p != pizzeria_id || numbers.contains(n));
        board
            .ready
            .into_iter()
            .filter(|e| {
                let first_seen = *since.entry((pizzeria_id, e.number)).or_insert(now);
                now - first_seen < linger
            })
            .map(ticket)
            .collect()
    };
    let max = settings.screens.board_max_orders;
    let ready: Vec<Ticket> = ready.into_iter().take(max).collect();
    let preparing = board
        .preparing
        .into_iter()
        .take(max - ready.len())
        .map(ticket)
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
    let page = BoardPage {
        csrf: csrf.token.clone(),
        preparing,
        ready,
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
    let body = BoardColumns { preparing, ready }
        .render()
        .map_err(|e| PageError::Internal(anyhow::anyhow!("cannot render the board: {e}")))?;
    Ok(live_fragment(&req, body))
}
