//! The kitchen motivation board: how fast each pizzamaker is today against the targets, from
//! the taps attributed to them (checked in at a station). The tracker adds the day up per actor
//! (`GET /pizzerias/{p}/reports/actors`); auth says which actors are people: taps by someone
//! who did not check in carry the tablet's name, and those count as "without a name".

use std::collections::HashSet;

use access::{DeviceKind, Permission};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    errors::{PageError, html},
    i18n::{self, Text},
    screens,
    session::{Csrf, DeviceViewer, StaffViewer},
    upstream::Service,
};

use super::{
    AppState, pizzeria_param,
    staff::{Nav, require, screen_of},
    with_csrf,
};

/// One actor's day, as the tracker reports it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ActorDay {
    pub actor: String,
    pub stages: i64,
    pub average_seconds: f64,
    pub within_target_share: f64,
}

#[derive(Debug, Deserialize)]
struct ActorReport {
    actors: Vec<ActorDay>,
}

#[derive(Debug, Deserialize)]
struct StaffMember {
    display_name: String,
}

#[derive(Debug, Deserialize)]
struct StaffList {
    staff: Vec<StaffMember>,
}

pub struct ActorLine {
    rank: usize,
    name: String,
    stages: i64,
    average: String,
    on_target: u32,
    /// Percent of the widest bar.
    bar: u32,
    class: &'static str,
}

/// The kitchen staff's lines, ranked by share on target, then by average time; and how many
/// stages were done by someone who had not checked in (any actor not on the staff list).
pub fn leaderboard(days: Vec<ActorDay>, people: &HashSet<String>) -> (Vec<ActorLine>, i64) {
    let (mut named, anonymous): (Vec<ActorDay>, Vec<ActorDay>) =
        days.into_iter().partition(|d| people.contains(&d.actor));
    named.sort_by(|a, b| {
        b.within_target_share
            .total_cmp(&a.within_target_share)
            .then(a.average_seconds.total_cmp(&b.average_seconds))
    });
    let lines = named
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let pct = (d.within_target_share.clamp(0.0, 1.0) * 100.0).floor() as u32;
            ActorLine {
                rank: i + 1,
                name: d.actor,
                stages: d.stages,
                average: screens::duration(d.average_seconds.round() as i64),
                on_target: pct,
                bar: pct.max(2),
                class: match pct {
                    90.. => "good",
                    70..=89 => "near",
                    _ => "late",
                },
            }
        })
        .collect();
    (lines, anonymous.iter().map(|d| d.stages).sum())
}

/// Today's report and the names of the pizzeria's kitchen staff, asked with the viewer's own
/// token (a motivation board may read both).
async fn today(
    state: &AppState,
    pizzeria_id: Uuid,
    bearer: &str,
) -> Result<(Vec<ActorDay>, HashSet<String>), PageError> {
    let report_path = format!("/api/v1/pizzerias/{pizzeria_id}/reports/actors");
    let staff_path = format!("/api/v1/pizzerias/{pizzeria_id}/staff?role=kitchen_staff");
    let report = state
        .upstream
        .get::<ActorReport>(Service::Tracker, &report_path, bearer);
    let staff = state
        .upstream
        .get::<StaffList>(Service::Auth, &staff_path, bearer);
    let (report, staff) = tokio::try_join!(report, staff)?;
    let people = staff.staff.into_iter().map(|s| s.display_name).collect();
    Ok((report.actors, people))
}

#[derive(Template)]
#[template(path = "motivation.html")]
struct MotivationPage {
    t: &'static Text,
    nav: Option<Nav>,
    csrf: String,
    lines: Vec<ActorLine>,
    anonymous: i64,
    total: i64,
}

impl MotivationPage {
    fn stages_word(&self, n: &i64) -> &'static str {
        i18n::current().plural(*n, &self.t.stages)
    }

    /// "12 stages done, 3 without a name: ...".
    fn summary(&self) -> String {
        let done = i18n::fill(
            self.t.stages_done,
            &[
                ("n", &self.total),
                ("stages", &self.stages_word(&self.total)),
            ],
        );
        if self.anonymous > 0 {
            format!(
                "{done}, {}",
                i18n::fill(self.t.without_name, &[("n", &self.anonymous)])
            )
        } else {
            done
        }
    }
}

async fn render(
    state: &AppState,
    pizzeria_id: Uuid,
    bearer: &str,
    nav: Option<Nav>,
    csrf: &Csrf,
) -> Result<HttpResponse, PageError> {
    let (days, people) = today(state, pizzeria_id, bearer).await?;
    let total = days.iter().map(|d| d.stages).sum();
    let (lines, anonymous) = leaderboard(days, &people);
    let page = MotivationPage {
        t: i18n::text(),
        nav,
        csrf: csrf.token.clone(),
        lines,
        anonymous,
        total,
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
    require(&viewer, pizzeria_id, Permission::ReportsRead)?;
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
    use super::*;

    fn day(actor: &str, stages: i64, average_seconds: f64, share: f64) -> ActorDay {
        ActorDay {
            actor: actor.into(),
            stages,
            average_seconds,
            within_target_share: share,
        }
    }

    #[test]
    fn people_rank_by_share_on_target_then_speed_and_tablets_count_as_nameless() {
        let people: HashSet<String> = ["Anna", "Pavel", "Olga"].map(String::from).into();
        let (lines, anonymous) = leaderboard(
            vec![
                day("Oven tablet", 7, 80.0, 1.0),
                day("Anna", 4, 70.0, 0.5),
                day("Pavel", 3, 65.0, 1.0),
                day("Olga", 2, 50.0, 1.0),
                day("Packing tablet", 2, 20.0, 1.0),
            ],
            &people,
        );
        let names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["Olga", "Pavel", "Anna"]);
        assert_eq!(anonymous, 9);
        assert_eq!((lines[2].rank, lines[2].on_target), (3, 50));
        assert_eq!(lines[2].class, "late");
        assert_eq!(lines[0].average, "0:50");
    }
}
