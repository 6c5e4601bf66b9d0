//! Cookies, CSRF and who is looking at the page.
//!
//! - The staff session token lives in [`access::SESSION_COOKIE`], the device token in
//!   [`DEVICE_COOKIE`]; both `HttpOnly; Secure; SameSite=Strict`, so page scripts never see
//!   them and other sites never send them. The web forwards them to the APIs as Bearer tokens.
//! - Every form carries a CSRF token in a hidden field that must equal the [`CSRF_COOKIE`]
//!   (a random value per browser, renewed at sign-in), and every POST must come with an
//!   `Origin` (or `Referer`) of this site.
//! - [`StaffViewer`] and [`DeviceViewer`] check the token with the same verifiers (and cache)
//!   every service uses.

use std::{future::Future, pin::Pin, sync::Arc};

use access::{ClientInfo, DevicePrincipal, DeviceVerifier, StaffPrincipal, StaffVerifier};
use actix_web::{
    FromRequest, HttpRequest,
    dev::Payload,
    http::{StatusCode, header},
    web,
};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::{config::Settings, errors::PageError, upstream::Service};

pub use access::SESSION_COOKIE as STAFF_COOKIE;
/// The device token of a paired tablet or TV.
pub const DEVICE_COOKIE: &str = "kitchen_device";
/// The pending device login (device code and what the page shows), until it is approved.
pub const PAIRING_COOKIE: &str = "kitchen_pairing";
/// Who checked in at a station tablet: `<user id>.<display name>`, URL-encoded.
pub const ACTOR_COOKIE: &str = "kitchen_actor";
pub const CSRF_COOKIE: &str = "kitchen_csrf";

/// The web's cookie settings, shared by every handler.
#[derive(Debug, Clone)]
pub struct Cookies {
    pub secure: bool,
}

impl Cookies {
    /// `Set-Cookie` for `name`; `max_age` in seconds, or a browser-session cookie.
    pub fn set(&self, name: &str, value: &str, max_age: Option<i64>) -> String {
        let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
        if self.secure {
            cookie.push_str("; Secure");
        }
        if let Some(age) = max_age {
            cookie.push_str(&format!("; Max-Age={age}"));
        }
        cookie
    }
}

/// `Set-Cookie` that removes `name`.
pub fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The value of cookie `name`, read by hand: the workspace builds actix-web without cookies.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// The browser's CSRF token, and the `Set-Cookie` to send when it is new.
#[derive(Debug, Clone)]
pub struct Csrf {
    pub token: String,
    pub set_cookie: Option<String>,
}

impl Csrf {
    pub fn of(req: &HttpRequest, cookies: &Cookies) -> Result<Self, PageError> {
        match cookie(req, CSRF_COOKIE).filter(|t| t.len() >= 32 && t.len() <= 64) {
            Some(token) => Ok(Csrf {
                token,
                set_cookie: None,
            }),
            None => Self::fresh(cookies),
        }
    }

    /// A new token (at sign-in, so a token planted before it is worthless after).
    pub fn fresh(cookies: &Cookies) -> Result<Self, PageError> {
        let token = access::random_url_safe(32)
            .map_err(|e| PageError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
        Ok(Csrf {
            set_cookie: Some(cookies.set(CSRF_COOKIE, &token, None)),
            token,
        })
    }
}

impl FromRequest for Csrf {
    type Error = PageError;
    type Future = std::future::Ready<Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let cookies = req.app_data::<web::Data<Cookies>>();
        std::future::ready(match cookies {
            Some(cookies) => Csrf::of(req, cookies),
            None => Err(PageError::Internal(anyhow::anyhow!(
                "no Cookies in the app"
            ))),
        })
    }
}

/// Whether the request's `Origin` (or, without one, `Referer`) is this site.
fn same_origin(req: &HttpRequest, public_origin: &str) -> bool {
    let expected = if public_origin.is_empty() {
        let info = req.connection_info();
        format!("{}://{}", info.scheme(), info.host())
    } else {
        public_origin.trim_end_matches('/').to_owned()
    };
    let header_value = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    match (header_value(header::ORIGIN), header_value(header::REFERER)) {
        (Some(origin), _) => origin == expected,
        (None, Some(referer)) => {
            referer == expected || referer.starts_with(&format!("{expected}/"))
        }
        (None, None) => false,
    }
}

