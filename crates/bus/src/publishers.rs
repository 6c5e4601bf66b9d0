//! Who may publish what on the bus.
//!
//! Every service connects as a RabbitMQ user of its own. The broker's topic permissions keep a
//! user from publishing another source's routing keys to the exchange, but a message can also
//! reach a queue another way (the default exchange, which the consumers need for their retries),
//! so the consumers check as well. Every publisher of ours sets the AMQP `user_id` property to
//! the user it is connected as; RabbitMQ refuses a `user_id` that is not the connection's own
//! user, so a consumer can trust it. A consumer accepts an event only when:
//! - its publisher owns the routing key's source (the first word: `cashier` in
//!   `cashier.order.placed`), by [`owner`]; and
//! - the routing key is the one of the envelope's event type, because the handlers dispatch on
//!   the type: `tracker.order.accepted` carrying a `UserRolesChanged` is refused.
//!
//! A consumer re-publishes a failed message to its own retry queue, as its own user; it keeps
//! the original publisher in [`PUBLISHED_BY`](crate::headers::PUBLISHED_BY). That header is
//! believed only on a message whose `user_id` is the consumer's own user, which only the
//! consumer itself (or the dead-letter replay, running as the same service) can have sent.

use contracts::Event;
use lapin::BasicProperties;
use secrecy::ExposeSecret;
use service_kit::config::BusSettings;

use crate::headers;

/// The sources that publish on the bus: the services with an outbox, and the order sources.
/// Each belongs to the RabbitMQ user of its own name unless `bus.publishers` says otherwise.
pub const SOURCES: &[&str] = &[
    "tracker",
    "auth",
    "devices",
    "cashier",
    "site",
    "contact-centre",
];

/// The RabbitMQ user this process connects as: the user in `bus.url` (RabbitMQ's default,
/// `guest`, when the URL names none).
pub fn own_user(bus: &BusSettings) -> String {
    bus.url
        .expose_secret()
        .parse::<lapin::uri::AMQPUri>()
        .map(|uri| uri.authority.userinfo.username)
        .unwrap_or_else(|_| "guest".to_owned())
}

/// The user that owns `routing_key`'s source, or `None` if the source is not one of ours.
pub fn owner<'a>(bus: &'a BusSettings, routing_key: &str) -> Option<&'a str> {
    let source = routing_key.split('.').next()?;
    if let Some(user) = bus.publishers.get(source) {
        return Some(user.as_str());
    }
    SOURCES.iter().copied().find(|s| *s == source)
}

/// The sources `user` publishes: a publisher declares only the queues that bind them.
pub fn sources_of<'a>(bus: &'a BusSettings, user: &'a str) -> impl Iterator<Item = &'a str> {
    SOURCES
        .iter()
        .copied()
        .filter(move |source| owner(bus, source) == Some(user))
}

/// Properties stamped with the publisher's own user, which the broker checks.
pub fn stamp(properties: BasicProperties, user: &str) -> BasicProperties {
    properties.with_user_id(user.into())
}

/// The routing key of each event type (the part after the source).
const EVENT_KEYS: &[(&str, &str)] = &[
    (contracts::OrderPlaced::TYPE, contracts::OrderPlaced::KEY),
    (
        contracts::OrderCancelled::TYPE,
        contracts::OrderCancelled::KEY,
    ),
    (
        contracts::OrderAcceptedByTracker::TYPE,
        contracts::OrderAcceptedByTracker::KEY,
    ),
    (contracts::OrderInWork::TYPE, contracts::OrderInWork::KEY),
    (
        contracts::ProductStageCompleted::TYPE,
        contracts::ProductStageCompleted::KEY,
    ),
    (
        contracts::ProductStageUndone::TYPE,
        contracts::ProductStageUndone::KEY,
    ),
    (
        contracts::ProductRemakeRequested::TYPE,
        contracts::ProductRemakeRequested::KEY,
    ),
    (contracts::OrderPacked::TYPE, contracts::OrderPacked::KEY),
    (
        contracts::OrderHandedOver::TYPE,
        contracts::OrderHandedOver::KEY,
    ),
    (
        contracts::OrderCancelledAfterHandOver::TYPE,
        contracts::OrderCancelledAfterHandOver::KEY,
    ),
    (
        contracts::OrderRunningLate::TYPE,
        contracts::OrderRunningLate::KEY,
    ),
    (
        contracts::PizzeriaRegistered::TYPE,
        contracts::PizzeriaRegistered::KEY,
    ),
    (
        contracts::PizzeriaChanged::TYPE,
        contracts::PizzeriaChanged::KEY,
    ),
    (contracts::OrderFired::TYPE, contracts::OrderFired::KEY),
    (contracts::UserCreated::TYPE, contracts::UserCreated::KEY),
    (
        contracts::UserRolesChanged::TYPE,
        contracts::UserRolesChanged::KEY,
    ),
    (
        contracts::UserDeactivated::TYPE,
        contracts::UserDeactivated::KEY,
    ),
    (
        contracts::SessionRevoked::TYPE,
        contracts::SessionRevoked::KEY,
    ),
    (
        contracts::DeviceRegistered::TYPE,
        contracts::DeviceRegistered::KEY,
    ),
    (
        contracts::DeviceRenamed::TYPE,
        contracts::DeviceRenamed::KEY,
    ),
    (
        contracts::DeviceRevoked::TYPE,
        contracts::DeviceRevoked::KEY,
    ),
];

