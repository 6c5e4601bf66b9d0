//! Reading the services' `/metrics` (the Prometheus text format) for the operations pages:
//! samples, histograms by label, and quantiles the way Prometheus's `histogram_quantile`
//! estimates them. The figures count since each process started; there is no Prometheus
//! server behind the page.

use std::collections::BTreeMap;

/// One line of the exposition: `name{label="value",...} 12.5`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// Every sample of `text`; comments and lines that cannot be read are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    let (name_and_labels, value) = match line.find('{') {
        Some(open) => {
            let close = open + line[open..].find('}')?;
            (
                (&line[..open], Some(&line[open + 1..close])),
                &line[close + 1..],
            )
        }
        None => {
            let space = line.find(' ')?;
            ((&line[..space], None), &line[space..])
        }
    };
    let value = match value.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = name_and_labels;
    Some(Sample {
        name: name.to_owned(),
        labels: labels.map(parse_labels).unwrap_or_default(),
        value,
    })
}

/// `a="x",b="y \"quoted\""` into a map.
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim().trim_start_matches(',').trim().to_owned();
        let mut value = String::new();
        let mut chars = rest[eq + 2..].char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => break,
                },
                '"' => {
                    end = Some(eq + 2 + i + 1);
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(name, value);
        match end {
            Some(end) => rest = &rest[end..],
            None => break,
        }
    }
    labels
}

/// The value of a sample without labels, or the sum over all of its label sets.
pub fn total(samples: &[Sample], name: &str) -> Option<f64> {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .collect();
    // Folded from +0: an empty f64 sum is -0, which prints as "-0".
    (!matching.is_empty()).then(|| matching.iter().fold(0.0, |sum, v| sum + v))
}

/// A histogram's cumulative buckets (upper bound, count), its count and its sum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub buckets: Vec<(f64, f64)>,
    pub count: f64,
    pub sum: f64,
}

impl Histogram {
    /// The `q` quantile, interpolated linearly inside its bucket as `histogram_quantile`
    /// does; the largest finite bound when it falls in the `+Inf` bucket. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count <= 0.0 {
            return None;
        }
        let rank = q * self.count;
        let mut lower = (0.0, 0.0);
        for &(bound, cumulative) in &self.buckets {
            if cumulative >= rank {
                if bound.is_infinite() {
                    return Some(lower.0);
                }
                let in_bucket = cumulative - lower.1;
                let share = if in_bucket > 0.0 {
                    (rank - lower.1) / in_bucket
                } else {
                    1.0
                };
                return Some(lower.0 + (bound - lower.0) * share);
            }
            lower = (bound, cumulative);
        }
        Some(lower.0)
    }
}

/// The histograms called `name`, one per value of the labels `by` (in that order).
pub fn histograms(samples: &[Sample], name: &str, by: &[&str]) -> BTreeMap<Vec<String>, Histogram> {
    let mut out: BTreeMap<Vec<String>, Histogram> = BTreeMap::new();
    let key = |s: &Sample| by.iter().map(|l| s.label(l).to_owned()).collect::<Vec<_>>();
    for sample in samples {
        let Some(suffix) = sample.name.strip_prefix(name) else {
            continue;
        };
        let entry = out.entry(key(sample)).or_default();
        match suffix {
            "_bucket" => {
                let bound = match sample.label("le") {
                    "+Inf" => f64::INFINITY,
                    le => match le.parse() {
                        Ok(le) => le,
                        Err(_) => continue,
                    },
                };
                entry.buckets.push((bound, sample.value));
            }
            "_count" => entry.count = sample.value,
            "_sum" => entry.sum = sample.value,
            _ => {}
        }
    }
    for histogram in out.values_mut() {
        histogram
            .buckets
            .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    }
    out
}

/// Seconds as people read a latency: µs, ms or s.
pub fn latency(seconds: Option<f64>) -> String {
    match seconds {
        None => "–".to_owned(),
        Some(s) if s < 0.001 => format!("{:.0} µs", s * 1_000_000.0),
        Some(s) if s < 1.0 => format!("{:.1} ms", s * 1000.0),
        Some(s) => format!("{s:.2} s"),
    }
}

/// An age in seconds as people read it: 42 s, 3 min 5 s, 2 h 10 min.
pub fn age(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP http_request_duration_seconds HTTP request latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{method="GET",route="/api/v1/x",le="0.01"} 50
http_request_duration_seconds_bucket{method="GET",route="/api/v1/x",le="0.1"} 90
http_request_duration_seconds_bucket{method="GET",route="/api/v1/x",le="1"} 100
http_request_duration_seconds_bucket{method="GET",route="/api/v1/x",le="+Inf"} 100
http_request_duration_seconds_sum{method="GET",route="/api/v1/x"} 3.5
http_request_duration_seconds_count{method="GET",route="/api/v1/x"} 100
http_requests_total{method="GET",route="/api/v1/x",status="200"} 97
http_requests_total{method="GET",route="/api/v1/x",status="503"} 3
outbox_backlog 7
weird{note="a \"quoted\" \\ value",b="2"} 1
"#;

    #[test]
    fn samples_keep_their_labels() {
        let samples = parse(TEXT);
        assert_eq!(samples.len(), 10);
        assert_eq!(total(&samples, "outbox_backlog"), Some(7.0));
        assert_eq!(total(&samples, "http_requests_total"), Some(100.0));
        assert_eq!(total(&samples, "missing"), None);
        let weird = samples.iter().find(|s| s.name == "weird").unwrap();
        assert_eq!(weird.label("note"), r#"a "quoted" \ value"#);
        assert_eq!(weird.label("b"), "2");
    }

    #[test]
    fn quantiles_interpolate_inside_their_bucket() {
        let samples = parse(TEXT);
        let all = histograms(
            &samples,
            "http_request_duration_seconds",
            &["method", "route"],
        );
        let h = &all[&vec!["GET".to_owned(), "/api/v1/x".to_owned()]];
        assert_eq!(h.count, 100.0);
        // 50 of 100 at or under 10 ms: the median is the bucket's top.
        assert_eq!(h.quantile(0.5), Some(0.01));
        // The 90th falls at the top of (10 ms, 100 ms]; the 99th 90% into (100 ms, 1 s].
        assert!((h.quantile(0.9).unwrap() - 0.1).abs() < 1e-9);
        assert!((h.quantile(0.99).unwrap() - 0.91).abs() < 1e-9);
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn the_infinite_bucket_answers_with_the_largest_bound() {
        let h = Histogram {
            buckets: vec![(0.1, 1.0), (f64::INFINITY, 10.0)],
            count: 10.0,
            sum: 50.0,
        };
        assert_eq!(h.quantile(0.99), Some(0.1));
    }

    #[test]
    fn figures_read_as_people_read_them() {
        assert_eq!(latency(Some(0.0004)), "400 µs");
        assert_eq!(latency(Some(0.0123)), "12.3 ms");
        assert_eq!(latency(Some(2.5)), "2.50 s");
        assert_eq!(latency(None), "–");
        assert_eq!(age(42.4), "42 s");
        assert_eq!(age(185.0), "3 min 5 s");
        assert_eq!(age(7800.0), "2 h 10 min");
    }
}