fn same_secret(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// A form POST that passed the CSRF checks: the `csrf` field equals the cookie and the request
/// comes from this site. The other fields are `T` (which ignores `csrf`).
pub struct Form<T>(pub T);

/// The `X-CSRF-Token` header works like the field, for the page script's `fetch` calls.
pub const CSRF_HEADER: &str = "x-csrf-token";

impl<T: DeserializeOwned + 'static> FromRequest for Form<T> {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let bytes = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let bytes = bytes.await.map_err(|e| {
                // Over the form limit is the sender's doing, not an expired form.
                if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    PageError::Refused {
                        status: StatusCode::PAYLOAD_TOO_LARGE,
                        message: crate::i18n::text().form_too_large.into(),
                    }
                } else {
                    PageError::Csrf
                }
            })?;
            let public_origin = req
                .app_data::<web::Data<Settings>>()
                .map(|s| s.screens.public_origin.clone())
                .unwrap_or_default();
            if !same_origin(&req, &public_origin) {
                tracing::warn!("a POST from another origin, or without one");
                return Err(PageError::Csrf);
            }
            let sent = req
                .headers()
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .or_else(|| {
                    serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
                        .ok()?
                        .into_iter()
                        .find(|(k, _)| k == "csrf")
                        .map(|(_, v)| v)
                });
            let expected = cookie(&req, CSRF_COOKIE);
            match (sent, expected) {
                (Some(sent), Some(expected)) if same_secret(&sent, &expected) => {}
                _ => {
                    tracing::warn!("a POST without a matching CSRF token");
                    return Err(PageError::Csrf);
                }
            }
            serde_urlencoded::from_bytes(&bytes)
                .map(Form)
                .map_err(|e| PageError::Refused {
                    status: actix_web::http::StatusCode::BAD_REQUEST,
                    message: format!("{} ({e})", crate::i18n::text().form_incomplete),
                })
        })
    }
}

/// A signed-in staff member, from the session cookie.
#[derive(Clone)]
pub struct StaffViewer {
    pub token: String,
    pub principal: Arc<StaffPrincipal>,
}

impl FromRequest for StaffViewer {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = cookie(req, STAFF_COOKIE);
        let verifier = req.app_data::<web::Data<StaffVerifier>>().cloned();
        let next = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        Box::pin(async move {
            let verifier =
                verifier.ok_or_else(|| PageError::Internal(anyhow::anyhow!("no StaffVerifier")))?;
            let token = token.ok_or(PageError::SignedOut { next: next.clone() })?;
            match verifier.verify(&token).await {
                Ok(Some(principal)) => {
                    crate::i18n::choose(principal.language.as_deref());
                    Ok(StaffViewer { token, principal })
                }
                Ok(None) => Err(PageError::SignedOut { next }),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot check a staff session");
                    Err(PageError::Unavailable(Service::Auth))
                }
            }
        })
    }
}

/// A paired kitchen device (station tablet, TV board), from the device cookie.
#[derive(Clone)]
pub struct DeviceViewer {
    pub token: String,
    pub device: Arc<DevicePrincipal>,
}

impl FromRequest for DeviceViewer {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = cookie(req, DEVICE_COOKIE);
        let verifier = req.app_data::<web::Data<DeviceVerifier>>().cloned();
        let client = ClientInfo::of(req, &crate::routes::trusted_proxies(req));
        Box::pin(async move {
            let Some(verifier) = verifier else {
                return Err(PageError::Internal(anyhow::anyhow!("no DeviceVerifier")));
            };
            let token = token.ok_or(PageError::DeviceUnpaired)?;
            match verifier.verify(&token, &client).await {
                Ok(Some(device)) => {
                    crate::i18n::choose(device.language.as_deref());
                    Ok(DeviceViewer { token, device })
                }
                Ok(None) => Err(PageError::DeviceUnpaired),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot check a device token");
                    Err(PageError::Unavailable(Service::Devices))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn reads_cookies_by_name() {
        let req = TestRequest::default()
            .insert_header((header::COOKIE, "a=1; kitchen_csrf=abc; b=2"))
            .to_http_request();
        assert_eq!(cookie(&req, CSRF_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&req, "c"), None);
    }

    #[test]
    fn the_origin_must_be_ours() {
        let req = TestRequest::default()
            .insert_header((header::HOST, "127.0.0.1:8080"))
            .insert_header((header::ORIGIN, "http://127.0.0.1:8080"))
            .to_http_request();
        assert!(same_origin(&req, ""));
        assert!(!same_origin(&req, "https://kitchen.example"));
        let req = TestRequest::default()
            .insert_header((header::HOST, "127.0.0.1:8080"))
            .insert_header((header::ORIGIN, "http://evil.example"))
            .to_http_request();
        assert!(!same_origin(&req, ""));
        let req = TestRequest::default()
            .insert_header((header::HOST, "127.0.0.1:8080"))
            .insert_header((header::REFERER, "http://127.0.0.1:8080/login"))
            .to_http_request();
        assert!(same_origin(&req, ""));
        let req = TestRequest::default()
            .insert_header((header::HOST, "127.0.0.1:8080"))
            .to_http_request();
        assert!(!same_origin(&req, ""));
    }

    #[test]
    fn cookies_are_strict_and_http_only() {
        let set = Cookies { secure: true }.set("x", "y", Some(10));
        assert_eq!(
            set,
            "x=y; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=10"
        );
    }
}
