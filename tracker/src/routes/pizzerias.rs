//! Setting up a pizzeria: name, stations, routes. Only a chain admin changes them (the chain
//! decides its kitchens' stations and target times); anyone of the pizzeria may read them.

use std::collections::BTreeMap;

use access::Caller;
use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use service_kit::http::{Deferred, Json, path_param};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    db::pizzerias,
    domain::{Category, PizzeriaName, Route, StationCode, StationName, ValidationError},
    kitchen::{self, Kitchen, KitchenError, PizzeriaConfig, RouteConfig, StationConfig},
};

use super::{ApiError, PizzeriaScope, require_chain_admin, require_member};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationBody {
    code: String,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageBody {
    station: String,
    target_seconds: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteBody {
    stages: Vec<StageBody>,
}

impl TryFrom<&RouteBody> for Route {
    type Error = ValidationError;
    fn try_from(body: &RouteBody) -> Result<Self, Self::Error> {
        let stages: Vec<(String, u32)> = body
            .stages
            .iter()
            .map(|s| (s.station.clone(), s.target_seconds))
            .collect();
        Route::parse(&stages)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PizzeriaBody {
    name: String,
    /// IANA name, e.g. `Europe/Moscow`: the pizzeria's days and hours in reports.
    time_zone: Option<String>,
    stations: Option<Vec<StationBody>>,
    /// By category: `{"pizza": {"stages": [{"station": "dough", "target_seconds": 60}, ...]}}`.
    routes: Option<BTreeMap<String, RouteBody>>,
}

impl TryFrom<PizzeriaBody> for PizzeriaConfig {
    type Error = ValidationError;

    fn try_from(body: PizzeriaBody) -> Result<Self, Self::Error> {
        let name = PizzeriaName::parse(&body.name)?;
        let stations = body
            .stations
            .map(|stations| {
                stations
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let at = |e: ValidationError| {
                            ValidationError::new(format!("stations[{i}].{}", e.field), e.rule)
                        };
                        let code = StationCode::parse(&s.code)
                            .map_err(|e| at(ValidationError::new("code", e.rule)))?;
                        // A station without a name is called by its code.
                        let name =
                            StationName::parse(s.name.as_deref().unwrap_or(&s.code)).map_err(at)?;
                        Ok(StationConfig { code, name })
                    })
                    .collect::<Result<Vec<_>, ValidationError>>()
            })
            .transpose()?;
        let routes = body
            .routes
            .map(|routes| {
                routes
                    .iter()
                    .map(|(category, route)| {
                        let category: Category = category.parse().map_err(|_| {
                            ValidationError::new(
                                format!("routes.{category}"),
                                "is not a category: use pizza, side, drink, sauce or dessert",
                            )
                        })?;
                        let route = Route::try_from(route)
                            .map_err(|e| e.under(&format!("routes.{}", category.0.as_str())))?;
                        Ok(RouteConfig {
                            category: category.0,
                            route,
                        })
                    })
                    .collect::<Result<Vec<_>, ValidationError>>()
            })
            .transpose()?;
        Ok(PizzeriaConfig {
            name,
            time_zone: body.time_zone.map(|t| t.trim().to_owned()),
            stations,
            routes,
        })
    }
}

#[derive(Debug, Serialize)]
struct StationView {
    code: String,
    name: String,
}

#[derive(Debug, Serialize)]
struct StageView {
    station: String,
    target_seconds: i32,
}

#[derive(Debug, Serialize)]
struct RouteView {
    stages: Vec<StageView>,
}

#[derive(Debug, Serialize)]
struct PizzeriaView {
    id: Uuid,
    name: String,
    time_zone: String,
    stations: Vec<StationView>,
    routes: BTreeMap<String, RouteView>,
}

async fn pizzeria_view(conn: &mut PgConnection, id: Uuid) -> Result<PizzeriaView, ApiError> {
    let pizzeria = pizzerias::find_pizzeria(&mut *conn, id)
        .await?
        .ok_or(KitchenError::NotFound("pizzeria"))?;
    let stations = pizzerias::list_stations(&mut *conn, id)
        .await?
        .into_iter()
        .map(|s| StationView {
            code: s.code,
            name: s.name,
        })
        .collect();
    let routes = pizzerias::routes_of(&mut *conn, id)
        .await?
        .into_iter()
        .map(|(category, stages)| {
            let stages = stages
                .into_iter()
                .map(|s| StageView {
                    station: s.station_code,
                    target_seconds: s.target_seconds,
                })
                .collect();
            (category, RouteView { stages })
        })
        .collect();
    Ok(PizzeriaView {
        id: pizzeria.id,
        name: pizzeria.name,
        time_zone: pizzeria.time_zone,
        stations,
        routes,
    })
}

/// `PUT /api/v1/pizzerias/{pizzeria_id}`: 201 when created (with default stations and routes
/// unless given), 200 when updated.
pub async fn put_pizzeria(
    caller: Caller,
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
    kitchen: web::Data<Kitchen>,
    body: Deferred<Json<PizzeriaBody>>,
) -> Result<HttpResponse, ApiError> {
    require_chain_admin(&caller)?;
    let Json(body) = body.get()?;
    let config = PizzeriaConfig::try_from(body)?;
    let mut tx = pool
        .begin()
        .await
        .context("cannot start the pizzeria update")?;
    let created =
        kitchen::configure_pizzeria(&mut tx, &kitchen.outbox, scope.pizzeria_id, &config).await?;
    let view = pizzeria_view(&mut tx, scope.pizzeria_id).await?;
    tx.commit()
        .await
        .context("cannot commit the pizzeria update")?;
    Ok(if created {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

/// `GET /api/v1/pizzerias/{pizzeria_id}`
pub async fn get_pizzeria(
    caller: Caller,
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
) -> Result<HttpResponse, ApiError> {
    require_member(&caller, scope.pizzeria_id)?;
    let mut conn = pool.acquire().await.context("cannot get a connection")?;
    Ok(HttpResponse::Ok().json(pizzeria_view(&mut conn, scope.pizzeria_id).await?))
}

/// `PUT /api/v1/pizzerias/{pizzeria_id}/routes/{category}` with `{"stages": [...]}`.
pub async fn put_route(
    caller: Caller,
    req: HttpRequest,
    scope: PizzeriaScope,
    pool: web::Data<PgPool>,
    body: Deferred<Json<RouteBody>>,
) -> Result<HttpResponse, ApiError> {
    require_chain_admin(&caller)?;
    let Json(body) = body.get()?;
    let category: Category = path_param(
        &req,
        "category",
        "must be one of pizza, side, drink, sauce, dessert",
    )?;
    let route = RouteConfig {
        category: category.0,
        route: Route::try_from(&body)?,
    };
    let mut tx = pool
        .begin()
        .await
        .context("cannot start the route update")?;
    kitchen::set_route(&mut tx, scope.pizzeria_id, &route).await?;
    let view = pizzeria_view(&mut tx, scope.pizzeria_id).await?;
    tx.commit()
        .await
        .context("cannot commit the route update")?;
    Ok(HttpResponse::Ok().json(view))
}
