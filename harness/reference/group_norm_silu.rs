//! float64 reference for SGLang's fused GroupNorm + SiLU (tasks/group_norm_silu):
//! x [B, C, *spatial] (rank 2-5, any strides), G groups of C/G channels; per (batch, group) the
//! mean and the population variance of its C/G * prod(spatial) elements (two passes in float64,
//! not upstream's fp32 E[x^2] - mean^2), y = silu((x - mean) / sqrt(var + eps) * w_c + b_c),
//! y contiguous [B, C, *spatial]. One unit is one (batch, group): its y elements are contiguous.
//! KDA's oracle is the same function in fp32 (silu(F.group_norm(x.float(), ...))).

use super::{need_dtype_of, need_float, Inputs, Reference};
use crate::task::{Row, TensorDesc};

pub struct GroupNormSilu;

const X: usize = 0;
const WEIGHT: usize = 1;
const BIAS: usize = 2;
const Y: usize = 3;

fn present(row: &Row, i: usize) -> Result<&TensorDesc, String> {
    row.tensors[i]
        .as_ref()
        .ok_or_else(|| format!("tensor #{i} is missing"))
}

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
        let g = groups(row).expect("validated");
        x.shape[0] as usize * g
    }

    fn compute(&self, row: &Row, inp: &Inputs, u: usize, out: &mut [Vec<f64>]) {
        let x = inp.desc(X).expect("validated");
        let w = inp.desc(WEIGHT).expect("validated");
        let b = inp.desc(BIAS).expect("validated");
        let g = groups(row).expect("validated");
        let eps = row.scalars[1];
        let cpg = x.shape[1] as usize / g;
        let (batch, group) = (u / g, u % g);
        let mut offs = Vec::new();
        spatial_offsets(x, &mut offs);
        let o = &mut out[0];
        o.clear();
        o.reserve(cpg * offs.len());
        // Pass 0: the group's values (read once from the seeded generator).
        for k in 0..cpg {
            let c = (group * cpg + k) as i64;
            let base = batch as i64 * x.stride[0] + c * x.stride[1];
            for &s in &offs {
                o.push(inp.at(X, (base + s as i64) as u64));
            }
        }
        let n = o.len() as f64;
        let mean = o.iter().sum::<f64>() / n;
        let var = o.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let rstd = 1.0 / (var + eps).sqrt();
        let per = offs.len();
        for k in 0..cpg {
            let c = (group * cpg + k) as u64;
            let wc = inp.at(WEIGHT, c * w.stride[0] as u64);
            let bc = inp.at(BIAS, c * b.stride[0] as u64);
            for v in &mut o[k * per..(k + 1) * per] {
                let z = (*v - mean) * rstd * wc + bc;
                *v = z / (1.0 + (-z).exp());
            }
        }
    }
}
