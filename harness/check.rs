//! Host-side output checks: poison left behind (unwritten elements), NaN/Inf, guard bands, and
//! agreement with the float64 reference within the task's dtype tolerance.

use crate::dtype::DType;
use crate::reference::{Inputs, Reference};
use crate::task::spec::Tolerance;
use crate::task::{Row, TensorDesc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Two poison patterns (NaN in bf16, fp16 and fp32 alike), alternated between trials so a
/// kernel that copies its output buffer through cannot pass by luck.
pub const POISON: [u32; 2] = [0x7FA5_7FA5, 0xFFDA_FFDA];
/// Guard-band filler: a finite value in every float type, so a stray NaN store shows as well.
pub const GUARD: u32 = 0x3C3C_3C3C;
pub const GUARD_BYTES: usize = 64 * 1024;

/// The element bits a pattern leaves in a tensor of `dtype`.
pub fn pattern_bits(pattern: u32, dtype: DType) -> u64 {
    let p = pattern as u64;
    match dtype.size() {
        2 => p & 0xFFFF,
        4 => p,
        _ => p | (p << 32),
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// Elements scanned for poison and NaN/Inf (every element of every written tensor).
    pub scanned: u64,
    /// Elements compared with the reference.
    pub compared: u64,
    pub unwritten: u64,
    pub nonfinite: u64,
    pub mismatches: u64,
    pub max_abs: f64,
    pub max_rel: f64,
    /// The first problem found, in words (tensor, element index, got, expected).
    pub first: Option<String>,
}

impl Check {
    pub fn merge(mut self, o: Check) -> Check {
        self.scanned += o.scanned;
        self.compared += o.compared;
        self.unwritten += o.unwritten;
        self.nonfinite += o.nonfinite;
        self.mismatches += o.mismatches;
        self.max_abs = self.max_abs.max(o.max_abs);
        self.max_rel = self.max_rel.max(o.max_rel);
        self.first = self.first.or(o.first);
        self
    }
}

/// Counts elements still holding `poison` and elements that are NaN/Inf. Works on raw bits
/// (exponent all ones = not finite), so a full scan of a 400 MB output takes a fraction of the
/// time the GPU took to write it.
pub fn scan(desc: &TensorDesc, bytes: &[u8], poison: u32) -> Check {
    let dt = desc.dtype;
    let pbits = pattern_bits(poison, dt);
    let n = desc.numel() as usize;
    let size = dt.size();
    // Bits that are all ones exactly when a float is NaN or Inf; 0 for integer types.
    let exp_mask: u64 = match dt {
        DType::Bf16 => 0x7F80,
        DType::Fp16 => 0x7C00,
        DType::Fp32 => 0x7F80_0000,
        DType::I32 | DType::I64 => 0,
    };
    const CHUNK: usize = 1 << 16;
    (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut k = Check::default();
            let (lo, hi) = (c * CHUNK, ((c + 1) * CHUNK).min(n));
            let flag = |i: usize, bits: u64, k: &mut Check| {
                if bits == pbits {
                    k.unwritten += 1;
                    if k.first.is_none() {
                        k.first = Some(format!(
                            "{}[{i}] was never written (still poison)",
                            desc.name
                        ));
                    }
                } else if exp_mask != 0 && bits & exp_mask == exp_mask {
                    k.nonfinite += 1;
                    if k.first.is_none() {
                        k.first = Some(format!("{}[{i}] is {}", desc.name, dt.decode(bytes, i)));
                    }
                }
            };
            match size {
                2 => {
                    for (j, w) in bytes[lo * 2..hi * 2].chunks_exact(2).enumerate() {
                        let b = u16::from_le_bytes([w[0], w[1]]) as u64;
                        if b == pbits || b & exp_mask == exp_mask {
                            flag(lo + j, b, &mut k);
                        }
                    }
                }
                _ => {
                    for i in lo..hi {
                        let b = dt.bits(bytes, i);
                        if b == pbits || (exp_mask != 0 && b & exp_mask == exp_mask) {
                            flag(i, b, &mut k);
                        }
                    }
                }
            }
            k.scanned = (hi - lo) as u64;
            k
        })
        .reduce(Check::default, Check::merge)
}

/// Which units to compare: all, or a seeded sample of at most `n` distinct units (n - 2 draws
/// with replacement, sorted and deduplicated) that always includes the first and last. The draws
/// come from ChaCha8 (rand_chacha, a stream fixed across its versions) through rand's
/// `random_range`, both pinned by Cargo.lock, so a recorded seed gives back the same units; a
/// test pins one draw, so a dependency update that changed them would fail it.
pub fn pick_units(total: usize, sample: Option<usize>, seed: u64) -> Vec<usize> {
    match sample {
        Some(n) if n < total => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut v: Vec<usize> = (0..n.saturating_sub(2))
                .map(|_| rng.random_range(0..total))
                .collect();
            v.push(0);
            v.push(total - 1);
            v.sort_unstable();
            v.dedup();
            v
        }
        _ => (0..total).collect(),
    }
}

