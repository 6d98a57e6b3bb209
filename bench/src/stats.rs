//! Percentiles of latency samples, by plain sorting (nearest-rank method).

use std::time::Duration;

use serde_json::{Value, json};

/// Summary of a set of latency samples, every figure in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// Summarises `samples` (in any order). An empty set gives all zeros.
    pub fn of(samples: &[Duration]) -> Summary {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let total: Duration = sorted.iter().sum();
        let mean = if sorted.is_empty() {
            0.0
        } else {
            micros(total) / sorted.len() as f64
        };
        Summary {
            count: sorted.len(),
            p50: micros(percentile(&sorted, 50.0)),
            p90: micros(percentile(&sorted, 90.0)),
            p99: micros(percentile(&sorted, 99.0)),
            mean,
            min: sorted.first().copied().map_or(0.0, micros),
            max: sorted.last().copied().map_or(0.0, micros),
        }
    }

    /// The summary as a JSON object (microseconds).
    pub fn to_json(self) -> Value {
        json!({
            "count": self.count,
            "p50_us": round2(self.p50),
            "p90_us": round2(self.p90),
            "p99_us": round2(self.p99),
            "mean_us": round2(self.mean),
            "min_us": round2(self.min),
            "max_us": round2(self.max),
        })
    }
}

/// The `p`th percentile (0 < p ≤ 100) of `sorted` by the nearest-rank method:
/// the smallest sample with at least p% of the samples at or below it.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A duration in microseconds.
pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A duration in milliseconds.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `x` rounded to two decimals, for the JSON report.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&samples, 50.0), Duration::from_micros(50));
        assert_eq!(percentile(&samples, 99.0), Duration::from_micros(99));
        assert_eq!(percentile(&samples, 100.0), Duration::from_micros(100));
        let s = Summary::of(&samples);
        assert_eq!(s.count, 100);
        assert!((s.mean - 50.5).abs() < 1e-9);
        assert_eq!(Summary::of(&[]).p50, 0.0);
    }
}
