//! The kitchen order tracker: takes orders from the bus and over HTTP, moves every product
//! through the stations of its route as the kitchen taps, derives the order's status, and tells
//! the bus about each step through the transactional outbox.

pub mod config;
pub mod db;
pub mod domain;
pub mod events;
pub mod kitchen;
pub mod routes;
pub mod sources;
pub mod startup;
pub mod versions;
