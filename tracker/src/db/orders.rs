//! Orders: intake, the row lock every change takes, status, and the manager's and board's reads.

use anyhow::Context;
use chrono::{DateTime, Utc};
use contracts::OrderItem;
use sqlx::{PgConnection, PgExecutor, types::Json};
use uuid::Uuid;

use super::products::ProductRow;
use crate::domain::{NewOrder, OrderStatus};

/// The columns of [`OrderRow`], for every query that reads one.
const ORDER_COLUMNS: &str = "id, pizzeria_id, number, customer_name, show_number_only, source,
    placed_at, accepted_at, status, target_seconds, due_at, late, version, items, packed_at,
    handed_over_at, cancelled_at, cancel_reason, cancel_after_hand_over_at,
    cancel_after_hand_over_recorded_at, cancel_after_hand_over_source,
    cancel_after_hand_over_reason, cancel_after_hand_over_actor, promised_at, fires_at";

/// Serialised as it is for the manager: every column is meant for them.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct OrderRow {
    pub id: Uuid,
    pub pizzeria_id: Uuid,
    pub number: i32,
    pub customer_name: String,
    pub show_number_only: bool,
    pub source: String,
    pub placed_at: DateTime<Utc>,
    pub accepted_at: DateTime<Utc>,
    pub status: String,
    /// The sum of the products' targets.
    pub target_seconds: i32,
    pub due_at: DateTime<Utc>,
    pub late: bool,
    /// The sequence of the last event published about the order.
    pub version: i64,
    pub items: Json<Vec<OrderItem>>,
    pub packed_at: Option<DateTime<Utc>>,
    pub handed_over_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    /// An order source cancelled after the hand-over (see [`record_cancel_after_hand_over`]):
    /// when the source says it cancelled, when the tracker heard of it, which source, why and
    /// who. The order stays handed over; the manager may owe a refund.
    pub cancel_after_hand_over_at: Option<DateTime<Utc>>,
    pub cancel_after_hand_over_recorded_at: Option<DateTime<Utc>>,
    pub cancel_after_hand_over_source: Option<String>,
    pub cancel_after_hand_over_reason: Option<String>,
    pub cancel_after_hand_over_actor: Option<String>,
    /// A pre-order's promised time.
    pub promised_at: Option<DateTime<Utc>>,
    /// While a pre-order is held (scheduled): when it fires to its first stations.
    pub fires_at: Option<DateTime<Utc>>,
}

impl OrderRow {
    /// The status column holds only what the check constraint allows; anything else is a bug
    /// worth a 500, not a guess.
    pub fn status(&self) -> anyhow::Result<OrderStatus> {
        OrderStatus::parse(&self.status)
            .with_context(|| format!("order {} has an unknown status {:?}", self.id, self.status))
    }
}

/// Stores a new order; `false` when an order with this id exists already (a redelivery or a
/// retried POST), in which case nothing is written.
#[tracing::instrument(skip(conn, order), fields(order_id = %order.id))]
pub async fn insert_order(
    conn: &mut PgConnection,
    order: &NewOrder,
    accepted_at: DateTime<Utc>,
    target_seconds: i32,
) -> anyhow::Result<bool> {
    let items: Vec<OrderItem> = order.items.iter().map(|i| i.to_contract()).collect();
    let inserted = sqlx::query(
        "insert into orders (id, pizzeria_id, number, customer_name, show_number_only, source,
             placed_at, accepted_at, status, target_seconds, due_at, items)
         values ($1, $2, $3, $4, $5, $6, $7, $8, 'accepted', $9,
             $8 + $9 * interval '1 second', $10)
         on conflict (id) do nothing",
    )
    .bind(order.id)
    .bind(order.pizzeria_id)
    .bind(i32::try_from(order.number).context("order number out of range")?)
    .bind(order.customer_name.as_str())
    .bind(order.show_number_only)
    .bind(order.source.as_str())
    .bind(order.placed_at)
    .bind(accepted_at)
    .bind(target_seconds)
    .bind(Json(&items))
    .execute(conn)
    .await
    .context("cannot store the order")?
    .rows_affected();
    Ok(inserted == 1)
}

/// Up to `limit` orders matching `due` (a condition on `$1`, the time now), by `by`, locked:
/// the sweeper's work. Orders another instance holds are skipped, so several trackers sweep at
/// once without doing anything twice. `due` and `by` are constants of this module.
async fn lock_for_sweep(
    conn: &mut PgConnection,
    due: &'static str,
    by: &'static str,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ORDER_COLUMNS} from orders where {due} order by {by} limit $2
         for update skip locked"
    )))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Records a pre-order's promise, and while it is held when it fires: its due time (for the
