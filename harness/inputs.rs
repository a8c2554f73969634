//! Seeded, counter-based inputs. Element `i` of tensor `t` under seed `s` is a pure function of
//! (s, t, i): the GPU fill kernel (kernels/kpilot_support.cu, `kps_fill_random`) writes it, and the
//! CPU reference regenerates the very same value here without copying inputs back. Every trial
//! uses a new seed, so every trial sees new values.

use crate::dtype::DType;
use serde::{Deserialize, Serialize};

#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Per-tensor stream key: hash of the seed and tensor id, computed once per tensor.
#[inline]
pub fn stream_key(seed: u64, tensor_id: u32) -> u64 {
    mix64(seed ^ (tensor_id as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03))
}

/// How a tensor's values are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Dist {
    /// Uniform in [lo, hi), 24 random bits, computed in f32 without contraction.
    Uniform { lo: f64, hi: f64 },
    /// Integers in [lo, hi).
    Randint { lo: i64, hi: i64 },
    /// Every element the same value.
    Const { value: f64 },
    /// Element i of the storage holds i (positions that walk a cache in order).
    Arange,
    /// `uniform(lo, hi)`, except that every element whose storage index is a multiple of `every`
    /// holds `value`: an outlier at a fixed place (the first element of each contiguous group,
    /// when `every` is the group's size), for kernels that might take a shift or a pivot from it.
    Spike {
        lo: f64,
        hi: f64,
        every: u64,
        value: f64,
    },
}

impl Dist {
    /// Parses `uniform(lo, hi)`, `randint(lo, hi)`, `const(v)`, `arange()` or
    /// `spike(lo, hi, every, value)`.
    pub fn parse(s: &str) -> Result<Dist, String> {
        let s = s.trim();
        let open = s.find('(').ok_or_else(|| format!("distribution '{s}' must look like uniform(lo, hi), randint(lo, hi), const(v), arange() or spike(lo, hi, every, value)"))?;
        if !s.ends_with(')') {
            return Err(format!("distribution '{s}' is missing its closing ')'"));
        }
        let kind = &s[..open];
        let args: Vec<&str> = s[open + 1..s.len() - 1].split(',').map(str::trim).collect();
        let num = |a: &str| {
            a.parse::<f64>()
                .map_err(|_| format!("'{a}' in '{s}' is not a number"))
        };
        match (kind, args.as_slice()) {
            ("uniform", [a, b]) => {
                let (lo, hi) = (num(a)?, num(b)?);
                if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) || !lo.is_finite() || !hi.is_finite() {
                    return Err(format!("'{s}' needs finite lo < hi"));
                }
                Ok(Dist::Uniform { lo, hi })
            }
            ("randint", [a, b]) => {
                let (lo, hi) = (num(a)?, num(b)?);
                if lo.fract() != 0.0 || hi.fract() != 0.0 || lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
                    return Err(format!("'{s}' needs integers lo < hi"));
                }
                Ok(Dist::Randint { lo: lo as i64, hi: hi as i64 })
            }
            ("const", [a]) => Ok(Dist::Const { value: num(a)? }),
            ("spike", [a, b, e, v]) => {
                let (lo, hi, every, value) = (num(a)?, num(b)?, num(e)?, num(v)?);
                if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) || !lo.is_finite() || !hi.is_finite() {
                    return Err(format!("'{s}' needs finite lo < hi"));
                }
                // 2^53: every whole number up to it is exact in the f64 the C ABI carries.
                if !(1.0..=9_007_199_254_740_992.0).contains(&every) || every.fract() != 0.0 {
                    return Err(format!("'{s}' needs a whole number every >= 1 (the spike's period)"));
                }
                if !value.is_finite() {
                    return Err(format!("'{s}' needs a finite spike value"));
                }
                Ok(Dist::Spike { lo, hi, every: every as u64, value })
            }
            ("arange", [""]) => Ok(Dist::Arange),
            _ => Err(format!("unknown distribution '{s}': use uniform(lo, hi), randint(lo, hi), const(v), arange() or spike(lo, hi, every, value)")),
        }
    }

    /// Refuses a distribution whose values an integer tensor of `dtype` cannot hold, where the GPU
    /// fill (which wraps or saturates) and `value` here (which does not) would disagree: every
    /// value must lie in the dtype's range, and uniform bounds within +-2^24 (uniform is drawn in
    /// f32, whose integers are exact only that far). Float dtypes take any finite value (one too
    /// large for the dtype becomes inf on both sides alike).
    pub fn check_fits(&self, dtype: DType) -> Result<(), String> {
        let range = match dtype {
            DType::I32 => (i32::MIN as f64, i32::MAX as f64),
            // The largest f64 below 2^63, and -2^63: values that truncate into i64 exactly.
            DType::I64 => (-9_223_372_036_854_775_808.0, 9_223_372_036_854_774_784.0),
            _ => return Ok(()),
        };
        let within = |v: f64| v.trunc() >= range.0 && v.trunc() <= range.1;
        let f32_exact = |v: f64| v.abs() <= 16_777_216.0;
        let ok = match *self {
            Dist::Uniform { lo, hi } => f32_exact(lo) && f32_exact(hi),
            Dist::Randint { lo, hi } => within(lo as f64) && within((hi - 1) as f64),
            Dist::Const { value } => within(value),
            Dist::Spike { lo, hi, value, .. } => f32_exact(lo) && f32_exact(hi) && within(value),
            Dist::Arange => true,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "'{self}' does not fit {dtype}: values must lie in [{}, {}] (uniform bounds within +-2^24)",
                range.0, range.1
            ))
        }
    }

    /// (dist code, [a, b, c, d]) as `kps_fill_random` takes them.
    pub fn abi_args(&self) -> (i32, [f64; 4]) {
        match *self {
            Dist::Uniform { lo, hi } => (0, [lo, hi, 0.0, 0.0]),
            Dist::Randint { lo, hi } => (1, [lo as f64, hi as f64, 0.0, 0.0]),
            Dist::Const { value } => (2, [value, 0.0, 0.0, 0.0]),
            Dist::Arange => (3, [0.0; 4]),
            Dist::Spike {
                lo,
                hi,
                every,
                value,
            } => (4, [lo, hi, every as f64, value]),
        }
    }

    /// The value the fill kernel stores at element `i`, as f64, given the tensor's stream key.
    #[inline]
    pub fn value(&self, key: u64, i: u64, dtype: DType) -> f64 {
        let h = mix64(key.wrapping_add(i));
        match *self {
            Dist::Spike { value, every, .. } if i.is_multiple_of(every) => {
                Dist::Const { value }.value(key, i, dtype)
            }
            Dist::Spike { lo, hi, .. } => Dist::Uniform { lo, hi }.value(key, i, dtype),
            Dist::Uniform { lo, hi } => {
                let u = (h >> 40) as f32 * (1.0f32 / 16_777_216.0);
                let (fa, fb) = (lo as f32, hi as f32);
                let v = fa + (fb - fa) * u; // Rust never contracts into an FMA; the GPU uses __f*_rn.
                if dtype.is_float() {
                    dtype.round_f32(v)
                } else {
                    v.trunc() as f64
                }
            }
            Dist::Randint { lo, hi } => {
                let v = lo + ((h >> 32) % (hi - lo) as u64) as i64;
                if dtype.is_float() {
                    dtype.round_f32(v as f32)
                } else {
                    v as f64
                }
            }
            Dist::Const { value } => {
                if dtype.is_float() {
                    dtype.round_f32(value as f32)
                } else {
                    value.trunc()
                }
            }
            Dist::Arange => {
                if dtype.is_float() {
                    dtype.round_f32(i as f32)
                } else {
                    i as f64
                }
            }
        }
    }
}

