//! The HTTP skeleton every service shares: error bodies that name the broken field, request
//! extractors that produce them, request tracing and metrics, and the ops routes
//! (`/health/live`, `/health/ready`, `/metrics`).

use std::{
    str::FromStr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use actix_web::{
    FromRequest, HttpRequest, HttpResponse, ResponseError,
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::{StatusCode, header},
    middleware::Next,
    web,
};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tracing::Instrument;

use crate::{metrics, telemetry::TraceContext};

/// How long an idle HTTP connection stays open. Tablets and boards poll every 10 s; keeping
/// their connection across polls saves a TCP handshake per poll, and a timeout longer than the
/// poll interval avoids the race where the server closes a connection just as the client
/// reuses it (actix's default is 5 s).
pub const KEEP_ALIVE: Duration = Duration::from_secs(75);

/// The media type of every error body (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Where every problem `type` URI starts; the rest is the problem's `code`. A `tag:` URI
/// (RFC 4151) is stable and names no host we would have to keep serving; docs/openapi.yaml
/// lists the codes and what each means.
pub const PROBLEM_TYPE_PREFIX: &str = "tag:kitchen-tracker,2026:problem:";

/// The body of every error response: RFC 9457 problem details, with our extensions `code`
/// (stable, for programs; also the last segment of `type`), `field` and `rule` (what in the
/// request broke which rule) and `trace_id` (to quote when reporting a 5xx). The same struct
/// reads them back (the web, the tests), so writer and readers cannot drift apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

impl Problem {
    /// The problem for `status` with the stable `code`: `type` and `title` follow from them,
    /// `instance` and `trace_id` from the request being answered (when there is one).
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            type_uri: format!("{PROBLEM_TYPE_PREFIX}{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            instance: REQUEST_PATH.try_with(Clone::clone).ok(),
            code: code.to_owned(),
            field: None,
            rule: None,
            trace_id: crate::telemetry::current_trace_id(),
        }
    }

    /// Reads a problem body, or `None` for anything else (an OAuth error, HTML, garbage).
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }

    /// The response carrying this problem, as `application/problem+json`.
    pub fn response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match serde_json::to_vec(self) {
            Ok(body) => HttpResponse::build(status)
                .content_type(PROBLEM_JSON)
                .body(body),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize a problem body");
                HttpResponse::build(status).finish()
            }
        }
    }
}

tokio::task_local! {
    /// The path of the request being answered, for a problem's `instance` (set by
    /// [`trace_requests`]).
    static REQUEST_PATH: String;
}

/// A request the service will not carry out, and why, in words the caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ClientError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub rule: Option<String>,
}

impl ClientError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ClientError {
            status,
            code,
            message: message.into(),
            field: None,
            rule: None,
        }
    }

    /// 422: the request is well-formed but `field` breaks `rule`.
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        let (field, rule) = (field.into(), rule.into());
        ClientError {
            message: format!("{field} {rule}"),
            field: Some(field),
            rule: Some(rule),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "")
        }
    }

    /// 400: the request cannot be read at all (bad JSON, a parameter of the wrong type).
    pub fn malformed(field: impl Into<String>, rule: impl Into<String>) -> Self {
        ClientError {
            status: StatusCode::BAD_REQUEST,
            code: "malformed_request",
            ..Self::invalid(field, rule)
        }
    }

    /// 404 for something the caller named that does not exist.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 409: the request is valid but not in the current state of the thing it acts on.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
}

impl ClientError {
    /// This error as the problem body the caller gets.
    pub fn problem(&self) -> Problem {
        Problem {
            field: self.field.clone(),
            rule: self.rule.clone(),
            ..Problem::new(self.status, self.code, &self.message)
        }
    }
}

impl ResponseError for ClientError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        self.problem().response()
    }
}

/// A `ClientError` can be returned as it is from a handler, e.g. the default service.
impl actix_web::Responder for ClientError {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        self.error_response()
    }
}

/// The response for a failure that is ours, not the caller's. The cause goes to the log with
/// the trace id; the caller gets only the trace id to quote.
pub fn internal_error_response(error: &anyhow::Error) -> HttpResponse {
    tracing::error!(error = ?error, "request failed");
    internal_problem().response()
}

/// The problem of a failure that is ours: no cause, only the trace id to quote.
pub fn internal_problem() -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "something went wrong on our side; it has been logged",
    )
}

