//! Comparing a rebuilt copy with the live legacy tables, table by table, for the orders, users
//! and devices the stream covers.
//!
//! Both sides' rows come out of the same query, keyed by what names a row outside one
//! database (an order's uuid and line number, an event id; never the `id` columns, which each
//! database numbers on its own), as JSON with those ids left out, sorted by key in byte order
//! ("C" collation, as Rust compares strings). The two sorted lists are walked side by side:
//! row counts, a SHA-256 over each side's rows, and the first differences by key. Rows are
//! streamed, so a big mirror costs no memory beyond the covered ids.

use std::cmp::Ordering;

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::SHOWN;

/// What the stream covers: the subjects whose creating event was read.
#[derive(Debug, Default)]
pub struct Covered {
    pub orders: Vec<Uuid>,
    pub users: Vec<Uuid>,
    pub devices: Vec<Uuid>,
}

/// Each legacy table: its name, which covered ids select its rows, and the query giving
/// `(key, row)` for the ids in `$1`.
const TABLES: &[(&str, Subject, &str)] = &[
    (
        "orders",
        Subject::Orders,
        "select key, row from (
             select o.order_uuid::text as key, (to_jsonb(o) - 'id')::text as row
             from orders o where o.order_uuid = any($1)
         ) t order by key collate \"C\"",
    ),
    (
        "order_items",
        Subject::Orders,
        "select key, row from (
             select o.order_uuid || '/' || lpad(i.line_no::text, 5, '0') as key,
                    (to_jsonb(i) - 'id' - 'order_id')::text as row
             from order_items i join orders o on o.id = i.order_id
             where o.order_uuid = any($1)
         ) t order by key collate \"C\"",
    ),
    (
        "order_history",
        Subject::Orders,
        "select key, row from (
             select o.order_uuid || '/' || coalesce(h.event_id::text, 'row ' || h.id) as key,
                    (to_jsonb(h) - 'id' - 'order_id' - 'order_item_id'
                     || jsonb_build_object('order_item_line', i.line_no))::text as row
             from order_history h join orders o on o.id = h.order_id
             left join order_items i on i.id = h.order_item_id
             where o.order_uuid = any($1)
         ) t order by key collate \"C\"",
    ),
    (
        "membership",
        Subject::Users,
        "select key, row from (
             select m.user_uuid || '/' || coalesce(m.unit_id::text, 'chain') || '/' || m.role
                        as key,
                    (to_jsonb(m) - 'id')::text as row
             from membership m where m.user_uuid = any($1)
         ) t order by key collate \"C\"",
    ),
    (
        "devices",
        Subject::Devices,
        "select key, row from (
             select d.device_uuid::text as key, (to_jsonb(d) - 'id')::text as row
             from devices d where d.device_uuid = any($1)
         ) t order by key collate \"C\"",
    ),
];

#[derive(Debug, Clone, Copy)]
enum Subject {
    Orders,
    Users,
    Devices,
}

impl Covered {
    fn ids(&self, subject: Subject) -> &[Uuid] {
        match subject {
            Subject::Orders => &self.orders,
            Subject::Users => &self.users,
            Subject::Devices => &self.devices,
        }
    }
}

/// One table on both sides.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TableComparison {
    pub table: &'static str,
    pub live_rows: u64,
    pub copy_rows: u64,
    pub live_checksum: String,
    pub copy_checksum: String,
    /// Keys whose rows differ or exist on one side only.
    pub differing: u64,
    /// The first [`SHOWN`] of them.
    pub differences: Vec<Difference>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub key: String,
    pub live: Option<String>,
    pub copy: Option<String>,
}

/// Every table, for what the stream covers.
#[derive(Debug, Default)]
pub struct Comparison {
    pub orders: usize,
    pub users: usize,
    pub devices: usize,
    pub tables: Vec<TableComparison>,
}

impl Comparison {
    pub fn equal(&self) -> bool {
        self.tables.iter().all(|table| table.differing == 0)
    }

    /// The tables that differ.
    pub fn differing(&self) -> impl Iterator<Item = &TableComparison> {
        self.tables.iter().filter(|table| table.differing > 0)
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "Compared {} orders, {} users and {} devices with the live legacy tables:",
            self.orders, self.users, self.devices
        )?;
        writeln!(
            f,
            "  {:<14} {:>10} {:>10}  {:<16} {:<16} result",
            "table", "live rows", "copy rows", "live checksum", "copy checksum"
        )?;
        for table in &self.tables {
            let result = if table.differing == 0 {
                "equal".to_owned()
            } else {
                format!("{} differ", table.differing)
            };
            writeln!(
                f,
                "  {:<14} {:>10} {:>10}  {:<16} {:<16} {result}",
                table.table,
                table.live_rows,
                table.copy_rows,
                &table.live_checksum[..16],
                &table.copy_checksum[..16]
            )?;
        }
        for table in self.differing() {
            writeln!(f, "First differences in {}:", table.table)?;
            for difference in &table.differences {
                writeln!(f, "  {}", difference.key)?;
                writeln!(
                    f,
                    "    live: {}",
                    difference.live.as_deref().unwrap_or("(no row)")
                )?;
                writeln!(
                    f,
                    "    copy: {}",
                    difference.copy.as_deref().unwrap_or("(no row)")
                )?;
            }
        }
        if self.equal() {
            writeln!(f, "The copy equals the live legacy tables.")
        } else {
            writeln!(f, "The copy differs from the live legacy tables.")
        }
    }
}

