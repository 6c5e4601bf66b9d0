//! The operations section, for chain admins and the on-call roles (`operations.read` to look,
//! `operations.replay` to replay and discard): every consumer's dead letters, read and repaired
//! through the service that owns the queue (the tracker for its intake, the sync worker for
//! the legacy mirror). The web never touches the bus itself. The bus overview is in
//! `ops_bus`, the services' HTTP figures in `ops_services`.

use access::Permission;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    errors::{PageError, html},
    i18n::{fill, ops::OpsText},
    session::{Csrf, Form, StaffViewer},
    upstream::{Body, Service, UpstreamError},
};

use super::{AppState, see_other, with_csrf};

/// A consumer whose dead letters the page shows, and the service that owns them.
#[derive(Debug, Clone, Copy)]
struct Queue {
    service: Service,
    /// Its name in the page's paths.
    slug: &'static str,
    /// Its title in the viewer's language.
    title: fn(&'static OpsText) -> &'static str,
}

const QUEUES: [Queue; 3] = [
    Queue {
        service: Service::Tracker,
        slug: "tracker",
        title: |t| t.queue_tracker_intake,
    },
    Queue {
        service: Service::SyncWorker,
        slug: "sync-worker",
        title: |t| t.queue_legacy_sync,
    },
    Queue {
        service: Service::Auth,
        slug: "auth",
        title: |t| t.queue_auth_pizzerias,
    },
];

/// The section's strings in the request's language.
fn ops_text() -> &'static OpsText {
    &crate::i18n::text().ops
}

fn queue_of(req: &HttpRequest) -> Result<Queue, PageError> {
    let slug = req.match_info().get("queue").unwrap_or_default();
    QUEUES
        .into_iter()
        .find(|q| q.slug == slug)
        .ok_or_else(|| PageError::NotFound("queue".into()))
}

/// The section's header: who is signed in, the sign-out form's token, the highlighted tab.
pub struct OpsHeader {
    pub who: String,
    pub csrf: String,
    pub section: &'static str,
    /// (code, name in itself) of every language, for the switch.
    pub languages: Vec<(&'static str, &'static str)>,
}

impl OpsHeader {
    pub(super) fn new(viewer: &StaffViewer, csrf: &Csrf, section: &'static str) -> Self {
        OpsHeader {
            who: viewer.principal.display_name.clone(),
            csrf: csrf.token.clone(),
            section,
            languages: crate::i18n::Lang::ALL
                .iter()
                .map(|l| (l.code(), l.autonym()))
                .collect(),
        }
    }
}

/// A friendly 403 unless the viewer holds `permission` across the chain.
pub(super) fn require(viewer: &StaffViewer, permission: Permission) -> Result<(), PageError> {
    if viewer.principal.can_chain_wide(permission) {
        Ok(())
    } else {
        Err(PageError::Forbidden(format!("needs {permission}")))
    }
}

/// The filter as typed into the form. Times are RFC 3339, or `YYYY-MM-DDTHH:MM` (a
/// `datetime-local` input) read as UTC.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FilterForm {
    #[serde(rename = "type", default)]
    event_type: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    routing_key: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

fn parse_time(field: &str, text: &str) -> Result<Option<DateTime<Utc>>, PageError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").map(|t| t.and_utc()))
        .map(Some)
        .map_err(|_| PageError::Refused {
            status: actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            message: fill(ops_text().bad_time, &[("field", &field)]),
        })
}

impl FilterForm {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        FilterForm {
            event_type: get("type"),
            error: get("error"),
            routing_key: get("routing_key"),
            since: get("since"),
            until: get("until"),
        }
    }

    /// The non-empty fields, with times in RFC 3339, as the services' filter takes them.
    fn fields(&self) -> Result<Vec<(&'static str, String)>, PageError> {
        let mut fields = Vec::new();
        for (name, value) in [
            ("type", &self.event_type),
            ("error", &self.error),
            ("routing_key", &self.routing_key),
        ] {
            if !value.trim().is_empty() {
                fields.push((name, value.trim().to_owned()));
            }
        }
        for (name, value) in [("since", &self.since), ("until", &self.until)] {
            if let Some(at) = parse_time(name, value)? {
                fields.push((name, at.to_rfc3339()));
            }
        }
        Ok(fields)
    }

    /// The form's own fields, to carry the filter on in links and hidden inputs.
    fn echo(&self) -> Vec<(&'static str, String)> {
        [
            ("type", &self.event_type),
            ("error", &self.error),
            ("routing_key", &self.routing_key),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k, v.clone()))
        .collect()
    }
}

