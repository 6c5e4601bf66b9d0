//! The kitchen motivation board: how fast each pizzamaker is today against the targets, from
//! the taps attributed to them (checked in at a station).
//!
//! The tracker has no per-actor report yet, so this reads today's orders and each order's
//! timeline (again only when the order's version changed), drops the taps that were undone,
//! and adds up the rest per actor. A `GET /pizzerias/{p}/reports/actors?date=` in the tracker
//! would replace all of it with one query.

use std::{collections::BTreeMap, sync::Arc};

use access::{DeviceKind, Permission};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde_json::Value;
use uuid::Uuid;

use crate::{
    errors::{PageError, html},
    screens,
    session::{Csrf, DeviceViewer, StaffViewer},
    upstream::Service,
};

use super::{
    AppState,
    manager::{TimelineEntry, todays_orders},
    pizzeria_param,
    staff::{Nav, require, screen_of},
    with_csrf,
};

/// One attributed, not undone, stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub product_id: Uuid,
    pub station: String,
    pub actor: Option<String>,
    pub seconds: f64,
    pub target_seconds: f64,
}

/// The stages of one order's timeline that still count: an undo takes back the latest
/// completion of that product at that station.
pub fn counted_stages(timeline: &[TimelineEntry]) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for t in timeline {
        let d = &t.detail;
        let (Some(product_id), Some(station)) = (t.product_id, t.station.clone()) else {
            continue;
        };
        match t.kind.as_str() {
            "ProductStageCompleted" => stages.push(Stage {
                product_id,
                station,
                actor: t.actor.clone().filter(|a| !a.trim().is_empty()),
                seconds: d["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0,
                target_seconds: d["target_seconds"].as_f64().unwrap_or(0.0),
            }),
            "ProductStageUndone" => {
                if let Some(i) = stages
                    .iter()
                    .rposition(|s| s.product_id == product_id && s.station == station)
                {
                    stages.remove(i);
                }
            }
            _ => {}
        }
    }
    stages
}

pub struct ActorLine {
    rank: usize,
    name: String,
    stages: usize,
    average: String,
    on_target: u32,
    /// Percent of the widest bar.
    bar: u32,
    class: &'static str,
}

/// Ranked by share on target, then by average time.
pub fn leaderboard(stages: &[Stage]) -> (Vec<ActorLine>, usize) {
    let mut per_actor: BTreeMap<&str, (usize, f64, usize)> = BTreeMap::new();
    let mut anonymous = 0;
    for s in stages {
        match &s.actor {
            Some(actor) => {
                let e = per_actor.entry(actor.as_str()).or_default();
                e.0 += 1;
                e.1 += s.seconds;
                e.2 += usize::from(s.target_seconds <= 0.0 || s.seconds <= s.target_seconds);
            }
            None => anonymous += 1,
        }
    }
    let mut rows: Vec<(&str, usize, f64, u32)> = per_actor
        .into_iter()
        .map(|(name, (n, total, ok))| (name, n, total / n as f64, (ok * 100 / n.max(1)) as u32))
        .collect();
    rows.sort_by(|a, b| b.3.cmp(&a.3).then(a.2.total_cmp(&b.2)));
    let lines = rows
        .into_iter()
        .enumerate()
        .map(|(i, (name, n, avg, pct))| ActorLine {
            rank: i + 1,
            name: name.to_owned(),
            stages: n,
            average: screens::duration(avg.round() as i64),
            on_target: pct,
            bar: pct.max(2),
            class: match pct {
                90.. => "good",
                70..=89 => "near",
                _ => "late",
            },
        })
        .collect();
    (lines, anonymous)
}

