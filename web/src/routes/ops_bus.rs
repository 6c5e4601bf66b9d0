//! The bus overview of the operations section: every queue of ours with its depth, consumers,
//! publish and deliver rates, the age of its oldest message and whether its consumer keeps up,
//! from RabbitMQ's management API; and per service its outbox backlog, its oldest unpublished
//! event and its consumers' lag, from the service's own `/metrics`.

use access::Permission;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::{
    config::Settings,
    errors::{PageError, html},
    session::{Csrf, StaffViewer},
    upstream::Service,
};

use super::{
    AppState,
    ops::{OpsHeader, require},
    ops_metrics::{self, Sample},
    with_csrf,
};

/// The services whose metrics the operations pages read, and their names there.
pub const SERVICES: [(Service, &str); 4] = [
    (Service::Tracker, "Tracker"),
    (Service::SyncWorker, "Sync worker"),
    (Service::Auth, "Auth"),
    (Service::Devices, "Devices"),
];

/// The service that owns a consumer's queue (and its dead letters).
pub(super) fn owner_of(consumer: &str) -> Option<Service> {
    match consumer {
        "tracker-intake" => Some(Service::Tracker),
        "legacy-sync" => Some(Service::SyncWorker),
        "auth-pizzerias" => Some(Service::Auth),
        _ => None,
    }
}

#[derive(Debug, Deserialize)]
struct ManagedQueue {
    name: String,
    #[serde(default)]
    messages: u64,
    #[serde(default)]
    messages_ready: u64,
    #[serde(default)]
    messages_unacknowledged: u64,
    #[serde(default)]
    consumers: u64,
    #[serde(default)]
    message_stats: MessageStats,
    /// Only classic queues whose messages carry a timestamp report it.
    head_message_timestamp: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct MessageStats {
    publish_details: Option<Rate>,
    deliver_get_details: Option<Rate>,
}

#[derive(Debug, Deserialize)]
struct Rate {
    rate: f64,
}

#[derive(Debug, Deserialize)]
struct DeadLetterAges {
    letters: Vec<FailedAt>,
}

#[derive(Debug, Deserialize)]
struct FailedAt {
    failed_at: Option<DateTime<Utc>>,
}

/// What a queue is for, from its name: `<exchange>.<consumer>.p<i>` (a partition, or
/// `<exchange>.<consumer>` from before the queues were partitioned), `.delay.<n>` (or the
/// unpartitioned `.retry.<n>`), `.dead` (`bus::topology`), or `<exchange>.history`, the stream
/// every event also lands in (`bus::stream`).
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Main,
    Retry,
    Dead,
    Stream,
}

fn kind_of(rest: &str) -> (String, Kind) {
    if rest == "history" {
        return (String::new(), Kind::Stream);
    }
    if let Some(consumer) = rest.strip_suffix(".dead") {
        return (consumer.to_owned(), Kind::Dead);
    }
    if let Some(at) = rest.find(".delay.").or_else(|| rest.find(".retry.")) {
        return (rest[..at].to_owned(), Kind::Retry);
    }
    if let Some((consumer, partition)) = rest.rsplit_once(".p")
        && !partition.is_empty()
        && partition.bytes().all(|b| b.is_ascii_digit())
    {
        return (consumer.to_owned(), Kind::Main);
    }
    (rest.to_owned(), Kind::Main)
}

/// A consumer keeps up when it is connected and either nothing waits for it or it takes
/// messages at least as fast as they arrive.
fn keeps_up(consumers: u64, ready: u64, publish: f64, deliver: f64) -> bool {
    consumers > 0 && (ready == 0 || deliver >= publish)
}

struct QueueLine {
    name: String,
    consumer: String,
    kind: &'static str,
    depth: u64,
    ready: u64,
    unacked: u64,
    consumers: u64,
    publish: String,
    deliver: String,
    oldest: String,
    /// `yes`, `no`, or empty where it does not apply (retry and dead-letter queues have no
    /// consumer by design).
    keeps_up: &'static str,
}

struct ConsumerLine {
    queue: String,
    handled: String,
    lag_p50: String,
    lag_p90: String,
    failures: String,
}

struct ServiceLine {
    title: &'static str,
    problem: Option<String>,
    /// Empty for a service without an outbox (the sync worker).
    backlog: String,
    oldest_unpublished: String,
    consumers: Vec<ConsumerLine>,
}

#[derive(Template)]
#[template(path = "ops_bus.html")]
struct BusPage {
    t: &'static crate::i18n::Text,
    header: OpsHeader,
    /// The lead, naming the exchange.
    lead: String,
    queues: Vec<QueueLine>,
    queues_problem: Option<String>,
    services: Vec<ServiceLine>,
}