/// A JSON body extractor whose errors name the offending field (`items[0].quantity`) and the
/// rule it broke, instead of actix's plain-text message.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ClientError;
    type Future = LocalBoxFuture<'static, Result<Self, ClientError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ClientError {
                    status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    code: "unsupported_media_type",
                    ..ClientError::malformed("Content-Type", "must be application/json")
                });
            }
            let bytes = bytes.await.map_err(unreadable_body)?;
            parse_json(&bytes).map(Json)
        })
    }
}

/// A request part (`Json<T>`, `Query<T>`, a path) read with the request but judged only when
/// the handler asks for it, after checking the caller's rights: a caller without the right gets
/// its 403, not a 422 about a body it may not send. Extracting it never fails; a plain `Json<T>`
/// would fail before the handler runs, and with actix polling all extractors together even
/// before the caller's token is checked.
///
/// ```ignore
/// async fn grant(caller: Caller, body: Deferred<Json<RoleBody>>) -> Result<HttpResponse, ApiError> {
///     caller.require(...)?;
///     let Json(body) = body.get()?;
/// ```
pub struct Deferred<E>(Result<E, ClientError>);

impl<E> Deferred<E> {
    /// The part, or the error reading it would have given.
    pub fn get(self) -> Result<E, ClientError> {
        self.0
    }
}

impl<E> FromRequest for Deferred<E>
where
    E: FromRequest<Error = ClientError> + 'static,
{
    type Error = ClientError;
    type Future = LocalBoxFuture<'static, Result<Self, ClientError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let part = E::from_request(req, payload);
        Box::pin(async move { Ok(Deferred(part.await)) })
    }
}

/// Why a request body could not be read: 413 when it is over the size limit (actix's
/// `PayloadConfig`, 256 KiB by default), 400 otherwise.
pub fn unreadable_body(e: actix_web::Error) -> ClientError {
    if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
        return ClientError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            ..ClientError::malformed("body", "is too large")
        };
    }
    ClientError::malformed("body", format!("cannot be read: {e}"))
}

/// Parses a JSON request body, naming the path of whatever is wrong. The body, and every struct
/// in it, must be an object: serde fills a struct from an array by position too, so
/// `["login", "password"]` would otherwise sign in, and `["reason", "actor"]` would swap the
/// two.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ClientError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ClientError::invalid("body", "must be a JSON object"),
                Err(e) => ClientError::malformed("body", format!("must be valid JSON ({e})")),
            },
        );
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let (field, rule) = split_serde_message(&path, &inner.to_string());
                ClientError::invalid(field, rule)
            }
            _ => ClientError::malformed("body", format!("must be valid JSON ({inner})")),
        }
    })?;
    // Read once more, refusing arrays where objects belong (see `strict`). The first reading
    // keeps what serde_json checks itself (duplicate fields, the exact error positions).
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Some(path) = crate::strict::array_for_struct::<T>(&value)
    {
        let field = if path.is_empty() || path == "." {
            "body".to_owned()
        } else {
            path
        };
        return Err(ClientError::invalid(field, crate::strict::MUST_BE_OBJECT));
    }
    Ok(parsed)
}

/// For an optional field that is not nullable:
/// `#[serde(default, deserialize_with = "service_kit::http::non_null")]`. Leaving the field
/// out gives `None`; `null` is a 422 naming the field, rather than passing for "left out".
pub fn non_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    match Option::<T>::deserialize(deserializer)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom(
            "must not be null (leave the field out instead)",
        )),
    }
}

/// For an optional date (a query parameter such as `date=2025-03-01`, or a field):
/// `#[serde(default, deserialize_with = "service_kit::http::calendar_date")]` on an
/// `Option<NaiveDate>`. Only `YYYY-MM-DD` with a four-digit year passes: chrono alone also
/// reads `+10000-01-01` (and echoes it back), which no kitchen day is.
pub fn calendar_date<'de, D>(deserializer: D) -> Result<Option<chrono::NaiveDate>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    shaped
        .then(|| chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok())
        .flatten()
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom("must be a date written YYYY-MM-DD, such as 2025-03-01")
        })
}

/// A query-string extractor that names the offending parameter.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Query<T> {
    type Error = ClientError;
    type Future = std::future::Ready<Result<Self, ClientError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(req.query_string()));
        let result = serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let path = e.path().to_string();
                let (field, rule) = split_serde_message(&path, &e.into_inner().to_string());
                ClientError::malformed(field, rule)
            });
        std::future::ready(result)
    }
}

fn form_urlencoded_parse(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}

