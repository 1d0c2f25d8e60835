//! Percentiles of a sample.

use serde::Serialize;

#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn summarize(mut values: Vec<f64>) -> Summary {
    if values.is_empty() {
        return Summary::default();
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| values[((values.len() as f64 - 1.0) * q).round() as usize];
    Summary {
        count: values.len(),
        p50: at(0.50),
        p95: at(0.95),
        p99: at(0.99),
        max: *values.last().unwrap(),
    }
}

/// The median of several runs' figures.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentiles() {
        let s = super::summarize((1..=100).map(f64::from).collect());
        assert_eq!((s.p50, s.p99, s.max), (51.0, 99.0, 100.0));
        assert_eq!(super::median(vec![3.0, 1.0, 2.0]), 2.0);
    }
}