fn per_second(rate: Option<&Rate>) -> f64 {
    rate.map_or(0.0, |r| r.rate)
}

/// `GET /ops/bus`
pub async fn bus_page(
    viewer: StaffViewer,
    state: web::Data<AppState>,
    settings: web::Data<Settings>,
    csrf: Csrf,
) -> Result<HttpResponse, PageError> {
    require(&viewer, Permission::OperationsRead)?;
    let exchange = settings.bus.exchange.clone();
    let vhost: String =
        url::form_urlencoded::byte_serialize(settings.operations.vhost.as_bytes()).collect();
    let (queues, queues_problem) = match state
        .upstream
        .management::<Vec<ManagedQueue>>(&format!(
            "/queues/{vhost}?columns=name,messages,messages_ready,messages_unacknowledged,\
             consumers,message_stats,head_message_timestamp"
        ))
        .await
    {
        Ok(queues) => (queue_lines(&state, &viewer, &exchange, queues).await?, None),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the broker's management API");
            (
                Vec::new(),
                Some(crate::i18n::fill(
                    crate::i18n::text().ops.management_unreadable,
                    &[("error", &e)],
                )),
            )
        }
    };
    let mut services = Vec::with_capacity(SERVICES.len());
    for (service, title) in SERVICES {
        services.push(service_line(&state, service, title).await);
    }
    let t = crate::i18n::text();
    let page = BusPage {
        t,
        header: OpsHeader::new(&viewer, &csrf, "bus"),
        lead: crate::i18n::fill(t.ops.bus_lead, &[("exchange", &exchange)]),
        queues,
        queues_problem,
        services,
    };
    Ok(with_csrf(html(&page)?, &csrf))
}

async fn queue_lines(
    state: &AppState,
    viewer: &StaffViewer,
    exchange: &str,
    mut queues: Vec<ManagedQueue>,
) -> Result<Vec<QueueLine>, PageError> {
    let prefix = format!("{exchange}.");
    queues.retain(|q| q.name.starts_with(&prefix));
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    let now = Utc::now();
    let t = &crate::i18n::text().ops;
    let mut lines = Vec::with_capacity(queues.len());
    for q in queues {
        let (consumer, kind) = kind_of(&q.name[prefix.len()..]);
        let publish = per_second(q.message_stats.publish_details.as_ref());
        let deliver = per_second(q.message_stats.deliver_get_details.as_ref());
        let oldest = match (&kind, q.head_message_timestamp) {
            (_, Some(at)) => Some((now.timestamp() - at) as f64),
            // Quorum queues do not report their head's age; the owning service knows when each
            // dead letter failed.
            (Kind::Dead, None) if q.messages > 0 => {
                oldest_dead_letter(state, viewer, &consumer).await?
            }
            _ => None,
        };
        lines.push(QueueLine {
            kind: match kind {
                Kind::Main => t.kind_queue,
                Kind::Retry => t.kind_retry,
                Kind::Dead => t.kind_dead,
                Kind::Stream => t.kind_stream,
            },
            keeps_up: match kind {
                Kind::Main if keeps_up(q.consumers, q.messages_ready, publish, deliver) => "yes",
                Kind::Main => "no",
                _ => "",
            },
            name: q.name,
            consumer,
            depth: q.messages,
            ready: q.messages_ready,
            unacked: q.messages_unacknowledged,
            consumers: q.consumers,
            publish: format!("{publish:.1}/s"),
            deliver: format!("{deliver:.1}/s"),
            // A stream keeps what it has been sent on purpose: the age of its oldest event says
            // how far back a rebuild reaches, not that anything waits.
            oldest: match (oldest, q.messages) {
                (_, 0) => String::new(),
                _ if kind == Kind::Stream => String::new(),
                (Some(age), _) => ops_metrics::age(age),
                (None, _) => "–".to_owned(),
            },
        });
    }
    Ok(lines)
}

/// How long ago the oldest dead letter of `consumer` failed, from the service that owns it.
async fn oldest_dead_letter(
    state: &AppState,
    viewer: &StaffViewer,
    consumer: &str,
) -> Result<Option<f64>, PageError> {
    let Some(service) = owner_of(consumer) else {
        return Ok(None);
    };
    match state
        .upstream
        .get::<DeadLetterAges>(service, "/api/v1/dead-letters", &viewer.token)
        .await
    {
        Ok(list) => Ok(list
            .letters
            .iter()
            .filter_map(|l| l.failed_at)
            .min()
            .map(|at| (Utc::now() - at).num_milliseconds() as f64 / 1000.0)),
        Err(e) => match PageError::from(e) {
            signed_out @ PageError::SignedOut { .. } => Err(signed_out),
            _ => Ok(None),
        },
    }
}