impl std::fmt::Display for Dist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dist::Uniform { lo, hi } => write!(f, "uniform({lo}, {hi})"),
            Dist::Randint { lo, hi } => write!(f, "randint({lo}, {hi})"),
            Dist::Const { value } => write!(f, "const({value})"),
            Dist::Arange => write!(f, "arange()"),
            Dist::Spike {
                lo,
                hi,
                every,
                value,
            } => write!(f, "spike({lo}, {hi}, {every}, {value})"),
        }
    }
}

/// The seed of trial `trial` of a run seeded with `run_seed`; trial 0 is the correctness trial.
pub fn trial_seed(run_seed: u64, row: usize, trial: u32) -> u64 {
    mix64(run_seed ^ mix64((row as u64) << 32 | trial as u64))
}

/// The seed of buffer set `set` in a trial: set 0 keeps the trial's seed, every other set gets
/// its own, so no two sets of a sample hold the same inputs (nor the same answer).
pub fn set_seed(trial_seed: u64, set: usize) -> u64 {
    if set == 0 {
        trial_seed
    } else {
        mix64(trial_seed ^ mix64(0x5E7_0000_0000 | set as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_buffer_set_has_its_own_seed() {
        let t = trial_seed(7, 3, 1);
        assert_eq!(set_seed(t, 0), t, "set 0 keeps the trial's seed");
        let seeds: std::collections::HashSet<u64> = (0..10_000).map(|s| set_seed(t, s)).collect();
        assert_eq!(seeds.len(), 10_000);
        assert_ne!(set_seed(t, 1), set_seed(trial_seed(7, 3, 2), 1));
    }

    #[test]
    fn mix64_matches_splitmix64_reference_values() {
        // splitmix64 from state 0: the first output is mix64(0) (the increment is inside mix64).
        assert_eq!(mix64(0), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn uniform_values_are_in_range_and_vary() {
        let d = Dist::parse("uniform(-1, 1)").unwrap();
        let key = stream_key(7, 0);
        let vals: Vec<f64> = (0..1000).map(|i| d.value(key, i, DType::Bf16)).collect();
        assert!(vals.iter().all(|v| (-1.0..=1.0).contains(v)));
        let distinct: std::collections::HashSet<u64> = vals.iter().map(|v| v.to_bits()).collect();
        assert!(distinct.len() > 100);
        // A different seed gives different values.
        let other = d.value(stream_key(8, 0), 0, DType::Fp32);
        assert_ne!(other, d.value(key, 0, DType::Fp32));
    }

    #[test]
    fn randint_and_const() {
        let d = Dist::parse("randint(0, 2)").unwrap();
        let key = stream_key(1, 3);
        let vals: Vec<f64> = (0..200).map(|i| d.value(key, i, DType::I32)).collect();
        assert!(vals.iter().all(|&v| v == 0.0 || v == 1.0));
        assert!(vals.contains(&0.0) && vals.contains(&1.0));
        assert_eq!(
            Dist::parse("const(0.1)")
                .unwrap()
                .value(key, 5, DType::Bf16),
            half::bf16::from_f32(0.1).to_f64()
        );
    }

    #[test]
    fn spike_holds_its_value_at_every_period_and_uniform_elsewhere() {
        let d = Dist::parse("spike(-2, 2, 1000, 300)").unwrap();
        assert_eq!(d.to_string(), "spike(-2, 2, 1000, 300)");
        assert_eq!(d.abi_args(), (4, [-2.0, 2.0, 1000.0, 300.0]));
        let key = stream_key(5, 1);
        let u = Dist::parse("uniform(-2, 2)").unwrap();
        for i in 0..5000u64 {
            let v = d.value(key, i, DType::Fp16);
            if i % 1000 == 0 {
                assert_eq!(v, 300.0, "element {i}");
            } else {
                assert_eq!(v, u.value(key, i, DType::Fp16), "element {i}");
                assert!((-2.0..=2.0).contains(&v));
            }
        }
        // The spike rounds to the dtype as const does.
        let d = Dist::parse("spike(0, 1, 7, 0.1)").unwrap();
        assert_eq!(
            d.value(key, 14, DType::Bf16),
            half::bf16::from_f32(0.1).to_f64()
        );
        assert_eq!(d.value(key, 14, DType::I32), 0.0);
    }

    #[test]
    fn integer_tensors_refuse_values_they_cannot_hold() {
        let fits = |d: &str, t| Dist::parse(d).unwrap().check_fits(t);
        assert!(fits("const(3e9)", DType::I32)
            .unwrap_err()
            .contains("does not fit"));
        assert!(fits("const(3e9)", DType::I64).is_ok());
        assert!(fits("const(1e19)", DType::I64).is_err());
        assert!(fits("spike(0, 4, 7, 3e9)", DType::I32).is_err());
        assert!(fits("spike(0, 4, 7, 9)", DType::I32).is_ok());
        assert!(fits("uniform(0, 1e8)", DType::I64).is_err());
        assert!(fits("randint(0, 2147483648)", DType::I32).is_ok());
        assert!(fits("randint(0, 2147483649)", DType::I32).is_err());
        assert!(fits("arange()", DType::I32).is_ok());
        // Float tensors take any finite value: an overflow is inf on both sides.
        assert!(fits("const(1e6)", DType::Fp16).is_ok());
    }

    #[test]
    fn bad_spikes_say_why() {
        for (s, why) in [
            ("spike(1, 0, 4, 9)", "lo < hi"),
            ("spike(0, 1, 0, 9)", "every >= 1"),
            ("spike(0, 1, 2.5, 9)", "every >= 1"),
            ("spike(0, 1, -3, 9)", "every >= 1"),
            ("spike(0, 1, 4, inf)", "finite spike"),
            ("spike(0, 1, 4)", "unknown distribution"),
        ] {
            let e = Dist::parse(s).unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn bad_distributions_say_why() {
        assert!(Dist::parse("uniform(1, 0)")
            .unwrap_err()
            .contains("lo < hi"));
        assert!(Dist::parse("gauss(0, 1)")
            .unwrap_err()
            .contains("unknown distribution"));
        assert!(Dist::parse("uniform(0, x)")
            .unwrap_err()
            .contains("not a number"));
        assert!(Dist::parse("const 1").is_err());
        assert_eq!(
            Dist::parse("arange()").unwrap().value(0, 41, DType::I64),
            41.0
        );
    }
}
