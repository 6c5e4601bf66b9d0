//! The tracker, auth, devices and sync worker APIs, called server-side with the caller's own credential as a
//! Bearer token. Their error bodies (RFC 9457 problem details, read with the same
//! `service_kit::http::Problem` that writes them, or OAuth's `{"error", "error_description"}`
//! from the devices service's token endpoints) come back as [`UpstreamError::Refused`], so a page can say
//! what went wrong in words, never with a raw body.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use actix_web::http::StatusCode;
use reqwest::{Method, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::UpstreamSettings;

/// The services behind the pages, named as people know them on the error page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Tracker,
    Auth,
    Devices,
    /// Only its dead-letter API and its metrics, for the operations pages.
    SyncWorker,
    /// RabbitMQ's management API, for the bus overview.
    Broker,
}

impl Service {
    pub fn title(self) -> &'static str {
        match self {
            Service::Tracker => "the kitchen tracker",
            Service::Auth => "the sign-in service",
            Service::Devices => "the device service",
            Service::SyncWorker => "the legacy sync worker",
            Service::Broker => "the message broker's management API",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{} cannot be reached", service.title())]
    Unreachable {
        service: Service,
        #[source]
        source: reqwest::Error,
    },
    #[error("{} answered {status}: {code}: {message}", service.title())]
    Refused {
        service: Service,
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("{} sent an answer we cannot read", service.title())]
    BadAnswer {
        service: Service,
        #[source]
        source: anyhow::Error,
    },
}

impl UpstreamError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            UpstreamError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            UpstreamError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// What goes in the request body.
pub enum Body<'a> {
    Empty,
    Json(&'a Value),
    Form(&'a [(&'a str, &'a str)]),
}

/// The last body seen per URL with its ETag: a poll answered 304 by the tracker is rendered from
/// here. The tracker checks the caller before it answers 304, so a cached body is only ever
/// shown to a caller the tracker has just let read it.
type Conditional = Arc<Mutex<HashMap<String, (String, Value)>>>;

/// At most this many URLs are remembered (pizzerias × stations and boards); beyond it the
/// cache starts over, which costs one full fetch per screen.
const CONDITIONAL_CAPACITY: usize = 4096;

#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    tracker: String,
    auth: String,
    devices: String,
    sync_worker: String,
    management: Option<crate::config::OperationsSettings>,
    conditional: Conditional,
}

impl Upstream {
    pub fn new(settings: &UpstreamSettings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout())
            .connect_timeout(settings.timeout())
            .build()?;
        let trim = |u: &str| u.trim_end_matches('/').to_owned();
        Ok(Upstream {
            client,
            tracker: trim(&settings.tracker_url),
            auth: trim(&settings.auth_url),
            devices: trim(&settings.devices_url),
            sync_worker: trim(&settings.sync_worker_url),
            management: None,
            conditional: Arc::default(),
        })
    }

    fn base(&self, service: Service) -> &str {
        match service {
            Service::Tracker => &self.tracker,
            Service::Auth => &self.auth,
            Service::Devices => &self.devices,
            Service::SyncWorker => &self.sync_worker,
            Service::Broker => self
                .management
                .as_ref()
                .map_or("", |m| m.management_url.trim_end_matches('/')),
        }
    }

    /// Where the bus overview finds the broker's management API.
    pub fn with_management(mut self, settings: &crate::config::OperationsSettings) -> Self {
        self.management = Some(settings.clone());
        self
    }