/// Compares every table on the two connections.
pub async fn compare(
    mut live: PgConnection,
    mut copy: PgConnection,
    covered: &Covered,
) -> anyhow::Result<Comparison> {
    // Timestamps print in the session's time zone: the same on both sides.
    for conn in [&mut live, &mut copy] {
        sqlx::query("set time zone 'UTC'")
            .execute(&mut *conn)
            .await
            .context("setting the time zone")?;
    }
    let mut comparison = Comparison {
        orders: covered.orders.len(),
        users: covered.users.len(),
        devices: covered.devices.len(),
        tables: Vec::with_capacity(TABLES.len()),
    };
    for (table, subject, sql) in TABLES {
        let ids = covered.ids(*subject);
        let compared = compare_table(&mut live, &mut copy, table, sql, ids)
            .await
            .with_context(|| format!("comparing {table}"))?;
        comparison.tables.push(compared);
    }
    let _ = live.close().await;
    let _ = copy.close().await;
    Ok(comparison)
}

async fn compare_table(
    live: &mut PgConnection,
    copy: &mut PgConnection,
    table: &'static str,
    sql: &'static str,
    ids: &[Uuid],
) -> anyhow::Result<TableComparison> {
    let mut live_rows = sqlx::query_as::<_, (String, String)>(sql)
        .bind(ids)
        .fetch(live)
        .peekable();
    let mut copy_rows = sqlx::query_as::<_, (String, String)>(sql)
        .bind(ids)
        .fetch(copy)
        .peekable();
    let mut result = TableComparison {
        table,
        ..TableComparison::default()
    };
    let (mut live_sum, mut copy_sum) = (Sha256::new(), Sha256::new());
    loop {
        let order = match (
            std::pin::Pin::new(&mut live_rows).peek().await,
            std::pin::Pin::new(&mut copy_rows).peek().await,
        ) {
            (None, None) => break,
            (Some(Ok((l, _))), Some(Ok((c, _)))) => l.as_bytes().cmp(c.as_bytes()),
            (Some(Ok(_)), None) => Ordering::Less,
            (None, Some(Ok(_))) => Ordering::Greater,
            // The error itself comes out of `try_next` below.
            (Some(Err(_)), _) => Ordering::Less,
            (_, Some(Err(_))) => Ordering::Greater,
        };
        let live_row = if order != Ordering::Greater {
            live_rows.try_next().await?
        } else {
            None
        };
        let copy_row = if order != Ordering::Less {
            copy_rows.try_next().await?
        } else {
            None
        };
        if let Some((key, row)) = &live_row {
            result.live_rows += 1;
            hash_row(&mut live_sum, key, row);
        }
        if let Some((key, row)) = &copy_row {
            result.copy_rows += 1;
            hash_row(&mut copy_sum, key, row);
        }
        let same = match (&live_row, &copy_row) {
            (Some((_, l)), Some((_, c))) => l == c,
            _ => false,
        };
        if !same {
            result.differing += 1;
            if result.differences.len() < SHOWN {
                let key = live_row
                    .as_ref()
                    .or(copy_row.as_ref())
                    .map(|(key, _)| key.clone())
                    .unwrap_or_default();
                result.differences.push(Difference {
                    key,
                    live: live_row.map(|(_, row)| row),
                    copy: copy_row.map(|(_, row)| row),
                });
            }
        }
    }
    result.live_checksum = hex(&live_sum.finalize()[..]);
    result.copy_checksum = hex(&copy_sum.finalize()[..]);
    Ok(result)
}

fn hash_row(sum: &mut Sha256, key: &str, row: &str) {
    sum.update(key.as_bytes());
    sum.update(b"\t");
    sum.update(row.as_bytes());
    sum.update(b"\n");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comparison_is_equal_only_without_differences() {
        let mut comparison = Comparison {
            tables: vec![TableComparison {
                table: "orders",
                live_checksum: "0".repeat(64),
                copy_checksum: "0".repeat(64),
                ..TableComparison::default()
            }],
            ..Comparison::default()
        };
        assert!(comparison.equal());
        assert!(comparison.to_string().contains("equals"));
        comparison.tables[0].differing = 1;
        comparison.tables[0].differences.push(Difference {
            key: "k".to_owned(),
            live: Some("{}".to_owned()),
            copy: None,
        });
        assert!(!comparison.equal());
        let shown = comparison.to_string();
        assert!(shown.contains("First differences in orders"), "{shown}");
        assert!(shown.contains("copy: (no row)"), "{shown}");
    }
}
