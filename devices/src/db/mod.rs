//! Queries, one function per thing the devices service does to its tables. Writes take the
//! caller's `&mut PgConnection` (a transaction), so a change and its outbox event commit
//! together.

pub mod authorizations;
pub mod devices;
pub mod throttle;

/// The devices service's migrations; `devices migrate` runs them, and so does every test
/// database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/devices");