/// Compares the written tensors with the reference on `units`. `written` pairs each written
/// tensor (in declared order) with its downloaded bytes. Poisoned and non-finite elements are
/// skipped here: `scan` counts them.
pub fn compare(
    row: &Row,
    reference: &dyn Reference,
    seed: u64,
    written: &[(&TensorDesc, &[u8])],
    units: &[usize],
    tol: &(dyn Fn(DType) -> Tolerance + Sync),
    poison: u32,
) -> Check {
    if units.is_empty() {
        return Check::default();
    }
    let total = reference.units(row);
    let descs: Vec<&TensorDesc> = written.iter().map(|w| w.0).collect();
    compare_units(
        row,
        reference,
        seed,
        &descs,
        units,
        tol,
        poison,
        "",
        &|k, w| {
            let (desc, bytes) = written[w];
            let len = desc.numel() as usize / total * desc.dtype.size();
            &bytes[units[k] * len..(units[k] + 1) * len]
        },
    )
}

/// The bytes of one unit of each written tensor: `unit_bytes(k, w)` is unit `units[k]` of
/// written tensor `w`, element 0 first. Used with whole downloaded tensors (`compare`) and with
/// units gathered from many buffer sets, each under its own seed; `label` prefixes messages
/// (the buffer set).
#[allow(clippy::too_many_arguments)]
pub fn compare_units<'b>(
    row: &Row,
    reference: &dyn Reference,
    seed: u64,
    descs: &[&TensorDesc],
    units: &[usize],
    tol: &(dyn Fn(DType) -> Tolerance + Sync),
    poison: u32,
    label: &str,
    unit_bytes: &(dyn Fn(usize, usize) -> &'b [u8] + Sync),
) -> Check {
    compare_units_sides(
        row,
        reference,
        seed,
        descs,
        units,
        tol,
        poison,
        label,
        1,
        &|_, k, w| unit_bytes(k, w),
    )
    .pop()
    .unwrap_or_default()
}

/// `compare` of several sides' outputs of the same inputs (the correctness trial's baseline and
/// candidate, under one seed) against one computation of the reference: the same elements
/// compared and the same result per side as `compare` on each, for one reference pass.
#[allow(clippy::too_many_arguments)]
pub fn compare_sides(
    row: &Row,
    reference: &dyn Reference,
    seed: u64,
    written: &[Vec<(&TensorDesc, &[u8])>],
    units: &[usize],
    tol: &(dyn Fn(DType) -> Tolerance + Sync),
    poison: u32,
) -> Vec<Check> {
    let Some(first) = written.first() else {
        return Vec::new();
    };
    let total = reference.units(row);
    let descs: Vec<&TensorDesc> = first.iter().map(|w| w.0).collect();
    compare_units_sides(
        row,
        reference,
        seed,
        &descs,
        units,
        tol,
        poison,
        "",
        written.len(),
        &|side, k, w| {
            let (desc, bytes) = written[side][w];
            let len = desc.numel() as usize / total * desc.dtype.size();
            &bytes[units[k] * len..(units[k] + 1) * len]
        },
    )
}

