//! Setting a pizzeria up: its name, stations and routes.

use std::collections::HashSet;

use bus::outbox::Outbox;
use chrono::Utc;
use contracts::{PizzeriaChanged, PizzeriaRegistered, ProductCategory};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    db::pizzerias,
    domain::{
        PizzeriaName, Route, StationCode, StationName, ValidationError, default_routes,
        default_stations,
    },
};

use super::KitchenError;

#[derive(Debug, Clone)]
pub struct StationConfig {
    pub code: StationCode,
    pub name: StationName,
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub category: ProductCategory,
    pub route: Route,
}

/// A pizzeria as a manager configures it. Absent stations or routes keep what the pizzeria has
/// (or get the defaults when it is new).
#[derive(Debug, Clone)]
pub struct PizzeriaConfig {
    pub name: PizzeriaName,
    /// An IANA time zone name; checked against PostgreSQL's zone data when saved.
    pub time_zone: Option<String>,
    pub stations: Option<Vec<StationConfig>>,
    pub routes: Option<Vec<RouteConfig>>,
}

/// Creates or updates the pizzeria; `true` when it was created. Stations are added or renamed,
/// never removed: products in flight and past taps still name them. The tracker owns pizzerias:
/// a new one is announced as `PizzeriaRegistered`, a change of name or time zone as
/// `PizzeriaChanged`, in the same transaction (auth keeps its list from them).
#[tracing::instrument(skip(conn, outbox, config))]
pub async fn configure_pizzeria(
    conn: &mut PgConnection,
    outbox: &Outbox,
    pizzeria_id: Uuid,
    config: &PizzeriaConfig,
) -> Result<bool, KitchenError> {
    let before = pizzerias::find_pizzeria(&mut *conn, pizzeria_id).await?;
    let created = configure_kitchen(&mut *conn, pizzeria_id, config).await?;
    let after = pizzerias::find_pizzeria(&mut *conn, pizzeria_id)
        .await?
        .ok_or(KitchenError::NotFound("pizzeria"))?;
    let changed = before
        .as_ref()
        .is_some_and(|b| (&b.name, &b.time_zone) != (&after.name, &after.time_zone));
    if created || changed {
        let (sequence, name, time_zone) =
            pizzerias::next_event_of_pizzeria(&mut *conn, pizzeria_id).await?;
        let at = Utc::now();
        if created {
            let event = PizzeriaRegistered {
                pizzeria_id,
                name,
                time_zone,
                at,
            };
            outbox.stage(&mut *conn, sequence, &event).await?;
        } else {
            let event = PizzeriaChanged {
                pizzeria_id,
                name,
                time_zone,
                at,
            };
            outbox.stage(&mut *conn, sequence, &event).await?;
        }
    }
    Ok(created)
}

/// The kitchen side of [`configure_pizzeria`]: the row, stations and routes.
async fn configure_kitchen(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
    config: &PizzeriaConfig,
) -> Result<bool, KitchenError> {
    // In the order a tap locks them: stations by code, then the pizzeria row.
    pizzerias::lock_stations(&mut *conn, pizzeria_id).await?;
    let created = pizzerias::upsert_pizzeria(&mut *conn, pizzeria_id, &config.name).await?;
    if let Some(time_zone) = &config.time_zone
        && !pizzerias::set_time_zone(&mut *conn, pizzeria_id, time_zone).await?
    {
        return Err(ValidationError::new(
            "time_zone",
            "must be an IANA time zone name, such as Europe/Moscow",
        )
        .into());
    }
    let stations = match (&config.stations, created) {
        (Some(stations), _) => stations.clone(),
        (None, true) => default_stations()
            .into_iter()
            .map(|(code, name)| StationConfig { code, name })
            .collect(),
        (None, false) => Vec::new(),
    };
    // Existing stations are locked already; new ones in code order too, like everything else.
    let mut stations = stations;
    stations.sort_by(|a, b| a.code.as_str().cmp(b.code.as_str()));
    for station in &stations {
        pizzerias::upsert_station(&mut *conn, pizzeria_id, &station.code, &station.name).await?;
    }
    let routes = match (&config.routes, created) {
        (Some(routes), _) => routes.clone(),
        (None, true) => default_routes()
            .into_iter()
            .map(|(category, route)| RouteConfig { category, route })
            .collect(),
        (None, false) => Vec::new(),
    };
    for route in &routes {
        replace_route(&mut *conn, pizzeria_id, route)
            .await
            .map_err(|e| match e {
                KitchenError::Invalid(v) => {
                    KitchenError::Invalid(v.under(&format!("routes.{}", route.category.as_str())))
                }
                other => other,
            })?;
    }
    if created {
        // A new pizzeria must route every category, or intake would refuse its orders.
        let configured: HashSet<ProductCategory> = routes.iter().map(|r| r.category).collect();
        for (category, route) in default_routes() {
            if !configured.contains(&category) {
                let route = RouteConfig { category, route };
                replace_route(&mut *conn, pizzeria_id, &route).await.map_err(|e| match e {
                    KitchenError::Invalid(_) => KitchenError::Invalid(ValidationError::new(
                        format!("routes.{}", category.as_str()),
                        "is required: the default route needs stations this pizzeria does not have",
                    )),
                    other => other,
                })?;
            }
        }
    }
    Ok(created)
}

/// Replaces one category's route of an existing pizzeria.
#[tracing::instrument(skip(conn, route))]
pub async fn set_route(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
    route: &RouteConfig,
) -> Result<(), KitchenError> {
    pizzerias::find_pizzeria(&mut *conn, pizzeria_id)
        .await?
        .ok_or(KitchenError::NotFound("pizzeria"))?;
    replace_route(conn, pizzeria_id, route).await
}

async fn replace_route(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
    route: &RouteConfig,
) -> Result<(), KitchenError> {
    let known: HashSet<String> = pizzerias::list_stations(&mut *conn, pizzeria_id)
        .await?
        .into_iter()
        .map(|s| s.code)
        .collect();
    for (i, stage) in route.route.stages().iter().enumerate() {
        if !known.contains(stage.station.as_str()) {
            return Err(ValidationError::new(
                format!("stages[{i}].station"),
                "is not a station of this pizzeria",
            )
            .into());
        }
    }
    pizzerias::replace_route(conn, pizzeria_id, route.category, &route.route).await?;
    Ok(())
}
