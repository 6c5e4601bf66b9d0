//! Per-service HTTP figures for the operations section: requests per endpoint with p50, p90
//! and p99 latency and the error rate, read from each service's `/metrics` (and the web's own
//! registry), counted since each process started.

use access::Permission;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::{
    errors::{PageError, html},
    session::{Csrf, StaffViewer},
};

use super::{
    AppState,
    ops::{OpsHeader, require},
    ops_bus::SERVICES,
    ops_metrics::{self, Sample, latency},
    with_csrf,
};

struct EndpointLine {
    method: String,
    route: String,
    requests: u64,
    p50: String,
    p90: String,
    p99: String,
    /// 5xx answers, as a share of all.
    errors: String,
    /// 4xx answers (refused requests: the caller's doing).
    refused: String,
    /// Any 5xx at all: the row is marked.
    failing: bool,
}

struct ServiceFigures {
    title: &'static str,
    problem: Option<String>,
    endpoints: Vec<EndpointLine>,
}

#[derive(Template)]
#[template(path = "ops_services.html")]
struct ServicesPage {
    t: &'static crate::i18n::Text,
    header: OpsHeader,
    services: Vec<ServiceFigures>,
}

/// `GET /ops/services`
pub async fn services_page(
    viewer: StaffViewer,
    state: web::Data<AppState>,
    csrf: Csrf,
) -> Result<HttpResponse, PageError> {
    require(&viewer, Permission::OperationsRead)?;
    let mut services = Vec::with_capacity(SERVICES.len() + 1);
    services.push(ServiceFigures {
        title: "Web",
        problem: None,
        endpoints: endpoints(&ops_metrics::parse(&service_kit::metrics::render())),
    });
    for (service, title) in SERVICES {
        services.push(match state.upstream.metrics(service).await {
            Ok(text) => ServiceFigures {
                title,
                problem: None,
                endpoints: endpoints(&ops_metrics::parse(&text)),
            },
            Err(e) => ServiceFigures {
                title,
                problem: Some(e.to_string()),
                endpoints: Vec::new(),
            },
        });
    }
    let page = ServicesPage {
        t: crate::i18n::text(),
        header: OpsHeader::new(&viewer, &csrf, "services"),
        services,
    };
    Ok(with_csrf(html(&page)?, &csrf))
}

/// One line per (method, route) that was asked, busiest first.
fn endpoints(samples: &[Sample]) -> Vec<EndpointLine> {
    let latencies = ops_metrics::histograms(
        samples,
        "http_request_duration_seconds",
        &["method", "route"],
    );
    let mut lines: Vec<EndpointLine> = latencies
        .into_iter()
        .filter(|(_, h)| h.count > 0.0)
        .map(|(key, histogram)| {
            let (method, route) = (key[0].clone(), key[1].clone());
            // Folded from +0: an empty f64 sum is -0, which prints as "-0.0 %".
            let count_where = |status: fn(&str) -> bool| -> f64 {
                samples
                    .iter()
                    .filter(|s| s.name == "http_requests_total")
                    .filter(|s| s.label("method") == method && s.label("route") == route)
                    .filter(|s| status(s.label("status")))
                    .fold(0.0, |sum, s| sum + s.value)
            };
            let all = count_where(|_| true).max(histogram.count);
            let errors = count_where(|s| s.starts_with('5'));
            let refused = count_where(|s| s.starts_with('4'));
            let share = |n: f64| format!("{:.1} %", if all > 0.0 { 100.0 * n / all } else { 0.0 });
            EndpointLine {
                requests: all as u64,
                p50: latency(histogram.quantile(0.5)),
                p90: latency(histogram.quantile(0.9)),
                p99: latency(histogram.quantile(0.99)),
                errors: share(errors),
                refused: share(refused),
                failing: errors > 0.0,
                method,
                route,
            }
        })
        .collect();
    lines.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.route.cmp(&b.route)));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_endpoint_gets_its_quantiles_and_error_rate() {
        let text = r#"
http_request_duration_seconds_bucket{method="GET",route="/a",le="0.01"} 8
http_request_duration_seconds_bucket{method="GET",route="/a",le="0.1"} 10
http_request_duration_seconds_bucket{method="GET",route="/a",le="+Inf"} 10
http_request_duration_seconds_count{method="GET",route="/a"} 10
http_request_duration_seconds_sum{method="GET",route="/a"} 0.2
http_requests_total{method="GET",route="/a",status="200"} 7
http_requests_total{method="GET",route="/a",status="404"} 2
http_requests_total{method="GET",route="/a",status="500"} 1
http_request_duration_seconds_bucket{method="POST",route="/b",le="0.01"} 1
http_request_duration_seconds_bucket{method="POST",route="/b",le="+Inf"} 1
http_request_duration_seconds_count{method="POST",route="/b"} 1
http_requests_total{method="POST",route="/b",status="201"} 1
"#;
        let lines = endpoints(&ops_metrics::parse(text));
        assert_eq!(lines.len(), 2);
        let a = &lines[0];
        assert_eq!(
            (a.method.as_str(), a.route.as_str(), a.requests),
            ("GET", "/a", 10)
        );
        assert_eq!(a.p90, "55.0 ms");
        assert_eq!(a.errors, "10.0 %");
        assert_eq!(a.refused, "20.0 %");
        assert!(a.failing);
        assert!(!lines[1].failing);
        assert_eq!(lines[1].errors, "0.0 %");
    }
}
