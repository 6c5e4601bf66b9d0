//! The dead-letter API every service with a consumer serves, so the operations page reads and
//! repairs each consumer's dead letters through the service that owns them (the web never
//! touches the bus):
//!
//! | route | right | what |
//! |---|---|---|
//! | `GET /api/v1/dead-letters?type=&error=&routing_key=&since=&until=` | read | the letters that match, newest failure first |
//! | `GET /api/v1/dead-letters/{key}` | read | one letter in full, its payload pretty-printed |
//! | `POST /api/v1/dead-letters/replay` `{keys}` or `{filter}` | replay | back to the consumer |
//! | `POST /api/v1/dead-letters/discard` `{keys or filter, reason}` | replay | gone, with a reason |
//! | `GET /api/v1/dead-letters/actions?limit=` | read | who replayed or discarded what |
//! | `GET /api/v1/event-paths?subject=` | read | the path (hops) of every event of a subject (an order) this consumer handled, from its inbox |
//!
//! Reading a queue means fetching every message in it, so the reads go through [`snapshot`]:
//! a burst of requests shares one.
//!
//! Who may do what is the service's business: it names its caller type as an [`Operator`]
//! (`access::Staff` implements it with the operations permissions).

use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, http::StatusCode, web};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use service_kit::{
    config::BusSettings,
    http::{ClientError, Json, Query, internal_error_response},
};
use sqlx::PgPool;

use super::{
    Action, DeadLetter, Filter, Selection,
    audit::{self, ActionRecord, Actor},
    snapshot,
};
use crate::topology::{self, QueueSpec};

/// The caller of the dead-letter API, and what they may do.
pub trait Operator: FromRequest<Error = ClientError> + 'static {
    /// 403 unless the caller may read dead letters and the audit.
    fn require_read(&self) -> Result<(), ClientError>;
    /// 403 unless the caller may replay and discard them.
    fn require_replay(&self) -> Result<(), ClientError>;
    /// Who is recorded as having done it.
    fn actor(&self) -> Actor;
}

/// The consumer whose dead letters the API serves, and where its audit is kept.
#[derive(Clone)]
pub struct DeadLetterQueue {
    pub bus: BusSettings,
    pub spec: QueueSpec,
    pub pool: PgPool,
}

/// Registers the routes; the app must hold a `web::Data<DeadLetterQueue>`. Register them
/// before a `/api/v1` scope, which would otherwise take the requests.
pub fn routes<O: Operator>(cfg: &mut web::ServiceConfig) {
    // In a scope of their own: a service registers these before its `/api/v1` scope (which
    // would answer 404 for them), so every request passes them first. The scope's prefix is a
    // plain string comparison, while `{key}` on its own was a regex match on every request
    // (about 2% of the tracker's CPU in scenario b, docs/BENCHMARKS.md).
    cfg.service(
        web::scope("/api/v1/dead-letters")
            .route("", web::get().to(list::<O>))
            .route("/actions", web::get().to(actions::<O>))
            .route("/replay", web::post().to(replay::<O>))
            .route("/discard", web::post().to(discard::<O>))
            .route("/{key}", web::get().to(one::<O>)),
    )
    .route("/api/v1/event-paths", web::get().to(event_paths::<O>));
}

/// At most this many letters in one listing; `matching` still counts them all.
const LIST_LIMIT: usize = 500;
/// At most this many keys in one selection.
const KEYS_LIMIT: usize = 1000;
const REASON_LIMIT: usize = 500;

#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Client(e) => e.status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Client(e) => e.error_response(),
            ApiError::Internal(e) => internal_error_response(e),
        }
    }
}

/// A letter in a listing: everything but its body and error chain.
#[derive(Debug, Serialize)]
pub struct LetterSummary {
    pub key: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub routing_key: Option<String>,
    pub error: Option<String>,
    /// The innermost cause of the error when it says more than the error itself (a database's
    /// own message under "inserting the orders").
    pub cause: Option<String>,
    pub attempts: Option<u32>,
    pub failed_at: Option<String>,
}