/// late flag) counts from then.
#[tracing::instrument(skip(conn))]
pub async fn record_promise(
    conn: &mut PgConnection,
    id: Uuid,
    promised_at: DateTime<Utc>,
    fires_at: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    sqlx::query(
        "update orders set promised_at = $2, fires_at = $3,
             due_at = coalesce($3, accepted_at) + target_seconds * interval '1 second'
         where id = $1",
    )
    .bind(id)
    .bind(promised_at)
    .bind(fires_at)
    .execute(conn)
    .await
    .context("cannot record the promised time")?;
    Ok(())
}

/// Held orders whose time has come, locked; those another instance holds are skipped, so two
/// trackers fire each order once between them.
#[tracing::instrument(skip(conn))]
pub async fn lock_orders_to_fire(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> anyhow::Result<Vec<OrderRow>> {
    lock_for_sweep(
        conn,
        "fires_at is not null and fires_at <= $1",
        "fires_at",
        now,
        limit,
    )
    .await
    .context("cannot find the pre-orders to fire")
}

/// The order is no longer held.
#[tracing::instrument(skip(conn))]
pub async fn mark_fired(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<()> {
    sqlx::query("update orders set fires_at = null where id = $1")
        .bind(id)
        .execute(conn)
        .await
        .context("cannot mark the order fired")?;
    Ok(())
}

/// Whether the order is known already, and whether its pizzeria is: intake's first look, in
/// one round trip.
#[tracing::instrument(skip(db))]
pub async fn order_and_pizzeria_exist(
    db: impl PgExecutor<'_>,
    id: Uuid,
    pizzeria_id: Uuid,
) -> anyhow::Result<(bool, bool)> {
    sqlx::query_as(
        "select exists (select 1 from orders where id = $1),
                exists (select 1 from pizzerias where id = $2)",
    )
    .bind(id)
    .bind(pizzeria_id)
    .fetch_one(db)
    .await
    .context("cannot look the order up")
}

/// Reads the order and locks it until the transaction ends. Every change to an order or its
/// products goes through here first, so one order's changes run one at a time and the event
/// sequence has no gaps and no reordering.
#[tracing::instrument(skip(conn))]
pub async fn lock_order(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Option<OrderRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ORDER_COLUMNS} from orders where id = $1 for update"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
    .context("cannot lock the order")
}

#[tracing::instrument(skip(db))]
pub async fn find_order(db: impl PgExecutor<'_>, id: Uuid) -> anyhow::Result<Option<OrderRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ORDER_COLUMNS} from orders where id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
    .context("cannot read the order")
}

/// What a tap works on: the product's order, locked, and the product as it is under that
/// lock, with how many other products of the order are not done yet.
#[derive(Debug, sqlx::FromRow)]
pub struct LockedProduct {
    #[sqlx(flatten)]
    pub order: OrderRow,
    pub product: Json<ProductRow>,
    pub unfinished_others: i64,
}

/// Locks the order of `product_id` when the station exists and the product is the pizzeria's,
/// then reads the product under the lock: one round trip (`lock_order_of_product` and
/// `product_under_lock`, migration 20261202100000). `None` when any of them is missing.
#[tracing::instrument(skip(conn))]
pub async fn lock_order_of_product(
    conn: &mut PgConnection,
    pizzeria_id: Uuid,
    station: &str,
    product_id: Uuid,
) -> anyhow::Result<Option<LockedProduct>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ORDER_COLUMNS}, l.product, l.unfinished_others
         from lock_order_of_product($1, $2, $3) o
         cross join lateral product_under_lock(o.id, $3) l"
    )))
    .bind(pizzeria_id)
    .bind(station)
    .bind(product_id)
    .fetch_optional(conn)
    .await
    .context("cannot lock the product's order")
}

#[tracing::instrument(skip(conn))]
pub async fn record_cancel_reason(
    conn: &mut PgConnection,
    id: Uuid,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    sqlx::query("update orders set cancel_reason = $2 where id = $1")
        .bind(id)
        .bind(reason)
        .execute(conn)
        .await
        .context("cannot save the cancel reason")?;
    Ok(())
}

