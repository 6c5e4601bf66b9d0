//! What keeps a run bounded and on this machine: every target must be a loopback address, and
//! durations are given explicitly.

use std::{net::IpAddr, time::Duration};

/// Checks that `url` (http, amqp or postgres) names a loopback host; returns it unchanged.
/// The load generator is for servers on this machine only, so anything else is refused before
/// a single request is sent.
pub fn loopback_url(url: &str) -> Result<String, String> {
    let host = host_of(url).ok_or_else(|| format!("{url}: cannot find a host in this URL"))?;
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(url.to_owned())
    } else {
        Err(format!(
            "{url}: the load generator only targets loopback addresses (127.0.0.0/8, ::1, localhost), not {host}"
        ))
    }
}

/// The host part of `scheme://[user[:pass]@]host[:port][/...]`.
fn host_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        // [::1]:5432
        &host_port[..=host_port.find(']')?]
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// `250ms`, `10s`, `5m`, `1h`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text}: expected a duration such as 500ms, 10s, 5m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("{text}: unknown unit {other} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_pass() {
        for url in [
            "http://127.0.0.1:8081",
            "http://localhost:8081/metrics",
            "amqp://guest:guest@127.0.0.1:55674/%2f",
            "postgres://postgres@127.0.0.1:55434/legacy",
            "postgres://u:p@[::1]:5432/legacy",
            "http://127.8.9.10",
        ] {
            assert_eq!(loopback_url(url).as_deref(), Ok(url), "{url}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for url in [
            "http://10.0.0.5:8081",
            "http://192.168.1.2",
            "amqp://guest:guest@rabbit.example:5672/%2f",
            "postgres://postgres@8.8.8.8/legacy",
            "http://localhost.example.com",
            "127.0.0.1:8081",
            "http://",
        ] {
            assert!(loopback_url(url).is_err(), "{url}");
        }
    }

    #[test]
    fn a_password_with_an_at_sign_does_not_fool_the_check() {
        assert!(loopback_url("postgres://u:p@127.0.0.1@db.example/legacy").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
