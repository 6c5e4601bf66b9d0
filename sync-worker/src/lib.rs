//! The sync worker: copies the tracker's events into the legacy monolith's tables, so the old
//! reports and the shift-manager screen keep working while the monolith is taken apart.
//! `migrations/legacy/README.md` maps each event to the rows it writes.

pub mod config;
pub mod db;
pub mod dead_letters;
pub mod legacy;
pub mod mirror;
pub mod rebuild;
pub mod routes;
pub mod startup;
