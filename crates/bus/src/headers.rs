//! Reading and writing the message headers the consumer and dead-letter tools agree on.

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

/// How many times the message has failed so far.
pub const ATTEMPT: &str = "x-attempt";
/// The routing key the event was first published with; retries and replays travel through the
/// default exchange, which changes the routing key.
pub const ORIGINAL_ROUTING_KEY: &str = "x-original-routing-key";
/// The envelope's subject (the order id, or the user or device an event is about): what each
/// consumer's consistent-hash exchange hashes on, so all of an order's events land in one
/// partition. Every publisher sets it (`topology::with_subject`).
pub const SUBJECT: &str = "x-subject";
pub const ERROR: &str = "x-error";
pub const ERROR_CHAIN: &str = "x-error-chain";
pub const ATTEMPTS: &str = "x-attempts";
pub const FAILED_AT: &str = "x-failed-at";
pub const CONSUMER: &str = "x-consumer";
/// When the message first failed, in milliseconds since the Unix epoch: an event waiting for
/// an earlier one is retried until this is `max_wait_ms` old, however many attempts that takes.
pub const FIRST_FAILED_AT: &str = "x-first-failed-at";
/// The RabbitMQ user that first published a message a consumer re-published to its retry or
/// dead-letter queue (as its own user). Believed only on such a message (`publishers`).
pub const PUBLISHED_BY: &str = "x-published-by";

pub fn get_str(headers: Option<&FieldTable>, key: &str) -> Option<String> {
    match headers?.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

pub fn get_u32(headers: Option<&FieldTable>, key: &str) -> Option<u32> {
    u32::try_from(get_i64(headers, key)?).ok()
}

pub fn get_i64(headers: Option<&FieldTable>, key: &str) -> Option<i64> {
    Some(match headers?.inner().get(key)? {
        AMQPValue::LongLongInt(v) => *v,
        AMQPValue::LongInt(v) => i64::from(*v),
        AMQPValue::LongUInt(v) => i64::from(*v),
        AMQPValue::ShortInt(v) => i64::from(*v),
        AMQPValue::ShortUInt(v) => i64::from(*v),
        _ => return None,
    })
}

pub fn set_str(headers: &mut FieldTable, key: &str, value: &str) {
    headers.insert(
        ShortString::from(key),
        AMQPValue::LongString(LongString::from(value)),
    );
}

pub fn set_u32(headers: &mut FieldTable, key: &str, value: u32) {
    set_i64(headers, key, i64::from(value));
}

pub fn set_i64(headers: &mut FieldTable, key: &str, value: i64) {
    headers.insert(ShortString::from(key), AMQPValue::LongLongInt(value));
}

/// The headers minus `key`.
pub fn without(headers: &FieldTable, key: &str) -> FieldTable {
    let mut out = FieldTable::default();
    for (k, value) in headers.inner() {
        if k.as_str() != key {
            out.insert(k.clone(), value.clone());
        }
    }
    out
}

/// The headers minus RabbitMQ's own dead-lettering history, which would otherwise grow with
/// every retry hop.
pub fn without_broker_history(headers: Option<&FieldTable>) -> FieldTable {
    let mut out = FieldTable::default();
    if let Some(headers) = headers {
        for (key, value) in headers.inner() {
            if !key.as_str().starts_with("x-death")
                && !key.as_str().starts_with("x-first-death")
                && !key.as_str().starts_with("x-last-death")
            {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    out
}
