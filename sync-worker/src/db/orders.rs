//! The order tables, written a whole batch at a time: each function is one statement over
//! `unnest`ed arrays, so a batch costs a handful of round trips however many events it holds.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::column;

/// A row of `orders` as the monolith keyed it, with the sync state that guards its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyOrder {
    pub id: i32,
    /// The sequence of the event that last set `orders.status`.
    pub status_sequence: i64,
}

#[derive(Debug)]
pub struct NewOrder {
    pub order_uuid: Uuid,
    pub unit_id: Uuid,
    pub order_number: i32,
    pub client_name: String,
    pub is_number_only: bool,
    pub status: i16,
    pub order_type: i16,
    pub created_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
    /// The sequence of the event that created it, which set its status.
    pub sequence: i64,
}

#[derive(Debug)]
pub struct NewOrderItem {
    pub order_id: i32,
    pub line_no: i16,
    pub product_id: Uuid,
    pub product_name: String,
    pub category: &'static str,
    pub size: Option<String>,
    pub quantity: i16,
    pub modifiers: String,
}

/// One tracked unit of a line: the tracker's product id and the line it belongs to.
#[derive(Debug)]
pub struct NewProductUnit {
    pub order_id: i32,
    pub line_no: i16,
    pub product_id: Uuid,
}

/// A status an order moves to, if the event that sets it is newer than the one that set it last.
#[derive(Debug)]
pub struct StatusChange {
    pub order_uuid: Uuid,
    pub status: i16,
    pub sequence: i64,
    pub changed_at: DateTime<Utc>,
}

/// One line of the order's legacy timeline.
#[derive(Debug)]
pub struct NewHistoryRow {
    pub order_id: i32,
    pub status: Option<i16>,
    pub stage: Option<&'static str>,
    pub station: Option<String>,
    pub order_item_id: Option<i32>,
    pub product_name: Option<String>,
    pub actor: Option<String>,
    pub comment: Option<String>,
    pub happened_at: DateTime<Utc>,
    pub event_id: Uuid,
    pub event_sequence: i64,
}

/// Inserts the orders that are not there yet, with their sync state, and returns the legacy
/// id of each new one. An order that is there already is left as it is.
#[tracing::instrument(skip_all, fields(orders = orders.len()))]
pub async fn insert_orders(
    conn: &mut PgConnection,
    orders: &[NewOrder],
) -> Result<HashMap<Uuid, i32>, sqlx::Error> {
    let inserted: Vec<(Uuid, i32)> = sqlx::query_as(
        "insert into orders (order_uuid, unit_id, order_number, client_name, is_number_only,
                             status, order_type, created_at, changed_at)
         select * from unnest($1::uuid[], $2::uuid[], $3::int4[], $4::text[], $5::bool[],
                              $6::int2[], $7::int2[], $8::timestamptz[], $9::timestamptz[])
         on conflict (order_uuid) do nothing
         returning order_uuid, id",
    )
    .bind(column(orders, |o| o.order_uuid))
    .bind(column(orders, |o| o.unit_id))
    .bind(column(orders, |o| o.order_number))
    .bind(column(orders, |o| o.client_name.as_str()))
    .bind(column(orders, |o| o.is_number_only))
    .bind(column(orders, |o| o.status))
    .bind(column(orders, |o| o.order_type))
    .bind(column(orders, |o| o.created_at))
    .bind(column(orders, |o| o.changed_at))
    .fetch_all(&mut *conn)
    .await?;
    let inserted: HashMap<Uuid, i32> = inserted.into_iter().collect();
    let new: Vec<&NewOrder> = orders
        .iter()
        .filter(|o| inserted.contains_key(&o.order_uuid))
        .collect();
    sqlx::query(
        "insert into sync_order_state (order_uuid, status_sequence)
         select * from unnest($1::uuid[], $2::int8[])
         on conflict (order_uuid) do nothing",
    )
    .bind(column(&new, |o| o.order_uuid))
    .bind(column(&new, |o| o.sequence))
    .execute(conn)
    .await?;
    Ok(inserted)
}

/// Inserts sold lines, then maps each tracked unit to its line.
#[tracing::instrument(skip_all, fields(items = items.len(), units = units.len()))]
pub async fn insert_order_items(
    conn: &mut PgConnection,
    items: &[NewOrderItem],
    units: &[NewProductUnit],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into order_items (order_id, line_no, product_id, product_name, category, size,
                                  quantity, modifiers)
         select * from unnest($1::int4[], $2::int2[], $3::uuid[], $4::text[], $5::text[],
                              $6::text[], $7::int2[], $8::text[])",
    )
    .bind(column(items, |i| i.order_id))
    .bind(column(items, |i| i.line_no))
    .bind(column(items, |i| i.product_id))
    .bind(column(items, |i| i.product_name.as_str()))
    .bind(column(items, |i| i.category))
    .bind(column(items, |i| i.size.as_deref()))
    .bind(column(items, |i| i.quantity))
    .bind(column(items, |i| i.modifiers.as_str()))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "insert into sync_order_products (product_id, order_item_id)
         select u.product_id, i.id
         from unnest($1::int4[], $2::int2[], $3::uuid[]) as u(order_id, line_no, product_id)
         join order_items i on i.order_id = u.order_id and i.line_no = u.line_no
         on conflict (product_id) do nothing",
    )
    .bind(column(units, |u| u.order_id))
    .bind(column(units, |u| u.line_no))
    .bind(column(units, |u| u.product_id))
    .execute(conn)
    .await?;
    Ok(())
}

