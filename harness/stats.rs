//! Statistics for A/B timing: medians and percentiles, paired per-trial log-ratios with a seeded
//! bootstrap confidence interval, a verdict against the measured noise floor, geomeans, and the
//! bootstrap interval of the headline geomean that the gate is decided on.
//!
//! Resampling draws from ChaCha8 (rand_chacha: its stream is fixed across crate versions) through
//! one reduction written here, so a recorded seed reproduces every interval exactly.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// NaN (no valid pair) is written to JSON as null and read back as NaN.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    /// exp(median over trials of ln(baseline / candidate)), the trials' A/B pairs kept
    /// together: above 1 means the candidate is faster.
    #[serde(deserialize_with = "crate::record::nan_if_null")]
    #[schemars(with = "Option<f64>")]
    pub speedup: f64,
    #[serde(deserialize_with = "crate::record::nan_if_null")]
    #[schemars(with = "Option<f64>")]
    pub ci_low: f64,
    #[serde(deserialize_with = "crate::record::nan_if_null")]
    #[schemars(with = "Option<f64>")]
    pub ci_high: f64,
    /// The relative spread below which a difference is not called one.
    #[serde(deserialize_with = "crate::record::nan_if_null")]
    #[schemars(with = "Option<f64>")]
    pub noise: f64,
    pub verdict: Verdict,
}

pub const BOOTSTRAP_RESAMPLES: usize = 2000;
/// Smallest noise floor: clock and placement effects on these cards are about this large even
/// when both sides' samples look tight.
pub const MIN_NOISE: f64 = 0.01;

/// Uniform index in 0..n from the generator (Lemire's multiply-shift; the bias is below 2^-40 for
/// the sizes here). Written out so the stream cannot change under a crate upgrade.
fn index(rng: &mut ChaCha8Rng, n: usize) -> usize {
    ((rng.next_u64() as u128 * n as u128) >> 64) as usize
}

/// Paired per-trial log-ratios ln(base_i / cand_i) (trial i's two samples were taken back to
/// back, ABBA); pairs with a non-positive or non-finite time are dropped.
pub fn log_ratios(base: &[f64], cand: &[f64]) -> Vec<f64> {
    base.iter()
        .zip(cand)
        .filter(|(b, c)| **b > 0.0 && **c > 0.0 && b.is_finite() && c.is_finite())
        .map(|(b, c)| (b / c).ln())
        .collect()
}

/// One bootstrap draw of a row: the median of its log-ratios resampled with replacement.
fn resampled_median(lr: &[f64], rng: &mut ChaCha8Rng, buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    buf.extend((0..lr.len()).map(|_| lr[index(rng, lr.len())]));
    median(buf)
}

/// Compares paired samples (one per trial and side). The speedup is exp(median of the paired
/// log-ratios); the 95% CI resamples trials with replacement. The verdict needs the whole CI
/// beyond 1 and the speedup beyond the noise floor (the larger of the two sides' relative MADs
/// and MIN_NOISE).
pub fn compare(base: &[f64], cand: &[f64], seed: u64) -> Comparison {
    let lr = log_ratios(base, cand);
    let noise = rel_mad(base).max(rel_mad(cand)).max(MIN_NOISE);
    if lr.is_empty() {
        return Comparison {
            speedup: f64::NAN,
            ci_low: f64::NAN,
            ci_high: f64::NAN,
            noise,
            verdict: Verdict::Same,
        };
    }
    let speedup = median(&lr).exp();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut buf = Vec::with_capacity(lr.len());
    let draws: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| resampled_median(&lr, &mut rng, &mut buf))
        .collect();
    let (ci_low, ci_high) = (quantile(&draws, 0.025).exp(), quantile(&draws, 0.975).exp());
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

/// The headline: the equal-weight geomean over rows of each row's paired speedup, with a 95%
/// bootstrap CI that resamples trials within every row (pairs kept) and recomputes the geomean.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Headline {
    pub geomean: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// The CI's confidence level (0.95).
    pub level: f64,
    pub resamples: usize,
    pub seed: u64,
}

/// None when there are no rows or a row has no valid pair.
pub fn headline(rows: &[Vec<f64>], seed: u64) -> Option<Headline> {
    if rows.is_empty() || rows.iter().any(|r| r.is_empty()) {
        return None;
    }
    let mean = |xs: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = xs.collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let geomean = mean(&mut rows.iter().map(|lr| median(lr))).exp();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut buf = Vec::new();
    let draws: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            mean(
                &mut rows
                    .iter()
                    .map(|lr| resampled_median(lr, &mut rng, &mut buf)),
            )
        })
        .collect();
    Some(Headline {
        geomean,
        ci_low: quantile(&draws, 0.025).exp(),
        ci_high: quantile(&draws, 0.975).exp(),
        level: 0.95,
        resamples: BOOTSTRAP_RESAMPLES,
        seed,
    })
}

