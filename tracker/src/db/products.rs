//! Products: the units the kitchen makes, where each one is, and the station queues.

use anyhow::Context;
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::NewItem;

const PRODUCT_COLUMNS: &str = "id, order_id, pizzeria_id, item_index, unit_index, name, category,
    size, modifiers, route_stations, route_targets, stage, pass, station, entered_at, done_at,
    allergens, urgent, remake_reason, clock_from";

/// Also read from JSON (`product_under_lock`, the tap's first statement): its fields are the
/// table's column names, as `row_to_json` writes them.
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct ProductRow {
    pub id: Uuid,
    pub order_id: Uuid,
    pub pizzeria_id: Uuid,
    pub item_index: i32,
    pub unit_index: i32,
    pub name: String,
    pub category: String,
    pub size: Option<String>,
    pub modifiers: Vec<String>,
    pub route_stations: Vec<String>,
    pub route_targets: Vec<i32>,
    pub stage: i32,
    pub pass: i32,
    pub station: Option<String>,
    pub entered_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    pub allergens: Vec<String>,
    pub urgent: bool,
    pub remake_reason: Option<String>,
    pub clock_from: Option<DateTime<Utc>>,
}

impl ProductRow {
    /// The stage index as a position in the route.
    pub fn stage_index(&self) -> usize {
        usize::try_from(self.stage).unwrap_or(0)
    }

    pub fn target_of(&self, stage: usize) -> i32 {
        self.route_targets.get(stage).copied().unwrap_or(0)
    }

    /// When the clock of the product's current stage started, as of `now`: its arrival, or
    /// later when it waits for the order's slowest product (never after `now`).
    pub fn clock_started(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self.clock_from {
            Some(from) => self.entered_at.max(from.min(now)),
            None => self.entered_at,
        }
    }
}

/// The units of one order item, all starting at the first station of the item's route.
#[derive(Debug)]
pub struct NewProducts<'a> {
    pub item_index: i32,
    pub item: &'a NewItem,
    pub route_stations: &'a [String],
    pub route_targets: &'a [i32],
    /// When the clock at the first station starts, if later than `entered_at`.
    pub clock_from: Option<DateTime<Utc>>,
    /// A held pre-order: the products wait at no station until it fires.
    pub held: bool,
}

/// Creates one product per unit of every item of the order, in one statement, and returns
/// their ids item by item, in unit order.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn insert_products(
    conn: &mut PgConnection,
    order_id: Uuid,
    pizzeria_id: Uuid,
    entered_at: DateTime<Utc>,
    items: &[NewProducts<'_>],
) -> anyhow::Result<Vec<Vec<Uuid>>> {
    /// One product, as `jsonb_to_recordset` reads it.
    #[derive(serde::Serialize)]
    struct Unit<'a> {
        id: Uuid,
        item_index: i32,
        unit_index: i32,
        name: &'a str,
        category: &'a str,
        size: Option<&'a str>,
        modifiers: &'a [String],
        route_stations: &'a [String],
        route_targets: &'a [i32],
        allergens: &'a [String],
        clock_from: Option<DateTime<Utc>>,
        held: bool,
    }
    let mut units = Vec::new();
    let mut ids = Vec::with_capacity(items.len());
    for new in items {
        let item = new.item;
        let quantity = i32::try_from(item.quantity.get()).context("quantity out of range")?;
        let item_ids: Vec<Uuid> = (0..quantity).map(|_| Uuid::now_v7()).collect();
        for (unit_index, id) in (0..).zip(&item_ids) {
            units.push(Unit {
                id: *id,
                item_index: new.item_index,
                unit_index,
                name: item.name.as_str(),
                category: item.category.as_str(),
                size: item.size.as_deref(),
                modifiers: &item.modifiers,
                route_stations: new.route_stations,
                route_targets: new.route_targets,
                allergens: &item.allergens,
                // Whole microseconds, as a bound timestamp would be stored; PostgreSQL would
                // round the text instead.
                clock_from: new.clock_from.map(|t| t.trunc_subsecs(6)),
                held: new.held,
            });
        }
        ids.push(item_ids);
    }
    sqlx::query(
        "insert into products (id, order_id, pizzeria_id, item_index, unit_index, name, category,
             size, modifiers, route_stations, route_targets, stage, station, entered_at,
             allergens, clock_from)
         select u.id, $2, $3, u.item_index, u.unit_index, u.name, u.category, u.size,
                u.modifiers, u.route_stations, u.route_targets, 0,
                case when u.held then null else u.route_stations[1] end, $4, u.allergens,
                u.clock_from
         from jsonb_to_recordset($1::jsonb) as u (id uuid, item_index int, unit_index int,
              name text, category text, size text, modifiers text[], route_stations text[],
              route_targets int[], allergens text[], clock_from timestamptz, held boolean)",
    )
    .bind(sqlx::types::Json(&units))
    .bind(order_id)
    .bind(pizzeria_id)
    .bind(entered_at)
    .execute(conn)
    .await
    .context("cannot store the order's products")?;
    Ok(ids)
}

