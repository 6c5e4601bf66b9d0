//! Prometheus metrics. Every crate registers its metrics in the default registry once per
//! process (through `LazyLock` statics), so several apps in one test process share them.

use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, TextEncoder,
    register_histogram_vec, register_int_counter_vec, register_int_gauge,
};

/// Registers `metric` or panics at start-up: a duplicate metric name is a programming error
/// that would otherwise silently drop the metric.
fn must<T>(metric: prometheus::Result<T>) -> T {
    match metric {
        Ok(m) => m,
        Err(e) => panic!("metric registration failed: {e}"),
    }
}

pub static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    must(register_int_counter_vec!(
        Opts::new("http_requests_total", "HTTP requests by route and status."),
        &["method", "route", "status"]
    ))
});

pub static HTTP_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    must(register_histogram_vec!(
        HistogramOpts::new("http_request_duration_seconds", "HTTP request latency.").buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5
        ]),
        &["method", "route"]
    ))
});

static RESIDENT_MEMORY: LazyLock<IntGauge> = LazyLock::new(|| {
    must(register_int_gauge!(
        "process_resident_memory_bytes",
        "Resident memory of this process, read from /proc at scrape time."
    ))
});

/// Registers a counter vector in the default registry.
pub fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    must(register_int_counter_vec!(Opts::new(name, help), labels))
}

/// Registers a histogram vector with latency buckets from 1 ms to 10 s.
pub fn histogram_vec(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    must(register_histogram_vec!(
        HistogramOpts::new(name, help).buckets(vec![
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0
        ]),
        labels
    ))
}

/// Registers a histogram vector with explicit buckets.
pub fn histogram_vec_with(
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    must(register_histogram_vec!(
        HistogramOpts::new(name, help).buckets(buckets),
        labels
    ))
}

/// Registers a gauge vector.
pub fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> prometheus::IntGaugeVec {
    must(prometheus::register_int_gauge_vec!(
        Opts::new(name, help),
        labels
    ))
}

/// Registers a gauge.
pub fn gauge(name: &str, help: &str) -> IntGauge {
    must(register_int_gauge!(name, help))
}

/// Resident set size of this process in bytes (Linux), or `None` elsewhere.
pub fn resident_memory_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The text exposition of every registered metric.
pub fn render() -> String {
    if let Some(rss) = resident_memory_bytes() {
        RESIDENT_MEMORY.set(rss);
    }
    let mut buffer = Vec::new();
    let encoder = TextEncoder::new();
    if let Err(e) = encoder.encode(&prometheus::gather(), &mut buffer) {
        tracing::error!(error = %e, "cannot encode metrics");
    }
    String::from_utf8(buffer).unwrap_or_default()
}

/// Registers a counter.
pub fn counter(name: &str, help: &str) -> prometheus::IntCounter {
    must(prometheus::register_int_counter!(name, help))
}
