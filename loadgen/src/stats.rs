//! Latency samples and their percentiles, computed here so nothing hides how.

use std::{collections::BTreeMap, fmt, time::Duration};

/// The nearest-rank percentile of `sorted` (ascending): the smallest sample such that at least
/// `p` percent of the samples are at or below it. `None` for no samples.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    // Rank is 1-based; p = 0 means the minimum.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Latencies of one kind of request, in microseconds.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    micros: Vec<u64>,
}

impl Latencies {
    pub fn record(&mut self, elapsed: Duration) {
        self.micros
            .push(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn extend(&mut self, other: Latencies) {
        self.micros.extend(other.micros);
    }

    pub fn len(&self) -> usize {
        self.micros.len()
    }

    pub fn summary(&self) -> Summary {
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        Summary::of_sorted(&sorted)
    }
}

/// Count and percentiles of a set of samples, in whatever unit they were recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub count: usize,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

impl Summary {
    pub fn of_sorted(sorted: &[u64]) -> Summary {
        Summary {
            count: sorted.len(),
            p50: percentile(sorted, 50.0).unwrap_or(0),
            p99: percentile(sorted, 99.0).unwrap_or(0),
            max: sorted.last().copied().unwrap_or(0),
        }
    }

    pub fn of_unsorted(mut samples: Vec<u64>) -> Summary {
        samples.sort_unstable();
        Summary::of_sorted(&samples)
    }
}

/// Microseconds shown as milliseconds with three decimals.
pub struct Millis(pub u64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03} ms", self.0 / 1000, self.0 % 1000)
    }
}

/// Counts by label, such as `tap 409` or `poll transport`.
#[derive(Debug, Default, Clone)]
pub struct Counts(BTreeMap<String, u64>);

impl Counts {
    pub fn add(&mut self, label: impl Into<String>) {
        *self.0.entry(label.into()).or_default() += 1;
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_on_a_hundred_samples() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&samples, 50.0), Some(50));
        assert_eq!(percentile(&samples, 99.0), Some(99));
        assert_eq!(percentile(&samples, 99.9), Some(100));
        assert_eq!(percentile(&samples, 100.0), Some(100));
        assert_eq!(percentile(&samples, 0.0), Some(1));
    }

    #[test]
    fn small_sets_round_up_to_a_real_sample() {
        assert_eq!(percentile(&[7], 50.0), Some(7));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        // Two samples: p50 is the lower one (rank 1), p99 the upper one (rank 2).
        assert_eq!(percentile(&[3, 9], 50.0), Some(3));
        assert_eq!(percentile(&[3, 9], 99.0), Some(9));
        assert_eq!(percentile(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99.0), Some(10));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn out_of_range_percentiles_clamp() {
        assert_eq!(percentile(&[1, 2, 3], -5.0), Some(1));
        assert_eq!(percentile(&[1, 2, 3], 250.0), Some(3));
    }

    #[test]
    fn summaries_sort_their_samples() {
        let summary = Summary::of_unsorted(vec![5, 1, 4, 2, 3]);
        assert_eq!(
            summary,
            Summary {
                count: 5,
                p50: 3,
                p99: 5,
                max: 5
            }
        );
        let mut latencies = Latencies::default();
        latencies.record(Duration::from_micros(1500));
        latencies.record(Duration::from_millis(3));
        assert_eq!(latencies.summary().max, 3000);
        assert_eq!(Summary::of_unsorted(Vec::new()).count, 0);
    }

    #[test]
    fn millis_keep_the_microseconds() {
        assert_eq!(Millis(1234).to_string(), "1.234 ms");
        assert_eq!(Millis(7).to_string(), "0.007 ms");
    }

    #[test]
    fn counts_add_up_by_label() {
        let mut a = Counts::default();
        a.add("tap 409");
        a.add("tap 409");
        a.add("poll 500");
        let all: Vec<_> = a.iter().collect();
        assert_eq!(all, vec![("poll 500", 1), ("tap 409", 2)]);
        assert_eq!(a.total(), 3);
    }
}