/// serde names a missing field only in its message (`missing field `x``) and reports the path
/// of the struct around it; put the field on the path so the caller sees `items[0].name`.
fn split_serde_message(path: &str, message: &str) -> (String, String) {
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned();
    let join = |field: &str| {
        if path.is_empty() || path == "." {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        }
    };
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.trim_end_matches('`');
        return (join(field), "is required".to_owned());
    }
    let field = if path.is_empty() || path == "." {
        "body".to_owned()
    } else {
        path.to_owned()
    };
    (field, message)
}

/// Reads the path parameter `name` and parses it, or says which parameter broke which rule.
pub fn path_param<T: FromStr>(req: &HttpRequest, name: &str, rule: &str) -> Result<T, ClientError> {
    req.match_info()
        .get(name)
        .and_then(|raw| raw.parse().ok())
        .ok_or_else(|| ClientError::malformed(name, rule))
}

/// Traces and measures every request: a span with the caller's trace id (from `traceparent`)
/// or a new one, the trace context in the task-local the outbox reads, and Prometheus
/// counters by route pattern (never by raw path, which would explode the label set).
pub async fn trace_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let ctx = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse)
        .map(|parent| parent.child())
        .unwrap_or_else(TraceContext::new_root);
    let method = req.method().to_string();
    // The route pattern is read once the router has matched the request: actix then follows
    // the matched resource. Asked before, it walks the routes again with their regexes, which
    // doubled the router's cost on every request (docs/BENCHMARKS.md, issue #8).
    let span = tracing::info_span!(
        "http",
        trace_id = %ctx.trace_id(),
        %method,
        route = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    let started = Instant::now();
    let path = req.path().to_owned();
    let trace_id = ctx.trace_id();
    let result = REQUEST_PATH
        .scope(path.clone(), ctx.scope(next.call(req)))
        .instrument(span.clone())
        .await
        .map(|res| with_problem_body(res, path, trace_id));
    let elapsed = started.elapsed();
    let (status, route) = match &result {
        Ok(res) => (res.status(), res.request().match_pattern()),
        Err(e) => (e.as_response_error().status_code(), None),
    };
    let route = route.unwrap_or_else(|| "unmatched".to_owned());
    span.record("route", route.as_str());
    span.record("status", status.as_u16());
    metrics::HTTP_REQUESTS
        .with_label_values(&[method.as_str(), route.as_str(), status.as_str()])
        .inc();
    metrics::HTTP_DURATION
        .with_label_values(&[method.as_str(), route.as_str()])
        .observe(elapsed.as_secs_f64());
    if status.is_server_error() {
        span.in_scope(|| tracing::warn!(elapsed_ms = elapsed.as_millis() as u64, "request failed"));
    } else {
        span.in_scope(|| tracing::debug!(elapsed_ms = elapsed.as_millis() as u64, "request done"));
    }
    result
}

/// An error response that actix built without a body (a 405 for a method the route does not
/// have, say) gets the problem body every other error has; every other response passes as it
/// is.
fn with_problem_body<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
    instance: String,
    trace_id: String,
) -> ServiceResponse<actix_web::body::BoxBody> {
    let status = res.status();
    let bare = (status.is_client_error() || status.is_server_error())
        && !res.headers().contains_key(header::CONTENT_TYPE)
        && matches!(
            res.response().body().size(),
            actix_web::body::BodySize::None | actix_web::body::BodySize::Sized(0)
        );
    if !bare {
        return res.map_into_boxed_body();
    }
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let problem = Problem {
        instance: Some(instance),
        trace_id: Some(trace_id),
        ..Problem::new(
            status,
            code,
            status.canonical_reason().unwrap_or("error").to_lowercase(),
        )
    };
    let mut fresh = problem.response();
    // Keep what actix said besides the body (`Allow` on a 405).
    for (name, value) in res.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fresh.headers_mut().insert(name.clone(), value.clone());
        }
    }
    res.into_response(fresh)
}

/// What `/health/ready` checks: the database (for a service that has one), plus named flags
/// that background tasks (the outbox relay, consumers, subscriptions) raise while they are
/// connected to the broker.
#[derive(Clone)]
pub struct Readiness {
    pool: Option<sqlx::PgPool>,
    flags: Arc<Mutex<Vec<ReadinessFlag>>>,
}

