//! The hop list every envelope gathers on its way (`Envelope::hops`): one entry per relay that
//! published it and per consumer that retried, dead-lettered, replayed or handled it, with
//! this process's host and id and the time the step began and ended. It makes an event's path
//! readable without a tracing backend.

use std::{borrow::Cow, sync::LazyLock};

use chrono::{DateTime, Utc};
use contracts::Hop;

/// What a hop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Published,
    Handled,
    Retried,
    DeadLettered,
    Replayed,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Published => "published",
            Step::Handled => "handled",
            Step::Retried => "retried",
            Step::DeadLettered => "dead_lettered",
            Step::Replayed => "replayed",
        }
    }
}

/// The host this process runs on: `HOSTNAME` (the pod name in Kubernetes), else the kernel's.
static INSTANCE: LazyLock<String> = LazyLock::new(|| {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
});

/// A hop of this process, done now.
pub fn hop(service: &str, step: Step, received_at: DateTime<Utc>) -> Hop {
    Hop {
        service: service.to_owned(),
        step: step.as_str().to_owned(),
        instance: INSTANCE.clone(),
        pid: std::process::id(),
        received_at,
        handled_at: Utc::now(),
    }
}

/// `body` with `hop` appended to its `hops`. A body that is not a JSON object (a poison
/// message) stays as it was: there is nowhere to put a hop, and it must be kept as it came.
///
/// The common case, a body without hops yet, is spliced as text, so the relay still sends what
/// the service staged, byte for byte, with only the hop list in front.
pub fn add_hop<'a>(body: &'a [u8], hop: &Hop) -> Cow<'a, [u8]> {
    let Ok(hop_json) = serde_json::to_string(hop) else {
        return Cow::Borrowed(body);
    };
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    let mentions_hops = body.windows(6).any(|w| w == b"\"hops\"");
    if let Some(start) = start.filter(|&i| body[i] == b'{' && !mentions_hops) {
        let rest = &body[start + 1..];
        let empty = rest.iter().all(|b| b.is_ascii_whitespace() || *b == b'}');
        let mut out = Vec::with_capacity(body.len() + hop_json.len() + 12);
        out.extend_from_slice(b"{\"hops\": [");
        out.extend_from_slice(hop_json.as_bytes());
        out.extend_from_slice(if empty { b"]" } else { b"], " });
        out.extend_from_slice(rest);
        // Only if it still reads as JSON: a body that merely starts with `{` may be garbage.
        if serde_json::from_slice::<serde::de::IgnoredAny>(&out).is_ok() {
            return Cow::Owned(out);
        }
        return Cow::Borrowed(body);
    }
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice(body) else {
        return Cow::Borrowed(body);
    };
    let Ok(hop_value) = serde_json::to_value(hop) else {
        return Cow::Borrowed(body);
    };
    match object
        .entry("hops")
        .or_insert_with(|| serde_json::Value::Array(Vec::new()))
    {
        serde_json::Value::Array(hops) => hops.push(hop_value),
        // Someone else's `hops`: left alone.
        _ => return Cow::Borrowed(body),
    }
    serde_json::to_vec(&object).map_or(Cow::Borrowed(body), Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hops_of(body: &[u8]) -> Vec<Hop> {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap();
        serde_json::from_value(value["hops"].clone()).unwrap()
    }

    #[test]
    fn hops_are_appended_in_order_and_the_rest_is_kept() {
        let staged =
            br#"{"id": "e-1", "data": {"name": "Anna \"hops\" Ivanova"}, "type": "OrderPacked"}"#;
        let first = hop("tracker", Step::Published, Utc::now());
        let once = add_hop(staged, &first);
        // Spliced: the staged text follows the hop list unchanged... except that a body which
        // mentions "hops" anywhere takes the careful path, which must give the same hops.
        let plain = br#"{"id": "e-1", "type": "OrderPacked"}"#;
        let spliced = add_hop(plain, &first);
        assert!(spliced.ends_with(br#""id": "e-1", "type": "OrderPacked"}"#));
        assert_eq!(hops_of(&spliced), vec![first.clone()]);
        let second = hop("legacy-sync", Step::Retried, Utc::now());
        let twice = add_hop(&once, &second);
        assert_eq!(hops_of(&twice), vec![first, second]);
        let value: serde_json::Value = serde_json::from_slice(&twice).unwrap();
        assert_eq!(value["data"]["name"], "Anna \"hops\" Ivanova");
        assert_eq!(hops_of(&twice)[1].pid, std::process::id());
    }

    #[test]
    fn a_body_that_is_no_json_object_stays_as_it_came() {
        let h = hop("tracker-intake", Step::DeadLettered, Utc::now());
        for body in [
            &b"{ this is not json"[..],
            b"[1, 2]",
            b"",
            b"\"text\"",
            br#"{"hops": 5}"#,
        ] {
            assert_eq!(
                &*add_hop(body, &h),
                body,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(hops_of(&add_hop(b"{}", &h)), vec![h]);
    }
}