/// Who published a delivery, as far as the broker vouches for it (see the module docs).
pub fn publisher(properties: &BasicProperties, own_user: &str) -> Option<String> {
    let user = properties.user_id().as_ref()?.as_str();
    if user == own_user {
        let original = headers::get_str(properties.headers().as_ref(), headers::PUBLISHED_BY);
        return Some(original.unwrap_or_else(|| user.to_owned()));
    }
    Some(user.to_owned())
}

/// Why an event must not be applied, if it must not: its publisher does not own its routing
/// key, or the key does not belong to its event type.
pub fn refusal(
    bus: &BusSettings,
    routing_key: &str,
    event_type: &str,
    publisher: Option<&str>,
) -> Option<String> {
    let source = routing_key.split('.').next().unwrap_or_default();
    let Some(owner) = owner(bus, routing_key) else {
        return Some(format!(
            "refused: {routing_key} is not a routing key of any known publisher"
        ));
    };
    match publisher {
        None => {
            return Some(format!(
                "refused: {routing_key} arrived without a user_id, so its publisher is unknown \
                 (it must be published by RabbitMQ user `{owner}`)"
            ));
        }
        Some(user) if user != owner => {
            return Some(format!(
                "refused: {routing_key} was published by RabbitMQ user `{user}`, but `{source}.*` \
                 belongs to `{owner}`"
            ));
        }
        Some(_) => {}
    }
    // A type this build does not know is left to the handler, which ignores it.
    let expected = EVENT_KEYS
        .iter()
        .find(|(event, _)| *event == event_type)
        .map(|(_, key)| format!("{source}.{key}"));
    match expected {
        Some(expected) if expected != routing_key => Some(format!(
            "refused: a {event_type} must travel as {expected}, not as {routing_key}"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn bus(url: &str) -> BusSettings {
        BusSettings {
            url: SecretString::from(url.to_owned()),
            exchange: "kitchen".into(),
            publishers: Default::default(),
            partitions: 4,
        }
    }

    #[test]
    fn the_own_user_comes_from_the_url() {
        assert_eq!(own_user(&bus("amqp://tracker:pw@h:5672/%2f")), "tracker");
        assert_eq!(
            own_user(&bus("amqp://sync%2Dworker:pw@h/%2f")),
            "sync-worker"
        );
        assert_eq!(own_user(&bus("amqp://h:5672/%2f")), "guest");
    }

    #[test]
    fn a_source_belongs_to_its_own_user_unless_configured() {
        let mut b = bus("amqp://tracker:pw@h/%2f");
        assert_eq!(owner(&b, "cashier.order.placed"), Some("cashier"));
        assert_eq!(owner(&b, "nobody.order.placed"), None);
        b.publishers.insert("cashier".into(), "till-1".into());
        assert_eq!(owner(&b, "cashier.order.placed"), Some("till-1"));
        assert_eq!(sources_of(&b, "till-1").collect::<Vec<_>>(), ["cashier"]);
        assert_eq!(sources_of(&b, "tracker").collect::<Vec<_>>(), ["tracker"]);
    }

    #[test]
    fn the_owner_with_the_right_key_is_accepted() {
        let b = bus("amqp://sync-worker:pw@h/%2f");
        let placed = contracts::OrderPlaced::TYPE;
        assert_eq!(
            refusal(&b, "cashier.order.placed", placed, Some("cashier")),
            None
        );
        let roles = contracts::UserRolesChanged::TYPE;
        assert_eq!(
            refusal(&b, "auth.user.roles_changed", roles, Some("auth")),
            None
        );
        assert_eq!(
            refusal(&b, "auth.user.future_event", "FutureEvent", Some("auth")),
            None
        );
    }

    #[test]
    fn anyone_else_is_refused_with_the_reason() {
        let b = bus("amqp://sync-worker:pw@h/%2f");
        let roles = contracts::UserRolesChanged::TYPE;
        let web = refusal(&b, "auth.user.roles_changed", roles, Some("web")).expect("refused");
        assert!(
            web.contains("`web`") && web.contains("belongs to `auth`"),
            "{web}"
        );
        let anonymous = refusal(&b, "auth.user.roles_changed", roles, None).expect("refused");
        assert!(anonymous.contains("without a user_id"), "{anonymous}");
        let disguised =
            refusal(&b, "tracker.order.accepted", roles, Some("tracker")).expect("refused");
        assert!(
            disguised.contains("tracker.user.roles_changed"),
            "{disguised}"
        );
        let unknown = refusal(&b, "evil.order.placed", "OrderPlaced", Some("evil"));
        assert!(unknown.is_some());
    }

    #[test]
    fn the_original_publisher_is_believed_only_from_the_consumer_itself() {
        let mut table = lapin::types::FieldTable::default();
        headers::set_str(&mut table, headers::PUBLISHED_BY, "cashier");
        let retried = BasicProperties::default()
            .with_user_id("tracker".into())
            .with_headers(table.clone());
        assert_eq!(publisher(&retried, "tracker").as_deref(), Some("cashier"));
        let forged = BasicProperties::default()
            .with_user_id("web".into())
            .with_headers(table);
        assert_eq!(publisher(&forged, "tracker").as_deref(), Some("web"));
        assert_eq!(publisher(&BasicProperties::default(), "tracker"), None);
    }
}