/// A source's cancel that came after the hand-over, kept on the order. Only the first one is
/// kept; `false` when the order had one already.
#[tracing::instrument(skip(conn, cancel))]
pub async fn record_cancel_after_hand_over(
    conn: &mut PgConnection,
    id: Uuid,
    cancel: &LateCancel<'_>,
) -> anyhow::Result<bool> {
    let updated = sqlx::query(
        "update orders set
             cancel_after_hand_over_at = $2,
             cancel_after_hand_over_recorded_at = $3,
             cancel_after_hand_over_source = $4,
             cancel_after_hand_over_reason = $5,
             cancel_after_hand_over_actor = $6
         where id = $1 and cancel_after_hand_over_recorded_at is null",
    )
    .bind(id)
    .bind(cancel.cancelled_at)
    .bind(cancel.recorded_at)
    .bind(cancel.source)
    .bind(cancel.reason)
    .bind(cancel.actor)
    .execute(conn)
    .await
    .context("cannot record the cancel after the hand-over")?
    .rows_affected();
    Ok(updated == 1)
}

/// What [`record_cancel_after_hand_over`] writes.
pub struct LateCancel<'a> {
    pub cancelled_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub source: &'a str,
    pub reason: Option<&'a str>,
    pub actor: Option<&'a str>,
}

/// Open orders past their due time that are not flagged yet, locked; rows another sweeper has
/// locked are skipped rather than waited for.
#[tracing::instrument(skip(conn))]
pub async fn lock_overdue_orders(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> anyhow::Result<Vec<OrderRow>> {
    let due = "not late and status in ('accepted', 'in_work') and due_at < $1";
    lock_for_sweep(conn, due, "due_at", now, limit)
        .await
        .context("cannot find overdue orders")
}

#[tracing::instrument(skip(conn))]
pub async fn flag_late(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<()> {
    sqlx::query("update orders set late = true where id = $1")
        .bind(id)
        .execute(conn)
        .await
        .context("cannot flag the order late")?;
    Ok(())
}

/// What the manager filters the order list by.
#[derive(Debug, Clone)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub limit: i64,
    pub search: Option<OrderSearch>,
}

/// What a manager types to find an order among hundreds.
#[derive(Debug, Clone)]
pub enum OrderSearch {
    /// Exactly this order number.
    Number(i32),
    /// Part of the customer's name, in any case.
    Name(String),
}

/// The pizzeria's orders accepted in `[from, to)`, newest first.
#[tracing::instrument(skip(db))]
pub async fn list_orders(
    db: impl PgExecutor<'_>,
    pizzeria_id: Uuid,
    filter: &OrderFilter,
) -> anyhow::Result<Vec<OrderRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ORDER_COLUMNS} from orders
         where pizzeria_id = $1 and accepted_at >= $2 and accepted_at < $3
           and ($4::text is null or status = $4)
           and ($6::int is null or number = $6)
           and ($7::text is null or customer_name ilike '%' || $7 || '%')
         order by accepted_at desc, id
         limit $5"
    )))
    .bind(pizzeria_id)
    .bind(filter.from)
    .bind(filter.to)
    .bind(filter.status.map(OrderStatus::as_str))
    .bind(filter.limit)
    .bind(match &filter.search {
        Some(OrderSearch::Number(n)) => Some(*n),
        _ => None,
    })
    // `%`, `_` and `\` typed by the manager are matched as themselves.
    .bind(match &filter.search {
        Some(OrderSearch::Name(name)) => Some(
            name.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_"),
        ),
        _ => None,
    })
    .fetch_all(db)
    .await
    .context("cannot list the orders")
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct BoardRow {
    pub id: Uuid,
    pub number: i32,
    pub customer_name: String,
    pub show_number_only: bool,
    pub status: String,
    pub late: bool,
    pub packed_at: Option<DateTime<Utc>>,
}

/// The orders on the TV board, oldest first. Orders stuck on the board for a day or more are
/// left off: by then they are mistakes nobody closed, not customers waiting.
#[tracing::instrument(skip(db))]
pub async fn board_orders(
    db: impl PgExecutor<'_>,
    pizzeria_id: Uuid,
) -> anyhow::Result<Vec<BoardRow>> {
    sqlx::query_as(
        "select id, number, customer_name, show_number_only, status, late, packed_at from orders
         where pizzeria_id = $1 and status in ('accepted', 'in_work', 'packed')
           and accepted_at > now() - interval '1 day' and fires_at is null
         order by accepted_at, id",
    )
    .bind(pizzeria_id)
    .fetch_all(db)
    .await
    .context("cannot read the board")
}