// ------------------------------------------------------------- the APIs' answers ---

#[derive(Debug, Deserialize)]
struct LetterList {
    total: usize,
    matching: usize,
    letters: Vec<LetterSummary>,
}

#[derive(Debug, Deserialize)]
struct LetterSummary {
    key: String,
    event_id: Option<String>,
    event_type: Option<String>,
    routing_key: Option<String>,
    error: Option<String>,
    cause: Option<String>,
    attempts: Option<u32>,
    failed_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LetterDetail {
    key: String,
    event_id: Option<String>,
    event_type: Option<String>,
    routing_key: Option<String>,
    error: Option<String>,
    error_chain: Option<String>,
    attempts: Option<u32>,
    first_failed_at: Option<String>,
    failed_at: Option<String>,
    consumer: Option<String>,
    trace_id: Option<String>,
    body: String,
    pretty_body: String,
}

#[derive(Debug, Deserialize)]
struct ActionList {
    actions: Vec<ActionRecord>,
}

#[derive(Debug, Deserialize)]
struct ActionRecord {
    at: DateTime<Utc>,
    action: String,
    event_id: Option<String>,
    event_type: Option<String>,
    reason: Option<String>,
    actor_name: String,
}

#[derive(Debug, Deserialize)]
struct ActionDone {
    count: usize,
}

// ------------------------------------------------------------------- the pages ---

/// A time from a service (RFC 3339) as the page shows it: date and time to the second, UTC.
fn when(at: Option<&str>) -> String {
    at.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            t.with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        })
        .unwrap_or_else(|| "–".to_owned())
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "–".to_owned())
}

struct LetterLine {
    key: String,
    failed_at: String,
    event_type: String,
    event_id: String,
    routing_key: String,
    error: String,
    /// The innermost cause, when it says more.
    cause: String,
    attempts: String,
}

impl From<LetterSummary> for LetterLine {
    fn from(l: LetterSummary) -> Self {
        LetterLine {
            failed_at: when(l.failed_at.as_deref()),
            key: l.key,
            event_type: l
                .event_type
                .unwrap_or_else(|| ops_text().not_an_event.to_owned()),
            event_id: or_dash(l.event_id),
            routing_key: or_dash(l.routing_key),
            error: or_dash(l.error),
            cause: l.cause.unwrap_or_default(),
            attempts: l.attempts.map_or_else(|| "–".to_owned(), |n| n.to_string()),
        }
    }
}

struct ActionLine {
    at: String,
    who: String,
    action: String,
    event: String,
    reason: String,
}

impl From<ActionRecord> for ActionLine {
    fn from(a: ActionRecord) -> Self {
        ActionLine {
            at: a.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            who: a.actor_name,
            action: match a.action.as_str() {
                "replay" => ops_text().replayed.to_owned(),
                "discard" => ops_text().discarded.to_owned(),
                other => other.to_owned(),
            },
            event: format!(
                "{} {}",
                a.event_type
                    .unwrap_or_else(|| ops_text().not_an_event.to_owned()),
                a.event_id.unwrap_or_default()
            ),
            reason: a.reason.unwrap_or_default(),
        }
    }
}

struct QueueView {
    slug: &'static str,
    title: &'static str,
    /// Set when the owning service could not be asked: the other queues still show.
    problem: Option<String>,
    /// How many of how many letters match the filter.
    summary: String,
    /// The "replay all matching" button, with their number.
    replay_all: String,
    letters: Vec<LetterLine>,
    actions: Vec<ActionLine>,
}

#[derive(Template)]
#[template(path = "ops_dead_letters.html")]
struct DeadLettersPage {
    t: &'static crate::i18n::Text,
    header: OpsHeader,
    filter: FilterForm,
    /// The filter as hidden inputs, for "all matching" and the links.
    carried: Vec<(&'static str, String)>,
    queues: Vec<QueueView>,
    notice: Option<String>,
    can_replay: bool,
}

#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
    n: Option<usize>,
}

/// `GET /ops`: the section starts with the dead letters.
pub async fn ops_start() -> HttpResponse {
    see_other("/ops/dead-letters")
}