type ReadinessFlag = (&'static str, Arc<AtomicBool>);

impl Readiness {
    /// Ready while `select 1` answers within a second and every flag is up.
    pub fn new(pool: sqlx::PgPool) -> Self {
        Readiness {
            pool: Some(pool),
            flags: Arc::default(),
        }
    }

    /// For a service without a database of its own (the web): only the flags count, and the
    /// answer has no `database` check.
    pub fn without_database() -> Self {
        Readiness {
            pool: None,
            flags: Arc::default(),
        }
    }

    /// A flag that starts lowered; the task owning it raises it when it is working.
    pub fn flag(&self, name: &'static str) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        if let Ok(mut flags) = self.flags.lock() {
            flags.push((name, flag.clone()));
        }
        flag
    }

    async fn check(&self) -> (bool, serde_json::Map<String, serde_json::Value>) {
        let mut checks = serde_json::Map::new();
        let mut ready = true;
        if let Some(pool) = &self.pool {
            let db = tokio::time::timeout(
                Duration::from_secs(1),
                sqlx::query("select 1").execute(pool),
            )
            .await
            .is_ok_and(|r| r.is_ok());
            checks.insert("database".into(), db.into());
            ready = db;
        }
        if let Ok(flags) = self.flags.lock() {
            for (name, flag) in flags.iter() {
                let up = flag.load(Ordering::Relaxed);
                ready &= up;
                checks.insert((*name).into(), up.into());
            }
        }
        (ready, checks)
    }
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "live" }))
}

async fn ready(readiness: web::Data<Readiness>) -> HttpResponse {
    let (ok, checks) = readiness.check().await;
    let body =
        serde_json::json!({ "status": if ok { "ready" } else { "not_ready" }, "checks": checks });
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn prometheus_metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics::render())
}

/// Registers `/health/live`, `/health/ready` and `/metrics`. The app must carry a
/// `web::Data<Readiness>`.
pub fn ops_routes(cfg: &mut web::ServiceConfig) {
    // Spelled out rather than calling `health_routes`: the OpenAPI contract test reads the
    // routes from this function's text.
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(prometheus_metrics));
}

/// Registers `/health/live` and `/health/ready` only. The app must carry a
/// `web::Data<Readiness>`.
pub fn health_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready));
}

/// Registers `/metrics` for connections to the listener on `port` only; on any other listener
/// of the server it is the usual 404. For a server whose main listener is public (the web):
/// the metrics name routes and counts, which is nobody else's business, and scraping them is
/// work a stranger should not be able to ask for.
pub fn private_metrics_route(port: u16) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg: &mut web::ServiceConfig| {
        cfg.route(
            "/metrics",
            web::get().to(move |req: HttpRequest| async move {
                if req.app_config().local_addr().port() == port {
                    prometheus_metrics().await
                } else {
                    not_found().await.error_response()
                }
            }),
        );
    }
}

