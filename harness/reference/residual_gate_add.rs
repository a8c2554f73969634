//! float64 reference for SGLang's residual_gate_add (tasks/residual_gate_add):
//! out = residual + update * gate, with update and gate broadcast to residual's shape (PyTorch's
//! rules: shapes aligned on the right, a size-1 or missing dim repeats). Computed in one rounding
//! (float64), as KDA's fp32 oracle does; upstream rounds the product to the I/O dtype first, which
//! the tolerance covers.

use super::{need_dtype_of, need_float, present, Inputs, Reference};
use crate::task::{Row, TensorDesc};

pub struct ResidualGateAdd;

const RESIDUAL: usize = 0;
const UPDATE: usize = 1;
const GATE: usize = 2;
const OUT: usize = 3;

/// Storage strides that read `t` at a multi-index of `shape` (right-aligned broadcast: a missing
/// or size-1 dim of `t` reads index 0). Err when `t` does not broadcast to `shape`.
pub(crate) fn broadcast_strides(t: &TensorDesc, shape: &[i64]) -> Result<Vec<i64>, String> {
    if t.shape.len() > shape.len() {
        return Err(format!(
            "tensor '{}' has rank {} but the output has rank {}",
            t.name,
            t.shape.len(),
            shape.len()
        ));
    }
    let lead = shape.len() - t.shape.len();
    let mut s = vec![0i64; shape.len()];
    for (d, &n) in shape.iter().enumerate().skip(lead) {
        let k = d - lead;
        let m = t.shape[k];
        if m == n {
            s[d] = if m == 1 { 0 } else { t.stride[k] };
        } else if m == 1 {
            s[d] = 0;
        } else {
            return Err(format!(
                "tensor '{}' has shape {:?}, which does not broadcast to {:?} (dim {k}: {m} vs {n})",
                t.name, t.shape, shape
            ));
        }
    }
    Ok(s)
}

/// Hidden size (residual's last dim): one unit is one row of it.
fn hidden(row: &Row) -> i64 {
    let r = row.tensors[RESIDUAL].as_ref().expect("validated");
    *r.shape.last().expect("validated")
}

impl Reference for ResidualGateAdd {
    fn validate(&self, row: &Row) -> Result<(), String> {
        let (r, u, g, o) = (
            present(row, RESIDUAL)?,
            present(row, UPDATE)?,
            present(row, GATE)?,
            present(row, OUT)?,
        );
        for t in [r, u, g, o] {
            need_float(t)?;
        }
        // One dtype for all (PyTorch would type-promote mixed dtypes; no call site mixes them).
        for t in [u, g, o] {
            need_dtype_of(t, r)?;
        }
        if r.shape.is_empty() {
            return Err("residual must have at least one dim".into());
        }
        if o.shape != r.shape {
            return Err(format!(
                "out has shape {:?} but residual has {:?}",
                o.shape, r.shape
            ));
        }
        broadcast_strides(u, &r.shape)?;
        broadcast_strides(g, &r.shape)?;
        Ok(())
    }

    fn units(&self, row: &Row) -> usize {
        let r = row.tensors[RESIDUAL].as_ref().expect("validated");
        let d = hidden(row);
        if d == 0 {
            0
        } else {
            (r.numel() / d as u64) as usize
        }
    }

    fn compute(&self, row: &Row, inp: &Inputs, u: usize, out: &mut [Vec<f64>]) {
        let r = inp.desc(RESIDUAL).expect("validated");
        let shape = r.shape.clone();
        let rs = broadcast_strides(r, &shape).expect("validated");
        let us =
            broadcast_strides(inp.desc(UPDATE).expect("validated"), &shape).expect("validated");
        let gs = broadcast_strides(inp.desc(GATE).expect("validated"), &shape).expect("validated");
        let d = hidden(row);
        let rank = shape.len();
        // Multi-index of the unit's first element (last dim 0).
        let mut idx = vec![0i64; rank];
        let mut rem = u as i64;
        for k in (0..rank - 1).rev() {
            idx[k] = rem % shape[k];
            rem /= shape[k];
        }
        let base = |s: &[i64]| -> i64 { idx.iter().zip(s).map(|(&i, &st)| i * st).sum() };
        let (rb, ub, gb) = (base(&rs), base(&us), base(&gs));
        let last = rank - 1;
        let o = &mut out[0];
        o.clear();
        for c in 0..d {
            let rv = inp.at(RESIDUAL, (rb + c * rs[last]) as u64);
            let uv = inp.at(UPDATE, (ub + c * us[last]) as u64);
            let gv = inp.at(GATE, (gb + c * gs[last]) as u64);
            o.push(rv + uv * gv);
        }
    }
}
