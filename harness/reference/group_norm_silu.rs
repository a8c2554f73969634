//! float64 reference for SGLang's fused GroupNorm + SiLU (tasks/group_norm_silu):
//! x [B, C, *spatial] (rank 2-5, any strides), G groups of C/G channels; per (batch, group) the
//! mean and the population variance of its C/G * prod(spatial) elements (two passes in float64,
//! not upstream's fp32 E[x^2] - mean^2), y = silu((x - mean) / sqrt(var + eps) * w_c + b_c),
//! y contiguous [B, C, *spatial]. KDA's oracle is the same function in fp32.
//!
//! One unit is one (batch, channel): its y elements are contiguous, and a unit costs prod(spatial)
//! outputs rather than a whole group. A unit needs its group's statistics, which read the whole
//! group (up to 8.9M elements on the production rows); they are computed once per (inputs, batch,
//! group) and kept in a small cache, so the units of one group compared after a timed sample, or
//! in the correctness trial, share one pass over the group instead of one each.

use super::{need_dtype_of, need_float, present, Inputs, Reference};
use crate::task::{Row, TensorDesc};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

pub struct GroupNormSilu;

/// (inputs key of x, x's layout and distribution, batch, group) -> (mean, variance).
type StatsKey = (u64, u64, usize, usize);
type StatsCell = Arc<OnceLock<(f64, f64)>>;

/// Entries kept before the cache is emptied: a timed sample of the largest row touches at most
/// 64 units, the correctness trial every group of one row; statistics of earlier trials are never
/// asked again (every trial fills new inputs).
const STATS_CACHE_MAX: usize = 1 << 14;

fn stats_cache() -> &'static Mutex<HashMap<StatsKey, StatsCell>> {
    static CACHE: OnceLock<Mutex<HashMap<StatsKey, StatsCell>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Everything besides the seed that decides x's values: shape, strides, dtype, distribution.
fn layout_hash(x: &TensorDesc) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    x.shape.hash(&mut h);
    x.stride.hash(&mut h);
    x.dtype.name().hash(&mut h);
    x.dist.as_ref().map(|d| d.to_string()).hash(&mut h);
    h.finish()
}

const X: usize = 0;
const WEIGHT: usize = 1;
const BIAS: usize = 2;
const Y: usize = 3;

/// num_groups as a usize: a positive integer.
fn groups(row: &Row) -> Result<usize, String> {
    let g = row.scalars[0];
    if g.fract() != 0.0 || !(1.0..=65_535.0).contains(&g) {
        return Err(format!("num_groups {g} must be an integer in [1, 65535]"));
    }
    Ok(g as usize)
}

/// Storage offsets of x's elements in one channel, in row-major spatial order.
fn spatial_offsets(x: &TensorDesc, out: &mut Vec<u64>) {
    out.clear();
    out.push(0);
    // Innermost dim last: expand from the outermost spatial dim inwards.
    for d in 2..x.shape.len() {
        let (n, st) = (x.shape[d], x.stride[d]);
        let prev = std::mem::take(out);
        out.reserve(prev.len() * n as usize);
        for &p in &prev {
            for i in 0..n {
                out.push((p as i64 + i * st) as u64);
            }
        }
    }
}

impl Reference for GroupNormSilu {
    fn validate(&self, row: &Row) -> Result<(), String> {
        let (x, w, b, y) = (
            present(row, X)?,
            present(row, WEIGHT)?,
            present(row, BIAS)?,
            present(row, Y)?,
        );
        for t in [x, w, b, y] {
            need_float(t)?;
        }
        for t in [w, b, y] {
            need_dtype_of(t, x)?;
        }
        if !(2..=5).contains(&x.shape.len()) {
            return Err(format!(
                "x has rank {} but must have rank 2 to 5 ([B, C, *spatial])",
                x.shape.len()
            ));
        }
        let c = x.shape[1];
        let g = groups(row)? as i64;
        if c % g != 0 {
            return Err(format!("C = {c} is not a multiple of num_groups = {g}"));
        }
        for t in [w, b] {
            if t.shape != [c] {
                return Err(format!(
                    "{} has shape {:?} but must be [C] = [{c}]",
                    t.name, t.shape
                ));
            }
        }
        if y.shape != x.shape || !y.is_contiguous() {
            return Err(format!(
                "y must be contiguous with x's shape {:?}, not {:?} with strides {:?}",
                x.shape, y.shape, y.stride
            ));
        }
        let eps = row.scalars[1];
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(format!("eps {eps} must be finite and >= 0"));
        }
        Ok(())
    }

    fn units(&self, row: &Row) -> usize {
        let x = row.tensors[X].as_ref().expect("validated");
        (x.shape[0] * x.shape[1]) as usize
    }

    fn compute(&self, row: &Row, inp: &Inputs, u: usize, out: &mut [Vec<f64>]) {
        let x = inp.desc(X).expect("validated");
        let w = inp.desc(WEIGHT).expect("validated");
        let b = inp.desc(BIAS).expect("validated");
        let g = groups(row).expect("validated");
        let eps = row.scalars[1];
        let c_all = x.shape[1] as usize;
        let cpg = c_all / g;
        let (batch, c) = (u / c_all, u % c_all);
        let group = c / cpg;
        let mut offs = Vec::new();
        spatial_offsets(x, &mut offs);
        let channel_base = |c: usize| batch as i64 * x.stride[0] + c as i64 * x.stride[1];
        let key = (inp.key(X), layout_hash(x), batch, group);
        let cell = {
            let mut cache = stats_cache().lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= STATS_CACHE_MAX && !cache.contains_key(&key) {
                cache.clear();
            }
            Arc::clone(cache.entry(key).or_default())
        };
        let (mean, var) = *cell.get_or_init(|| {
            // Two passes over the group's values, read once from the seeded generator.
            let mut vals = Vec::with_capacity(cpg * offs.len());
            for k in 0..cpg {
                let base = channel_base(group * cpg + k);
                vals.extend(offs.iter().map(|&s| inp.at(X, (base + s as i64) as u64)));
            }
            let n = vals.len() as f64;
            let mean = vals.iter().sum::<f64>() / n;
            let var = vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
            (mean, var)
        });
        let rstd = 1.0 / (var + eps).sqrt();
        let wc = inp.at(WEIGHT, c as u64 * w.stride[0] as u64);
        let bc = inp.at(BIAS, c as u64 * b.stride[0] as u64);
        let base = channel_base(c);
        let o = &mut out[0];
        o.clear();
        o.extend(offs.iter().map(|&s| {
            let z = (inp.at(X, (base + s as i64) as u64) - mean) * rstd * wc + bc;
            z / (1.0 + (-z).exp())
        }));
    }
}
