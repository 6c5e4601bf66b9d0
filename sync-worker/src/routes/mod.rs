//! Besides the ops routes every service has (health for the orchestrator, metrics for
//! Prometheus: `service_kit::app`), the worker serves the dead-letter API of its queue for the
//! operations page (`bus::dead_letters::http`), checked with staff sessions.

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(bus::dead_letters::http::routes::<access::Staff>);
}
