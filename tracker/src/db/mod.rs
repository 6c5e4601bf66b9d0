//! Queries, one function per thing the tracker does to its tables. Writes take the caller's
//! `&mut PgConnection` (a transaction) so a state change, its timeline entry, its outbox event
//! and the version bumps always commit together. Reads that never write take any executor, so a
//! handler can run them straight on the pool.

pub mod alerts;
pub mod orders;
pub mod pizzerias;
pub mod products;
pub mod station_view;
pub mod taps;
pub mod timeline;

/// The tracker's migrations; `tracker migrate` runs them, and so does every test database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/tracker");
