//! The auth service: staff accounts, roles per pizzeria, sessions that every other service
//! checks through introspection (see `crates/access`), brute-force defence and an audit log.
//! Changes are announced through the transactional outbox (`auth.user.*`, `auth.session.*`).

pub mod accounts;
pub mod config;
pub mod db;
pub mod domain;
pub mod pizzerias;
pub mod retention;
pub mod routes;
pub mod secrets;
pub mod startup;
