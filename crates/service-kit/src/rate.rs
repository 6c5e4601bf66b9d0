//! A token bucket: at most `burst` at once, refilled at `per_second`. It lives in one
//! process, so with several instances the total is the sum of theirs; that is what it is for:
//! bounding the work one instance takes on, not counting a particular client.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use serde::Deserialize;

/// How fast a [`RateLimit`] refills and how much it holds.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct RateSettings {
    pub per_second: f64,
    pub burst: u32,
}

pub struct RateLimit {
    per_second: f64,
    burst: f64,
    state: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    pub fn new(settings: RateSettings) -> Self {
        let burst = f64::from(settings.burst.max(1));
        RateLimit {
            per_second: settings.per_second.max(0.0),
            burst,
            state: Mutex::new(Bucket {
                tokens: burst,
                at: Instant::now(),
            }),
        }
    }

    /// Takes one token, or says how long until one is there.
    pub fn take(&self) -> Result<(), Duration> {
        let Ok(mut bucket) = self.state.lock() else {
            // A panic while holding this lock cannot leave it inconsistent in a way that
            // matters more than refusing; refuse rather than let everything through.
            return Err(Duration::from_secs(1));
        };
        let now = Instant::now();
        let refilled = now.duration_since(bucket.at).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refilled).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        if self.per_second <= 0.0 {
            return Err(Duration::from_secs(60));
        }
        Err(Duration::from_secs_f64(
            ((1.0 - bucket.tokens) / self.per_second).min(3600.0),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_and_then_the_rate_holds() {
        // One token an hour: nothing refills while the test runs.
        let limit = RateLimit::new(RateSettings {
            per_second: 1.0 / 3600.0,
            burst: 3,
        });
        for _ in 0..3 {
            assert!(limit.take().is_ok());
        }
        let wait = limit.take().err().unwrap_or_default();
        assert!(wait > Duration::from_secs(3000), "{wait:?}");
    }
}