/// The answer for routes that do not exist, in the same JSON shape as every other error;
/// register it with `.default_service(web::to(not_found))`.
pub async fn not_found() -> ClientError {
    ClientError::not_found("route")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        name: String,
        quantity: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Order {
        items: Vec<Item>,
    }

    #[test]
    fn a_missing_nested_field_is_named() {
        let err = parse_json::<Order>(br#"{"items":[{"quantity":1}]}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.field.as_deref(), Some("items[0].name"));
        assert_eq!(err.rule.as_deref(), Some("is required"));
    }

    #[test]
    fn a_wrong_type_is_named() {
        let err = parse_json::<Order>(br#"{"items":[{"name":"x","quantity":-1}]}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("items[0].quantity"));
        assert!(
            err.rule
                .as_deref()
                .unwrap_or_default()
                .contains("invalid value")
        );
    }

    #[tokio::test]
    async fn readiness_without_a_database_follows_its_flags() {
        let readiness = Readiness::without_database();
        assert!(readiness.check().await.0, "no flags: ready");
        let flag = readiness.flag("live_updates");
        let (ready, checks) = readiness.check().await;
        assert!(!ready);
        assert_eq!(
            serde_json::Value::Object(checks),
            serde_json::json!({ "live_updates": false })
        );
        flag.store(true, Ordering::Relaxed);
        assert!(readiness.check().await.0);
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Patch {
        #[serde(default, deserialize_with = "non_null")]
        name: Option<String>,
    }

    #[test]
    fn only_an_object_is_a_body() {
        for body in [
            &br#"["x", 1]"#[..],
            br#" [{"name":"x","quantity":1}]"#,
            b"42",
            b"null",
        ] {
            let err = parse_json::<Item>(body).unwrap_err();
            assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY, "{body:?}");
            assert_eq!(err.field.as_deref(), Some("body"));
            assert_eq!(err.rule.as_deref(), Some("must be a JSON object"));
        }
        let err = parse_json::<Item>(b"[oops").unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(parse_json::<Item>(br#" {"name":"x","quantity":1}"#).is_ok());
    }

    #[test]
    fn a_nested_struct_given_as_an_array_is_refused_by_its_path() {
        let err =
            parse_json::<Order>(br#"{"items":[{"name":"x","quantity":1},["y",2]]}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.field.as_deref(), Some("items[1]"));
        assert_eq!(err.rule.as_deref(), Some("must be a JSON object"));
        // Arrays where arrays belong, and everything else serde_json reads, still pass.
        let order = parse_json::<Order>(br#"{"items":[{"name":"x","quantity":1}]}"#);
        assert!(order.is_ok_and(|o| o.items.len() == 1));
        let err = parse_json::<Order>(br#"{"items":[{"name":"x","quantity":1,"name":"y"}]}"#)
            .unwrap_err();
        assert!(err.rule.unwrap_or_default().contains("duplicate field"));
    }

    #[test]
    fn null_is_not_leaving_a_field_out() {
        let patch = parse_json::<Patch>(b"{}").unwrap_or_else(|e| panic!("{e}"));
        assert!(patch.name.is_none());
        let patch = parse_json::<Patch>(br#"{"name":"x"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(patch.name.as_deref(), Some("x"));
        let err = parse_json::<Patch>(br#"{"name":null}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.field.as_deref(), Some("name"));
        assert!(err.rule.unwrap_or_default().starts_with("must not be null"));
    }

    #[derive(Debug, serde::Deserialize)]
    struct Day {
        #[serde(default, deserialize_with = "calendar_date")]
        date: Option<chrono::NaiveDate>,
    }

    #[test]
    fn only_a_four_digit_year_is_a_calendar_date() {
        let day = parse_json::<Day>(br#"{"date":"2025-03-01"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            day.date.map(|d| d.to_string()).as_deref(),
            Some("2025-03-01")
        );
        assert!(parse_json::<Day>(b"{}").is_ok_and(|d| d.date.is_none()));
        for bad in [
            "+10000-01-01",
            "2025-3-1",
            "2025-02-30",
            "20250301",
            " 2025-03-01",
        ] {
            let body = format!(r#"{{"date":"{bad}"}}"#);
            let err = parse_json::<Day>(body.as_bytes()).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("date"), "{bad}");
        }
        let query = serde_urlencoded::from_str::<Day>("date=%2B10000-01-01");
        assert!(query.is_err());
    }

    #[test]
    fn a_client_error_is_a_problem_with_a_stable_type() {
        let problem =
            ClientError::invalid("items[0].quantity", "must be between 1 and 50").problem();
        let body = serde_json::to_value(&problem).unwrap_or_default();
        assert_eq!(
            body,
            serde_json::json!({
                "type": "tag:kitchen-tracker,2026:problem:invalid_field",
                "title": "Unprocessable Entity",
                "status": 422,
                "detail": "items[0].quantity must be between 1 and 50",
                "code": "invalid_field",
                "field": "items[0].quantity",
                "rule": "must be between 1 and 50",
            })
        );
        let response =
            ClientError::conflict("not_packed", "the order is not packed yet").error_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some(PROBLEM_JSON)
        );
    }

    #[tokio::test]
    async fn every_error_answered_through_the_middleware_is_a_problem_with_its_instance() {
        use actix_web::{App, middleware::from_fn, test};
        let app = test::init_service(App::new().wrap(from_fn(trace_requests)).route(
            "/known",
            web::post().to(|| async { ClientError::not_found("order") }),
        ))
        .await;
        // Ours: the handler's error, with the path it answered.
        let res =
            test::call_service(&app, test::TestRequest::post().uri("/known").to_request()).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let problem = Problem::parse(&test::read_body(res).await);
        let problem = problem.unwrap_or_else(|| panic!("not a problem"));
        assert_eq!(problem.code, "not_found");
        assert_eq!(problem.instance.as_deref(), Some("/known"));
        assert_eq!(problem.trace_id.as_ref().map(String::len), Some(32));
        // actix's own, bodiless (no default service here): filled in by the middleware.
        let res =
            test::call_service(&app, test::TestRequest::get().uri("/nowhere").to_request()).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let problem = Problem::parse(&test::read_body(res).await);
        let problem = problem.unwrap_or_else(|| panic!("not a problem"));
        assert_eq!((problem.status, problem.code.as_str()), (404, "not_found"));
        assert_eq!(problem.instance.as_deref(), Some("/nowhere"));
    }

    #[test]
    fn broken_json_is_a_400() {
        let err = parse_json::<Order>(br#"{"items":["#).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.field.as_deref(), Some("body"));
    }
}
