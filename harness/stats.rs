//! Statistics for A/B timing: medians and percentiles, the ratio of medians with a seeded
//! bootstrap confidence interval, a verdict against the measured noise floor, and geomeans.

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use statrs::statistics::{Data, OrderStatistics};

pub fn median(xs: &[f64]) -> f64 {
    percentile(xs, 50)
}

/// Percentile `p` (0..=100), with statrs' interpolation; NaN for an empty sample.
pub fn percentile(xs: &[f64], p: usize) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    Data::new(xs.to_vec()).percentile(p)
}

/// Median absolute deviation over the median: the relative run-to-run spread of one side.
pub fn rel_mad(xs: &[f64]) -> f64 {
    let m = median(xs);
    let dev: Vec<f64> = xs.iter().map(|x| (x - m).abs()).collect();
    1.4826 * median(&dev) / m
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Faster,
    Same,
    Slower,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Faster => "faster",
            Verdict::Same => "same",
            Verdict::Slower => "slower",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// median(baseline) / median(candidate): above 1 means the candidate is faster.
    pub speedup: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// The relative spread below which a difference is not called one.
    pub noise: f64,
    pub verdict: Verdict,
}

pub const BOOTSTRAP_RESAMPLES: usize = 2000;
/// Smallest noise floor: clock and placement effects on these cards are about this large even
/// when both sides' samples look tight.
pub const MIN_NOISE: f64 = 0.01;

/// Compares paired samples (one per trial and side). The CI resamples trials with replacement,
/// keeping each trial's pair together, and takes the 2.5th and 97.5th percentiles of the ratio of
/// medians. The verdict needs the whole CI beyond 1 and the speedup beyond the noise floor
/// (the larger of the two sides' relative MADs and MIN_NOISE).
pub fn compare(base: &[f64], cand: &[f64], seed: u64) -> Comparison {
    let speedup = median(base) / median(cand);
    let n = base.len().min(cand.len());
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ratios = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
    let (mut rb, mut rc) = (vec![0.0; n], vec![0.0; n]);
    for _ in 0..BOOTSTRAP_RESAMPLES {
        for k in 0..n {
            let i = rng.random_range(0..n);
            rb[k] = base[i];
            rc[k] = cand[i];
        }
        ratios.push(median(&rb) / median(&rc));
    }
    let (ci_low, ci_high) = if n > 0 {
        (quantile(&ratios, 0.025), quantile(&ratios, 0.975))
    } else {
        (f64::NAN, f64::NAN)
    };
    let noise = rel_mad(base).max(rel_mad(cand)).max(MIN_NOISE);
    let verdict = if ci_low > 1.0 && speedup > 1.0 + noise {
        Verdict::Faster
    } else if ci_high < 1.0 && speedup < 1.0 - noise {
        Verdict::Slower
    } else {
        Verdict::Same
    };
    Comparison {
        speedup,
        ci_low,
        ci_high,
        noise,
        verdict,
    }
}

/// Quantile q in [0, 1] (statrs' R-8 estimator); NaN for an empty sample.
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    Data::new(xs.to_vec()).quantile(q)
}

/// Equal-weight geometric mean; None for an empty list.
pub fn geomean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() || xs.iter().any(|x| !(*x > 0.0)) {
        return None;
    }
    Some((xs.iter().map(|x| x.ln()).sum::<f64>() / xs.len() as f64).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert!(median(&[]).is_nan());
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.0), 1.0);
        assert_eq!(quantile(&[5.0], 0.975), 5.0);
    }

    #[test]
    fn a_clear_speedup_is_faster_and_its_ci_brackets_it() {
        let base: Vec<f64> = (0..9).map(|i| 100.0 + i as f64 * 0.1).collect();
        let cand: Vec<f64> = (0..9).map(|i| 80.0 + i as f64 * 0.1).collect();
        let c = compare(&base, &cand, 1);
        assert!((c.speedup - 100.4 / 80.4).abs() < 1e-9);
        assert!(c.ci_low <= c.speedup && c.speedup <= c.ci_high);
        assert_eq!(c.verdict, Verdict::Faster);
        assert_eq!(compare(&cand, &base, 1).verdict, Verdict::Slower);
    }

    #[test]
    fn a_difference_inside_the_noise_is_the_same() {
        let base = [100.0, 103.0, 97.0, 101.0, 99.0, 104.0, 96.0];
        let cand = [99.5, 102.0, 98.0, 100.0, 98.5, 103.0, 97.0];
        assert_eq!(compare(&base, &cand, 3).verdict, Verdict::Same);
        // Half a percent apart with no spread is still under the 1% floor.
        assert_eq!(compare(&[100.0; 7], &[99.5; 7], 3).verdict, Verdict::Same);
    }

    #[test]
    fn geomean_is_equal_weight() {
        assert!((geomean(&[2.0, 0.5]).unwrap() - 1.0).abs() < 1e-12);
        assert!((geomean(&[1.1, 1.1, 1.1]).unwrap() - 1.1).abs() < 1e-12);
        assert_eq!(geomean(&[]), None);
        assert_eq!(geomean(&[1.0, f64::NAN]), None);
    }
}