/// The one loop behind `compare_units` and `compare_sides`: per unit, the reference once, then
/// every side's bytes of that unit (`unit_bytes(side, k, w)`).
#[allow(clippy::too_many_arguments)]
fn compare_units_sides<'b>(
    row: &Row,
    reference: &dyn Reference,
    seed: u64,
    descs: &[&TensorDesc],
    units: &[usize],
    tol: &(dyn Fn(DType) -> Tolerance + Sync),
    poison: u32,
    label: &str,
    sides: usize,
    unit_bytes: &(dyn Fn(usize, usize, usize) -> &'b [u8] + Sync),
) -> Vec<Check> {
    if units.is_empty() {
        return vec![Check::default(); sides];
    }
    let total = reference.units(row);
    let inputs = Inputs::new(row, seed);
    let merge = |a: Vec<Check>, b: Vec<Check>| -> Vec<Check> {
        a.into_iter().zip(b).map(|(x, y)| x.merge(y)).collect()
    };
    (0..units.len())
        .into_par_iter()
        .fold(
            || (vec![Check::default(); sides], vec![Vec::new(); descs.len()]),
            |(mut ks, mut bufs), ki| {
                let u = units[ki];
                reference.compute(row, &inputs, u, &mut bufs);
                for (side, k) in ks.iter_mut().enumerate() {
                for (w, desc) in descs.iter().enumerate() {
                    let bytes = unit_bytes(side, ki, w);
                    let dt = desc.dtype;
                    let t = tol(dt);
                    let pbits = pattern_bits(poison, dt);
                    let chunk = desc.numel() as usize / total;
                    for (j, &want) in bufs[w].iter().enumerate().take(chunk) {
                        let i = u * chunk + j;
                        if dt.bits(bytes, j) == pbits {
                            continue;
                        }
                        let got = dt.decode(bytes, j);
                        if !got.is_finite() {
                            continue;
                        }
                        k.compared += 1;
                        let err = (got - want).abs();
                        k.max_abs = k.max_abs.max(err);
                        if want != 0.0 {
                            k.max_rel = k.max_rel.max(err / want.abs());
                        }
                        if err > t.atol + t.rtol * want.abs() || want.is_nan() {
                            k.mismatches += 1;
                            if k.first.is_none() {
                                k.first = Some(format!(
                                    "{label}{}[{i}] = {got} but the reference is {want} (|diff| {err:.3e} > atol {} + rtol {} * |ref|)",
                                    desc.name, t.atol, t.rtol
                                ));
                            }
                        }
                    }
                }
                }
                (ks, bufs)
            },
        )
        .map(|(ks, _)| ks)
        .reduce(|| vec![Check::default(); sides], merge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::spec::Role;

    fn desc(n: i64, dtype: DType) -> TensorDesc {
        TensorDesc {
            name: "out".into(),
            role: Role::Output,
            dtype,
            shape: vec![n],
            stride: vec![1],
            dist: None,
        }
    }

    #[test]
    fn poison_is_nan_in_every_float_type() {
        for p in POISON {
            assert!(half::bf16::from_bits(pattern_bits(p, DType::Bf16) as u16).is_nan());
            assert!(half::f16::from_bits(pattern_bits(p, DType::Fp16) as u16).is_nan());
            assert!(f32::from_bits(pattern_bits(p, DType::Fp32) as u32).is_nan());
        }
        assert!(f32::from_bits(GUARD).is_finite());
        assert!(half::bf16::from_bits(GUARD as u16).to_f32().is_finite());
    }

    #[test]
    fn scan_finds_unwritten_and_nonfinite() {
        let d = desc(4, DType::Bf16);
        let mut bytes = Vec::new();
        for v in [
            half::bf16::from_f32(1.0).to_bits(),
            0x7FA5,
            half::bf16::INFINITY.to_bits(),
            half::bf16::from_f32(2.0).to_bits(),
        ] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let k = scan(&d, &bytes, POISON[0]);
        assert_eq!((k.scanned, k.unwritten, k.nonfinite), (4, 1, 1));
        assert!(k.first.unwrap().contains("out[1] was never written"));
        // Under the other pattern, 0x7FA5 is an ordinary NaN, not poison.
        let k = scan(&d, &bytes, POISON[1]);
        assert_eq!((k.unwritten, k.nonfinite), (0, 2));
    }

    /// pick_units(1000, Some(10), 5), as ChaCha8 draws it.
    const PINNED_DRAW: [usize; 10] = [0, 201, 208, 257, 277, 495, 715, 816, 867, 999];

    #[test]
    fn samples_include_both_ends_and_are_seeded() {
        let a = pick_units(1000, Some(10), 5);
        assert!(a.contains(&0) && a.contains(&999) && a.len() <= 10);
        assert_eq!(a, pick_units(1000, Some(10), 5));
        // A recorded seed must keep giving back the same units (see pick_units).
        assert_eq!(a, PINNED_DRAW.to_vec());
        assert_eq!(pick_units(5, Some(10), 5), vec![0, 1, 2, 3, 4]);
        assert_eq!(pick_units(3, None, 0), vec![0, 1, 2]);
    }

    #[test]
    fn one_reference_pass_for_two_sides_gives_each_side_its_own_compare() {
        let task = crate::task::Task::load(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tasks"),
            "fuse_scale_shift",
        )
        .unwrap();
        let row = task
            .rows
            .iter()
            .find(|r| r.name.starts_with("qwen_fss_S19_"))
            .unwrap();
        let rf = crate::reference::lookup(&task.spec.entries[row.entry].reference).unwrap();
        let w = crate::reference::written(row);
        let t = row.tensors[w[0]].as_ref().unwrap();
        let len = (t.numel() * t.dtype.size() as u64) as usize;
        // A side of zeros, and one of bytes that decode to assorted values, NaN and poison.
        let a = vec![0u8; len];
        let b: Vec<u8> = (0..len).map(|i| (i * 7919 % 251) as u8).collect();
        let units: Vec<usize> = (0..rf.units(row)).collect();
        let tol = |_| Tolerance {
            atol: 0.01,
            rtol: 0.01,
        };
        let one = |bytes: &[u8]| compare(row, rf, 5, &[(t, bytes)], &units, &tol, POISON[0]);
        let both = compare_sides(
            row,
            rf,
            5,
            &[vec![(t, &a[..])], vec![(t, &b[..])]],
            &units,
            &tol,
            POISON[0],
        );
        assert_eq!(both, vec![one(&a), one(&b)]);
        assert!(both[0].compared > 0 && both[1].mismatches > 0, "{both:?}");
    }
}
