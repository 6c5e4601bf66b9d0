//! `service_kit::hot` against a real PostgreSQL: a slot keeps its connection across requests, a
//! request cut off mid-query never leaves its half-read answer to the next one, an error rolls
//! back what its request left open and keeps the connection, and a busy slot sends the request
//! to the pool, and a connection whose server went away while it sat idle is replaced before a
//! request uses it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{str::FromStr, time::Duration};

use service_kit::hot::HotConnections;
use sqlx::{PgConnection, PgPool, postgres::PgConnectOptions};

fn server() -> PgConnectOptions {
    let url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the tests with `make test`");
    PgConnectOptions::from_str(&url).expect("DATABASE_URL is a PostgreSQL URL")
}

async fn backend(conn: &mut PgConnection) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(conn)
        .await
}

#[tokio::test]
async fn a_slot_keeps_its_connection_and_a_cut_off_read_loses_it() {
    let pool = PgPool::connect_with(server()).await.unwrap();
    let reads = HotConnections::new(pool.clone(), 1);
    let first = reads.run(async |c| backend(c).await).await.unwrap();
    let again = reads.run(async |c| backend(c).await).await.unwrap();
    assert_eq!(
        first, again,
        "a finished read hands its connection to the next"
    );

    // The client goes away mid-query: the future is dropped while the answer is on its way.
    let cut = tokio::time::timeout(
        Duration::from_millis(200),
        reads.run(async |c| {
            sqlx::query_scalar::<_, String>("select pg_sleep(2)::text || 'late'")
                .fetch_one(c)
                .await
        }),
    )
    .await;
    assert!(cut.is_err(), "the slow read was cut off");
    // The next read gets a fresh connection and its own answer, not the late one.
    let answer: String = reads
        .run(async |c| {
            sqlx::query_scalar::<_, String>("select 'mine'")
                .fetch_one(c)
                .await
        })
        .await
        .unwrap();
    assert_eq!(answer, "mine");
    let after = reads.run(async |c| backend(c).await).await.unwrap();
    assert_ne!(after, first, "the cut-off connection was dropped");
}

#[tokio::test]
async fn an_error_rolls_back_what_was_open_and_keeps_the_connection() {
    let pool = PgPool::connect_with(server()).await.unwrap();
    let reads = HotConnections::new(pool.clone(), 1);
    let before = reads
        .run(async |c| {
            sqlx::query("create temporary table taps_here (n int)")
                .execute(&mut *c)
                .await?;
            backend(c).await
        })
        .await
        .unwrap();
    let failed: Result<(), sqlx::Error> = reads
        .run(async |c| {
            let mut tx = sqlx::Connection::begin(&mut *c).await?;
            sqlx::query("insert into taps_here values (1)")
                .execute(&mut *tx)
                .await?;
            sqlx::query("select 1 / 0").execute(&mut *tx).await?;
            tx.commit().await
        })
        .await;
    assert!(failed.is_err());
    let (after, rows): (i32, i64) = reads
        .run(async |c| {
            let rows = sqlx::query_scalar("select count(*) from taps_here")
                .fetch_one(&mut *c)
                .await?;
            Ok::<_, sqlx::Error>((backend(c).await?, rows))
        })
        .await
        .unwrap();
    assert_eq!(after, before, "the connection was kept");
    assert_eq!(rows, 0, "the failed transaction was rolled back");
}

/// The requests `db_hot_connection_requests_total` counts on `connection` so far.
fn counted(connection: &str) -> u64 {
    let series = format!("db_hot_connection_requests_total{{connection=\"{connection}\"}} ");
    service_kit::metrics::render()
        .lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn with_every_slot_busy_a_read_goes_to_the_pool() {
    let pool = PgPool::connect_with(server()).await.unwrap();
    let reads = HotConnections::new(pool.clone(), 1);
    let slot = reads.run(async |c| backend(c).await).await.unwrap();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let (inside_tx, inside) = tokio::sync::oneshot::channel::<()>();
    let busy = async {
        reads
            .run(async |c| {
                let pid = backend(c).await?;
                inside_tx.send(()).unwrap();
                released.await.unwrap();
                Ok::<_, sqlx::Error>(pid)
            })
            .await
    };
    let other = async {
        inside.await.unwrap();
        let pid = reads.run(async |c| backend(c).await).await;
        release.send(()).unwrap();
        pid
    };
    let on_the_pool = counted("pool");
    let (busy, other) = tokio::join!(busy, other);
    assert_eq!(
        counted("pool"),
        on_the_pool + 1,
        "the metric counts the read"
    );
    assert_eq!(busy.unwrap(), slot, "the slot served the first read");
    assert_ne!(
        other.unwrap(),
        slot,
        "the second read took a pooled connection"
    );
}

#[tokio::test]
async fn a_connection_lost_while_idle_is_replaced_before_a_request_uses_it() {
    let pool = PgPool::connect_with(server()).await.unwrap();
    let reads = HotConnections::new(pool.clone(), 1);
    let first = reads.run(async |c| backend(c).await).await.unwrap();
    // What a PostgreSQL restart does to it, for this one connection.
    let ended: bool = sqlx::query_scalar("select pg_terminate_backend($1)")
        .bind(first)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(ended);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let next = reads.run(async |c| backend(c).await).await;
    assert_ne!(
        next.expect("the request does not see the lost connection"),
        first
    );
}