/// `GET /ops/dead-letters?type=&error=&routing_key=&since=&until=`
pub async fn dead_letters_page(
    viewer: StaffViewer,
    state: web::Data<AppState>,
    csrf: Csrf,
    filter: web::Query<FilterForm>,
    done: web::Query<Done>,
) -> Result<HttpResponse, PageError> {
    require(&viewer, Permission::OperationsRead)?;
    let filter = filter.into_inner();
    let query = serde_urlencoded::to_string(filter.fields()?).unwrap_or_default();
    let mut queues = Vec::with_capacity(QUEUES.len());
    for queue in QUEUES {
        queues.push(queue_view(&state, &viewer, queue, &query).await?);
    }
    let notice = match (done.done.as_deref(), done.n) {
        (Some("replay"), Some(n)) => Some(fill(ops_text().n_replayed, &[("n", &n)])),
        (Some("discard"), Some(n)) => Some(fill(ops_text().n_discarded, &[("n", &n)])),
        _ => None,
    };
    let page = DeadLettersPage {
        t: crate::i18n::text(),
        header: OpsHeader::new(&viewer, &csrf, "dead-letters"),
        carried: filter.echo(),
        filter,
        queues,
        notice,
        can_replay: viewer
            .principal
            .can_chain_wide(Permission::OperationsReplay),
    };
    Ok(with_csrf(html(&page)?, &csrf))
}

/// One queue's letters and audit. A service that is down or refuses is shown as such on its
/// own queue; a dead session still sends the person to sign in.
async fn queue_view(
    state: &AppState,
    viewer: &StaffViewer,
    queue: Queue,
    query: &str,
) -> Result<QueueView, PageError> {
    let upstream = &state.upstream;
    let letters = upstream
        .get::<LetterList>(
            queue.service,
            &format!("/api/v1/dead-letters?{query}"),
            &viewer.token,
        )
        .await;
    let actions = upstream
        .get::<ActionList>(
            queue.service,
            "/api/v1/dead-letters/actions?limit=20",
            &viewer.token,
        )
        .await;
    let t = ops_text();
    let mut view = QueueView {
        slug: queue.slug,
        title: (queue.title)(t),
        problem: None,
        summary: String::new(),
        replay_all: String::new(),
        letters: Vec::new(),
        actions: Vec::new(),
    };
    match (letters, actions) {
        (Ok(letters), Ok(actions)) => {
            view.summary = fill(
                t.matching,
                &[("matching", &letters.matching), ("total", &letters.total)],
            );
            view.replay_all = fill(t.replay_all, &[("n", &letters.matching)]);
            view.letters = letters.letters.into_iter().map(LetterLine::from).collect();
            view.actions = actions.actions.into_iter().map(ActionLine::from).collect();
        }
        (Err(e), _) | (_, Err(e)) => match PageError::from(e) {
            signed_out @ PageError::SignedOut { .. } => return Err(signed_out),
            PageError::Unavailable(service) => {
                view.problem = Some(fill(
                    t.service_unreachable,
                    &[("service", &capitalised(service.title()))],
                ));
            }
            other => view.problem = Some(other.to_string()),
        },
    }
    Ok(view)
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "ops_dead_letter.html")]
struct DeadLetterPage {
    t: &'static crate::i18n::Text,
    header: OpsHeader,
    slug: &'static str,
    title: &'static str,
    key: String,
    event_id: String,
    event_type: String,
    routing_key: String,
    consumer: String,
    attempts: String,
    first_failed_at: String,
    failed_at: String,
    trace_id: String,
    error: String,
    /// The error's causes, outermost first.
    chain: Vec<String>,
    payload: String,
    /// The way it came, from the hops in its body (one entry, or none for a body that is no
    /// envelope).
    paths: Vec<super::ops_paths::EventPathView>,
    can_replay: bool,
}

/// `GET /ops/dead-letters/{queue}/{key}`: one letter in full.
pub async fn dead_letter_page(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    csrf: Csrf,
) -> Result<HttpResponse, PageError> {
    require(&viewer, Permission::OperationsRead)?;
    let queue = queue_of(&req)?;
    let key = req.match_info().get("key").unwrap_or_default();
    let path = format!(
        "/api/v1/dead-letters/{}",
        url::form_urlencoded::byte_serialize(key.as_bytes()).collect::<String>()
    );
    let letter: LetterDetail = state
        .upstream
        .get(queue.service, &path, &viewer.token)
        .await?;
    let hops = super::ops_paths::hops_in_body(&letter.body);
    // The path is the letter's own, so it shows under the letter's heading, not twice.
    let paths = if hops.is_empty() {
        Vec::new()
    } else {
        vec![super::ops_paths::EventPathView {
            event: String::new(),
            event_id: String::new(),
            hops: super::ops_paths::hop_lines(&hops),
        }]
    };
    let page = DeadLetterPage {
        t: crate::i18n::text(),
        header: OpsHeader::new(&viewer, &csrf, "dead-letters"),
        slug: queue.slug,
        title: (queue.title)(ops_text()),
        key: letter.key,
        event_id: or_dash(letter.event_id),
        event_type: letter
            .event_type
            .unwrap_or_else(|| ops_text().not_an_event.to_owned()),
        routing_key: or_dash(letter.routing_key),
        consumer: or_dash(letter.consumer),
        attempts: letter
            .attempts
            .map_or_else(|| "–".to_owned(), |n| n.to_string()),
        first_failed_at: when(letter.first_failed_at.as_deref()),
        failed_at: when(letter.failed_at.as_deref()),
        trace_id: or_dash(letter.trace_id),
        error: or_dash(letter.error),
        chain: letter
            .error_chain
            .map(|c| c.split(" <- ").map(str::to_owned).collect())
            .unwrap_or_default(),
        paths,
        payload: letter.pretty_body,
        can_replay: viewer
            .principal
            .can_chain_wide(Permission::OperationsReplay),
    };
    Ok(with_csrf(html(&page)?, &csrf))
}

