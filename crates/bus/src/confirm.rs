//! What the broker said about one publish, read the same way by every publisher of ours.
//!
//! Every publish is `mandatory`: a message that no queue takes comes back with its confirm
//! instead of being confirmed and silently dropped. Without it, a retry or dead-letter hop to a
//! queue that had gone missing was confirmed, the original acknowledged, and the message lost.

use lapin::{Confirmation, options::BasicPublishOptions};

/// Options for every publish: mandatory, so an unroutable message is returned, not dropped.
pub(crate) fn mandatory() -> BasicPublishOptions {
    BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// At least one queue holds the message.
    Stored,
    /// No queue was bound to take it; the broker returned it.
    Unroutable,
    /// The broker refused it (a nack): it is not stored.
    Refused,
}

pub(crate) fn outcome(confirmation: &Confirmation) -> anyhow::Result<Outcome> {
    match confirmation {
        Confirmation::Ack(None) => Ok(Outcome::Stored),
        Confirmation::Ack(Some(_)) | Confirmation::Nack(Some(_)) => Ok(Outcome::Unroutable),
        Confirmation::Nack(None) => Ok(Outcome::Refused),
        Confirmation::NotRequested => anyhow::bail!("publisher confirms are off"),
    }
}

/// Whether a topic binding pattern (`*` one word, `#` zero or more) matches a routing key.
pub(crate) fn topic_matches(pattern: &str, key: &str) -> bool {
    fn go(pattern: &[&str], key: &[&str]) -> bool {
        match (pattern.split_first(), key.split_first()) {
            (None, None) => true,
            (Some((&"#", rest)), _) => {
                go(rest, key) || key.split_first().is_some_and(|(_, k)| go(pattern, k))
            }
            (Some((&"*", rest)), Some((_, k))) => go(rest, k),
            (Some((p, rest)), Some((w, k))) => p == w && go(rest, k),
            _ => false,
        }
    }
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = key.split('.').collect();
    go(&pattern, &key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns_match_as_rabbitmq_does() {
        assert!(topic_matches("tracker.#", "tracker.order.accepted"));
        assert!(topic_matches("tracker.#", "tracker"));
        assert!(topic_matches("auth.user.*", "auth.user.created"));
        assert!(!topic_matches("auth.user.*", "auth.session.revoked"));
        assert!(!topic_matches("auth.user.*", "auth.user.created.extra"));
        assert!(topic_matches("#", "anything.at.all"));
        assert!(topic_matches(
            "cashier.order.placed",
            "cashier.order.placed"
        ));
        assert!(!topic_matches("cashier.order.placed", "site.order.placed"));
        assert!(topic_matches("*.order.#", "site.order.placed"));
        assert!(!topic_matches("*.order.#", "order.placed"));
    }
}