    /// A service's Prometheus text (`/metrics`), for the operations pages.
    pub async fn metrics(&self, service: Service) -> Result<String, UpstreamError> {
        let response = self
            .send(
                service,
                Method::GET,
                "/metrics",
                None,
                Body::Empty,
                None,
                &[],
            )
            .await?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|source| UpstreamError::Unreachable { service, source })?;
        if !status.is_success() {
            return Err(UpstreamError::Refused {
                service,
                status: StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
                code: String::new(),
                message: String::new(),
            });
        }
        Ok(text)
    }

    /// `GET {management_url}/api{path}` with the monitoring user's basic credentials.
    pub async fn management<T: DeserializeOwned>(&self, path: &str) -> Result<T, UpstreamError> {
        use secrecy::ExposeSecret;
        let service = Service::Broker;
        let Some(settings) = &self.management else {
            return Err(UpstreamError::BadAnswer {
                service,
                source: anyhow::anyhow!("no management API configured"),
            });
        };
        let url = format!("{}/api{path}", self.base(service));
        let response = self
            .client
            .get(url)
            .basic_auth(
                &settings.management_username,
                Some(settings.management_password.expose_secret()),
            )
            .send()
            .await
            .map_err(|source| UpstreamError::Unreachable { service, source })?;
        read_json(service, response).await
    }

    /// One call; 2xx bodies are parsed as `T` (an empty body as JSON `null`).
    pub async fn call<T: DeserializeOwned>(
        &self,
        service: Service,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Body<'_>,
    ) -> Result<T, UpstreamError> {
        self.call_with(service, method, path, bearer, body, &[])
            .await
    }

    /// [`Upstream::call`] with extra headers, e.g. the device's own `User-Agent` and
    /// `X-Forwarded-For`, so the devices service shows the approver who really asked.
    pub async fn call_with<T: DeserializeOwned>(
        &self,
        service: Service,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Body<'_>,
        headers: &[(&str, String)],
    ) -> Result<T, UpstreamError> {
        let response = self
            .send(service, method, path, bearer, body, None, headers)
            .await?;
        read_json(service, response).await
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        service: Service,
        path: &str,
        bearer: &str,
    ) -> Result<T, UpstreamError> {
        self.call(service, Method::GET, path, Some(bearer), Body::Empty)
            .await
    }

    /// A GET that sends the ETag of the last body seen for `path`, and answers from that body
    /// when the service says 304 Not Modified.
    pub async fn get_conditional<T: DeserializeOwned>(
        &self,
        service: Service,
        path: &str,
        bearer: &str,
    ) -> Result<T, UpstreamError> {
        let key = format!("{}{path}", self.base(service));
        let cached = self
            .conditional
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned());
        let etag = cached.as_ref().map(|(etag, _)| etag.as_str());
        let response = self
            .send(
                service,
                Method::GET,
                path,
                Some(bearer),
                Body::Empty,
                etag,
                &[],
            )
            .await?;
        let value = match (response.status(), cached) {
            (reqwest::StatusCode::NOT_MODIFIED, Some((_, value))) => value,
            _ => {
                let etag = response
                    .headers()
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let value: Value = read_json(service, response).await?;
                if let (Some(etag), Ok(mut cache)) = (etag, self.conditional.lock()) {
                    if cache.len() >= CONDITIONAL_CAPACITY {
                        cache.clear();
                    }
                    cache.insert(key, (etag, value.clone()));
                }
                value
            }
        };
        serde_json::from_value(value).map_err(|e| UpstreamError::BadAnswer {
            service,
            source: e.into(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        service: Service,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Body<'_>,
        if_none_match: Option<&str>,
        headers: &[(&str, String)],
    ) -> Result<reqwest::Response, UpstreamError> {
        let url = format!("{}{path}", self.base(service));
        let mut request = self.client.request(method, url);
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(etag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(traceparent) = service_kit::telemetry::current_traceparent() {
            request = request.header("traceparent", traceparent);
        }
        request = match body {
            Body::Empty => request,
            Body::Json(value) => request.json(value),
            Body::Form(pairs) => request
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string(pairs).unwrap_or_default()),
        };
        request
            .send()
            .await
            .map_err(|source| UpstreamError::Unreachable { service, source })
    }
}

async fn read_json<T: DeserializeOwned>(
    service: Service,
    response: reqwest::Response,
) -> Result<T, UpstreamError> {
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let bytes = response
        .bytes()
        .await
        .map_err(|source| UpstreamError::Unreachable { service, source })?;
    if !status.is_success() {
        let (code, message) = error_of(&bytes);
        return Err(UpstreamError::Refused {
            service,
            status,
            code,
            message,
        });
    }
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"null"
    } else {
        &bytes
    };
    serde_json::from_slice(bytes).map_err(|e| UpstreamError::BadAnswer {
        service,
        source: e.into(),
    })
}

/// The code and message of an error body in either of the shapes our services use: a problem
/// (its `code` and `detail`), or an OAuth error (RFC 6749 §5.2).
fn error_of(bytes: &[u8]) -> (String, String) {
    if let Some(problem) = service_kit::http::Problem::parse(bytes) {
        return (problem.code, problem.detail);
    }
    let value: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    match &value["error"] {
        Value::String(code) => (code.clone(), text(&value["error_description"])),
        _ => (String::new(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_error_shapes() {
        let problem = service_kit::http::ClientError::not_found("order").problem();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        assert_eq!(
            error_of(&body),
            ("not_found".into(), "order not found".into())
        );
        // The old shape is no longer ours: it reads as nothing rather than half.
        assert_eq!(
            error_of(br#"{"error": {"code": "not_found", "message": "order not found"}}"#),
            (String::new(), String::new())
        );
        assert_eq!(
            error_of(br#"{"error": "slow_down", "error_description": "too fast"}"#),
            ("slow_down".into(), "too fast".into())
        );
        assert_eq!(error_of(b"<html>"), (String::new(), String::new()));
    }
}
