//! Every error a person can meet, as a page in the same style as the rest: an expired session
//! goes back to sign-in, an unpaired device back to its login code, and everything else gets a
//! friendly page that says what happened and what to do. Causes go to the log, never to the page.

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use askama::Template;

use crate::{
    session::{DEVICE_COOKIE, clear_cookie},
    upstream::{Service, UpstreamError},
};

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No staff session, or it ended: sign in, then come back to `next`.
    #[error("signed out")]
    SignedOut { next: String },
    /// The device has no token, or it was revoked: back to the device login code.
    #[error("device not paired")]
    DeviceUnpaired,
    /// This screen is not for this device: open its own screen instead.
    #[error("belongs elsewhere: {0}")]
    Elsewhere(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// The form's CSRF token or Origin did not match.
    #[error("the form failed its CSRF check")]
    Csrf,
    #[error("{} is unavailable", .0.title())]
    Unavailable(Service),
    /// A request a service turned down for a reason the person can act on (409 and friends).
    #[error("refused: {message}")]
    Refused { status: StatusCode, message: String },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl PageError {
    /// What an upstream error means on a device screen: a 401 is a revoked device.
    pub fn for_device(e: UpstreamError) -> Self {
        match PageError::from(e) {
            PageError::SignedOut { .. } => PageError::DeviceUnpaired,
            other => other,
        }
    }
}

impl From<UpstreamError> for PageError {
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::Refused {
                service,
                status,
                code,
                message,
            } => match status {
                StatusCode::UNAUTHORIZED => PageError::SignedOut { next: "/".into() },
                StatusCode::FORBIDDEN => PageError::Forbidden(message),
                StatusCode::NOT_FOUND => PageError::NotFound(message),
                s if s.is_server_error() => {
                    tracing::warn!(?service, %status, %code, %message, "an upstream service failed");
                    PageError::Unavailable(service)
                }
                _ => PageError::Refused {
                    status,
                    message: if message.is_empty() { code } else { message },
                },
            },
            UpstreamError::Unreachable { service, source } => {
                tracing::warn!(?service, error = %source, "an upstream service is unreachable");
                PageError::Unavailable(service)
            }
            UpstreamError::BadAnswer { service, source } => {
                tracing::error!(
                    ?service,
                    error = format!("{source:#}"),
                    "an unreadable answer"
                );
                PageError::Unavailable(service)
            }
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    t: &'static crate::i18n::Text,
    heading: &'a str,
    message: &'a str,
    action_href: &'a str,
    action_label: &'a str,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignedOut { .. } | PageError::DeviceUnpaired | PageError::Elsewhere(_) => {
                StatusCode::SEE_OTHER
            }
            PageError::Forbidden(_) | PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Refused { status, .. } => *status,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let unavailable;
        let t = crate::i18n::text();
        let (heading, message, action_href, action_label) = match self {
            PageError::SignedOut { next } => {
                let location = format!(
                    "/login?{}",
                    serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default()
                );
                return HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, location))
                    .finish();
            }
            PageError::DeviceUnpaired => {
                return HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, "/device"))
                    .insert_header((header::SET_COOKIE, clear_cookie(DEVICE_COOKIE)))
                    .finish();
            }
            PageError::Elsewhere(location) => {
                return HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, *location))
                    .finish();
            }
            PageError::Forbidden(_) => {
                (t.err_forbidden_title, t.err_forbidden, "/", t.back_to_start)
            }
            PageError::NotFound(_) => {
                (t.err_not_found_title, t.err_not_found, "/", t.back_to_start)
            }
            PageError::Csrf => (t.err_csrf_title, t.err_csrf, "/", t.back_to_start),
            PageError::Unavailable(service) => {
                let name = match service {
                    Service::Tracker => t.service_tracker,
                    Service::Auth => t.service_auth,
                    Service::Devices => t.service_devices,
                    Service::SyncWorker => t.service_sync_worker,
                    Service::Broker => t.service_broker,
                };
                unavailable = crate::i18n::fill(t.err_unavailable, &[("service", &name)]);
                (
                    t.err_unavailable_title,
                    unavailable.as_str(),
                    "",
                    t.try_again,
                )
            }
            PageError::Refused { message, .. } => {
                (t.err_refused_title, message.as_str(), "/", t.back_to_start)
            }
            PageError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "a page failed");
                (t.err_internal_title, t.err_internal, "/", t.back_to_start)
            }
        };
        let page = ErrorPage {
            t,
            heading,
            message,
            action_href,
            action_label,
        };
        match page.render() {
            Ok(html) => HttpResponse::build(self.status_code())
                .content_type("text/html; charset=utf-8")
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(html),
            Err(e) => {
                tracing::error!(error = %e, "cannot render the error page");
                HttpResponse::build(self.status_code()).finish()
            }
        }
    }
}

/// The errors of the `…/live` fragments the screens poll: a bare status (401 means "go to the
/// login page", anything else "show the not-connected banner"); the page script decides.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct LiveError(#[from] pub PageError);

impl From<UpstreamError> for LiveError {
    fn from(e: UpstreamError) -> Self {
        LiveError(e.into())
    }
}

impl ResponseError for LiveError {
    fn status_code(&self) -> StatusCode {
        match &self.0 {
            PageError::SignedOut { .. } | PageError::DeviceUnpaired => StatusCode::UNAUTHORIZED,
            PageError::Elsewhere(_) => StatusCode::CONFLICT,
            other => other.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let PageError::Internal(e) = &self.0 {
            tracing::error!(error = format!("{e:#}"), "a live fragment failed");
        }
        HttpResponse::build(self.status_code())
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish()
    }
}

/// Renders a template into a 200 page, or a logged 500.
pub fn html(template: &impl Template) -> Result<HttpResponse, PageError> {
    let body = template
        .render()
        .map_err(|e| PageError::Internal(anyhow::anyhow!("cannot render a template: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}
