//! The web as a service (`service_kit::app`): its pages, behind its own security headers and
//! language negotiation, and its background work: the live-updates subscription and the access
//! caches' invalidation. Its main listener is public, so `/metrics` is on an ops listener of its
//! own.

use access::{CacheInvalidation, DeviceVerifier, StaffVerifier};
use actix_web::{middleware::from_fn, web};
use anyhow::Context;
use service_kit::app::{Service, ServiceBuilder};

use crate::{
    config::Settings,
    push::Push,
    routes::{self, AppState},
    session::Cookies,
};

/// The web; [`Application::build`] prepares it as a [`Service`] (`port`, `ops_port`,
/// `shutdown`, `run_until_stopped`).
pub struct Application;

impl Application {
    /// Binds the listeners (port 0 picks a free one) and prepares everything; nothing runs until
    /// [`Service::run_until_stopped`].
    pub async fn build(settings: Settings) -> anyhow::Result<Service> {
        // No database: ready while the live-updates subscription is up. The pages work without
        // it (they poll), but an instance without it cannot keep the 1 s promise.
        let mut service = ServiceBuilder::bind("web", &settings.application, None)?
            .ops_listener(&settings.ops)?
            // Event streams never end by themselves; do not wait long for them on shutdown.
            .shutdown_timeout(3);
        let staff = StaffVerifier::new(&settings.access).context("bad access settings")?;
        let devices =
            DeviceVerifier::new(&settings.device_access).context("bad device access settings")?;
        let push = Push::new(
            service.readiness().flag("live_updates"),
            settings.screens.max_streams_per_viewer,
        );
        let shutdown = service.shutdown().clone();
        let state = AppState::new(&settings, push.clone(), shutdown.clone())?;
        service
            .spawn(
                "live updates",
                push.run(settings.bus.clone(), shutdown.clone()),
            )
            .spawn(
                "access caches",
                CacheInvalidation::new(
                    (staff.clone(), devices.clone()),
                    settings.bus.clone(),
                    "web",
                    shutdown,
                )
                .run(),
            );

        service
            .data(state)
            .data(Cookies {
                secure: settings.cookies.secure,
            })
            .data(settings)
            .data(staff)
            .data(devices);
        service.serve(|cfg| {
            cfg.app_data(web::FormConfig::default().limit(16 * 1024))
                // The pages' own form extractor reads the body as bytes: the same 16 KiB for it.
                .app_data(web::PayloadConfig::new(16 * 1024))
                // The pages' own middleware, on a scope that takes every path the shared
                // operations routes do not, unknown ones included.
                .service(
                    web::scope("")
                        .wrap(from_fn(routes::security_headers))
                        .wrap(from_fn(crate::i18n::negotiate))
                        .configure(routes::configure)
                        .default_service(web::to(routes::unknown_page)),
                );
        })
    }
}
