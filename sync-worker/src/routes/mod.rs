//! The worker serves the ops routes (health for the orchestrator, metrics for Prometheus) and
//! the dead-letter API of its queue for the operations page (`bus::dead_letters::http`),
//! checked with staff sessions.

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(service_kit::http::ops_routes)
        .configure(bus::dead_letters::http::routes::<access::Staff>);
}