async fn service_line(state: &AppState, service: Service, title: &'static str) -> ServiceLine {
    let mut line = ServiceLine {
        title,
        problem: None,
        backlog: String::new(),
        oldest_unpublished: String::new(),
        consumers: Vec::new(),
    };
    let samples = match state.upstream.metrics(service).await {
        Ok(text) => ops_metrics::parse(&text),
        Err(e) => {
            line.problem = Some(format!("{e}"));
            return line;
        }
    };
    if let Some(backlog) = ops_metrics::total(&samples, "outbox_backlog") {
        line.backlog = format!("{backlog:.0}");
        line.oldest_unpublished =
            ops_metrics::total(&samples, "outbox_oldest_unpublished_age_seconds")
                .map_or_else(|| "–".to_owned(), ops_metrics::age);
    }
    line.consumers = consumer_lines(&samples);
    line
}

/// Each durable consumer of the service: how many messages it handled, how old events were
/// when it handled them, and its failures by kind. A consumer is known by its failure counters,
/// which start at zero, so one that has handled nothing yet is listed too.
fn consumer_lines(samples: &[Sample]) -> Vec<ConsumerLine> {
    let lag = ops_metrics::histograms(samples, "consumer_event_age_seconds", &["queue"]);
    let queues: std::collections::BTreeSet<&str> = samples
        .iter()
        .filter(|s| s.name == "consumer_failures_total" || s.name == "consumer_messages_total")
        .map(|s| s.label("queue"))
        .chain(lag.keys().map(|k| k[0].as_str()))
        .filter(|q| !q.is_empty())
        .collect();
    queues
        .into_iter()
        .map(|queue| {
            let counted = |name: &'static str| {
                samples
                    .iter()
                    .filter(move |s| s.name == name && s.label("queue") == queue)
            };
            let handled = counted("consumer_messages_total").fold(0.0, |sum, s| sum + s.value);
            let failures: Vec<String> = counted("consumer_failures_total")
                .filter(|s| s.value > 0.0)
                .map(|s| format!("{} {:.0}", s.label("kind"), s.value))
                .collect();
            let quantile = |q: f64| {
                lag.get(&vec![queue.to_owned()])
                    .and_then(|h| h.quantile(q))
                    .map_or_else(|| "–".to_owned(), ops_metrics::age)
            };
            ConsumerLine {
                handled: format!("{handled:.0}"),
                lag_p50: quantile(0.5),
                lag_p90: quantile(0.9),
                failures: if failures.is_empty() {
                    crate::i18n::text().ops.failures_none.to_owned()
                } else {
                    failures.join(", ")
                },
                queue: queue.to_owned(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_say_what_they_are_for() {
        assert_eq!(kind_of("legacy-sync"), ("legacy-sync".into(), Kind::Main));
        assert_eq!(
            kind_of("legacy-sync.p3"),
            ("legacy-sync".into(), Kind::Main)
        );
        assert_eq!(
            kind_of("legacy-sync.delay.0"),
            ("legacy-sync".into(), Kind::Retry)
        );
        assert_eq!(
            kind_of("legacy-sync.retry.2"),
            ("legacy-sync".into(), Kind::Retry)
        );
        assert_eq!(
            kind_of("tracker-intake.dead"),
            ("tracker-intake".into(), Kind::Dead)
        );
    }

    #[test]
    fn a_consumer_that_handled_nothing_yet_is_listed_by_its_failure_counters() {
        let samples = ops_metrics::parse(
            "consumer_failures_total{queue=\"k.tracker-intake\",kind=\"transient\"} 0\n\
             consumer_failures_total{queue=\"k.tracker-intake\",kind=\"permanent\"} 2\n\
             consumer_messages_total{queue=\"k.tracker-intake\",outcome=\"applied\"} 5\n",
        );
        let lines = consumer_lines(&samples);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].queue, "k.tracker-intake");
        assert_eq!(lines[0].handled, "5");
        assert_eq!(lines[0].failures, "permanent 2");
        assert_eq!(lines[0].lag_p90, "–");
    }

    #[test]
    fn a_consumer_keeps_up_while_connected_and_not_falling_behind() {
        assert!(keeps_up(1, 0, 50.0, 0.0), "nothing waits");
        assert!(keeps_up(2, 300, 50.0, 80.0), "it drains the backlog");
        assert!(!keeps_up(1, 300, 80.0, 50.0), "the backlog grows");
        assert!(!keeps_up(0, 0, 0.0, 0.0), "nobody consumes");
    }
}