/// The mirrored orders among `order_uuids`, their sync state locked until the transaction ends
/// so that two workers never decide on one order's status at the same time. Locked in one
/// order, so that two batches cannot deadlock. An order missing from the answer has not had
/// its accepted event mirrored yet.
#[tracing::instrument(skip_all, fields(orders = order_uuids.len()))]
pub async fn lock_orders(
    conn: &mut PgConnection,
    order_uuids: &[Uuid],
) -> Result<HashMap<Uuid, LegacyOrder>, sqlx::Error> {
    let rows: Vec<(Uuid, i32, i64)> = sqlx::query_as(
        "select o.order_uuid, o.id, s.status_sequence
         from orders o
         join sync_order_state s on s.order_uuid = o.order_uuid
         where o.order_uuid = any($1)
         order by o.order_uuid
         for update of s",
    )
    .bind(order_uuids)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(order_uuid, id, status_sequence)| {
            (
                order_uuid,
                LegacyOrder {
                    id,
                    status_sequence,
                },
            )
        })
        .collect())
}

/// Sets each order's status, only where the change is newer than the status it has: a late,
/// stale event never overwrites newer state. At most one change per order.
#[tracing::instrument(skip_all, fields(orders = changes.len()))]
pub async fn set_order_statuses(
    conn: &mut PgConnection,
    changes: &[StatusChange],
) -> Result<(), sqlx::Error> {
    // Both updates read the state as it was before the statement, so they agree on what is newer.
    sqlx::query(
        "with change as (
             select c.*
             from unnest($1::uuid[], $2::int2[], $3::int8[], $4::timestamptz[])
                  as c(order_uuid, status, sequence, changed_at)
             join sync_order_state s
               on s.order_uuid = c.order_uuid and s.status_sequence < c.sequence
         ), state as (
             update sync_order_state s set status_sequence = c.sequence
             from change c where s.order_uuid = c.order_uuid
         )
         update orders o set status = c.status, changed_at = c.changed_at
         from change c where o.order_uuid = c.order_uuid",
    )
    .bind(column(changes, |c| c.order_uuid))
    .bind(column(changes, |c| c.status))
    .bind(column(changes, |c| c.sequence))
    .bind(column(changes, |c| c.changed_at))
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(orders = order_ids.len()))]
pub async fn mark_orders_late(
    conn: &mut PgConnection,
    order_ids: &[i32],
) -> Result<(), sqlx::Error> {
    sqlx::query("update orders set is_late = true where id = any($1) and not is_late")
        .bind(order_ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// (legacy order id, tracker product id) → (order_items id, product name).
pub type ProductLines = HashMap<(i32, Uuid), (i32, String)>;

/// The legacy line and name of each (order id, tracker product) pair. Taps name the unit, which
/// the accepted event mapped to its line; a menu product id is accepted too, taking the order's
/// first such line. A pair with no line is missing from the answer.
#[tracing::instrument(skip_all, fields(products = products.len()))]
pub async fn find_order_items(
    conn: &mut PgConnection,
    products: &[(i32, Uuid)],
) -> Result<ProductLines, sqlx::Error> {
    let rows: Vec<(i32, Uuid, i32, String)> = sqlx::query_as(
        "select distinct on (q.order_id, q.product_id)
                q.order_id, q.product_id, i.id, i.product_name
         from unnest($1::int4[], $2::uuid[]) as q(order_id, product_id)
         join order_items i on i.order_id = q.order_id
         left join sync_order_products p on p.order_item_id = i.id and p.product_id = q.product_id
         where p.product_id is not null or i.product_id = q.product_id
         order by q.order_id, q.product_id, p.product_id is null, i.line_no",
    )
    .bind(column(products, |p| p.0))
    .bind(column(products, |p| p.1))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(order_id, product_id, item_id, name)| ((order_id, product_id), (item_id, name)))
        .collect())
}

/// Appends to the orders' timelines; a row for an event that has one already is skipped.
#[tracing::instrument(skip_all, fields(rows = rows.len()))]
pub async fn insert_history(
    conn: &mut PgConnection,
    rows: &[NewHistoryRow],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into order_history (order_id, status, stage, station, order_item_id, product_name,
                                    actor, comment, happened_at, event_id, event_sequence)
         select * from unnest($1::int4[], $2::int2[], $3::text[], $4::text[], $5::int4[],
                              $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::uuid[],
                              $11::int8[])
         on conflict (event_id) do nothing",
    )
    .bind(column(rows, |r| r.order_id))
    .bind(column(rows, |r| r.status))
    .bind(column(rows, |r| r.stage))
    .bind(column(rows, |r| r.station.as_deref()))
    .bind(column(rows, |r| r.order_item_id))
    .bind(column(rows, |r| r.product_name.as_deref()))
    .bind(column(rows, |r| r.actor.as_deref()))
    .bind(column(rows, |r| r.comment.as_deref()))
    .bind(column(rows, |r| r.happened_at))
    .bind(column(rows, |r| r.event_id))
    .bind(column(rows, |r| r.event_sequence))
    .execute(conn)
    .await?;
    Ok(())
}