/// median(now) / median(then) for samples of two separate runs (no pairs across runs: each set
/// is resampled on its own), with a 95% bootstrap CI: (point, low, high). NaN when either set
/// has no positive finite sample.
pub fn ratio_of_medians(then: &[f64], now: &[f64], seed: u64) -> (f64, f64, f64) {
    let ok = |xs: &[f64]| -> Vec<f64> {
        xs.iter()
            .copied()
            .filter(|x| x.is_finite() && *x > 0.0)
            .collect()
    };
    let (a, b) = (ok(then), ok(now));
    if a.is_empty() || b.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let point = median(&b) / median(&a);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut ba, mut bb) = (Vec::new(), Vec::new());
    let draws: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let ma = resampled_median(&a, &mut rng, &mut ba);
            let mb = resampled_median(&b, &mut rng, &mut bb);
            (mb / ma).ln()
        })
        .collect();
    (
        point,
        quantile(&draws, 0.025).exp(),
        quantile(&draws, 0.975).exp(),
    )
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
    if xs.is_empty()
        || xs
            .iter()
            .any(|x| x.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater))
    {
        return None;
    }
    Some((xs.iter().map(|x| x.ln()).sum::<f64>() / xs.len() as f64).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_of_medians_across_runs_has_a_ci_around_it() {
        let then: Vec<f64> = (0..11).map(|i| 100.0 + (i % 3) as f64 * 0.2).collect();
        let same: Vec<f64> = (0..11).map(|i| 100.1 + (i % 3) as f64 * 0.2).collect();
        let slow: Vec<f64> = then.iter().map(|x| x * 1.05).collect();
        let (p, lo, hi) = ratio_of_medians(&then, &same, 3);
        assert!(
            lo <= p && p <= hi && lo < 1.01 && hi > 0.999,
            "{p} {lo} {hi}"
        );
        let (p, lo, _) = ratio_of_medians(&then, &slow, 3);
        assert!((p - 1.05).abs() < 1e-9 && lo > 1.04, "{p} {lo}");
        assert!(ratio_of_medians(&[], &slow, 3).0.is_nan());
        assert_eq!(
            ratio_of_medians(&then, &slow, 3),
            ratio_of_medians(&then, &slow, 3)
        );
    }

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
        // The median of the paired ratios: trial 4's pair, 100.4 / 80.4.
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

    /// Synthetic A/A: both sides draw from one distribution (±0.5% jitter, a shared per-trial
    /// drift), 10 rows of 9 trials. The headline CI must contain 1, so a gate on its lower bound
    /// cannot pass noise, whatever the seed.
    #[test]
    fn a_a_samples_never_clear_the_headline_gate() {
        let mut g = ChaCha8Rng::seed_from_u64(7);
        let mut u = || (g.next_u64() >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
        for run in 0..20u64 {
            let rows: Vec<Vec<f64>> = (0..10)
                .map(|r| {
                    let t = 10.0 + r as f64;
                    let (b, c): (Vec<f64>, Vec<f64>) = (0..9)
                        .map(|_| {
                            let drift = 1.0 + 0.004 * u();
                            (
                                t * drift * (1.0 + 0.01 * u()),
                                t * drift * (1.0 + 0.01 * u()),
                            )
                        })
                        .unzip();
                    log_ratios(&b, &c)
                })
                .collect();
            let h = headline(&rows, run).unwrap();
            assert!(h.ci_low <= 1.0 && 1.0 <= h.ci_high, "run {run}: {h:?}");
            assert!((h.geomean - 1.0).abs() < 0.005, "run {run}: {h:?}");
        }
    }

    #[test]
    fn a_clear_two_percent_win_with_tight_samples_clears_it() {
        let rows: Vec<Vec<f64>> = (0..10)
            .map(|r| {
                let t = 10.0 + r as f64;
                let b: Vec<f64> = (0..9).map(|i| t * (1.0 + 0.001 * (i % 3) as f64)).collect();
                let c: Vec<f64> = (0..9)
                    .map(|i| t / 1.02 * (1.0 + 0.001 * ((i + 1) % 3) as f64))
                    .collect();
                log_ratios(&b, &c)
            })
            .collect();
        let h = headline(&rows, 1).unwrap();
        assert!(h.ci_low > 1.0, "{h:?}");
        assert!((h.geomean - 1.02).abs() < 0.003, "{h:?}");
    }

    #[test]
    fn recorded_seeds_reproduce_the_interval() {
        let rows = vec![log_ratios(
            &[10.0, 10.2, 9.9, 10.1, 10.0, 10.3, 9.8],
            &[9.9, 10.0, 10.0, 9.8, 10.1, 10.0, 9.9],
        )];
        assert_eq!(headline(&rows, 42), headline(&rows, 42));
        // The generator's stream is pinned: the first index of seed 0 never moves.
        let mut g = ChaCha8Rng::seed_from_u64(0);
        let first: Vec<usize> = (0..4).map(|_| index(&mut g, 1000)).collect();
        assert_eq!(first, vec![709, 465, 699, 60]);
    }

    #[test]
    fn geomean_is_equal_weight() {
        assert!((geomean(&[2.0, 0.5]).unwrap() - 1.0).abs() < 1e-12);
        assert!((geomean(&[1.1, 1.1, 1.1]).unwrap() - 1.1).abs() < 1e-12);
        assert_eq!(geomean(&[]), None);
        assert_eq!(geomean(&[1.0, f64::NAN]), None);
    }
}
