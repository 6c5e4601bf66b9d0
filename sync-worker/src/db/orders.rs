use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A row of `orders` as the monolith keyed it, with the sync state that guards its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyOrder {
    pub id: i32,
    pub order_uuid: Uuid,
    /// The sequence of the event that last set `orders.status`.
    pub status_sequence: i64,
}

#[derive(Debug)]
pub struct NewOrder<'a> {
    pub order_uuid: Uuid,
    pub unit_id: Uuid,
    pub order_number: i32,
    pub client_name: &'a str,
    pub is_number_only: bool,
    pub status: i16,
    pub order_type: i16,
    pub created_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
}

#[derive(Debug)]
pub struct NewOrderItem<'a> {
    pub line_no: i16,
    pub product_id: Uuid,
    pub product_name: &'a str,
    pub category: &'a str,
    pub size: Option<&'a str>,
    pub quantity: i16,
    pub modifiers: &'a str,
}

/// One line of the order's legacy timeline.
#[derive(Debug)]
pub struct NewHistoryRow<'a> {
    pub order_id: i32,
    pub status: Option<i16>,
    pub stage: Option<&'a str>,
    pub station: Option<&'a str>,
    pub order_item_id: Option<i32>,
    pub product_name: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub comment: Option<&'a str>,
    pub happened_at: DateTime<Utc>,
    pub event_id: Uuid,
    pub event_sequence: i64,
}

/// Inserts the order unless it is already there; `None` means it was.
#[tracing::instrument(skip(conn, order), fields(order_uuid = %order.order_uuid))]
pub async fn insert_order(
    conn: &mut PgConnection,
    order: &NewOrder<'_>,
) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar(
        "insert into orders (order_uuid, unit_id, order_number, client_name, is_number_only,
                             status, order_type, created_at, changed_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         on conflict (order_uuid) do nothing
         returning id",
    )
    .bind(order.order_uuid)
    .bind(order.unit_id)
    .bind(order.order_number)
    .bind(order.client_name)
    .bind(order.is_number_only)
    .bind(order.status)
    .bind(order.order_type)
    .bind(order.created_at)
    .bind(order.changed_at)
    .fetch_optional(conn)
    .await
}

#[tracing::instrument(skip(conn, item))]
pub async fn insert_order_item(
    conn: &mut PgConnection,
    order_id: i32,
    item: &NewOrderItem<'_>,
) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(
        "insert into order_items (order_id, line_no, product_id, product_name, category, size,
                                  quantity, modifiers)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         returning id",
    )
    .bind(order_id)
    .bind(item.line_no)
    .bind(item.product_id)
    .bind(item.product_name)
    .bind(item.category)
    .bind(item.size)
    .bind(item.quantity)
    .bind(item.modifiers)
    .fetch_one(conn)
    .await
}

/// Remembers which legacy line a tracker product (one unit of a line) belongs to.
#[tracing::instrument(skip(conn))]
pub async fn insert_product_unit(
    conn: &mut PgConnection,
    product_id: Uuid,
    order_item_id: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into sync_order_products (product_id, order_item_id) values ($1, $2)
         on conflict (product_id) do nothing",
    )
    .bind(product_id)
    .bind(order_item_id)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(skip(conn))]
pub async fn insert_order_state(
    conn: &mut PgConnection,
    order_uuid: Uuid,
    status_sequence: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into sync_order_state (order_uuid, status_sequence) values ($1, $2)
         on conflict (order_uuid) do nothing",
    )
    .bind(order_uuid)
    .bind(status_sequence)
    .execute(conn)
    .await?;
    Ok(())
}

/// The mirrored order, locked until the transaction ends so that two events of one order
/// never decide on its status at the same time. `None` until its accepted event is mirrored.
#[tracing::instrument(skip(conn))]
pub async fn lock_order(
    conn: &mut PgConnection,
    order_uuid: Uuid,
) -> Result<Option<LegacyOrder>, sqlx::Error> {
    let row: Option<(i32, i64)> = sqlx::query_as(
        "select o.id, s.status_sequence
         from orders o
         join sync_order_state s on s.order_uuid = o.order_uuid
         where o.order_uuid = $1
         for update of s",
    )
    .bind(order_uuid)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(id, status_sequence)| LegacyOrder {
        id,
        order_uuid,
        status_sequence,
    }))
}

#[tracing::instrument(skip(conn))]
pub async fn set_order_status(
    conn: &mut PgConnection,
    order: &LegacyOrder,
    status: i16,
    sequence: i64,
    changed_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("update orders set status = $2, changed_at = $3 where id = $1")
        .bind(order.id)
        .bind(status)
        .bind(changed_at)
        .execute(&mut *conn)
        .await?;
    sqlx::query("update sync_order_state set status_sequence = $2 where order_uuid = $1")
        .bind(order.order_uuid)
        .bind(sequence)
        .execute(conn)
        .await?;
    Ok(())
}

#[tracing::instrument(skip(conn))]
pub async fn mark_order_late(conn: &mut PgConnection, order_id: i32) -> Result<(), sqlx::Error> {
    sqlx::query("update orders set is_late = true where id = $1")
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The legacy line and name of a tracker product. Taps name the unit, which the accepted event
/// mapped to its line; a menu product id is accepted too, taking the order's first such line.
#[tracing::instrument(skip(conn))]
pub async fn find_order_item(
    conn: &mut PgConnection,
    order_id: i32,
    product_id: Uuid,
) -> Result<Option<(i32, String)>, sqlx::Error> {
    sqlx::query_as(
        "select i.id, i.product_name
         from order_items i
         left join sync_order_products p on p.order_item_id = i.id and p.product_id = $2
         where i.order_id = $1 and (p.product_id is not null or i.product_id = $2)
         order by p.product_id is null, i.line_no
         limit 1",
    )
    .bind(order_id)
    .bind(product_id)
    .fetch_optional(conn)
    .await
}

/// Appends to the order's timeline; a row for the same event again is skipped.
#[tracing::instrument(skip(conn, row), fields(order_id = row.order_id, event_id = %row.event_id))]
pub async fn insert_history(
    conn: &mut PgConnection,
    row: &NewHistoryRow<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into order_history (order_id, status, stage, station, order_item_id, product_name,
                                    actor, comment, happened_at, event_id, event_sequence)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         on conflict (event_id) do nothing",
    )
    .bind(row.order_id)
    .bind(row.status)
    .bind(row.stage)
    .bind(row.station)
    .bind(row.order_item_id)
    .bind(row.product_name)
    .bind(row.actor)
    .bind(row.comment)
    .bind(row.happened_at)
    .bind(row.event_id)
    .bind(row.event_sequence)
    .execute(conn)
    .await?;
    Ok(())
}
