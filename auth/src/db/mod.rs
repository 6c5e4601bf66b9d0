//! Queries, one function per thing the auth service does to its tables. Writes take the
//! caller's `&mut PgConnection` (a transaction), so a change, its audit entry and its outbox
//! event commit together.

pub mod audit;
pub mod pizzerias;
pub mod sessions;
pub mod throttle;
pub mod users;

/// The auth service's migrations; `auth migrate` runs them, and so does every test database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/auth");
