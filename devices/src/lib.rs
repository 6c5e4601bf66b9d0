//! The devices service: kitchen tablets and TV boards log in by code, following the OAuth 2.0
//! Device Authorization Grant (RFC 8628). A device asks for a code, a staff member approves it
//! and chooses what the device is, the device picks up a long-lived, revocable token bound to
//! its pizzeria (and station), and the other services check that token here (through
//! `access::DeviceVerifier`). Changes are announced through the outbox (`devices.device.*`).

pub mod config;
pub mod db;
pub mod domain;
pub mod pairing;
pub mod retention;
pub mod routes;
pub mod secrets;
pub mod startup;
