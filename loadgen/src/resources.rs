//! What the run costs: the services' resident memory, read from their `/metrics`, and the
//! load generator's own CPU time, so a report can tell whether the generator kept up.

use std::time::Duration;

/// The value of `process_resident_memory_bytes` in a Prometheus text exposition.
pub fn resident_bytes(exposition: &str) -> Option<u64> {
    exposition.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        let name = parts.next()?;
        // `name value` or `name{labels} value`; comment lines start with `#`.
        let bare = name.split('{').next()?;
        if bare != "process_resident_memory_bytes" {
            return None;
        }
        let value: f64 = parts.next()?.parse().ok()?;
        (value >= 0.0).then_some(value as u64)
    })
}

/// Final and peak resident memory of one service, from samples taken during the run.
#[derive(Debug, Clone, Default)]
pub struct MemoryTrack {
    pub name: String,
    pub url: String,
    pub last: Option<u64>,
    pub peak: Option<u64>,
    pub failures: u64,
}

impl MemoryTrack {
    pub fn new(name: &str, url: &str) -> Self {
        MemoryTrack {
            name: name.to_owned(),
            url: url.to_owned(),
            ..MemoryTrack::default()
        }
    }

    pub fn observe(&mut self, bytes: Option<u64>) {
        match bytes {
            Some(bytes) => {
                self.last = Some(bytes);
                self.peak = Some(self.peak.map_or(bytes, |p| p.max(bytes)));
            }
            None => self.failures += 1,
        }
    }

    pub async fn sample(&mut self, client: &reqwest::Client) {
        let bytes = async {
            let response = client
                .get(&self.url)
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .ok()?;
            resident_bytes(&response.text().await.ok()?)
        }
        .await;
        self.observe(bytes);
    }
}

/// `123456789` bytes as `117.7 MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat`.
pub fn own_cpu_seconds() -> Option<f64> {
    cpu_seconds_from_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// Fields 14 and 15 of a `/proc/PID/stat` line, in clock ticks of 1/100 s (`USER_HZ`, which
/// Linux fixes at 100 on every architecture we run on).
fn cpu_seconds_from_stat(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces, so count from its closing parenthesis.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_ticks_after_the_command_name() {
        let stat = "4242 (load gen) R 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(cpu_seconds_from_stat(stat), Some(3.0));
        assert!(own_cpu_seconds().is_some());
    }

    #[test]
    fn finds_the_gauge_among_others() {
        let text = "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
                    # TYPE process_resident_memory_bytes gauge\n\
                    http_requests_total{route=\"/x\"} 12\n\
                    process_resident_memory_bytes 4.2e7\n";
        assert_eq!(resident_bytes(text), Some(42_000_000));
        assert_eq!(
            resident_bytes("process_resident_memory_bytes 1024"),
            Some(1024)
        );
        assert_eq!(resident_bytes("other 1\n"), None);
        assert_eq!(
            resident_bytes("process_resident_memory_bytes_total 5\n"),
            None
        );
    }

    #[test]
    fn tracks_last_and_peak() {
        let mut track = MemoryTrack::new("tracker", "http://127.0.0.1:8081/metrics");
        track.observe(Some(10));
        track.observe(Some(30));
        track.observe(None);
        track.observe(Some(20));
        assert_eq!(
            (track.last, track.peak, track.failures),
            (Some(20), Some(30), 1)
        );
        assert_eq!(mib(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}
