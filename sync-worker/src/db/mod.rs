//! The legacy database: its migrations and the writes that mirror tracker events into it.

mod devices;
mod orders;
mod staff;

use anyhow::Context;
pub use devices::*;
pub use orders::*;
use service_kit::config::DatabaseSettings;
use sqlx::{Connection, PgConnection};
pub use staff::*;

/// The legacy schema plus the worker's bookkeeping (inbox, per-order state).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/legacy");

/// Creates the legacy database when the server does not have it yet (a fresh dev stack), then
/// applies the migrations.
pub async fn migrate(settings: &DatabaseSettings) -> anyhow::Result<()> {
    let mut server = PgConnection::connect_with(&settings.server_options()?.database("postgres"))
        .await
        .context("connecting to the database server")?;
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(&settings.database_name)
            .fetch_one(&mut server)
            .await
            .context("looking for the legacy database")?;
    if !exists {
        // An identifier cannot be a bind parameter; quote it as PostgreSQL's quote_ident does.
        let name = settings.database_name.replace('"', "\"\"");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create database \"{name}\"")))
            .execute(&mut server)
            .await
            .context("creating the legacy database")?;
        tracing::info!(database = %settings.database_name, "created the legacy database");
    }
    server
        .close()
        .await
        .context("closing the server connection")?;

    let mut conn = PgConnection::connect_with(&settings.connect_options()?)
        .await
        .context("connecting to the legacy database")?;
    MIGRATOR
        .run(&mut conn)
        .await
        .context("applying the legacy migrations")?;
    Ok(())
}

/// One column of `rows`, to bind as an array for `unnest`: the batch writes pass a table as one
/// array per column.
fn column<'a, T, U>(rows: &'a [T], value: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(value).collect()
}