impl From<DeadLetter> for LetterSummary {
    fn from(l: DeadLetter) -> Self {
        let cause = l
            .error_chain
            .as_deref()
            .and_then(|chain| chain.rsplit(" <- ").next())
            .filter(|cause| Some(*cause) != l.error.as_deref())
            .map(str::to_owned);
        LetterSummary {
            cause,
            key: l.key,
            event_id: l.event_id,
            event_type: l.event_type,
            routing_key: l.routing_key,
            error: l.error,
            attempts: l.attempts,
            failed_at: l.failed_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct LetterList {
    pub consumer: &'static str,
    pub queue: String,
    /// Every letter in the queue.
    pub total: usize,
    /// The letters the filter matches; at most 500 of them are listed.
    pub matching: usize,
    pub letters: Vec<LetterSummary>,
}

#[derive(Debug, Serialize)]
pub struct LetterDetail {
    #[serde(flatten)]
    pub letter: DeadLetter,
    /// The body pretty-printed when it is JSON.
    pub pretty_body: String,
}

#[derive(Debug, Serialize)]
pub struct ActionDone {
    pub action: Action,
    pub count: usize,
    pub keys: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ActionList {
    pub consumer: &'static str,
    pub actions: Vec<ActionRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    keys: Option<Vec<String>>,
    filter: Option<Filter>,
    reason: Option<String>,
}

impl ActionBody {
    fn selection(self) -> Result<(Selection, Option<String>), ClientError> {
        let selection = match (self.keys, self.filter) {
            (Some(keys), None) if keys.is_empty() => {
                return Err(ClientError::invalid(
                    "keys",
                    "must name at least one letter",
                ));
            }
            (Some(keys), None) if keys.len() > KEYS_LIMIT => {
                return Err(ClientError::invalid(
                    "keys",
                    format!("must name at most {KEYS_LIMIT} letters; use a filter for more"),
                ));
            }
            (Some(keys), None) => Selection::Keys(keys),
            (None, Some(filter)) => Selection::Matching(filter),
            _ => {
                return Err(ClientError::invalid(
                    "keys",
                    "give either keys (a selection) or filter (every letter it matches)",
                ));
            }
        };
        let reason = self
            .reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > REASON_LIMIT)
        {
            return Err(ClientError::invalid(
                "reason",
                format!("must be at most {REASON_LIMIT} characters"),
            ));
        }
        Ok((selection, reason))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionsQuery {
    limit: Option<u16>,
}

async fn list<O: Operator>(
    operator: O,
    queue: web::Data<DeadLetterQueue>,
    Query(filter): Query<Filter>,
) -> Result<HttpResponse, ApiError> {
    operator.require_read()?;
    let all = snapshot::letters(&queue.bus, queue.spec, snapshot::FRESH)
        .await
        .context("listing the dead letters")?;
    let total = all.len();
    let mut letters: Vec<&DeadLetter> = all.iter().filter(|l| filter.matches(l)).collect();
    // Newest failure first; RFC 3339 in UTC sorts as text.
    letters.sort_by(|a, b| b.failed_at.cmp(&a.failed_at));
    Ok(HttpResponse::Ok().json(LetterList {
        consumer: queue.spec.consumer,
        queue: topology::dead_letter_queue_name(&queue.bus.exchange, queue.spec),
        total,
        matching: letters.len(),
        letters: letters
            .into_iter()
            .take(LIST_LIMIT)
            .cloned()
            .map(LetterSummary::from)
            .collect(),
    }))
}

async fn one<O: Operator>(
    operator: O,
    queue: web::Data<DeadLetterQueue>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    operator.require_read()?;
    let key = req.match_info().get("key").unwrap_or_default();
    let letter = snapshot::letters(&queue.bus, queue.spec, snapshot::FRESH)
        .await
        .context("listing the dead letters")?
        .iter()
        .find(|l| l.key == key)
        .cloned()
        .ok_or_else(|| ClientError::not_found("dead letter"))?;
    Ok(HttpResponse::Ok().json(LetterDetail {
        pretty_body: letter.pretty_body(),
        letter,
    }))
}

async fn replay<O: Operator>(
    operator: O,
    queue: web::Data<DeadLetterQueue>,
    Json(body): Json<ActionBody>,
) -> Result<HttpResponse, ApiError> {
    operator.require_replay()?;
    let (selection, reason) = body.selection()?;
    act(&operator, &queue, &selection, Action::Replay, reason).await
}

async fn discard<O: Operator>(
    operator: O,
    queue: web::Data<DeadLetterQueue>,
    Json(body): Json<ActionBody>,
) -> Result<HttpResponse, ApiError> {
    operator.require_replay()?;
    let (selection, reason) = body.selection()?;
    let reason = reason.ok_or_else(|| ClientError::invalid("reason", "is required to discard"))?;
    act(&operator, &queue, &selection, Action::Discard, Some(reason)).await
}

/// Carries out the action on the broker and records it. The transaction is opened first, so a
/// database that is down stops the action before anything is taken; the broker's part cannot
/// join the transaction, so a failure to record afterwards is logged with every key.
async fn act<O: Operator>(
    operator: &O,
    queue: &DeadLetterQueue,
    selection: &Selection,
    action: Action,
    reason: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = queue
        .pool
        .begin()
        .await
        .context("starting the audit transaction")?;
    let taken = super::act(&queue.bus, queue.spec, selection, action).await;
    snapshot::forget(&queue.bus, queue.spec).await;
    let taken = taken.with_context(|| format!("{} dead letters", action.as_str()))?;
    if taken.is_empty() && matches!(selection, Selection::Keys(_)) {
        return Err(ClientError::not_found("dead letter").into());
    }
    let actor = operator.actor();
    let keys: Vec<String> = taken.iter().map(|l| l.key.clone()).collect();
    let recorded = async {
        audit::record_actions(
            &mut tx,
            queue.spec.consumer,
            action,
            reason.as_deref(),
            &actor,
            &taken,
        )
        .await?;
        tx.commit().await
    }
    .await;
    if let Err(error) = recorded {
        tracing::error!(
            ?error,
            action = action.as_str(),
            actor = %actor.id,
            ?keys,
            "dead letters were acted on but the audit could not record it"
        );
        return Err(anyhow::Error::new(error)
            .context("recording the action")
            .into());
    }
    tracing::info!(action = action.as_str(), actor = %actor.id, count = keys.len(), "dead letters acted on");
    Ok(HttpResponse::Ok().json(ActionDone {
        action,
        count: keys.len(),
        keys,
    }))
}

async fn actions<O: Operator>(
    operator: O,
    queue: web::Data<DeadLetterQueue>,
    Query(query): Query<ActionsQuery>,
) -> Result<HttpResponse, ApiError> {
    operator.require_read()?;
    let limit = i64::from(query.limit.unwrap_or(50).clamp(1, 500));
    let actions = audit::recent_actions(&queue.pool, queue.spec.consumer, limit)
        .await
        .context("reading the dead-letter audit")?;
    Ok(HttpResponse::Ok().json(ActionList {
        consumer: queue.spec.consumer,
        actions,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PathsQuery {
    subject: String,
}

/// One event this consumer handled, and the way it came.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct EventPath {
    pub event_id: uuid::Uuid,
    pub event_type: Option<String>,
    pub handled_at: chrono::DateTime<chrono::Utc>,
    /// Empty for events handled before hops were recorded.
    #[sqlx(json(nullable))]
    pub hops: Option<Vec<contracts::Hop>>,
}

#[derive(Debug, Serialize)]
pub struct EventPaths {
    pub consumer: &'static str,
    pub events: Vec<EventPath>,
}

/// At most this many events of one subject are listed.
const PATHS_LIMIT: i64 = 500;

async fn event_paths<O: Operator>(
    operator: O,
    queue: web::Data<DeadLetterQueue>,
    Query(query): Query<PathsQuery>,
) -> Result<HttpResponse, ApiError> {
    operator.require_read()?;
    let subject = query.subject.trim();
    if subject.is_empty() || subject.len() > 200 {
        return Err(ClientError::invalid("subject", "must be 1 to 200 characters").into());
    }
    let events: Vec<EventPath> = sqlx::query_as(
        "select event_id, event_type, processed_at as handled_at, hops
         from inbox where consumer = $1 and subject = $2
         order by processed_at, event_id limit $3",
    )
    .bind(queue.spec.consumer)
    .bind(subject)
    .bind(PATHS_LIMIT)
    .fetch_all(&queue.pool)
    .await
    .context("reading the event paths")?;
    Ok(HttpResponse::Ok().json(EventPaths {
        consumer: queue.spec.consumer,
        events,
    }))
}
