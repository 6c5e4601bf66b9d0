//! Everything a station's tablet shows, read in one statement.
//!
//! A poll whose tag is stale is the tracker's most frequent database read: at ten times Dodo's
//! 2020 load about a third of the 3,000 polls a second fetch (docs/BENCHMARKS.md, issue #8).
//! It used to take five statements on five pool checkouts (the queue, the taps undo can take
//! back, the alerts, the all-day counts, the orders ready to hand over), and the per-statement
//! cost (protocol, snapshot, planner cache) was most of PostgreSQL's share of a poll. Here the
//! five lists are five `json_agg` sub-selects of one statement, decoded with serde into the
//! row types. The lists' row types name their fields as the answer does and serve as its
//! types too. Each list is ordered inside its aggregate (`order by` in `json_agg`), not by
//! a sub-query's order, which PostgreSQL does not promise to keep.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, types::Json};
use uuid::Uuid;

use serde::{Deserialize, Serialize};

use super::orders::BoardRow;

/// How many products one queue answer lists at most. A tablet shows a screenful; the answer
/// says how many wait in all, so none is hidden without the station knowing.
pub const QUEUE_LIMIT: i64 = 500;

/// What a station's queue answer is made of.
#[derive(Debug, sqlx::FromRow)]
pub struct StationView {
    /// The products waiting at the station, in the order the tablet lists them (urgent
    /// first, then by when each is due), at most [`QUEUE_LIMIT`].
    pub products: Json<Vec<QueueRow>>,
    /// The station's taps since `recall_since` that undo or recall could take back (not
    /// undone, the product still where the tap sent it, the order open), newest first.
    pub recallable: Json<Vec<RecallableTap>>,
    /// The station's alerts since `alerts_since`, newest first.
    pub alerts: Json<Vec<StationAlert>>,
    /// Every product waiting at the station by name and size, most first: the "all day"
    /// count a cook reads to make several at once.
    pub all_day: Json<Vec<AllDayCount>>,
    /// The pizzeria's packed orders with a product whose route ends at the station: what its
    /// tablet may hand over, oldest first.
    pub ready: Json<Vec<BoardRow>>,
}

#[tracing::instrument(skip(db))]
pub async fn station_view(
    db: impl PgExecutor<'_>,
    pizzeria_id: Uuid,
    station: &str,
    recall_since: DateTime<Utc>,
    alerts_since: DateTime<Utc>,
) -> anyhow::Result<StationView> {
    sqlx::query_as(
        "with queue as (
             select p.id as product_id, p.order_id, o.number, p.name, p.category, p.size,
                    p.modifiers, p.allergens, p.entered_at,
                    greatest(p.entered_at, coalesce(p.clock_from, p.entered_at)) as clock_from,
                    coalesce(p.route_targets[p.stage + 1], 0) as target_seconds,
                    p.pass, o.late, p.urgent, p.remake_reason, count(*) over () as total,
                    p.stage + 1 = cardinality(p.route_stations) as last_stage,
                    row_number() over (
                        order by p.urgent desc,
                                 greatest(p.entered_at, coalesce(p.clock_from, p.entered_at))
                                     + coalesce(p.route_targets[p.stage + 1], 0) * interval '1 second',
                                 p.entered_at, p.id) as n
             from products p join orders o on o.id = p.order_id
             where p.pizzeria_id = $1 and p.station = $2
         ),
         listed as (
             select q.*,
                    (select count(*) from products r where r.order_id = q.order_id)
                        as order_products,
                    (select count(*) from products r where r.order_id = q.order_id
                       and (r.done_at is not null or r.station = $2)) as order_here
             from queue q where q.n <= $3
         )
         select
             (select coalesce(json_agg(l order by l.n), '[]') from listed l) as products,
             (select coalesce(json_agg(t order by t.completed_at desc, t.tap_id desc), '[]')
              from (select t.id as tap_id, t.product_id, t.order_id, o.number as order_number,
                           p.name as product_name, p.size, t.completed_at
                    from taps t
                    join products p on p.id = t.product_id
                    join orders o on o.id = t.order_id
                    where t.pizzeria_id = $1 and t.station = $2 and t.undone_at is null
                      and t.completed_at > $4 and p.pass = t.pass and p.stage = t.stage + 1
                      and o.status in ('accepted', 'in_work', 'packed')
                    order by t.completed_at desc, t.id desc
                    limit 50) t) as recallable,
             (select coalesce(json_agg(a order by a.at desc, a.id desc), '[]')
              from (select id, order_id, number as order_number, kind, reason, at
                    from station_alerts
                    where pizzeria_id = $1 and station = $2 and at > $5
                    order by at desc, id desc
                    limit 20) a) as alerts,
             (select coalesce(json_agg(c order by c.count desc, c.product_name, c.size), '[]')
              from (select name as product_name, size, count(*) as count from products
                    where pizzeria_id = $1 and station = $2
                    group by name, size
                    order by count(*) desc, name, size
                    limit 50) c) as all_day,
             (select coalesce(json_agg(r order by r.packed_at, r.number), '[]')
              from (select o.id, o.number, o.customer_name, o.show_number_only, o.status,
                           o.late, o.packed_at
                    from orders o
                    where o.pizzeria_id = $1 and o.status = 'packed'
                      and exists (select 1 from products p where p.order_id = o.id
                                  and p.route_stations[array_length(p.route_stations, 1)] = $2)
                    order by o.packed_at, o.number
                    limit 50) r) as ready",
    )
    .bind(pizzeria_id)
    .bind(station)
    .bind(QUEUE_LIMIT)
    .bind(recall_since)
    .bind(alerts_since)
    .fetch_one(db)
    .await
    .context("cannot read the station's queue")
}

#[derive(Debug, Clone, Deserialize)]
pub struct QueueRow {
    pub product_id: Uuid,
    pub order_id: Uuid,
    pub number: i32,
    pub name: String,
    pub category: String,
    pub size: Option<String>,
    pub modifiers: Vec<String>,
    pub allergens: Vec<String>,
    pub entered_at: DateTime<Utc>,
    /// When the stage's clock starts: `entered_at`, or later for a product that waits for
    /// the order's slowest one.
    pub clock_from: DateTime<Utc>,
    pub target_seconds: i32,
    pub pass: i32,
    pub late: bool,
    pub urgent: bool,
    pub remake_reason: Option<String>,
    /// How many products wait at the station in all, on every row.
    pub total: i64,
    /// This is the product's last station (packing, for most routes).
    pub last_stage: bool,
    /// The order's products, and how many of them are done or wait here: "5 of 7 ready".
    pub order_products: i64,
    pub order_here: i64,
}

/// How many of each product (name and size) wait at a station: the "all day" count a cook
/// reads to make several at once. The statement names its columns as the answer does, so this
/// is also the answer's type.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AllDayCount {
    pub product_name: String,
    pub size: Option<String>,
    pub count: i64,
}

/// A tap at a station that undo or recall can still take back, with what the tablet names it
/// by.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RecallableTap {
    pub tap_id: i64,
    pub product_id: Uuid,
    pub order_id: Uuid,
    pub order_number: i32,
    pub product_name: String,
    pub size: Option<String>,
    pub completed_at: DateTime<Utc>,
}

/// A notice a station's tablet shows beside its cards, such as "CANCELLED #4204".
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StationAlert {
    pub kind: String,
    pub order_id: Uuid,
    pub order_number: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}