#[tracing::instrument(skip(db))]
pub async fn find_product(db: impl PgExecutor<'_>, id: Uuid) -> anyhow::Result<Option<ProductRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {PRODUCT_COLUMNS} from products where id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
    .context("cannot read the product")
}

/// The product of a locked order, read after the lock was taken, and how many other products
/// of the order are not done yet (`product_under_lock`). `None` when the product is not the
/// order's.
#[tracing::instrument(skip(conn))]
pub async fn product_under_lock(
    conn: &mut PgConnection,
    order_id: Uuid,
    product_id: Uuid,
) -> anyhow::Result<Option<(ProductRow, i64)>> {
    let found: Option<(sqlx::types::Json<ProductRow>, i64)> =
        sqlx::query_as("select product, unfinished_others from product_under_lock($1, $2)")
            .bind(order_id)
            .bind(product_id)
            .fetch_optional(conn)
            .await
            .context("cannot read the product")?;
    Ok(found.map(|(product, unfinished_others)| (product.0, unfinished_others)))
}

#[tracing::instrument(skip(db))]
pub async fn products_of_order(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
) -> anyhow::Result<Vec<ProductRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {PRODUCT_COLUMNS} from products where order_id = $1
         order by item_index, unit_index"
    )))
    .bind(order_id)
    .fetch_all(db)
    .await
    .context("cannot read the order's products")
}

/// Puts the product at stage `stage` of its route: waiting at `station` since `entered_at`, or
/// done when `station` is `None`.
#[tracing::instrument(skip(conn))]
pub async fn move_product(
    conn: &mut PgConnection,
    id: Uuid,
    stage: i32,
    station: Option<&str>,
    entered_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "update products set stage = $2, station = $3, entered_at = $4,
             done_at = case when $3::text is null then $4 end
         where id = $1",
    )
    .bind(id)
    .bind(stage)
    .bind(station)
    .bind(entered_at)
    .execute(conn)
    .await
    .context("cannot move the product")?;
    Ok(())
}

/// Starts a new pass of the product at its first station, urgent and with the reason for it.
#[tracing::instrument(skip(conn, reason))]
pub async fn restart_product(
    conn: &mut PgConnection,
    id: Uuid,
    at: DateTime<Utc>,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    sqlx::query(
        "update products set stage = 0, pass = pass + 1, station = route_stations[1],
             entered_at = $2, done_at = null, clock_from = null, urgent = true,
             remake_reason = $3
         where id = $1",
    )
    .bind(id)
    .bind(at)
    .bind(reason)
    .execute(conn)
    .await
    .context("cannot send the product back")?;
    Ok(())
}

/// Marks the order's products still waiting at a station urgent; returns the stations of the
/// ones that were not urgent yet (none when the order was rushed already).
#[tracing::instrument(skip(conn))]
pub async fn mark_order_urgent(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar(
        "update products set urgent = true
         where order_id = $1 and station is not null and not urgent
         returning station",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
    .context("cannot mark the order urgent")
}

/// Takes every product of the order off its station; returns the stations that lost one.
#[tracing::instrument(skip(conn))]
pub async fn clear_stations_of_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> anyhow::Result<Vec<String>> {
    let stations: Vec<String> = sqlx::query_scalar(
        // `returning` sees the new row, so the old station comes from the select.
        "with waiting as (
             select id, station from products
             where order_id = $1 and station is not null
         )
         update products p set station = null
         from waiting w where p.id = w.id
         returning w.station",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
    .context("cannot take the products off their stations")?;
    Ok(stations)
}

/// A fired pre-order's products go to their first stations, arriving `at`; a clock that was
/// to start later than arrival keeps its delay. Returns the stations, sorted.
#[tracing::instrument(skip(conn))]
pub async fn fire_products(
    conn: &mut PgConnection,
    order_id: Uuid,
    at: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    let mut stations: Vec<String> = sqlx::query_scalar(
        "update products set station = route_stations[1], entered_at = $2,
             clock_from = $2 + (clock_from - entered_at)
         where order_id = $1 and station is null and stage = 0 and done_at is null
         returning station",
    )
    .bind(order_id)
    .bind(at)
    .fetch_all(conn)
    .await
    .context("cannot put the pre-order's products on their stations")?;
    stations.sort();
    stations.dedup();
    Ok(stations)
}

/// The stations where the order's products wait.
#[tracing::instrument(skip(conn))]
pub async fn stations_of_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar(
        "select distinct station from products where order_id = $1 and station is not null",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
    .context("cannot read where the order's products are")
}
