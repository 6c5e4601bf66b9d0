//! JSON logs with a W3C trace id on every line.
//!
//! A process starts inside a root span that carries a trace id of its own, so even start-up lines
//! have one; every HTTP request and every consumed message opens a span with the trace id it
//! arrived with (or a new one). The log lines list all open spans, so the innermost trace id is
//! always there. The trace context also travels in a task-local, which is how the outbox stamps
//! `traceparent` on the events a request causes without threading it through every call.

use std::fmt;

use rand::RngCore;
use tracing_subscriber::{
    EnvFilter, fmt as layer_fmt, layer::SubscriberExt, util::SubscriberInitExt,
};

/// Installs the JSON subscriber. `RUST_LOG` filters as usual; the default is `info`.
/// Calling it twice (as tests do) leaves the first subscriber in place.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = layer_fmt::layer()
        .json()
        .with_current_span(false)
        .with_span_list(true)
        .with_target(true);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .try_init();
}

/// A W3C trace context: `00-<trace id>-<span id>-<flags>`.
#[derive(Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    sampled: bool,
}

impl TraceContext {
    /// A new trace.
    pub fn new_root() -> Self {
        let mut rng = rand::rng();
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        rng.fill_bytes(&mut trace_id);
        rng.fill_bytes(&mut span_id);
        TraceContext {
            trace_id,
            span_id,
            sampled: true,
        }
    }

    /// Parses a `traceparent` header; `None` for anything malformed, as the spec asks a
    /// receiver to start a new trace then rather than fail the request.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        if version.len() != 2 || version == "ff" || trace.len() != 32 || span.len() != 16 {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        hex::decode_to_slice(trace, &mut trace_id).ok()?;
        hex::decode_to_slice(span, &mut span_id).ok()?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        let flags = u8::from_str_radix(flags.get(..2)?, 16).ok()?;
        Some(TraceContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The same trace, a new span: what a service passes on downstream.
    pub fn child(&self) -> Self {
        let mut span_id = [0u8; 8];
        rand::rng().fill_bytes(&mut span_id);
        TraceContext {
            span_id,
            ..self.clone()
        }
    }

    pub fn trace_id(&self) -> String {
        hex::encode(self.trace_id)
    }

    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.span_id),
            u8::from(self.sampled)
        )
    }

    /// Runs `future` with this context as the current one.
    pub async fn scope<F: Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())
    }
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// The trace id of the current task's trace, if it runs inside one (a problem body quotes it).
pub fn current_trace_id() -> Option<String> {
    CURRENT.try_with(TraceContext::trace_id).ok()
}

/// The `traceparent` to stamp on whatever the current task sends, if it runs inside a trace.
pub fn current_traceparent() -> Option<String> {
    CURRENT.try_with(|ctx| ctx.child().traceparent()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_a_traceparent() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = TraceContext::parse(header).expect("valid header");
        assert_eq!(ctx.traceparent(), header);
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = ctx.child();
        assert_eq!(child.trace_id(), ctx.trace_id());
        assert_ne!(child.traceparent(), header);
    }

    #[test]
    fn rejects_malformed_headers() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::parse(bad).is_none(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_current_context_is_task_local() {
        assert!(current_traceparent().is_none());
        let ctx = TraceContext::new_root();
        let trace_id = ctx.trace_id();
        let inside = ctx.scope(async { current_traceparent() }).await;
        assert!(inside.expect("inside a scope").contains(&trace_id));
    }
}
