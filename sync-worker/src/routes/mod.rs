//! The worker serves only the ops routes: health for the orchestrator, metrics for Prometheus.

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(service_kit::http::ops_routes);
}