/// `POST /ops/dead-letters/{queue}/act`: `action` is `replay` or `discard` with the ticked
/// `key`s, or `replay_all` / `discard_all` with the filter's fields; a discard needs `reason`.
pub async fn act(
    req: HttpRequest,
    viewer: StaffViewer,
    state: web::Data<AppState>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    require(&viewer, Permission::OperationsReplay)?;
    let queue = queue_of(&req)?;
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let keys: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "key")
        .map(|(_, v)| v.as_str())
        .collect();
    let filter = FilterForm::from_pairs(&pairs);
    let action = field("action");
    let (verb, selection) = match action.as_str() {
        "replay" | "discard" if keys.is_empty() => {
            return Err(PageError::Refused {
                status: actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                message: ops_text().tick_first.into(),
            });
        }
        "replay" => ("replay", json!({ "keys": keys })),
        "discard" => ("discard", json!({ "keys": keys })),
        all @ ("replay_all" | "discard_all") => {
            let fields: serde_json::Map<String, Value> = filter
                .fields()?
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v)))
                .collect();
            let verb = if all == "replay_all" {
                "replay"
            } else {
                "discard"
            };
            (verb, json!({ "filter": fields }))
        }
        _ => return Err(PageError::NotFound("action".into())),
    };
    let mut body = selection;
    let reason = field("reason");
    if !reason.is_empty() {
        body["reason"] = Value::String(reason);
    }
    let done: Result<ActionDone, UpstreamError> = state
        .upstream
        .call(
            queue.service,
            Method::POST,
            &format!("/api/v1/dead-letters/{verb}"),
            Some(&viewer.token),
            Body::Json(&body),
        )
        .await;
    let done = done?;
    let mut back = vec![("done", verb.to_owned()), ("n", done.count.to_string())];
    back.extend(filter.echo());
    Ok(see_other(&format!(
        "/ops/dead-letters?{}",
        serde_urlencoded::to_string(back).unwrap_or_default()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 10: the section shows the dead letters of every durable consumer, and a new one
    /// fails here until it is listed, with the service that serves them.
    #[test]
    fn every_durable_consumer_has_its_dead_letters_listed_from_its_owner() {
        for spec in bus::topology::ALL {
            let owner = crate::routes::ops_bus::owner_of(spec.consumer);
            assert!(owner.is_some(), "{} has no owner", spec.consumer);
            assert!(
                QUEUES.iter().any(|q| Some(q.service) == owner),
                "{} is not in QUEUES",
                spec.consumer
            );
        }
        assert_eq!(QUEUES.len(), bus::topology::ALL.len(), "one section each");
    }

    #[test]
    fn filter_times_are_rfc_3339_or_a_local_input_read_as_utc() {
        let form = FilterForm {
            event_type: " OrderPacked ".into(),
            since: "2026-11-30T09:00".into(),
            until: "2026-11-30T10:00:00+01:00".into(),
            ..FilterForm::default()
        };
        assert_eq!(
            form.fields().map_err(|e| e.to_string()),
            Ok(vec![
                ("type", "OrderPacked".to_owned()),
                ("since", "2026-11-30T09:00:00+00:00".to_owned()),
                ("until", "2026-11-30T09:00:00+00:00".to_owned()),
            ])
        );
        let bad = FilterForm {
            since: "yesterday".into(),
            ..FilterForm::default()
        };
        assert!(matches!(bad.fields(), Err(PageError::Refused { .. })));
    }

    #[test]
    fn times_show_to_the_second_in_utc() {
        assert_eq!(
            when(Some("2026-11-30T10:00:05+01:00")),
            "2026-11-30 09:00:05 UTC"
        );
        assert_eq!(when(None), "–");
    }
}