async fn stages_today(
    state: &AppState,
    pizzeria_id: Uuid,
    bearer: &str,
) -> Result<Vec<Stage>, PageError> {
    let orders = todays_orders(state, pizzeria_id, bearer, None).await?;
    let mut stages = Vec::new();
    for order in orders {
        let cached = state
            .order_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&order.id).cloned())
            .filter(|(version, _)| *version == order.version)
            .map(|(_, detail)| detail);
        let detail: Arc<Value> = match cached {
            Some(detail) => detail,
            None => {
                let detail: Value = state
                    .upstream
                    .get(
                        Service::Tracker,
                        &format!("/api/v1/pizzerias/{pizzeria_id}/orders/{}", order.id),
                        bearer,
                    )
                    .await?;
                let detail = Arc::new(detail);
                if let Ok(mut cache) = state.order_cache.lock() {
                    if cache.len() > 20_000 {
                        cache.clear();
                    }
                    cache.insert(order.id, (order.version, detail.clone()));
                }
                detail
            }
        };
        let timeline: Vec<TimelineEntry> =
            serde_json::from_value(detail["timeline"].clone()).unwrap_or_default();
        stages.extend(counted_stages(&timeline));
    }
    Ok(stages)
}

#[derive(Template)]
#[template(path = "motivation.html")]
struct MotivationPage {
    nav: Option<Nav>,
    csrf: String,
    lines: Vec<ActorLine>,
    anonymous: usize,
    total: usize,
}

async fn render(
    state: &AppState,
    pizzeria_id: Uuid,
    bearer: &str,
    nav: Option<Nav>,
    csrf: &Csrf,
) -> Result<HttpResponse, PageError> {
    let stages = stages_today(state, pizzeria_id, bearer).await?;
    let (lines, anonymous) = leaderboard(&stages);
    let page = MotivationPage {
        nav,
        csrf: csrf.token.clone(),
        lines,
        anonymous,
        total: stages.len(),
    };
    Ok(with_csrf(html(&page)?, csrf))
}

/// `GET /p/{p}/motivation` for staff.
pub async fn staff_motivation(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    csrf: Csrf,
) -> Result<HttpResponse, PageError> {
    let pizzeria_id = pizzeria_param(&req)?;
    require(&viewer, pizzeria_id, Permission::OrdersRead)?;
    let nav = Nav::new(&viewer, pizzeria_id, &csrf, "motivation");
    render(&state, pizzeria_id, &viewer.token, Some(nav), &csrf).await
}

/// `GET /motivation` on a motivation-board device.
pub async fn device_motivation(
    viewer: DeviceViewer,
    state: web::Data<AppState>,
    csrf: Csrf,
) -> Result<HttpResponse, PageError> {
    if viewer.device.kind != DeviceKind::MotivationBoard {
        return Err(PageError::Elsewhere(screen_of(viewer.device.kind)));
    }
    render(
        &state,
        viewer.device.pizzeria_id,
        &viewer.token,
        None,
        &csrf,
    )
    .await
    .map_err(|e| match e {
        PageError::SignedOut { .. } => PageError::DeviceUnpaired,
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;

    fn entry(kind: &str, product: Uuid, station: &str, actor: &str, ms: i64) -> TimelineEntry {
        TimelineEntry {
            at: Utc::now(),
            kind: kind.into(),
            station: Some(station.into()),
            product_id: Some(product),
            actor: Some(actor.into()),
            detail: json!({"duration_ms": ms, "target_seconds": 60}),
        }
    }

    #[test]
    fn an_undone_tap_does_not_count() {
        let p = Uuid::new_v4();
        let stages = counted_stages(&[
            entry("ProductStageCompleted", p, "dough", "Anna", 30_000),
            entry("ProductStageUndone", p, "dough", "Anna", 0),
            entry("ProductStageCompleted", p, "dough", "Pavel", 50_000),
            entry("ProductStageCompleted", p, "oven", "Anna", 90_000),
        ]);
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0].actor.as_deref(), Some("Pavel"));
        let (lines, anonymous) = leaderboard(&stages);
        assert_eq!(anonymous, 0);
        assert_eq!(lines[0].name, "Pavel");
        assert_eq!(lines[0].on_target, 100);
        assert_eq!(lines[1].name, "Anna");
        assert_eq!(lines[1].on_target, 0);
    }
}
